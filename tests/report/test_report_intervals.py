"""Step 4's uncertainty: bootstrap intervals over problems cover known accuracies, exist for every metric, and the
ranking marks the verifiers the data cannot tell from the best."""
from __future__ import annotations

import json

import matplotlib.figure
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.special import beta
from scipy.stats import norm
from test_report import save

from generation import verifier_report
from generation.report import intervals, metrics

pytestmark = pytest.mark.filterwarnings("error")

SAMPLES, SEPARATION, MISSING = 4, 1.0, 0.1  # samples per problem, score gap of right samples, share of missing scores
DIFFICULTY = (2.0, 2.0)  # a problem's chance of a right sample ~ Beta(2, 2): samples of one problem are correlated


def draw(rng: np.random.Generator, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Problems of random difficulty: correctness (rows, SAMPLES) and a verifier's scores (right samples score
    SEPARATION higher on average; MISSING of them have no score)."""
    correct = rng.random((rows, SAMPLES)) < rng.beta(*DIFFICULTY, size=(rows, 1))
    scores = rng.normal(size=(rows, SAMPLES)) + SEPARATION * correct
    scores[rng.random((rows, SAMPLES)) < MISSING] = np.nan
    return correct, scores


def true_values() -> dict[str, float]:
    """The metrics' population values: exact where a formula exists, else from one draw of a million problems."""
    a, b = DIFFICULTY
    correct, scores = draw(np.random.default_rng(12345), 1_000_000)
    picked = correct[np.arange(len(correct)), metrics.ranking(scores)[:, 0]]
    return {"first_sample": a / (a + b), "sample_accuracy": a / (a + b),
            "pass_at_k": 1 - beta(a, b + SAMPLES) / beta(a, b),  # 1 - E[(1 - p)^SAMPLES]
            "auroc": float(norm.cdf(SEPARATION / np.sqrt(2))), "select_at_1": float(picked.mean()),
            "coverage": 1 - MISSING, "mean_score_correct": SEPARATION, "mean_score_incorrect": 0.0}


def test_intervals_cover_known_accuracies_about_95_percent_of_the_time():
    """200 seeded datasets of 60 problems: each metric's 95% interval holds its population value in about 95% of
    them (binomial sd 1.5 points)."""
    truth = true_values()
    hits = {name: 0 for name in truth}
    repetitions = 200
    for seed in range(repetitions):
        correct, scores = draw(np.random.default_rng(seed), 60)
        counts = intervals.resample_counts(len(correct), seed=seed)
        parts = {**metrics.baseline_parts(correct, None, None, "math"), **metrics.verifier_parts(scores, correct)}
        _, bounds = metrics.measured(parts, counts)
        for name in truth:
            hits[name] += bounds[name][0] <= truth[name] <= bounds[name][1]
    rates = {name: hit / repetitions for name, hit in hits.items()}
    assert all(0.9 <= rate <= 0.99 for rate in rates.values()), rates


def test_resampling_is_over_problems_and_seeded():
    counts = intervals.resample_counts(7)
    assert counts.shape == (intervals.RESAMPLES, 7) and (counts.sum(axis=1) == 7).all()
    assert (counts == intervals.resample_counts(7)).all() and intervals.resample_counts(1) is None


@given(rows=st.integers(2, 8), samples=st.integers(1, 5), seed=st.integers(0, 10**6))
@settings(max_examples=40, deadline=None)
def test_paired_auroc_equals_pairs_counted_with_row_weights(rows, samples, seed):
    """A resample's AUROC counts every (correct, incorrect) pair weighted by how often their two rows were drawn."""
    rng = np.random.default_rng(seed)
    correct = rng.random((rows, samples)) < 0.5
    scores = rng.integers(0, 3, (rows, samples)).astype(float)  # ties
    scores[rng.random((rows, samples)) < 0.2] = np.nan
    counts = rng.integers(0, 3, (5, rows)).astype(float)
    got = intervals.PairedAuroc.of(scores, correct).draws(counts)
    for weights, value in zip(counts, got):
        w = np.repeat(weights, samples)[~np.isnan(scores.ravel())]
        s, y = scores.ravel()[~np.isnan(scores.ravel())], correct.ravel()[~np.isnan(scores.ravel())]
        pairs = np.outer(w[y], w[~y])
        wins = (s[y][:, None] > s[~y][None]) + 0.5 * (s[y][:, None] == s[~y][None])
        expected = (pairs * wins).sum() / pairs.sum() if pairs.sum() else np.nan
        assert value == pytest.approx(expected, nan_ok=True)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.integers(2, 12), samples=st.integers(1, 4), seed=st.integers(0, 10**6))
def test_every_metric_in_report_json_has_its_interval(tmp_path_factory, monkeypatch, rows, samples, seed):
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda fig, path, *a, **k: open(path, "wb").close())
    rng = np.random.default_rng(seed)
    correct = rng.random((rows, samples)) < 0.5
    columns = {"instruction": ["q"] * rows, "answer_correct": correct.tolist(),
               "extracted_answers": rng.choice(["1", "2"], (rows, samples)).tolist(),
               "A_scores": (rng.random((rows, samples)) + correct).tolist(),
               "B_verdicts": rng.integers(0, 2, (rows, samples, 2)).astype(float).tolist()}
    folder = tmp_path_factory.mktemp("every")
    source = save(columns, folder / "in.hf")
    assert verifier_report.main(["--dataset_path", source, "--output_dir", str(folder / "rep")]) == 0
    report = json.loads((folder / "rep" / "report.json").read_text())
    pairs = [(report["baselines"], report["intervals"]["baselines"])]
    pairs += [(report["verifiers"][name], report["intervals"]["verifiers"][name]) for name in report["verifiers"]]
    for values, bounds in pairs:
        for metric, value in values.items():
            if metric == "kind":
                continue
            assert (bounds[metric] is None) == (value is None), metric
            if value is not None:
                assert bounds[metric][0] - 1e-9 <= value <= bounds[metric][1] + 1e-9, (metric, value, bounds[metric])
    curves = report["best_of_k"]
    for name, curve in curves["curves"].items():
        assert len(curves["intervals"][name]) == len(curve) == len(curves["k"])
        assert all(lo - 1e-9 <= v <= hi + 1e-9 for v, (lo, hi) in zip(curve, curves["intervals"][name]))


def test_ranking_marks_the_verifiers_whose_interval_overlaps_the_best(tmp_path):
    rng = np.random.default_rng(0)
    correct = rng.random((40, 6)) < 0.4
    columns = {"instruction": ["q"] * 40, "answer_correct": correct.tolist()}
    for name, skill in (("perfect", 10.0), ("close", 8.0), ("noise", 0.0), ("wrong", -10.0)):
        columns[f"{name}_scores"] = (rng.normal(size=correct.shape) + skill * correct).tolist()
    source = save(columns, tmp_path / "in.hf")
    assert verifier_report.main(["--dataset_path", source, "--output_dir", str(tmp_path / "rep")]) == 0
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    bounds = report["intervals"]["verifiers"]
    best = report["ranking"]["best"]
    low = bounds[best]["select_at_1"][0]
    expected = [n for n in report["verifiers"] if bounds[n]["select_at_1"][1] >= low]
    assert sorted(report["ranking"]["overlapping_best"]) == sorted(expected)
    assert {"perfect", "close"} <= set(expected) and not {"noise", "wrong"} & set(expected)
    table = (tmp_path / "rep" / "report.md").read_text()
    marks = {line.split("|")[1].strip(): line.split("|")[4].strip() for line in table.splitlines()
             if line.startswith("| ") and "---" not in line}
    assert marks["close"] == "yes" and marks["noise"] == "no"
