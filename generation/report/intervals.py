"""Bootstrap confidence intervals over problems: seeded resamples of rows (never of single samples), one set of
resamples shared by every metric, so intervals of different verifiers come from the same resampled problems.

Every metric but AUROC is a ratio of per-row sums (select@1: picked-correct over 1 per row; sample accuracy: correct
over decided samples per row; mean score: score sum over sample count per row): a resample weighs each row by how
often it was drawn. AUROC counts (correct, incorrect) pairs across rows, so a resample weighs each pair by the
product of its two rows' draw counts.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LEVEL = 0.95
RESAMPLES = 1000
SEED = 0
MIN_ROWS = 2  # a single problem has no spread to resample: its intervals are null
CHUNK_CELLS = 2_000_000  # (resamples x score levels) held at once by the AUROC resampling


def resample_counts(rows: int, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray | None:
    """How often each row is drawn in each resample, (resamples, rows) floats; None below MIN_ROWS rows."""
    if rows < MIN_ROWS:
        return None
    return np.random.default_rng(seed).multinomial(rows, np.full(rows, 1 / rows), size=resamples).astype(float)


def interval(draws: np.ndarray | None, level: float = LEVEL) -> list[float] | None:
    """The percentile interval of a metric's resampled values (along the first axis; undefined draws left out)."""
    if draws is None:
        return None
    tails = [100 * (1 - level) / 2, 100 * (1 + level) / 2]
    if draws.ndim == 1:
        finite = draws[np.isfinite(draws)]
        return [float(v) for v in np.percentile(finite, tails)] if finite.size else None
    return [interval(column, level) for column in draws.T]


@dataclass(frozen=True)
class Ratio:
    """A metric as sum(numerator) / sum(denominator) over rows: numerator (rows,) or (rows, k) for a curve,
    denominator (rows,)."""

    numerator: np.ndarray
    denominator: np.ndarray

    def value(self):
        """The metric on the dataset itself: a float (a list for a curve), None where undefined."""
        total, sums = float(self.denominator.sum()), self.numerator.sum(axis=0)
        if sums.ndim:
            return [float(v / total) if total else None for v in sums]
        return float(sums / total) if total else None

    def draws(self, counts: np.ndarray | None) -> np.ndarray | None:
        """The metric in each resample (NaN where a resample leaves it undefined)."""
        if counts is None:
            return None
        weights = counts @ self.denominator
        with np.errstate(invalid="ignore", divide="ignore"):
            return (counts @ self.numerator) / weights.reshape(-1, *([1] * (self.numerator.ndim - 1)))


def mean_over_rows(values: np.ndarray) -> Ratio:
    """A per-row value (or per-row curve) averaged over rows."""
    values = np.asarray(values, dtype=float)
    return Ratio(values, np.ones(values.shape[0]))


@dataclass(frozen=True)
class PairedAuroc:
    """AUROC's resampling: per row and score level, how many correct and incorrect samples have that score."""

    correct: object  # scipy sparse (rows, levels)
    incorrect: object

    @classmethod
    def of(cls, scores: np.ndarray, correct: np.ndarray) -> PairedAuroc:
        """From (rows, samples) scores (NaN = missing, left out) and bool correctness."""
        from scipy.sparse import csr_matrix

        present = ~np.isnan(scores)
        rows = np.nonzero(present)[0]
        labels = correct[present]
        _, level = np.unique(scores[present], return_inverse=True)
        shape = (scores.shape[0], int(level.max()) + 1 if level.size else 0)
        return cls(csr_matrix((labels.astype(float), (rows, level)), shape=shape),
                   csr_matrix(((~labels).astype(float), (rows, level)), shape=shape))

    def value(self) -> float | None:
        """AUROC on the dataset itself (every row drawn once); None with one class only."""
        value = self.draws(np.ones((1, self.correct.shape[0])))[0]
        return float(value) if np.isfinite(value) else None

    def draws(self, counts: np.ndarray | None) -> np.ndarray | None:
        """AUROC in each resample: pairs weighted by their rows' draw counts, ties one half (NaN with one class)."""
        if counts is None:
            return None
        levels = max(1, self.correct.shape[1])
        step = max(1, CHUNK_CELLS // levels)
        values = []
        for start in range(0, len(counts), step):
            chunk = counts[start:start + step].T
            right = np.asarray(self.correct.T @ chunk).T  # (resamples, levels): weighted correct samples per level
            wrong = np.asarray(self.incorrect.T @ chunk).T
            below = np.cumsum(wrong, axis=1) - wrong
            with np.errstate(invalid="ignore", divide="ignore"):
                values.append((right * (below + 0.5 * wrong)).sum(axis=1) / (right.sum(axis=1) * wrong.sum(axis=1)))
        return np.concatenate(values)
