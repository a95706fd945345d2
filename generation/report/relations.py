"""How verifiers relate: rank correlations between their scores, ordered so that similar verifiers sit together."""
from __future__ import annotations

import numpy as np

MIN_COMMON = 3  # samples two verifiers must both score for a correlation


def rank_correlations(scores: list[np.ndarray]) -> np.ndarray:
    """Spearman correlation of every pair of verifiers: each verifier's scores ranked over the samples it scored
    (ties: average rank), then Pearson's r of the ranks over the samples both scored; NaN where fewer than
    MIN_COMMON samples are shared or one side is constant there."""
    flat = [values.ravel() for values in scores]
    present = np.stack([~np.isnan(values) for values in flat], axis=1).astype(float)
    ranks = np.stack([np.where(mask > 0, own_ranks(values), 0.0) for values, mask in zip(flat, present.T)], axis=1)
    common = present.T @ present  # samples both scored
    sums = ranks.T @ present  # [i, j]: sum of i's ranks over the samples j also scored
    squares = (ranks ** 2).T @ present
    products = ranks.T @ ranks
    with np.errstate(invalid="ignore", divide="ignore"):
        covariance = common * products - sums * sums.T
        spread = (common * squares - sums ** 2) * (common * squares - sums ** 2).T
        matrix = covariance / np.sqrt(spread)
    matrix[(common < MIN_COMMON) | ~(spread > 0)] = np.nan
    np.fill_diagonal(matrix, np.where((np.diag(common) >= MIN_COMMON) & (np.diag(spread) > 0), 1.0, np.nan))
    return np.clip(matrix, -1.0, 1.0)


def own_ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks of the present values among themselves (missing positions get 0)."""
    from scipy.stats import rankdata

    ranks = np.zeros(values.shape)
    present = ~np.isnan(values)
    ranks[present] = rankdata(values[present], method="average")
    return ranks


def cluster_order(matrix: np.ndarray) -> list[int]:
    """Verifier indices in the leaf order of an average-linkage clustering on 1 - correlation (NaN: distance 1)."""
    if len(matrix) < 3:
        return list(range(len(matrix)))
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform

    distance = 1.0 - np.nan_to_num(matrix, nan=0.0)
    np.fill_diagonal(distance, 0.0)
    return [int(i) for i in leaves_list(linkage(squareform(np.clip(distance, 0.0, 2.0), checks=False),
                                                method="average", optimal_ordering=True))]
