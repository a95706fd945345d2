"""Report numbers from (rows x samples) arrays: baselines, per-verifier metrics, the combined verifier, best-of-k."""
from __future__ import annotations

from math import comb
from typing import Callable

import numpy as np

from generation.grading.checking import math_key
from generation.grading.decision import Graded, majority_correct

DECIDED = ("procedural", "llm", "no_answer")  # Step 2's decided methods: sample_accuracy counts only these
RESAMPLES = 200  # random k-subsets per row for the majority-vote curve
RESAMPLE_SEED = 0
DRAW_CELLS = 5_000_000  # random draws held in memory at once (draws x rows x samples)


def share(values: np.ndarray) -> float | None:
    """Mean of a bool/float array as a float, None when it is empty."""
    return float(np.mean(values)) if values.size else None


def baselines(correct: np.ndarray, answers: list[list[str | None]] | None, methods: list[list[str]] | None,
              dataset_type: str) -> dict:
    """pass@k, majority vote (Step 2's answer comparison), first-sample and sample accuracy."""
    decided = np.isin(np.array(methods, dtype=object), DECIDED) if methods is not None else np.ones_like(correct)
    votes = None
    if answers is not None:
        votes = np.array([majority_correct([Graded(a, bool(c), "procedural") for a, c in zip(row, flags)],
                                           dataset_type) for row, flags in zip(answers, correct)])
    return {"pass_at_k": share(correct.any(axis=1)),
            "majority_vote": share(votes) if votes is not None else None,
            "first_sample": share(correct[:, 0]),
            "sample_accuracy": share(correct[decided.astype(bool)])}


def auroc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """ROC AUC of scores against bool labels (ties count one half); None with one class only."""
    if labels.all() or not labels.any():
        return None
    from scipy.stats import rankdata

    ranks = rankdata(scores)  # average ranks: a tie between a positive and a negative counts one half
    positives = int(labels.sum())
    negatives = labels.size - positives
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def ranking(scores: np.ndarray) -> np.ndarray:
    """Per row, sample indices from the highest score down; ties keep sample order, missing scores come last."""
    return np.argsort(-np.where(np.isnan(scores), -np.inf, scores), axis=1, kind="stable")


def verifier_stats(kind: str, scores: np.ndarray, correct: np.ndarray) -> dict:
    """The report's numbers for one verifier's (rows, samples) scores (NaN = missing)."""
    present = ~np.isnan(scores)
    top = ranking(scores)[:, 0]
    scored, labels = scores[present], correct[present]
    return {"kind": kind,
            "auroc": auroc(scored, labels),
            "select_at_1": share(correct[np.arange(len(correct)), top]) if present.any() else None,
            "coverage": share(present),
            "mean_score_correct": share(scored[labels]),
            "mean_score_incorrect": share(scored[~labels])}


def normalised_mean(matrices: list[np.ndarray]) -> np.ndarray | None:
    """Mean of z-scores (each verifier standardised over the dataset), skipping missing and constant verifiers."""
    total, count = None, None
    for scores in matrices:
        present = ~np.isnan(scores)
        if not present.any() or np.std(scores[present]) == 0:
            continue
        z = (scores - np.mean(scores[present])) / np.std(scores[present])
        total = np.where(present, z, 0.0) + (0 if total is None else total)
        count = present.astype(float) + (0 if count is None else count)
    if total is None:
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def k_values(samples: int) -> list[int]:
    """1, 2, 4, ... below the samples per row, then the samples per row."""
    ks = [1 << i for i in range(samples.bit_length()) if 1 << i < samples]
    return ks + [samples]


def best_of_k(scores: np.ndarray, correct: np.ndarray, ks: list[int]) -> list[float]:
    """Exact mean over rows of the chance that the top-scored sample of a uniform random k-subset is correct."""
    samples = correct.shape[1]
    ordered = np.take_along_axis(correct, ranking(scores), axis=1).astype(float)
    # the sample ranked r is the subset's top when it is drawn and the other k-1 come from the samples below it
    weights = np.array([[comb(samples - 1 - r, k - 1) / comb(samples, k) for k in ks] for r in range(samples)])
    return [float(v) for v in (ordered @ weights).mean(axis=0)]


def pass_at_k(correct: np.ndarray, ks: list[int]) -> list[float]:
    """Exact mean over rows of the chance that a uniform random k-subset holds a correct sample."""
    samples = correct.shape[1]
    right = correct.sum(axis=1)
    return [float(np.mean([1 - comb(samples - c, k) / comb(samples, k) for c in right])) for k in ks]


def vote_groups(answers: list[list[str | None]], dataset_type: str) -> np.ndarray:
    """Per row, an answer-group id per sample (equal ids: equal answers as Step 2's vote compares them; -1: none)."""
    groups = np.full((len(answers), len(answers[0]) if answers else 0), -1)
    for row, values in enumerate(answers):
        ids: dict[str, int] = {}
        for col, answer in enumerate(values):
            if answer is not None:
                key = math_key(answer) if dataset_type == "math" else answer
                groups[row, col] = ids.setdefault(key, len(ids))
    return groups


def majority_of_k(groups: np.ndarray, correct: np.ndarray, ks: list[int],
                  progress: Callable[[int], None] = lambda draws: None) -> list[float]:
    """Majority-vote accuracy of random k-subsets (RESAMPLES seeded draws per row; the full set is exact)."""
    rows, samples = groups.shape
    rng = np.random.default_rng(RESAMPLE_SEED)
    per_chunk = max(1, min(RESAMPLES, DRAW_CELLS // (rows * samples)))  # bounded memory for 1,000-sample rows
    totals = [0.0] * len(ks)
    for start in range(0, RESAMPLES, per_chunk):
        order = np.argsort(rng.random((min(per_chunk, RESAMPLES - start), rows, samples)), axis=2)
        for index, k in enumerate(ks):
            picked = np.sort(order[:, :, :k], axis=2)
            totals[index] += len(order) * vote_accuracy(np.take_along_axis(groups[None], picked, axis=2),
                                                        np.take_along_axis(correct[None], picked, axis=2))
        progress(len(order))
    return [total / RESAMPLES for total in totals]


def vote_accuracy(groups: np.ndarray, correct: np.ndarray) -> float:
    """Share of (draw, row) whose most frequent group (ties: first seen) holds a correct sample."""
    draws, rows, k = groups.shape
    cells = draws * rows
    flat_groups, flat_correct = groups.reshape(cells, k), correct.reshape(cells, k)
    valid = flat_groups >= 0
    width = int(flat_groups.max()) + 1 if valid.any() else 1
    index = (np.arange(cells)[:, None] * width + flat_groups)[valid]
    counts = np.bincount(index, minlength=cells * width).reshape(cells, width)
    right = np.bincount(index, weights=flat_correct[valid], minlength=cells * width).reshape(cells, width)
    first = np.full((cells, width), k)
    for position in range(k - 1, -1, -1):  # later writes win: each group ends with its first position
        hit = valid[:, position]
        first[np.flatnonzero(hit), flat_groups[hit, position]] = position
    rank = np.where(counts > 0, counts * (k + 1) - first, -1)
    winner = rank.argmax(axis=1)
    won = (counts.max(axis=1) > 0) & (right[np.arange(cells), winner] > 0)
    return float(won.mean())
