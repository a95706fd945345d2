"""Step 4's baselines equal Weaver's on its export: majority vote (missing answers, answers spelled differently),
first sample, coverage and sample accuracy; rows no verifier scored are named, and left out only when asked.

Weaver's rules are reimplemented here from its behaviour (HazyResearch/scaling-verification, weaver/models.py
MajorityVote with k=1 and majority_select one_sample, FirstSample, Coverage; weaver/dataset.py's loader), never copied.
"""
from __future__ import annotations

import json

import datasets
import matplotlib.figure
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_report import save

from generation import verifier_report
from generation.grading.checking import math_key

pytestmark = pytest.mark.filterwarnings("error")
SENTINEL = "NO_ANSWER"


def weaver_majority(answers: list, correct: list) -> float:
    """Weaver's majority vote of one problem: answers grouped by exact value, its sentinel skipped (None is a group
    like any other), the most frequent group wins (ties: the group seen first), and the problem counts as right when
    that group's first sample is right. Weaver fails on a problem whose answers are all skipped."""
    groups: dict = {}
    for answer, right in zip(answers, correct):
        if answer != SENTINEL:
            groups.setdefault(answer, []).append(right)
    if not groups:
        raise RuntimeError("Weaver's majority vote has no answer group for this problem")
    winner = max(groups.values(), key=len)  # dicts keep first-seen order: ties go to the group seen first
    return float(winner[0])


def weaver_baselines(export: str) -> dict:
    """Weaver's verifier-free baselines on an export, each the mean over problems of its per-problem value."""
    data = datasets.load_from_disk(export)
    rows = list(zip(data["extracted_answers"], data["answer_correct"]))
    return {"majority_vote": np.mean([weaver_majority(a, c) for a, c in rows]),
            "first_sample": np.mean([c[0] for _, c in rows]), "pass_at_k": np.mean([any(c) for _, c in rows]),
            "sample_accuracy": np.mean([np.mean(c) for _, c in rows])}


def step4(folder, columns: dict, *extra: str) -> tuple[dict, str]:
    """Step 4 with a Weaver export; returns report.json and the export's path."""
    source = save(columns, folder / "in.hf")
    export = str(folder / "weaver")
    assert verifier_report.main(["--dataset_path", source, "--output_dir", str(folder / "rep"),
                                 "--export_weaver", export, *extra]) == 0
    return json.loads((folder / "rep" / "report.json").read_text()), export


ANSWERS = st.sampled_from([None, "1", "2", "3", "\\frac{1}{2}", "\\dfrac{1}{2}", "1/2"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_baselines_equal_weavers_on_the_export(tmp_path_factory, monkeypatch, data):
    """Any rows of answers (missing ones, equal answers spelled differently) graded against their gold answer: the
    report's majority vote, first sample, pass@k and sample accuracy equal Weaver's rules on the export."""
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda fig, path, *a, **k: open(path, "wb").close())
    rows, samples = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 6))
    answers = data.draw(st.lists(st.lists(ANSWERS, min_size=samples, max_size=samples), min_size=rows,
                                 max_size=rows))
    gold = data.draw(st.lists(st.sampled_from(["1", "\\frac{1}{2}"]), min_size=rows, max_size=rows))
    correct = [[a is not None and math_key(a) == math_key(g) for a in row] for row, g in zip(answers, gold)]
    columns = {"instruction": ["q"] * rows, "answer": gold, "extracted_answers": answers, "answer_correct": correct,
               "GRM_scores": np.random.default_rng(rows * samples).random((rows, samples)).tolist()}
    report, export = step4(tmp_path_factory.mktemp("weaver"), columns, "--dataset_type", "math")
    weaver = weaver_baselines(export)
    for key, value in weaver.items():
        assert report["baselines"][key] == pytest.approx(value), key


def test_a_missing_answer_is_weavers_sentinel_unless_the_row_has_none(tmp_path):
    """The issue's case: [None, None, 5, 7, 8] with gold 5 is a right majority vote (missing answers do not vote)."""
    columns = {"instruction": ["q", "r"], "answer": ["5", "5"],
               "extracted_answers": [[None, None, "5", "7", "8"], [None] * 5],
               "answer_correct": [[False, False, True, False, False], [False] * 5],
               "GRM_scores": [[0.1] * 5, [0.2] * 5]}
    report, export = step4(tmp_path, columns)
    assert datasets.load_from_disk(export)["extracted_answers"] == [[SENTINEL, SENTINEL, "5", "7", "8"], [None] * 5]
    assert report["baselines"]["majority_vote"] == 0.5 == weaver_baselines(export)["majority_vote"]


def weaver_loaded_rows(export: str) -> tuple[int, int]:
    """What Weaver's loader keeps of an export: problems with any verifier score (its scores and labels) against
    all problems (its answers, which it does not filter)."""
    data = datasets.load_from_disk(export)
    columns = [c for c in data.column_names if c.endswith(("_scores", "_verdicts"))]
    scores = np.stack([np.array(data[c], dtype=float).reshape(len(data), -1) for c in columns], axis=-1)
    return int((~np.isnan(scores).all(axis=(1, 2))).sum()), len(data["extracted_answers"])


def test_rows_without_any_score_are_named_and_dropped_only_when_asked(tmp_path, capsys):
    columns = {"instruction": ["q", "r", "s"], "answer": ["1"] * 3, "extracted_answers": [["1", "2"]] * 3,
               "answer_correct": [[True, False], [False, True], [True, True]],
               "GRM_scores": [[0.9, 0.1], [None, None], [0.5, 0.4]],
               "GPT-4o_verdicts": [[[1.0], [0.0]], [[None], [None]], [[1.0], [1.0]]]}
    kept, export = step4(tmp_path / "kept", columns)
    assert "1 row(s) have no score from any verifier (1)" in capsys.readouterr().err
    assert kept["rows"] == 3 and weaver_loaded_rows(export) == (2, 3)  # Weaver would misalign answers and labels
    assert json.loads((tmp_path / "kept" / "weaver" / "provenance.json").read_text())["unscored_rows"] == [1]

    dropped, export = step4(tmp_path / "dropped", columns, "--drop_unscored_rows")
    assert dropped["rows"] == 2 and weaver_loaded_rows(export) == (2, 2)
    assert dropped["baselines"]["first_sample"] == 1.0  # rows 0 and 2: the report describes the rows Weaver reads
    for folder in ("rep", "weaver"):
        provenance = json.loads((tmp_path / "dropped" / folder / "provenance.json").read_text())
        assert provenance["dropped_unscored_rows"] == [1]
    assert datasets.load_from_disk(str(tmp_path / "kept" / "in.hf"))["data"].num_rows == 3  # input untouched
