"""The package as a user installs it: in a fresh venv, `python -c "import generation; ..."` from a neutral folder
grades a sample, parses a verdict and computes a report from a saved dataset, using the installed copy of
`generation`."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig

import datasets

from conftest import GENERATION, ROOT

SNIPPET = """
import json, sys, generation
grade = generation.grade(r"Adding the parts gives $\\boxed{12}$.", "12")
verdict = generation.parse_verdict("Every step checks out except the last.\\nVerdict: False")
report = generation.report_metrics(sys.argv[1])
print(json.dumps({"file": generation.__file__, "correct": grade.correct, "verdict": verdict,
                  "auroc": report["verifiers"]["Perfect"]["auroc"], "rows": report["rows"]}))
"""


def fresh_venv(folder: str) -> str:
    """A new venv whose only extra path is this environment's site-packages, as plain path lines (so the
    requirements are there without installing them again, while the .pth files in them, such as an editable install
    of `generation`, are not run); the checkout installed into it the ordinary, non-editable way. -> its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", folder], check=True)
    python = os.path.join(folder, "bin", "python")
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], check=True,
                          capture_output=True, text=True).stdout.strip()
    ours = dict.fromkeys(sysconfig.get_path(name) for name in ("purelib", "platlib"))
    with open(os.path.join(site, "requirements.pth"), "w", encoding="utf-8") as handle:
        handle.write("".join(f"{path}\n" for path in ours))
    source = os.path.join(os.path.dirname(folder), "source")  # a copy: the build leaves the checkout untouched
    os.makedirs(source)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(os.path.join(ROOT, name), source)
    shutil.copytree(GENERATION, os.path.join(source, "generation"), ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "--disable-pip-version-check", "--no-cache-dir", source], check=True, env=clean_env())
    return python


def clean_env() -> dict[str, str]:
    """This environment without PYTHONPATH (the tests put the checkout on it)."""
    return {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}


def test_installed_package_grades_parses_and_reports(tmp_path):
    correct = [[True, False, False], [False, False, True]]
    datasets.DatasetDict({"data": datasets.Dataset.from_dict({
        "instruction": ["q1", "q2"], "samples": [["a", "b", "c"]] * 2, "answer": ["1", "2"],
        "answer_correct": correct, "extracted_answers": [["1", "3", "4"], ["5", "6", "2"]],
        "answer_extraction_method": [["procedural"] * 3] * 2,
        "Perfect_scores": [[float(c) for c in row] for row in correct]})}).save_to_disk(str(tmp_path / "scored.hf"))
    python = fresh_venv(str(tmp_path / "venv"))
    neutral = tmp_path / "elsewhere"
    neutral.mkdir()
    done = subprocess.run([python, "-c", SNIPPET, str(tmp_path / "scored.hf")], cwd=neutral, env=clean_env(),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["file"].startswith(str(tmp_path / "venv")), found["file"]  # the installed copy, not the checkout
    assert (found["correct"], found["verdict"], found["auroc"], found["rows"]) == (True, 0.0, 1.0, 2)
    installed = os.path.dirname(found["file"])
    modules = {os.path.relpath(os.path.join(folder, name), GENERATION) for folder, _, names in os.walk(GENERATION)
               for name in names if name.endswith(".py")}
    assert all(os.path.isfile(os.path.join(installed, module)) for module in modules)  # nothing left behind
