"""report.json's content from the read arrays: metrics with bootstrap intervals, the ranking, best-of-k curves and the
verifiers' rank correlations."""
from __future__ import annotations

import json
import sys

import numpy as np
from tqdm import tqdm

from generation.common.writing import provenance_path
from generation.report import intervals, metrics
from generation.report.relations import rank_correlations
from generation.report.scores import COMBINED

COMBINED_KIND = "combination"
MAJORITY, PASS = "majority vote", "pass@k"  # best-of-k curves that are no verifier's


def ranked(report: dict) -> list[str]:
    """Verifier names by select_at_1, best first (undefined last, then by name)."""
    verifiers = report["verifiers"]
    return sorted(verifiers,
                  key=lambda n: (verifiers[n]["select_at_1"] is None, -(verifiers[n]["select_at_1"] or 0), n))


def ranking(report: dict) -> dict:
    """The best verifier by select@1 and every verifier whose select@1 interval overlaps the best one's (the best
    included); overlapping_best is None without intervals (fewer than two problems)."""
    names = [n for n in ranked(report) if report["verifiers"][n]["select_at_1"] is not None]
    bounds = report["intervals"]["verifiers"]
    best = names[0] if names else None
    if best is None or bounds[best]["select_at_1"] is None:
        return {"by": "select_at_1", "best": best, "overlapping_best": None}
    low = bounds[best]["select_at_1"][0]
    return {"by": "select_at_1", "best": best,
            "overlapping_best": [n for n in names if bounds[n]["select_at_1"] and bounds[n]["select_at_1"][1] >= low]}


def analyse(verifiers, arrays: dict, scores: dict[str, np.ndarray], dataset_type: str) -> tuple[dict, dict]:
    """report.json's content and what the figures need besides it (score matrices, verifiers without a score)."""
    correct = arrays["correct"]
    kinds = {v.name: v.kind for v in verifiers}
    empty = [name for name, values in scores.items() if np.isnan(values).all()]
    for name in empty:
        column = next(v.column for v in verifiers if v.name == name)
        print(f"warning: verifier {name} has no score at all (column {column!r} is all None): reported with "
              f"coverage 0 and null metrics; re-run Step 3 for it or leave it out with --verifiers", file=sys.stderr)
    combined = metrics.normalised_mean([scores[name] for name in scores if name not in empty])
    if combined is not None:
        scores = {**scores, COMBINED: combined}
        kinds[COMBINED] = COMBINED_KIND
    counts = intervals.resample_counts(len(correct))
    baselines, baseline_bounds = metrics.measured(
        metrics.baseline_parts(correct, arrays["answers"], arrays["methods"], dataset_type), counts)
    stats, bounds = {}, {}
    for name, values in tqdm(scores.items(), desc="verifier metrics and intervals", unit="verifier"):
        measured, bounds[name] = metrics.measured(metrics.verifier_parts(values, correct), counts)
        stats[name] = {"kind": kinds[name], **measured}
    report = {"rows": int(correct.shape[0]), "samples_per_row": int(correct.shape[1]), "baselines": baselines,
              "verifiers": stats,
              "intervals": {"level": intervals.LEVEL, "resamples": intervals.RESAMPLES, "seed": intervals.SEED,
                            "method": "percentile bootstrap over problems (rows drawn with replacement)",
                            "baselines": baseline_bounds, "verifiers": bounds}}
    report["ranking"] = ranking(report)
    report["best_of_k"] = best_of_k(report, arrays, scores, empty, dataset_type, counts)
    related = [name for name in scores if name not in empty and name != COMBINED]
    matrix = rank_correlations([scores[name] for name in related]) if related else np.zeros((0, 0))
    report["correlations"] = {"method": "Spearman: each verifier's scores ranked over its scored samples, Pearson's "
                                        "r of the ranks over the samples both scored (null: under 3 shared)",
                              "verifiers": related,
                              "matrix": [[None if np.isnan(v) else round(float(v), 6) for v in row] for row in matrix]}
    return report, {"scores": scores, "empty": empty, "kinds": kinds, "matrix": matrix}


def best_of_k(report: dict, arrays: dict, scores: dict[str, np.ndarray], empty: list[str], dataset_type: str,
              counts: np.ndarray | None) -> dict:
    """Best-of-k curves with their intervals: every verifier with a score, majority vote of k and pass@k."""
    correct = arrays["correct"]
    ks = metrics.k_values(correct.shape[1])
    parts = {name: metrics.best_of_k(scores[name], correct, ks) for name in ranked(report) if name not in empty}
    if arrays["answers"] is not None:
        with tqdm(total=metrics.RESAMPLES, desc="majority vote of k (random subsets)", unit="draw") as bar:
            groups = metrics.vote_groups(arrays["answers"], dataset_type)
            parts[MAJORITY] = metrics.majority_of_k(groups, correct, ks, bar.update)
    parts[PASS] = metrics.pass_at_k(correct, ks)
    return {"k": ks, "curves": {name: part.value() for name, part in parts.items()},
            "intervals": {name: intervals.interval(part.draws(counts)) for name, part in parts.items()}}


def recorded_costs(dataset_path: str) -> dict[str, float]:
    """Cost in USD per verifier as the input's Step 3 provenance recorded it (API judges); empty when none was."""
    try:
        with open(provenance_path(dataset_path), encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return {}
    costs = {}
    for key in ("earlier_verifiers", "verifiers"):
        for name, stats in (record.get(key) or {}).items():
            if isinstance(stats, dict) and isinstance(stats.get("cost_usd"), (int, float)):
                costs[name] = float(stats["cost_usd"])
    return costs


def keep_rows(arrays: dict, scores: dict[str, np.ndarray], keep: np.ndarray) -> tuple[dict, dict]:
    """The arrays and score matrices of the kept rows only (a bool mask)."""
    rows = np.flatnonzero(keep)
    lists = {key: None if arrays[key] is None else [arrays[key][i] for i in rows] for key in ("answers", "methods")}
    return ({**arrays, "correct": arrays["correct"][keep], **lists},
            {name: values[keep] for name, values in scores.items()})


def unscored_rows(scores: dict[str, np.ndarray]) -> list[int]:
    """Rows where no verifier has any score."""
    if not scores:
        return []
    scored = np.any([(~np.isnan(values)).any(axis=1) for values in scores.values()], axis=0)
    return [int(i) for i in np.flatnonzero(~scored)]

