"""example.sh end to end, offline: the taught tiny models give a report with signal, and the console stays short."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from conftest import OFFLINE_ENV, ROOT

CONSOLE_LINES = 120  # about two screens


@pytest.mark.slow
def test_example_shows_signal(tmp_path):
    env = {**os.environ, **OFFLINE_ENV, "OUT": str(tmp_path / "example")}
    env.pop("VLLM_LOGGING_LEVEL")  # the example's own default, not the tests'
    done = subprocess.run(["bash", os.path.join(ROOT, "example.sh")], capture_output=True, text=True, env=env,
                          timeout=1800, check=False)
    console = (done.stdout + done.stderr).replace("\r", "\n").splitlines()
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "example" / "report" / "report.json").read_text())
    baselines, rm, judge = report["baselines"], report["verifiers"]["TinyRM"], report["verifiers"]["TinyJudge"]
    assert baselines["pass_at_k"] > baselines["first_sample"] > 0  # right on some samples, wrong on others
    assert rm["auroc"] > 0.6  # the reward model ranks right answers higher, clearly above chance
    # select@1 beats the expected accuracy of one sample (the first sample is one draw of it, noisy on 16 problems)
    assert rm["select_at_1"] > baselines["sample_accuracy"]
    assert judge["coverage"] > 0.5  # the judge emits verdicts
    assert len([line for line in console if line.strip()]) <= CONSOLE_LINES, "\n".join(console)
    assert not [line for line in console if "resource_tracker" in line or " INFO " in line]
