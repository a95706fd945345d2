"""Quiet by default: each step prints its own progress bar, notices and summary; --verbose shows the libraries' logs."""
from __future__ import annotations

import importlib
import sys

import pytest
from test_report import known_rows, save
from tqdm import tqdm

from generation.common.cli import UserError, run_main

from conftest import run_script
from fixtures_benchmarks import write_benchmark

STEPS = ("generate_reasoning_samples", "unified_evaluation", "unified_RMs_and_LM_Judges", "verifier_report",
         "merge_shards")
# Lines the libraries print on their own: datasets' and transformers' progress bars, vLLM's and torch's logs.
LIBRARY_LINES = ("Saving the dataset", "Loading weights", "Writing model shards", "Generating train split",
                 "INFO", "FutureWarning", "resource_tracker")


@pytest.mark.parametrize("step", STEPS)
def test_every_step_has_verbose(step, capsys):
    with pytest.raises(SystemExit):
        importlib.import_module(f"generation.{step}").main(["--help"])
    assert "--verbose" in capsys.readouterr().out


def library_lines(stderr: str) -> list[str]:
    """The lines of stderr that come from a library rather than the step."""
    return [line for line in stderr.replace("\r", "\n").splitlines() if any(word in line for word in LIBRARY_LINES)]


def test_report_is_quiet_and_takes_verbose(tmp_path):
    source = save({**known_rows(), "URM_scores": known_rows()["oracle_scores"]}, tmp_path / "in.hf")
    runs = {}
    for flag in ((), ("--verbose",)):
        out = tmp_path / f"run{len(flag)}"
        runs[flag] = run_script("verifier_report.py", "--dataset_path", source, "--output_dir", str(out / "rep"),
                                "--export_weaver", str(out / "weaver"), *flag)
        assert runs[flag].returncode == 0, runs[flag].stderr
    assert library_lines(runs[()].stderr) == []


def test_step1_local_is_quiet(tmp_path, tiny_chat_model):
    done = run_script("generate_reasoning_samples.py", "--model", tiny_chat_model, "--backend", "transformers",
                      "--dataset", "math", "--dataset_path", write_benchmark("math", str(tmp_path)), "--max_rows", "2",
                      "--max_new_tokens", "4", "--output_path", str(tmp_path / "out.hf"))
    assert done.returncode == 0, done.stderr
    assert library_lines(done.stderr) == [], done.stderr
    assert "Step 1 done" in done.stdout + done.stderr


def test_error_starts_on_its_own_line_after_a_progress_bar(capsys):
    def failing(argv):
        bar = tqdm(total=4, desc="work", file=sys.stderr)
        bar.update(2)
        raise UserError("the input is wrong")

    with pytest.raises(SystemExit):
        run_main(failing, [])
    lines = capsys.readouterr().err.replace("\r", "\n").splitlines()
    assert lines[-1] == "error: the input is wrong"
    assert not tqdm._instances
