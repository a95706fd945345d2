"""What each step reads, as a table of column rules applied on load, before any work: one line naming the row, the
column and the fix for the first value that breaks a rule."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from generation.common.cli import UserError
from generation.data.dataset_io import FINISH_COLUMN, is_per_sample_column

FINISH_REASONS = ("stop", "length", "content_filter", "error")  # values of Step 1's `sample_finish_reasons`
Check = Callable[[Any], str | None]  # what is wrong with one row's value, or None


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def text(value: Any) -> str | None:
    """A string."""
    return None if isinstance(value, str) else f"is {_type_name(value)}, not text"


def present(value: Any) -> str | None:
    """A value that is there: not null, not NaN, not an empty string."""
    if value is None or isinstance(value, float) and math.isnan(value):
        return "is null or NaN"
    return "is empty" if value == "" else None


def sample_list(allowed: tuple[str, ...] | None = None) -> Check:
    """A list whose items are strings (from `allowed` when given) or null (a failed sample)."""
    def check(value: Any) -> str | None:
        if not isinstance(value, list):
            return f"must be a list (one value per sample), not {_type_name(value)}"
        for index, item in enumerate(value):
            if item is not None and not isinstance(item, str):
                return f"holds {_type_name(item)} {item!r} at sample {index}; only strings or null are allowed"
            if allowed is not None and item is not None and item not in allowed:
                return f"has unknown value {item!r} at sample {index}; each must be one of {', '.join(allowed)} or null"
        return None
    return check


def score_list(value: Any) -> str | None:
    """A list with one score per sample: a number (a verdict may be true/false), null (missing), or a list of those
    (a judge's K verdicts, a PRM's step scores); a text that looks like a number is not one."""
    if not isinstance(value, list):
        return f"must be a list (one value per sample), not {_type_name(value)}"
    for index, item in enumerate(value):
        inner = item if isinstance(item, list) else [item]
        wrong = next((x for x in inner if x is not None and not isinstance(x, (int, float))), None)
        if wrong is not None:
            return f"holds {_type_name(wrong)} {wrong!r} at sample {index}; only numbers or null are allowed"
    return None


def flag_list(value: Any) -> str | None:
    """A list with one true/false per sample."""
    if not isinstance(value, list):
        return f"must be a list (one value per sample), not {_type_name(value)}"
    wrong = next(((i, x) for i, x in enumerate(value) if not isinstance(x, bool)), None)
    return None if wrong is None else f"holds {_type_name(wrong[1])} {wrong[1]!r} at sample {wrong[0]}; only true " \
                                      "or false is allowed"


@dataclass(frozen=True)
class Rule:
    """One column's rule: the check of each row's value, and what to do when it fails."""

    check: Check
    fix: str


SAMPLES = Rule(sample_list(), "store samples as a list of strings per row (null for a failed sample), e.g. JSON lines "
                              "with \"samples\": [\"...\", \"...\"], not a CSV text column")
ANSWER = Rule(present, "give the row its ground-truth answer, or drop the row from the input")
SCORES = Rule(score_list, "store a verifier's value per sample as a number (a judge's K verdicts: a list of numbers), "
                         "null where it is missing: re-run Step 3 for it, or leave it out with --verifiers")
COLUMN_RULES: dict[str, Rule] = {  # every column a step reads; a new column is one row here
    "instruction": Rule(text, "give every row its problem text"),
    "samples": SAMPLES,
    "answer": ANSWER,
    FINISH_COLUMN: Rule(sample_list(FINISH_REASONS), "re-run Step 1 for these rows, or drop the column"),
    "answer_correct": Rule(flag_list, "grade every sample with Step 2 (generation/unified_evaluation.py)"),
    "extracted_answers": Rule(sample_list(), "re-run Step 2 on these rows, or drop the column"),
}
STEP_COLUMNS = {  # the columns each step reads (rules apply to those present; required ones are checked apart)
    "step2": ("instruction", "samples", "answer", FINISH_COLUMN),
    "step3": ("instruction", "samples", FINISH_COLUMN),
    "step4": ("instruction", "samples", "answer_correct", "extracted_answers", FINISH_COLUMN),  # + SCORES per verifier
}


def check_rows(dataset, columns: tuple[str, ...] | dict[str, Rule], source: str, first_row: int = 0) -> None:
    """UserError for the first row breaking a column rule, or whose per-sample columns do not hold one value per
    sample (ragged); `columns` names COLUMN_RULES entries or maps columns to their own rules."""
    rules = columns if isinstance(columns, dict) else {name: COLUMN_RULES[name] for name in columns}
    present = [name for name in rules if name in dataset.column_names]
    per_sample = [name for name in dataset.column_names if name != "samples" and is_per_sample_column(name)]
    if not present and not per_sample:
        return
    table = dataset.select_columns(sorted(set(present) | set(per_sample) | ({"samples"} & set(dataset.column_names))))
    for index, row in enumerate(table.to_list()):
        where = f"{source} row {first_row + index}"
        for name in present:
            problem = rules[name].check(row[name])
            if problem:
                raise UserError(f"{where}: column {name!r} {problem}; {rules[name].fix}")
        if not isinstance(row.get("samples"), list):
            continue
        for name in per_sample:
            if isinstance(row[name], list) and len(row[name]) != len(row["samples"]):
                raise UserError(f"{where}: column {name!r} holds {len(row[name])} values for {len(row['samples'])} "
                                "samples; every per-sample column needs one value per sample: re-run the step that "
                                f"wrote {name!r}, or drop that column")

