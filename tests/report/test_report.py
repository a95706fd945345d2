"""Verifier report (generation/verifier_report.py): hand-computed figures, files, released schema, bad input."""
from __future__ import annotations

import base64
import itertools
import json
import os

import datasets
import numpy as np
import pytest
from PIL import Image

from generation import verifier_report
from generation.common.cli import UserError
from generation.report import metrics

from conftest import run_script

pytestmark = pytest.mark.filterwarnings("error")  # no warning reaches the console
CORRECT = [[False, True, False, True], [False] * 4, [True, True, False, False], [False, False, True, False]]
# row 0: a 2-2 tie goes to the earlier answer "1" (wrong); row 2: \frac and \dfrac are one answer (Step 2's key)
ANSWERS = [["1", "2", "1", "2"], ["3", "3", None, "4"], ["\\frac{1}{2}", "\\dfrac{1}{2}", "5", "6"],
           [None, None, "7", None]]
JUDGE = [[[1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [None, None]], [[0.0, 0.0]] * 4,
         [[1.0, 1.0], [0.0, 0.0], [1.0, None], [0.0, 0.0]], [[0.0, 0.0], [1.0, 1.0], [1.0, 1.0], [0.0, 0.0]]]
FIGURES = ("auroc.png", "best_of_k.png", "score_distributions.png", "correlations.png", "auroc_vs_select.png")

# Worked out by hand from the rows above.
EXPECTED_BASELINES = {"pass_at_k": 0.75, "majority_vote": 0.5, "first_sample": 0.25, "sample_accuracy": 5 / 16}
EXPECTED = {
    "oracle": {"kind": "reward_model", "auroc": 1.0, "select_at_1": 0.75, "coverage": 1.0,
               "mean_score_correct": 1.0, "mean_score_incorrect": 0.0},
    "constant": {"kind": "reward_model", "auroc": 0.5, "select_at_1": 0.25, "coverage": 1.0,
                 "mean_score_correct": 0.5, "mean_score_incorrect": 0.5},
    # verdict means [.5,1,0,-], [0,0,0,0], [1,0,1,0], [0,1,1,0]: 34 of 44 (correct, incorrect) pairs ordered
    "J": {"kind": "judge", "auroc": 34 / 44, "select_at_1": 0.5, "coverage": 15 / 16,
          "mean_score_correct": 0.75, "mean_score_incorrect": 2.5 / 11},
    # the main PRM column is min (= 1 - correct), not max (= correct)
    "P": {"kind": "prm", "auroc": 0.0, "select_at_1": 0.0, "coverage": 1.0,
          "mean_score_correct": 0.0, "mean_score_incorrect": 1.0},
    "Broken": {"kind": "reward_model", "auroc": None, "select_at_1": None, "coverage": 0.0,
               "mean_score_correct": None, "mean_score_incorrect": None},
}


def known_rows() -> dict:
    """Columns of the hand-computed dataset (Step 3 schema: RM, K=2 judge, PRM min/max/avg/step, all-None RM)."""
    return {"instruction": ["q"] * 4, "samples": [["s"] * 4] * 4, "answer": ["2", "0", "1/2", "7"],
            "extracted_answers": ANSWERS, "answer_correct": CORRECT,
            "answer_extraction_method": [["procedural"] * 4] * 4,
            "oracle_scores": [[float(x) for x in row] for row in CORRECT], "constant_scores": [[0.5] * 4] * 4,
            "J_verdicts": JUDGE, "J_judgments": [[["x", "y"]] * 4] * 4,
            "P_min_scores": [[1.0 - x for x in row] for row in CORRECT],
            "P_max_scores": [[float(x) for x in row] for row in CORRECT], "P_avg_scores": [[0.5] * 4] * 4,
            "P_step_scores": [[[0.1, 0.2]] * 4] * 4, "Broken_scores": [[None] * 4] * 4}


def save(columns: dict, path, plain: bool = False) -> str:
    """Save columns as a Step 3 output (DatasetDict with split data) or a plain Dataset folder."""
    dataset = datasets.Dataset.from_dict(columns)
    (dataset if plain else datasets.DatasetDict({"data": dataset})).save_to_disk(str(path))
    return str(path)


def report(tmp_path, *extra: str, columns: dict | None = None) -> dict:
    """Run the report in this process and return report.json."""
    source = save(columns or known_rows(), tmp_path / "in.hf")
    assert verifier_report.main(["--dataset_path", source, "--output_dir", str(tmp_path / "rep"), *extra]) == 0
    with open(tmp_path / "rep" / "report.json") as handle:
        return json.load(handle)


def assert_close(actual: dict, expected: dict) -> None:
    """Every expected field equal to 1e-9 (None exactly)."""
    for key, value in expected.items():
        if value is None or isinstance(value, str):
            assert actual[key] == value, key
        else:
            assert actual[key] == pytest.approx(value, abs=1e-9), key


def pairwise_auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """AUROC by counting every (correct, incorrect) pair (ties one half): an independent check."""
    pos, neg = scores[labels], scores[~labels]
    return float(((pos[:, None] > neg[None]) + 0.5 * (pos[:, None] == neg[None])).mean())


def test_report_numbers_are_the_hand_computed_ones(tmp_path, capsys):
    result = report(tmp_path)
    assert set(result) == {"rows", "samples_per_row", "baselines", "verifiers", "intervals", "ranking", "best_of_k",
                           "correlations"}
    assert (result["rows"], result["samples_per_row"]) == (4, 4)
    assert_close(result["baselines"], EXPECTED_BASELINES)
    assert set(result["verifiers"]) == {*EXPECTED, "mean_of_normalised"}
    for name, expected in EXPECTED.items():
        assert set(result["verifiers"][name]) == set(expected)
        assert_close(result["verifiers"][name], expected)
    assert "Broken" in capsys.readouterr().err  # the all-None column is named


def test_combined_verifier_is_the_mean_of_z_scores(tmp_path):
    result = report(tmp_path)
    correct = np.array(CORRECT)
    judge = np.array([[0.5, 1, 0, np.nan], [0] * 4, [1, 0, 1, 0], [0, 1, 1, 0]])
    z = [(m - np.nanmean(m)) / np.nanstd(m) for m in (correct.astype(float), judge, 1.0 - correct)]
    combined = np.nanmean(np.stack(z), axis=0)  # constant and all-None verifiers are left out
    stats = result["verifiers"]["mean_of_normalised"]
    assert stats["kind"] == "combination"
    assert stats["auroc"] == pytest.approx(pairwise_auroc(combined.ravel(), correct.ravel()), abs=1e-9)
    assert stats["mean_score_correct"] == pytest.approx(combined[correct].mean(), abs=1e-9)
    assert stats["select_at_1"] == pytest.approx(correct[np.arange(4), combined.argmax(axis=1)].mean(), abs=1e-9)


@pytest.mark.parametrize(("chosen", "auroc", "select"), [("oracle,constant", None, None), ("oracle,P", 0.5, 0.25)])
def test_verifiers_subset_and_combination(tmp_path, chosen, auroc, select):
    # a constant verifier takes no part, so oracle alone would be "combined": no combination is reported;
    # oracle + (1 - oracle) cancel to a constant: AUROC 0.5, the first sample
    result = report(tmp_path, "--verifiers", chosen)
    combined = {"mean_of_normalised"} if auroc is not None else set()
    assert set(result["verifiers"]) == {*chosen.split(","), *combined}
    if combined:
        assert result["verifiers"]["mean_of_normalised"]["auroc"] == pytest.approx(auroc, abs=1e-9)
        assert result["verifiers"]["mean_of_normalised"]["select_at_1"] == pytest.approx(select, abs=1e-9)


def test_figures_markdown_and_html(tmp_path):
    report(tmp_path)
    folder = tmp_path / "rep"
    for name in FIGURES:
        with Image.open(folder / name) as image:
            image.verify()
        with Image.open(folder / name) as image:
            pixels = np.asarray(image.convert("L"))
        assert pixels.shape[0] > 100 and pixels.std() > 5, f"{name} is blank"
    text = (folder / "report.md").read_text()
    rows = [line.split("|")[1].strip() for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert "0.750 [" in text  # values carry their intervals
    assert rows[1:] == ["oracle", "J", "constant", "mean_of_normalised", "P", "Broken"]  # by select_at_1
    assert all(f"]({name})" in text for name in FIGURES)
    page = (folder / "report.html").read_text()
    inline = [part.split("'")[0] for part in page.split("data:image/png;base64,")[1:]]
    assert [base64.b64decode(data) for data in inline] == [(folder / name).read_bytes() for name in FIGURES]


def test_best_of_k_is_exact_against_enumeration():
    rng = np.random.default_rng(3)
    correct = rng.random((5, 6)) < 0.4
    scores = rng.integers(0, 3, (5, 6)).astype(float)  # many ties: the earliest sample wins them
    scores[0, 2] = np.nan
    ks = metrics.k_values(6)
    assert ks == [1, 2, 4, 6]
    for k, value in zip(ks, metrics.best_of_k(scores, correct, ks).value()):
        filled = np.where(np.isnan(scores), -np.inf, scores)
        hits = [[row[list(s)][np.argmax(filled[r, list(s)])] for s in itertools.combinations(range(6), k)]
                for r, row in enumerate(correct)]
        assert value == pytest.approx(np.mean(hits), abs=1e-12)
    passes = metrics.pass_at_k(correct, ks).value()
    assert passes[0] == pytest.approx(correct.mean()) and passes[-1] == pytest.approx(correct.any(axis=1).mean())


def test_majority_curve_ends_at_step2_majority_vote():
    correct = np.array(CORRECT)
    groups = metrics.vote_groups(ANSWERS, "math")
    assert groups[2, 0] == groups[2, 1]  # \frac{1}{2} and \dfrac{1}{2}: one answer, as in Step 2
    curve = metrics.majority_of_k(groups, correct, [1, 2, 4]).value()
    assert curve[-1] == pytest.approx(EXPECTED_BASELINES["majority_vote"])
    # k=1: the single drawn sample's own correctness when it has an answer; estimated from 200 draws per row
    assert curve[0] == pytest.approx(5 / 16, abs=0.06)


def test_released_schema_reads_and_exports_for_weaver(tmp_path):
    import pandas as pd

    columns = {"instruction": ["q1", "q2"], "samples": [["a", "b", "c"]] * 2, "answer": ["A", "B"],
               "options": [["x", "y", "z", "w"]] * 2, "extracted_answers": [["A", "A", "B"], ["B", None, "C"]],
               "answer_correct": [[True, True, False], [True, False, False]],
               "GRM_scores": [[0.3, 0.2, 0.1], [2.0, None, -1.0]],
               "QwenPRM_min_scores": [[0.9, 0.8, 0.1], [0.7, 0.2, 0.1]],
               "QwenPRM_max_scores": [[0.9, 0.9, 0.5], [0.9, 0.6, 0.3]],
               "QwenPRM_avg_scores": [[0.9, 0.85, 0.3], [0.8, 0.4, 0.2]],
               "GPT-4o-mini_verdicts": [[[1.0], [0.0], [0.0]], [[1.0], [None], [0.0]]],
               "Claude-3-5-Sonnet_verdicts": [[[1.0, 1.0], [1.0, 0.0], [0.0, 0.0]], [[1.0, 0.0]] * 3],
               "TinyRM_scores": [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]}
    source = save(columns, tmp_path / "released", plain=True)
    export = tmp_path / "weaver"
    assert verifier_report.main(["--dataset_path", source, "--output_dir", str(tmp_path / "rep"),
                                 "--export_weaver", str(export)]) == 0
    result = json.loads((tmp_path / "rep" / "report.json").read_text())
    kinds = {name: stats["kind"] for name, stats in result["verifiers"].items()}
    assert kinds == {"GRM": "reward_model", "QwenPRM": "prm", "GPT-4o-mini": "judge", "Claude-3-5-Sonnet": "judge",
                     "TinyRM": "reward_model", "mean_of_normalised": "combination"}
    assert result["verifiers"]["GRM"]["select_at_1"] == 1.0 and result["baselines"]["majority_vote"] == 1.0

    # What weaver/dataset.py does with a local path: DataFrame(load_from_disk), discover, map names, stack
    frame = pd.DataFrame(datasets.load_from_disk(str(export)))
    found = [c for c in frame.columns if c.endswith(("_scores", "_verdicts"))]
    assert sorted(found) == sorted(["GRM_scores", "QwenPRM_min_scores", "QwenPRM_max_scores", "QwenPRM_avg_scores",
                                    "GPT-4o-mini_verdicts", "judge_claude-3-5-sonnet-latest_verdicts",
                                    "TinyRM_scores"])  # a verifier Weaver has no name for keeps its own
    for column in found:
        values = np.stack(frame[column].values).squeeze().astype(float)
        assert values.shape == (2, 3), column
    sonnet = np.stack(frame["judge_claude-3-5-sonnet-latest_verdicts"].values).squeeze()
    assert sonnet.tolist() == [[1.0, 0.5, 0.0], [0.5, 0.5, 0.5]]  # K verdicts averaged to one per sample
    assert np.isnan(np.stack(frame["GRM_scores"].values).astype(float)[1, 1])  # None stays missing, never 0
    assert {"instruction", "samples", "answer_correct", "extracted_answers"} <= set(frame.columns)
    assert frame["extracted_answers"].tolist() == [["A", "A", "B"], ["B", "NO_ANSWER", "C"]]  # Weaver's sentinel


def test_hub_ids_go_through_load_dataset(tmp_path, monkeypatch):
    local = datasets.Dataset.from_dict(known_rows())
    asked = []

    def fake_load_dataset(path, *args, **kwargs):  # the hub answers a dataset repo id with its splits
        asked.append(path)
        return datasets.DatasetDict({"data": local})

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    verifier_report.main(["--dataset_path", "hazyresearch/MATH-500_with_Llama_3.1_8B_Instruct_v1",
                          "--output_dir", str(tmp_path / "rep"), "--verifiers", "oracle"])
    assert asked == ["hazyresearch/MATH-500_with_Llama_3.1_8B_Instruct_v1"]
    assert json.loads((tmp_path / "rep" / "report.json").read_text())["verifiers"]["oracle"]["auroc"] == 1.0


def ragged_verifier() -> dict:
    columns = known_rows()
    columns["oracle_scores"] = [[1.0, 0.0], *columns["oracle_scores"][1:]]
    return columns


def ragged_correct() -> dict:
    columns = known_rows()
    columns["answer_correct"] = [*CORRECT[:3], [True, False]]
    return columns


def no_correct() -> dict:
    columns = known_rows()
    del columns["answer_correct"]
    return columns


@pytest.mark.parametrize(("make", "words"), [
    (no_correct, ["no 'answer_correct' column", "Step 2"]),
    (ragged_verifier, ["row 0", "oracle_scores", "2 values", "one value per sample"]),
    (ragged_correct, ["row 3", "answer_correct", "one value per sample"]),
])
def test_bad_input_one_line_error_and_nothing_written(tmp_path, make, words):
    source = save(make(), tmp_path / "in.hf")
    with pytest.raises(UserError) as err:
        verifier_report.main(["--dataset_path", source, "--output_dir", str(tmp_path / "rep"),
                              "--export_weaver", str(tmp_path / "w")])
    assert all(word in str(err.value) for word in words) and "\n" not in str(err.value)
    assert sorted(os.listdir(tmp_path)) == ["in.hf"]


@pytest.mark.slow
def test_cli_error_exit_code_and_unknown_verifier(tmp_path):
    source = save(known_rows(), tmp_path / "in.hf")
    done = run_script("verifier_report.py", "--dataset_path", source, "--output_dir", str(tmp_path / "rep"),
                      "--verifiers", "oracle,Nope")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("error: --verifiers names ['Nope'] not in the dataset")
    assert not (tmp_path / "rep").exists()


def test_failed_write_keeps_the_earlier_report(tmp_path, monkeypatch):
    first = report(tmp_path)
    before = {name: (tmp_path / "rep" / name).read_bytes() for name in os.listdir(tmp_path / "rep")}

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(verifier_report.figures, "draw_distributions", broken)
    with pytest.raises(RuntimeError):
        verifier_report.main(["--dataset_path", str(tmp_path / "in.hf"), "--output_dir", str(tmp_path / "rep"),
                              "--verifiers", "oracle", "--export_weaver", str(tmp_path / "w"),
                              "--rename", "oracle=URM_scores"])
    assert {name: (tmp_path / "rep" / name).read_bytes() for name in os.listdir(tmp_path / "rep")} == before
    assert json.loads((tmp_path / "rep" / "report.json").read_text()) == first
    assert not [name for name in os.listdir(tmp_path) if ".tmp-" in name or name == "w"]


def test_refuses_to_replace_a_folder_it_did_not_write(tmp_path):
    source = save(known_rows(), tmp_path / "in.hf")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(UserError, match="not an earlier report"):
        verifier_report.main(["--dataset_path", source, "--output_dir", str(tmp_path / "mine")])
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"
