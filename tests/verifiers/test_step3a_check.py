"""--check on the CPU: each model's row shows its own memory (resident memory above the level before it loaded),
not the process-wide peak that would repeat the largest model's figure for every later one."""
from __future__ import annotations

import re

import pytest

import tiny_reward_models as tiny
from conftest import run_script

MEMORY = re.compile(r"(\d+\.\d+) GiB RSS")


@pytest.mark.slow
def test_check_reports_each_models_own_memory(tmp_path):
    """A ~70 MB model checked before a tiny one (a fresh process, as a user runs it): the tiny one's row shows far
    less memory than the big one's."""
    big = tiny.build_sequence_classifier(str(tmp_path / "big"), hidden_size=512, intermediate_size=2048,
                                         num_hidden_layers=4)
    small = tiny.build_sequence_classifier(str(tmp_path / "small"))
    proc = run_script("unified_RMs_and_LM_Judges.py", "--check", "--device", "cpu", "--reward_models",
                      f"Big={big}:sequence_classifier,Small={small}:sequence_classifier")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = proc.stdout.strip().splitlines()[1:]
    used = {row.split()[0]: float(MEMORY.search(row).group(1)) * 2**30 for row in rows}
    assert used["Big"] > 60e6, rows  # its float32 weights alone are ~70 MB
    assert used["Small"] < used["Big"] / 2, rows
