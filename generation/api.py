"""The Python API: grade, parse a judge's verdict, compute the verifier report's metrics and load a step's output from
a notebook, each through the code the steps themselves run (docs/python-api.md). `import generation` re-exports
these names and imports this module only when one is first used."""
from __future__ import annotations

from typing import TYPE_CHECKING

from generation.common.cli import UserError
from generation.data.dataset_io import FINISH_COLUMN
from generation.grading import decision
from generation.grading.checking import MATH_TIMEOUT_S
from generation.grading.rule import DEFAULT_POLICY, Policy
from generation.judges import verdicts

if TYPE_CHECKING:
    import datasets

    DatasetLike = datasets.Dataset | str  # a loaded Dataset, or what load_output reads

def load_output(path: str, split: str | None = None) -> datasets.Dataset:
    """A step's output (or any dataset a step reads: save_to_disk folder, data file, hub id) as one Dataset, read as
    the steps read it: the only split (a step's `data`), or `split` when it has several."""
    from generation.data.dataset_io import load_split

    return load_split(path, split)[0]


def _dataset(dataset: DatasetLike, split: str | None) -> tuple[datasets.Dataset, str]:
    """A Dataset and the name errors give it: loaded with load_output when a path is given."""
    if isinstance(dataset, str):
        return load_output(dataset, split), dataset
    return dataset, "the dataset"


def _check_type(dataset_type: str) -> None:
    """A one-line error for a dataset type Step 2 does not grade."""
    if dataset_type not in decision.DATASET_TYPES:
        raise UserError(f"unknown dataset_type {dataset_type!r}; choose one of {', '.join(decision.DATASET_TYPES)}")


def grade(sample: str | None, answer: str, dataset_type: str = "math", options: list[str] | None = None,
          finish_reason: str | None = None, timeout: float = MATH_TIMEOUT_S,
          policy: Policy = DEFAULT_POLICY) -> decision.Graded:
    """Step 2's procedural grade of one sample against its gold answer (a math answer, or a letter with `options`
    for multiple choice): its extracted answer, whether it is correct, and how that was decided (`method`:
    procedural, no_answer, no_sample, or undecided where Step 2 would ask its LLM judge; `note`: why). `policy`:
    Step 2's --hedges and --answerless (Policy(hedges="undecided", answerless="undecided") leaves both to a judge)."""
    _check_type(dataset_type)
    row = {"samples": [sample], "instruction": "", "answer": answer, FINISH_COLUMN: [finish_reason],
           **({"options": options} if options is not None else {})}
    decision.check_rows([row], list(row), dataset_type)
    return decision.grade_rows([row], dataset_type, 1, lambda done: None, timeout, policy)[0][0]


def grade_dataset(dataset: DatasetLike, dataset_type: str, workers: int = 1, split: str | None = None,
                  timeout: float = MATH_TIMEOUT_S, policy: Policy = DEFAULT_POLICY) -> datasets.Dataset:
    """Step 2's procedural grades of every sample of a Step 1 output (or any dataset with `samples`, `instruction`,
    `answer`): the dataset with Step 2's columns extracted_answers, answer_correct and answer_extraction_method
    (no LLM fallback: what it would decide is 'undecided'); math checks in `workers` processes."""
    from generation.steps import evaluate

    _check_type(dataset_type)
    data, source = _dataset(dataset, split)
    rows = evaluate.checked_rows(data, dataset_type, source)
    graded = decision.grade_rows(rows, dataset_type, workers, lambda done: None, timeout, policy)
    return evaluate.with_grades(data, graded)


def parse_verdict(reply: str | None, critique: bool = False, opened_thinking: bool = False,
                  truncated: bool = False) -> float | None:
    """An LM judge's reply as Step 3 reads it: 1.0 (correct), 0.0 (wrong) or None (no final verdict, or the reply
    was cut off); `critique` replies name the first wrong paragraph (\\boxed{-1}: none); `opened_thinking` when the
    prompt opened a thinking block the reply continues."""
    parse = verdicts.parse_critique if critique else verdicts.parse_verdict
    return parse(reply, opened_thinking, truncated)


def report_metrics(dataset: DatasetLike, verifiers: list[str] | None = None, dataset_type: str = "auto",
                   split: str | None = None) -> dict:
    """What Step 4 writes to report.json for a graded dataset with verifier columns: rows, samples per row, the
    baselines (pass@k, majority vote, first sample, sample accuracy) and per verifier its AUROC, select@1, coverage
    and mean scores; `verifiers` picks some by name, `dataset_type` how majority vote compares answers."""
    from generation import verifier_report
    from generation.report.analysis import analyse

    if dataset_type != "auto":
        _check_type(dataset_type)
    data, source = _dataset(dataset, split)
    chosen, arrays, scores = verifier_report.verifier_arrays(data, source, verifiers)
    kind = verifier_report.answer_type(dataset_type, data.column_names)
    return analyse(chosen, arrays, scores, kind)[0]
