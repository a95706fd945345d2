"""example.sh end to end, offline: the taught tiny models give a report with signal, and the console stays short."""
from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
from test_report_small_cases import pixels_vary

from generation.report.render import FIGURES

from conftest import OFFLINE_ENV, ROOT

CONSOLE_LINES = 120  # about two screens
BAR = re.compile(r"^(?P<label>.*?):\s+\d+%\|")  # a progress bar's line: "label:  40%|####  | 4/10 ..."
MARGIN = 0.1  # the gaps the issue asks for, well outside the noise of 64 problems (one draw's sd is about 0.06)


def screen_lines(text: str) -> list[str]:
    """The lines a terminal shows: a progress bar's updates (after \\r, or one a line when not a terminal) redrawn in
    place as one line."""
    lines: list[str] = []
    for line in (raw.rsplit("\r", 1)[-1] for raw in text.split("\n")):
        bar, last = BAR.match(line), BAR.match(lines[-1]) if lines else None
        if bar and last and bar["label"] == last["label"]:
            lines[-1] = line
        else:
            lines.append(line)
    return lines


@pytest.mark.slow
def test_example_shows_signal(tmp_path):
    env = {**os.environ, **OFFLINE_ENV, "OUT": str(tmp_path / "example")}
    env.pop("VLLM_LOGGING_LEVEL")  # the example's own default, not the tests'
    done = subprocess.run(["bash", os.path.join(ROOT, "example.sh")], capture_output=True, text=True, env=env,
                          timeout=1800, check=False)
    text = done.stdout + done.stderr
    console = screen_lines(text)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "example" / "report" / "report.json").read_text())
    baselines, rm, judge = report["baselines"], report["verifiers"]["TinyRM"], report["verifiers"]["TinyJudge"]
    first = baselines["first_sample"]
    assert 0 < first < 1 and 0 < baselines["sample_accuracy"] < 1  # right on some samples, wrong on others
    assert baselines["pass_at_k"] > first + MARGIN
    assert rm["auroc"] > 0.5 + 2 * MARGIN  # the reward model ranks right answers higher, clearly above chance
    assert rm["select_at_1"] > first + MARGIN  # picking by the reward model beats taking the first sample
    assert rm["select_at_1"] > baselines["sample_accuracy"] + MARGIN  # ... and one sample's expected accuracy
    assert judge["coverage"] > 0.9  # the judge emits a verdict for (almost) every sample
    assert judge["auroc"] >= 0.6  # ... and its K verdicts lean to the right samples: a judge with signal
    assert report["intervals"]["verifiers"]["TinyRM"]["select_at_1"][0] > first  # beyond the resampling noise
    folder = tmp_path / "example" / "report"
    assert all(pixels_vary(folder / name) for name in FIGURES)  # no blank figure
    additions = (tmp_path / "example" / "weaver.hf" / "weaver_constants_additions.py").read_text()
    assert '"TinyRM_scores"' in additions and '"TinyJudge_verdicts"' in additions  # own names, never URM's
    assert len([line for line in console if line.strip()]) <= CONSOLE_LINES, "\n".join(console)
    assert "resource_tracker" not in text and " INFO " not in text
