"""Each step's orchestration behind its CLI script: settings (each step's settings, parsed once), generate (Step 1),
evaluate (Step 2), verify and verifier_checkpoints (Step 3).

May import every other package; nothing imports steps except the CLI scripts.
"""
