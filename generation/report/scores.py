"""Reading a Step 3 dataset as (rows x samples) arrays: verifier discovery, K-verdict means, PRM main column."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from generation.common.cli import UserError

KINDS = ("reward_model", "judge", "prm")
PRM_PARTS = ("min", "max", "avg")  # a PRM writes {name}_{part}_scores (and {name}_step_scores)
PRM_MAIN = "min"  # a PRM's main score: its weakest step
COMBINED = "mean_of_normalised"


@dataclass(frozen=True)
class Verifier:
    """One verifier of a dataset: its report name, kind, the column scored and every column it owns."""

    name: str
    kind: str
    column: str
    columns: tuple[str, ...]


def discover(columns: list[str]) -> list[Verifier]:
    """Verifiers from column names: *_verdicts judges, PRM min/max/avg groups, other *_scores reward models."""
    present = set(columns)
    prm_names = [c.removesuffix(f"_{PRM_MAIN}_scores") for c in columns if c.endswith(f"_{PRM_MAIN}_scores")]
    prm_names = [p for p in prm_names if all(f"{p}_{part}_scores" in present for part in PRM_PARTS)]
    owned = {f"{p}_{part}_scores" for p in prm_names for part in (*PRM_PARTS, "step")}
    found = []
    for column in columns:
        if column.endswith("_verdicts"):
            found.append(Verifier(column.removesuffix("_verdicts"), "judge", column, (column,)))
        elif column.endswith(f"_{PRM_MAIN}_scores") and column.removesuffix(f"_{PRM_MAIN}_scores") in prm_names:
            name = column.removesuffix(f"_{PRM_MAIN}_scores")
            parts = tuple(f"{name}_{part}_scores" for part in (*PRM_PARTS, "step"))
            found.append(Verifier(name, "prm", column, tuple(c for c in parts if c in present)))
        elif column.endswith("_scores") and column not in owned and not column.endswith("_step_scores"):
            found.append(Verifier(column.removesuffix("_scores"), "reward_model", column, (column,)))
    return found


def choose(verifiers: list[Verifier], wanted: list[str] | None) -> list[Verifier]:
    """The verifiers named in --verifiers (all when None), in the order given; unknown names are an error."""
    if COMBINED in {v.name for v in verifiers}:
        raise UserError(f"the dataset has a verifier named {COMBINED!r}, the name of the report's combined "
                        f"verifier; rename that column before making a report")
    if wanted is None:
        return verifiers
    by_name = {v.name: v for v in verifiers}
    unknown = [name for name in wanted if name not in by_name]
    if unknown:
        raise UserError(f"--verifiers names {unknown} not in the dataset; its verifiers are {sorted(by_name)}")
    return [by_name[name] for name in dict.fromkeys(wanted)]


def list_column(table: pa.Table, column: str) -> pa.Array:
    """A column as one list array (chunks combined); a column that is not a list per row is an error."""
    array = table.column(column).combine_chunks()
    if not (pa.types.is_list(array.type) or pa.types.is_large_list(array.type)):
        raise UserError(f"column {column!r} holds {array.type}, not one list of per-sample values per row; "
                        f"pass a Step 2/3 output")
    return array


def row_lengths(array: pa.Array) -> np.ndarray:
    """Number of values in each row's list (-1 for a missing list)."""
    return pc.list_value_length(array).fill_null(-1).to_numpy(zero_copy_only=False)


def sample_count(table: pa.Table) -> int:
    """The samples per row, from answer_correct; ragged rows are an error."""
    lengths = row_lengths(list_column(table, "answer_correct"))
    if lengths.min() != lengths.max() or lengths[0] < 1:
        row = int(np.argmax(lengths != lengths[0])) if lengths[0] >= 1 else 0
        raise UserError(f"answer_correct has {lengths[0]} samples in row 0 but {lengths[row]} in row {row}; every row "
                        f"needs the same number of samples (ragged rows): cut them alike with Step 2 --max_samples N")
    return int(lengths[0])


def as_float(array: pa.Array, column: str) -> np.ndarray:
    """Numbers (bools and ints too) as float64 with None as NaN; text is an error."""
    try:
        return pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False).astype(float)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
        raise UserError(f"column {column!r} holds {array.type} values, not numbers; pass a Step 3 output") from err


def finite_values(array: pa.Array, column: str) -> tuple[np.ndarray, int]:
    """as_float with non-finite values (inf, -inf, NaN) made missing too; also how many there were."""
    values = as_float(array, column)
    stored = ~array.is_null().to_numpy(zero_copy_only=False)
    bad = stored & ~np.isfinite(values)
    return np.where(bad, np.nan, values), int(bad.sum())


def segment_means(values: pa.Array, column: str) -> tuple[np.ndarray, int]:
    """Mean of each inner list (K verdicts of a sample), None and non-finite values left out (NaN when a list has
    no value left); also the number of non-finite values."""
    lengths = pc.list_value_length(values).fill_null(0).to_numpy(zero_copy_only=False)
    flat, non_finite = finite_values(values.flatten(), column)
    present = ~np.isnan(flat)
    segment = np.repeat(np.arange(len(lengths)), lengths)
    sums = np.bincount(segment, weights=np.where(present, flat, 0.0), minlength=len(lengths))
    counts = np.bincount(segment, weights=present, minlength=len(lengths))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan), non_finite


def score_matrix(table: pa.Table, column: str, samples: int) -> tuple[np.ndarray, int]:
    """A per-sample column as a (rows, samples) float array, NaN where missing or non-finite (K verdicts are
    averaged), and the number of non-finite values left out."""
    array = list_column(table, column)
    lengths = row_lengths(array)
    bad = np.flatnonzero(lengths != samples)
    if bad.size:
        row = int(bad[0])
        raise UserError(f"row {row}: column {column!r} has {lengths[row]} values but answer_correct has {samples} "
                        f"samples (ragged rows); re-run the step that wrote {column!r} on the graded dataset")
    values = array.flatten()
    if pa.types.is_list(values.type) or pa.types.is_large_list(values.type):
        flat, non_finite = segment_means(values, column)
    else:
        flat, non_finite = finite_values(values, column)
    return flat.reshape(len(array), samples), non_finite


def correctness(table: pa.Table, samples: int) -> np.ndarray:
    """answer_correct as a (rows, samples) bool array; a None is an error."""
    values = list_column(table, "answer_correct").flatten()
    if values.null_count:
        raise UserError("answer_correct holds None values; re-run Step 2 (generation/unified_evaluation.py) so every "
                        "sample is graded")
    return as_float(values, "answer_correct").reshape(-1, samples).astype(bool)


def text_lists(table: pa.Table, column: str, samples: int) -> list[list[str | None]] | None:
    """A per-sample text column as Python lists (None when the column is absent); ragged rows are an error."""
    if column not in table.column_names:
        return None
    array = list_column(table, column)
    if (row_lengths(array) != samples).any():
        raise UserError(f"column {column!r} does not hold {samples} values in every row (ragged rows); "
                        f"re-run Step 2 on the dataset")
    return array.to_pylist()
