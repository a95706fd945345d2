"""Report numbers from (rows x samples) arrays: baselines, per-verifier metrics, the combined verifier, best-of-k."""
from __future__ import annotations

from math import comb
from typing import Callable

import numpy as np

from generation.grading.checking import math_key
from generation.grading.decision import Graded, majority_correct
from generation.report.intervals import PairedAuroc, Ratio, interval, mean_over_rows

DECIDED = ("procedural", "llm", "no_answer")  # Step 2's decided methods: sample_accuracy counts only these
RESAMPLES = 200  # random k-subsets per row for the majority-vote curve
RESAMPLE_SEED = 0
DRAW_CELLS = 5_000_000  # random draws held in memory at once (draws x rows x samples)


def baseline_parts(correct: np.ndarray, answers: list[list[str | None]] | None, methods: list[list[str]] | None,
                   dataset_type: str) -> dict:
    """pass@k, majority vote (Step 2's answer comparison), first-sample and sample accuracy, as per-row ratios."""
    decided = np.isin(np.array(methods, dtype=object), DECIDED) if methods is not None else np.ones_like(correct)
    decided = decided.astype(bool)
    votes = None
    if answers is not None:
        votes = [majority_correct([Graded(a, bool(c), "procedural") for a, c in zip(row, flags)], dataset_type)
                 for row, flags in zip(answers, correct)]
    return {"pass_at_k": mean_over_rows(correct.any(axis=1)),
            "majority_vote": mean_over_rows(np.array(votes)) if votes is not None else None,
            "first_sample": mean_over_rows(correct[:, 0]),
            "sample_accuracy": Ratio((correct & decided).sum(axis=1).astype(float), decided.sum(axis=1).astype(float))}


def ranking(scores: np.ndarray) -> np.ndarray:
    """Per row, sample indices from the highest score down; ties keep sample order, missing scores come last."""
    return np.argsort(-np.where(np.isnan(scores), -np.inf, scores), axis=1, kind="stable")


def verifier_parts(scores: np.ndarray, correct: np.ndarray) -> dict:
    """One verifier's metrics on its (rows, samples) scores (NaN = missing), as resamplable parts: AUROC over the
    scored samples, select@1 (rows without a score take their first sample), coverage, mean score per class."""
    present = ~np.isnan(scores)
    picked = correct[np.arange(len(correct)), ranking(scores)[:, 0]]
    filled = np.where(present, scores, 0.0)
    right, wrong = present & correct, present & ~correct
    return {"auroc": PairedAuroc.of(scores, correct),
            "select_at_1": mean_over_rows(picked) if present.any() else None,
            "coverage": Ratio(present.sum(axis=1).astype(float), np.full(len(scores), float(scores.shape[1]))),
            "mean_score_correct": Ratio((filled * right).sum(axis=1), right.sum(axis=1).astype(float)),
            "mean_score_incorrect": Ratio((filled * wrong).sum(axis=1), wrong.sum(axis=1).astype(float))}


def measured(parts: dict, counts: np.ndarray | None) -> tuple[dict, dict]:
    """Each part's value on the dataset and its bootstrap interval (None where undefined)."""
    values = {name: part.value() if part is not None else None for name, part in parts.items()}
    return values, {name: interval(part.draws(counts)) if values[name] is not None else None
                    for name, part in parts.items()}


def normalised_mean(matrices: list[np.ndarray]) -> np.ndarray | None:
    """Mean of z-scores (each verifier standardised over the dataset), skipping missing and constant verifiers;
    None unless two or more verifiers take part (one verifier's z-scores rank as it does: no combination)."""
    usable = [m for m in matrices if (~np.isnan(m)).any() and np.nanstd(m) > 0]
    if len(usable) < 2:
        return None
    total, count = 0.0, 0.0
    for scores in usable:
        present = ~np.isnan(scores)
        z = (scores - np.mean(scores[present])) / np.std(scores[present])
        total = np.where(present, z, 0.0) + total
        count = present.astype(float) + count
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def k_values(samples: int) -> list[int]:
    """1, 2, 4, ... below the samples per row, then the samples per row."""
    ks = [1 << i for i in range(samples.bit_length()) if 1 << i < samples]
    return ks + [samples]


def best_of_k(scores: np.ndarray, correct: np.ndarray, ks: list[int]) -> Ratio:
    """Per row and k, the exact chance that the top-scored sample of a uniform random k-subset is correct."""
    samples = correct.shape[1]
    ordered = np.take_along_axis(correct, ranking(scores), axis=1).astype(float)
    # the sample ranked r is the subset's top when it is drawn and the other k-1 come from the samples below it
    weights = np.array([[comb(samples - 1 - r, k - 1) / comb(samples, k) for k in ks] for r in range(samples)])
    return mean_over_rows(ordered @ weights)


def pass_at_k(correct: np.ndarray, ks: list[int]) -> Ratio:
    """Per row and k, the exact chance that a uniform random k-subset holds a correct sample."""
    samples = correct.shape[1]
    return mean_over_rows(np.array([[1 - comb(samples - c, k) / comb(samples, k) for k in ks]
                                    for c in correct.sum(axis=1)]))


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
                  progress: Callable[[int], None] = lambda draws: None) -> Ratio:
    """Per row and k, majority-vote accuracy of random k-subsets (RESAMPLES seeded draws per row; the full set is
    exact)."""
    rows, samples = groups.shape
    rng = np.random.default_rng(RESAMPLE_SEED)
    per_chunk = max(1, min(RESAMPLES, DRAW_CELLS // (rows * samples)))  # bounded memory for 1,000-sample rows
    totals = np.zeros((rows, len(ks)))
    for start in range(0, RESAMPLES, per_chunk):
        order = np.argsort(rng.random((min(per_chunk, RESAMPLES - start), rows, samples)), axis=2)
        for index, k in enumerate(ks):
            picked = np.sort(order[:, :, :k], axis=2)
            totals[:, index] += vote_wins(np.take_along_axis(groups[None], picked, axis=2),
                                          np.take_along_axis(correct[None], picked, axis=2)).sum(axis=0)
        progress(len(order))
    return mean_over_rows(totals / RESAMPLES)


def vote_wins(groups: np.ndarray, correct: np.ndarray) -> np.ndarray:
    """Per (draw, row), whether its most frequent group (ties: first seen) holds a correct sample."""
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
    return won.reshape(draws, rows)
