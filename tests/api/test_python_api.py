"""The Python API (generation/api.py, docs/python-api.md), called as a user would: `import generation`. Each function
gives what its step gives: Step 2's grades, Step 3's verdicts, Step 4's report.json, the steps' own reader."""
from __future__ import annotations

import json
import subprocess
import sys

import datasets
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import generation
from generation import unified_evaluation, verifier_report
from generation.common.cli import UserError

LETTERS = "ABCD"


def save(columns: dict, path, splits: tuple[str, ...] = ("data",)) -> str:
    """Columns saved as a step saves its output: a DatasetDict (split 'data' unless told)."""
    dataset = datasets.Dataset.from_dict(columns)
    datasets.DatasetDict({name: dataset for name in splits}).save_to_disk(str(path))
    return str(path)


def test_import_generation_is_light():
    """`import generation` loads neither the API module nor torch, vLLM, datasets or numpy; the API names resolve."""
    code = ("import sys, generation; heavy = [m for m in ('torch', 'vllm', 'datasets', 'numpy', 'generation.api') "
            "if m in sys.modules]; print(heavy); print(sorted(n for n in generation.__all__ if callable(getattr("
            "generation, n))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0] == "[]"
    assert json.loads(out[1].replace("'", '"')) == sorted(generation.__all__)
    with pytest.raises(AttributeError):
        generation.no_such_function  # noqa: B018 - the attribute access is the test


@settings(max_examples=60, deadline=None)
@given(value=st.integers(-10**6, 10**6), lead=st.sampled_from(["", "Adding up gives ", "Step 1: simplify.\n\n"]),
       offset=st.integers(1, 50))
def test_a_boxed_answer_grades_against_its_gold(value, lead, offset):
    """A clearly written boxed integer is correct against itself and wrong against any other integer."""
    sample = f"{lead}So the final answer is $\\boxed{{{value}}}$."
    right = generation.grade(sample, str(value))
    assert (right.answer, right.correct, right.method) == (str(value), True, "procedural")
    wrong = generation.grade(sample, str(value + offset))
    assert wrong.correct is False and wrong.method == "procedural"


@settings(max_examples=60, deadline=None)
@given(said=st.sampled_from(LETTERS), gold=st.sampled_from(LETTERS),
       form=st.sampled_from(["The answer is ({})", "Answer: {}", "**Final answer: {}**"]))
def test_a_stated_letter_grades_against_its_gold(said, gold, form):
    """Multiple choice: the stated letter is the answer, correct exactly when it is the gold letter."""
    grade = generation.grade("Let me compare the options.\n\n" + form.format(said), gold, "gpqa",
                             options=["w", "x", "y", "z"])
    assert (grade.answer, grade.correct, grade.method) == (said, said == gold, "procedural")


def test_a_letter_can_be_a_math_answer():
    """Without options a single letter is a math answer (a variable), not a multiple-choice one."""
    assert generation.grade("So the constant of integration is $\\boxed{C}$.", "C").correct is True


def test_missing_and_cut_samples_are_not_graded_correct():
    """A failed generation is no_sample; a reply cut at the token limit before any answer has none."""
    assert generation.grade(None, "4").method == "no_sample"
    cut = generation.grade("Let me think about this carefully and", "4", finish_reason="length")
    assert cut.correct is False and cut.answer is None


def test_bad_input_is_one_line_error():
    with pytest.raises(UserError, match="unknown dataset_type 'maths'"):
        generation.grade("\\boxed{1}", "1", "maths")
    with pytest.raises(UserError, match="not one of the letters"):
        generation.grade("The answer is A", "Z", "gpqa")


def test_grade_dataset_is_step2_without_its_llm_fallback(tmp_path):
    """grade_dataset gives the columns Step 2 writes (--llm_fallback never), and each sample as grade() grades it."""
    rng = np.random.default_rng(7)
    golds = [int(x) for x in rng.integers(0, 100, 6)]
    samples = [[f"Thus $\\boxed{{{g + int(d)}}}$." for d in rng.integers(0, 2, 4)] + ["I could not finish", None]
               for g in golds]
    columns = {"instruction": [f"What is {g}?" for g in golds], "answer": [str(g) for g in golds],
               "samples": samples}
    source = save(columns, tmp_path / "step1")
    assert unified_evaluation.main(["-i", source, "-o", str(tmp_path / "step2"), "-t", "math",
                                    "--llm_fallback", "never", "--parallel", "1"]) == 0
    step2 = generation.load_output(str(tmp_path / "step2"))
    ours = generation.grade_dataset(source, "math")
    for name in ("extracted_answers", "answer_correct", "answer_extraction_method"):
        assert ours[name] == step2[name], name
    for row in ours:
        for sample, answer, correct in zip(row["samples"], row["extracted_answers"], row["answer_correct"]):
            grade = generation.grade(sample, row["answer"])
            assert (grade.answer, grade.correct) == (answer, correct)


@settings(max_examples=10, deadline=None)
@given(verdict=st.sampled_from(["True", "False"]), lead=st.sampled_from(["", "The steps check out.\n", "Hmm.\n\n"]),
       wrap=st.sampled_from(["Verdict: {}", "**Verdict: {}**", "{}"]))
def test_a_stated_verdict_parses(verdict, lead, wrap):
    """A judgment ending in a plain verdict is that verdict (1 correct, 0 wrong); a cut-off reply has none."""
    reply = lead + wrap.format(verdict)
    parsed = generation.parse_verdict(reply)
    assert parsed is not None and parsed == (verdict == "True")
    assert generation.parse_verdict(reply, truncated=True) is None


def test_verdict_examples_and_critiques():
    assert generation.parse_verdict("Verdict: False") == 0 and generation.parse_verdict("Verdict: False") is not None
    assert generation.parse_verdict(None) is None
    assert generation.parse_verdict("Paragraph 2 is wrong. \\boxed{2}", critique=True) == 0
    assert generation.parse_verdict("Every step holds. \\boxed{-1}", critique=True) == 1


def report_columns(rng: np.random.Generator, rows: int, samples: int) -> dict:
    """A graded dataset with a perfect, an inverted and a noisy reward model."""
    correct = rng.random((rows, samples)) < 0.4
    correct[0, 0], correct[0, 1] = True, False  # both classes present
    return {"instruction": ["q"] * rows, "samples": [["s"] * samples] * rows, "answer": ["1"] * rows,
            "answer_correct": correct.tolist(),
            "extracted_answers": [[str(int(c)) for c in row] for row in correct],
            "answer_extraction_method": [["procedural"] * samples] * rows,
            "Perfect_scores": correct.astype(float).tolist(), "Inverted_scores": (~correct).astype(float).tolist(),
            "Noisy_scores": rng.random((rows, samples)).tolist()}


def test_report_metrics_are_step4s_report_json(tmp_path):
    """report_metrics of a saved dataset is Step 4's report.json; `verifiers` picks verifiers by name."""
    source = save(report_columns(np.random.default_rng(0), 12, 5), tmp_path / "step3")
    ours = generation.report_metrics(source)
    assert verifier_report.main(["--dataset_path", source, "--output_dir", str(tmp_path / "report")]) == 0
    with open(tmp_path / "report" / "report.json") as handle:
        assert json.loads(json.dumps(ours)) == json.load(handle)
    chosen = generation.report_metrics(generation.load_output(source), verifiers=["Noisy"])
    assert "Perfect" not in chosen["verifiers"] and "Inverted" not in chosen["verifiers"]
    assert chosen["verifiers"]["Noisy"] == ours["verifiers"]["Noisy"]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), rows=st.integers(1, 15), samples=st.integers(2, 8))
def test_a_perfect_verifier_has_auroc_one(seed, rows, samples):
    """Over random graded datasets: a perfect verifier has AUROC 1.0 and picks a correct sample wherever a row has
    one (select@1 = pass@k); the inverted one has AUROC 0.0."""
    found = generation.report_metrics(datasets.Dataset.from_dict(report_columns(np.random.default_rng(seed), rows,
                                                                                samples)))
    assert found["verifiers"]["Perfect"]["auroc"] == 1.0 and found["verifiers"]["Inverted"]["auroc"] == 0.0
    assert found["verifiers"]["Perfect"]["select_at_1"] == found["baselines"]["pass_at_k"]
    assert (found["rows"], found["samples_per_row"]) == (rows, samples)


def test_report_metrics_needs_grades(tmp_path):
    source = save({"instruction": ["q"], "samples": [["s"]], "R_scores": [[0.1]]}, tmp_path / "ungraded")
    with pytest.raises(UserError, match="no 'answer_correct' column"):
        generation.report_metrics(source)


def test_load_output_reads_as_the_steps_read(tmp_path):
    """A step's output is its `data` split; an input with several splits needs one named, as with --split."""
    columns = {"instruction": ["a", "b"], "samples": [["x"], ["y"]]}
    assert generation.load_output(save(columns, tmp_path / "one")).to_dict() == columns
    several = save(columns, tmp_path / "two", ("train", "test"))
    with pytest.raises(UserError, match="2 splits"):
        generation.load_output(several)
    assert generation.load_output(several, split="test")["instruction"] == ["a", "b"]
    with pytest.raises(UserError, match="does not exist"):
        generation.load_output(str(tmp_path / "missing"))
