"""Step 2's grading: parsing final answers out of samples (parsing, math_parsing), checking them against the ground
truth (checking), and the decision per sample (decision).

May import: common, data (column names; the LLM fallback itself runs in steps.evaluate through backends).
"""
