"""One input check per step, before any work (data/schema.py): a bad row is one line naming the row, the column
and the fix, exit 2, nothing written; a multi-split input needs --split, and the split read is recorded."""
from __future__ import annotations

import json
import math
import os

import datasets
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generation import generate_reasoning_samples, unified_evaluation, verifier_report
from generation import unified_RMs_and_LM_Judges as step3
from generation.common.cli import UserError, run_main
from generation.common.writing import provenance_path
from generation.data.schema import FINISH_REASONS, STEP_COLUMNS, check_rows

from fixtures_benchmarks import mmlu_rows, write_benchmark

GOOD = {"instruction": "Question: 1 + 1?\n\nChoices:\nA) 1\nB) 2\nC) 3\nD) 4", "answer": "B",
        "options": ["1", "2", "3", "4"], "samples": ["The answer is: B", "The answer is: A"],
        "answer_correct": [True, False], "extracted_answers": ["B", "A"], "R_scores": [0.9, 0.1]}


def cli(main, argv, capsys) -> tuple[int, str]:
    """Run a script's main as its __main__ does; (exit code, stderr)."""
    with pytest.raises(SystemExit) as exited:
        run_main(main, argv)
    return exited.value.code, capsys.readouterr().err


def step2(src, out):
    return ["-i", src, "-o", out, "-t", "mmlu", "--llm_fallback", "never"]


def step3_argv(src, out):
    return ["--dataset_path", src, "--output_path", out, "--reward_models", ""]


def save(rows: list[dict], path, **splits) -> str:
    """A DatasetDict({'data': rows}) folder, or with the given splits."""
    parts = splits or {"data": rows}
    datasets.DatasetDict({k: datasets.Dataset.from_list(v) for k, v in parts.items()}).save_to_disk(str(path))
    return str(path)


def with_row(index: int, **changes) -> list[dict]:
    """Three good rows, row `index` changed."""
    return [{**GOOD, **changes} if i == index else dict(GOOD) for i in range(3)]


BAD_INPUTS = {  # name: (rows, steps refusing them, words the error names)
    "samples as text (a CSV export)": ([{**GOOD, "samples": '["a", "b"]'} for _ in range(3)],
                                       ("step2", "step3", "step4"), ("row 0", "'samples'", "list")),
    "mixed sample types": (with_row(1, samples=["a", None, 3], answer_correct=[True, False, False],
                                    extracted_answers=["a", None, None], R_scores=[0.1, 0.2, 0.3]),
                           ("step2", "step3", "step4"), ("row 1", "'samples'", "int")),
    "ragged per-sample column": (with_row(2, extracted_answers=["B"]), ("step2", "step3", "step4"),
                                 ("row 2", "'extracted_answers'", "one value per sample")),
    "finish reason unknown": (with_row(1, sample_finish_reasons=["stop", "timeout"]), ("step2", "step3", "step4"),
                              ("row 1", "'sample_finish_reasons'", "timeout")),
    "finish reasons ragged": (with_row(0, sample_finish_reasons=["stop"]), ("step2", "step3", "step4"),
                              ("row 0", "'sample_finish_reasons'", "one value per sample")),
    "null answer": (with_row(1, answer=None), ("step2",), ("row 1", "'answer'", "null")),
    "scores as text": ([{**GOOD, "R_scores": ["0.9", "0.1"]} for _ in range(3)], ("step4",),
                       ("row 0", "'R_scores'", "str '0.9'", "number")),
    "correctness as text": (with_row(2, answer_correct=["True", "False"]), ("step4",),
                            ("row 2", "'answer_correct'", "true or false")),
}
STEPS = {"step2": (unified_evaluation.main, step2), "step3": (step3.main, step3_argv),
         "step4": (verifier_report.main, lambda src, out: ["--dataset_path", src, "--output_dir", out,
                                                           "--export_weaver", out + "_weaver", "--rename",
                                                           "R=URM_scores"])}


@pytest.mark.parametrize("step", sorted(STEPS))
@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_rows_are_one_line_naming_row_column_and_fix_before_any_work(tmp_path, capsys, case, step):
    rows, refusing, words = BAD_INPUTS[case]
    if any("sample_finish_reasons" in row for row in rows):
        rows = [{"sample_finish_reasons": ["stop", "length"], **row} for row in rows]
    source = str(tmp_path / "in.jsonl")
    with open(source, "w") as handle:
        handle.writelines(json.dumps(row) + "\n" for row in rows)
    main, argv = STEPS[step]
    code, err = cli(main, argv(source, str(tmp_path / "out")), capsys)
    if step not in refusing:
        assert code in (0, 1), err
        return
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and "Traceback" not in err and len(lines) == 1, err
    assert all(word in lines[0] for word in words), lines[0]
    assert sorted(os.listdir(tmp_path)) == ["in.jsonl"]  # no output, no checkpoint, no lock


def test_nan_ground_truth_in_a_float_column_is_refused_by_step2(tmp_path, capsys):
    rows = [{**GOOD, "answer": value} for value in (2.0, float("nan"), 3.0)]
    code, err = cli(unified_evaluation.main, step2(save(rows, tmp_path / "in.hf"), str(tmp_path / "out")), capsys)
    assert code == 2 and "row 1" in err and "'answer'" in err and "NaN" in err
    assert sorted(os.listdir(tmp_path)) == ["in.hf"]


def test_step1_mmlu_row_with_null_answer_is_one_line_before_any_work(tmp_path, capsys):
    rows = mmlu_rows()
    rows[4]["answer"] = None
    path = write_benchmark("mmlu", str(tmp_path / "bench"), rows=rows)
    code, err = cli(generate_reasoning_samples.main,
                    ["--model", "loop", "--base_url", "http://127.0.0.1:9/v1", "--dataset", "mmlu",
                     "--dataset_path", path, "--output_path", str(tmp_path / "out"), "--dry_run"], capsys)
    assert code == 2 and "Traceback" not in err and "row 4" in err and "'answer'" in err, err
    assert sorted(os.listdir(tmp_path)) == ["bench"]


SPLIT_RUNS = {
    "step1": lambda src, out: (generate_reasoning_samples.main,
                               ["--model", "loop", "--base_url", "http://127.0.0.1:9/v1", "--dataset", "mmlu",
                                "--dataset_path", src, "--output_path", out, "--dry_run"]),
    "step2": lambda src, out: (unified_evaluation.main, step2(src, out)),
    "step3": lambda src, out: (step3.main, step3_argv(src, out)),
    "report": lambda src, out: (verifier_report.main, ["--dataset_path", src, "--output_dir", out]),
}


@pytest.mark.parametrize("step", sorted(SPLIT_RUNS))
def test_multi_split_input_needs_split_and_the_split_read_is_recorded(tmp_path, capsys, step):
    rows = mmlu_rows() if step == "step1" else [GOOD] * 3
    source = save(rows, tmp_path / "in.hf", train=rows[:2], test=rows, validation=rows[:1])
    main, argv = SPLIT_RUNS[step](source, str(tmp_path / "out"))
    code, err = cli(main, argv, capsys)
    assert code == 2 and "--split" in err and "test, train, validation" in err and "Traceback" not in err, err
    assert sorted(os.listdir(tmp_path)) == ["in.hf"]
    if step == "step1":
        return  # its dry run needs a server; the refusal is the point
    with pytest.raises(SystemExit) as exited:
        run_main(main, argv + ["--split", "test"])
    printed = capsys.readouterr()
    assert exited.value.code == 0 and "reading split 'test'" in printed.out, printed.err
    if step in ("step2", "step3"):
        record = json.load(open(provenance_path(str(tmp_path / "out"))))
        assert record["input_split"] == "test" and record["rows"] == 3


# ---- the rule itself, over many generated rows -----------------------------------------------------------------
VALUES = st.one_of(st.none(), st.text(max_size=3), st.integers(), st.floats(allow_nan=True),
                   st.lists(st.one_of(st.none(), st.text(max_size=3), st.integers()), max_size=3))


def oracle(row: dict) -> str | None:
    """Independently: the first column of a row that breaks the Step 2 rules (None when the row is fine)."""
    if not isinstance(row["instruction"], str):
        return "instruction"
    samples = row["samples"]
    if not isinstance(samples, list) or any(s is not None and not isinstance(s, str) for s in samples):
        return "samples"
    answer = row["answer"]
    if answer is None or answer == "" or isinstance(answer, float) and math.isnan(answer):
        return "answer"
    reasons = row["sample_finish_reasons"]
    if not isinstance(reasons, list) or any(r is not None and r not in FINISH_REASONS for r in reasons):
        return "sample_finish_reasons"
    if len(reasons) != len(samples):
        return "sample_finish_reasons"
    return None


class FakeDataset:
    """Rows of arbitrary Python values (an Arrow table would coerce them), with the column API check_rows uses."""

    def __init__(self, rows: list[dict]) -> None:
        self.rows, self.column_names = rows, list(rows[0])

    def select_columns(self, names: list[str]) -> "FakeDataset":
        return FakeDataset([{name: row[name] for name in names} for row in self.rows])

    def to_list(self) -> list[dict]:
        return self.rows


@settings(max_examples=300, deadline=None)
@given(st.lists(st.fixed_dictionaries({
    "instruction": st.one_of(st.text(max_size=3), st.none()), "samples": VALUES, "answer": VALUES,
    "sample_finish_reasons": st.one_of(VALUES, st.lists(st.sampled_from(sorted(FINISH_REASONS)), max_size=3))}),
    min_size=1, max_size=4))
def test_check_rows_refuses_exactly_the_rows_an_independent_oracle_refuses(rows):
    bad = [(index, oracle(row)) for index, row in enumerate(rows) if oracle(row)]
    if not bad:
        check_rows(FakeDataset(rows), STEP_COLUMNS["step2"], "in")
        return
    with pytest.raises(UserError) as refused:
        check_rows(FakeDataset(rows), STEP_COLUMNS["step2"], "in", first_row=10)
    assert f"in row {10 + bad[0][0]}: column '{bad[0][1]}'" in str(refused.value)
