"""example.sh: the tiny defaults' token budgets never reach real models or judges given by the user."""
import os
import subprocess

import pytest

from conftest import ROOT

SETTINGS_START, SETTINGS_END = "TINY_MODEL=", 'echo "== Step 1'


def settings(env: dict) -> str:
    """Run example.sh's settings block (without building the tiny inputs) and print the arguments it builds."""
    with open(os.path.join(ROOT, "example.sh")) as handle:
        text = handle.read()
    block = text[text.index(SETTINGS_START):text.index(SETTINGS_END)]
    block = "\n".join(line for line in block.splitlines()
                      if not line.startswith(("if ", "fi")) and "make_example_inputs" not in line)
    script = f'OUT=/tmp/o; INPUTS=/tmp/i; DATASET=math\n{block}\necho "${{step1_args[*]}} | ${{judge_args[*]:-}}"'
    return subprocess.run(["bash", "-uc", script], env={"PATH": os.environ["PATH"], **env}, capture_output=True,
                          text=True, check=True).stdout


@pytest.mark.parametrize("env,step1_cap,judge_cap", [
    ({}, "--max_new_tokens 32", "--judge_max_tokens 64 --verdicts_per_sample 5"),  # the tiny defaults
    ({"MODEL": "gpt-4o-mini", "LM_JUDGES": "GPT-4o-mini"}, None, None),  # real ones: their own defaults
    ({"LM_JUDGES": "GPT-4o-mini", "JUDGE_MAX_TOKENS": "900"}, "--max_new_tokens 32", "--judge_max_tokens 900"),
    ({"VERDICTS": "3"}, "--max_new_tokens 32", "--judge_max_tokens 64 --verdicts_per_sample 3"),
])
def test_token_budgets_follow_the_models(env, step1_cap, judge_cap):
    step1, judges = settings(env).split(" | ")
    assert (step1_cap in step1) if step1_cap else "--max_new_tokens" not in step1
    assert (judges.strip() == judge_cap) if judge_cap else judges.strip() == ""
