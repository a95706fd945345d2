"""Grading a dataset: benchmark table, row checks, per-sample grades, LLM judge prompts and replies, summary."""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from generation.common.cli import UserError
from generation.data.dataset_io import (
    FINISH_COLUMN,  # Step 1's per-sample finish reasons (absent from released datasets)
)
from generation.grading.checking import MATH_TIMEOUT_S, choice_correct, math_key, math_verdicts
from generation.grading.math_parsing import gold_math_answer
from generation.grading.parsing import valid_letters
from generation.grading.rule import DEFAULT_POLICY, Policy, decide

CHOICE_COUNTS = {"gpqa": 4, "gpqa_diamond": 4, "mmlu": 4, "mmlu_pro": 10}  # default option count per benchmark
DATASET_TYPES = ("math", *CHOICE_COUNTS)
METHODS = ("procedural", "llm", "no_answer", "no_sample", "undecided")
LETTER_ANSWER = re.compile(r"\(?([A-Z])\)?")
JUDGE_TAIL_CHARS = 4000
JUDGE_SYSTEM = "You grade one model response to a benchmark question. Reply with one JSON object and nothing else."
JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)
LATEX_IN_JSON = re.compile(r"(?<!\\)\\(?=[A-Za-z]{2,})")  # a lone backslash before a command name
CONTROL_CHAR = re.compile(r"[\x00-\x1f]")


@dataclass
class Graded:
    """One sample's grade: extracted answer, correctness, and how it was decided (one of METHODS)."""

    answer: str | None
    correct: bool
    method: str
    note: str = ""


def row_options(row: dict) -> list | None:
    """A row's option texts: `options` (MMLU-Pro, GPQA) or `choices` (MMLU)."""
    return row.get("options") or row.get("choices") or None


def row_letters(row: dict, dataset_type: str) -> str:
    """Valid answer letters of a multiple-choice row (A-D, or one per option)."""
    return valid_letters(row_options(row), CHOICE_COUNTS[dataset_type])


def gold_letter(answer: object) -> str | None:
    """The gold letter of a multiple-choice row ('B', ' (B) '), or None when the answer is not a letter."""
    match = LETTER_ANSWER.fullmatch(str(answer).strip()) if isinstance(answer, str) else None
    return match.group(1) if match else None


def check_rows(rows: list[dict], columns: list[str], dataset_type: str) -> None:
    """UserError for input that cannot be graded as `dataset_type` (missing columns, wrong answer kind)."""
    needed = ["samples", "instruction", "answer"] + (["options"] if dataset_type == "mmlu_pro" else [])
    missing = [c for c in needed if c not in columns]
    if missing:
        raise UserError(f"input has no {', '.join(repr(c) for c in missing)} column (it has {columns}); "
                        f"pass a Step 1 output or a released dataset for --dataset_type {dataset_type}")
    for index, row in enumerate(rows):
        if not isinstance(row["samples"], list):
            raise UserError(f"row {index}: 'samples' must be a list of strings, got {type(row['samples']).__name__}")
        if row["answer"] is None or not str(row["answer"]).strip():
            raise UserError(f"row {index} has an empty 'answer'; every row needs its ground-truth answer")
        if dataset_type == "math":
            continue
        letter, letters = gold_letter(row["answer"]), row_letters(row, dataset_type)
        if letter is None or letter not in letters:
            raise UserError(f"row {index}: answer {row['answer']!r} is not one of the letters {letters[0]}-"
                            f"{letters[-1]} that --dataset_type {dataset_type} expects; check --dataset_type "
                            f"(math answers need --dataset_type math)")
    if dataset_type == "math" and rows and ("options" in columns or "choices" in columns) and all(
            gold_letter(row["answer"]) for row in rows):
        raise UserError("every answer is a single letter and the rows have options: this is a multiple-choice "
                        "dataset; pass --dataset_type gpqa, gpqa_diamond, mmlu or mmlu_pro")


def grade_rows(rows: list[dict], dataset_type: str, workers: int, progress: Callable[[int], None],
               timeout: float = MATH_TIMEOUT_S, policy: Policy = DEFAULT_POLICY) -> list[list[Graded]]:
    """Procedural grades for every sample of every row, each decided by rule.decide under the declared `policy` (a
    hedge it grades incorrect is method procedural with its note; math pairs are then judged once each, in worker
    processes)."""
    graded: list[list[Graded]] = []
    pending: dict[tuple[str, str], list[Graded]] = {}
    kind = "math" if dataset_type == "math" else "choice"
    for row in rows:
        grades = []
        letters = row_letters(row, dataset_type) if kind == "choice" else ""
        finishes = row.get(FINISH_COLUMN) or [None] * len(row["samples"])
        for sample, finish in zip(row["samples"], finishes):
            if sample is None:
                grades.append(Graded(None, False, "no_sample"))
                continue
            decision = decide(sample, kind, letters, row_options(row), finish, policy, timeout)
            if decision.method == "hedged":
                grades.append(Graded(None, False, "procedural", decision.note))
            elif decision.method != "read":
                grades.append(Graded(None, False, decision.method, decision.note))
            elif kind == "math":
                grade = Graded(decision.answer, False, "undecided")
                pending.setdefault((decision.answer, gold_math_answer(str(row["answer"]))), []).append(grade)
                grades.append(grade)
            else:
                correct = choice_correct(decision.answer, gold_letter(row["answer"]), letters)
                grades.append(Graded(decision.answer, correct, "procedural"))
        graded.append(grades)
        progress(sum(grade.method != "undecided" or bool(grade.note) for grade in grades))
    groups = list(pending.values())
    verdicts = math_verdicts(list(pending), workers, lambda index: progress(len(groups[index])), timeout)
    for grades, (verdict, note) in zip(pending.values(), verdicts):
        for grade in grades:
            grade.correct, grade.note = bool(verdict), note
            grade.method = "undecided" if verdict is None else "procedural"
    return graded


def fallback_targets(graded: list[list[Graded]], mode: str) -> list[tuple[int, int]]:
    """(row, sample) positions the LLM judge should grade: undecided ones (auto), every present sample (always)."""
    wanted = {"never": (), "auto": ("undecided",), "always": ("procedural", "no_answer", "undecided", "llm")}[mode]
    return [(r, i) for r, grades in enumerate(graded) for i, grade in enumerate(grades) if grade.method in wanted]


def judge_messages(row: dict, sample: str, dataset_type: str) -> list[dict]:
    """Chat messages asking the judge for the final answer (and, for math, equivalence with the reference)."""
    tail = sample[-JUDGE_TAIL_CHARS:]
    if dataset_type == "math":
        task = (f"Reference answer: {gold_math_answer(str(row['answer']))}\n\nResponse (its end):\n{tail}\n\n"
                "Extract the response's final answer and decide whether it is mathematically equivalent to the "
                'reference answer. Reply as JSON: {"extracted_answer": "<final answer as written, or null if the '
                'response gives none>", "is_correct": true or false}')
    else:
        letters = row_letters(row, dataset_type)
        task = (f"Response (its end):\n{tail}\n\nWhich option letter ({letters[0]}-{letters[-1]}) does the response "
                'give as its final answer? Reply as JSON: {"extracted_answer": "<one letter, or null if the response '
                'gives no single final answer>"}')
    return [{"role": "system", "content": JUDGE_SYSTEM},
            {"role": "user", "content": f"Question:\n{row['instruction']}\n\n{task}"}]


def judge_json(text: str | None) -> object:
    """The JSON object of a judge reply, or None; LaTeX written with single backslashes ("\\frac") is read as such."""
    match = JSON_OBJECT.search(text or "")
    if not match:
        return None
    raw = match.group(0)
    for candidate in (raw, LATEX_IN_JSON.sub(r"\\\\", raw)):
        try:
            reply = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        answer = reply.get("extracted_answer") if isinstance(reply, dict) else None
        if not (isinstance(answer, str) and CONTROL_CHAR.search(answer)):  # "\frac" read as form feed + "rac"
            return reply
    return None


def read_judge_reply(text: str | None, row: dict, dataset_type: str) -> Graded | None:
    """The grade a judge reply gives, or None when the reply is not the JSON asked for."""
    reply = judge_json(text)
    if not isinstance(reply, dict) or "extracted_answer" not in reply:
        return None
    answer = reply["extracted_answer"]
    answer = None if answer in ("", "null", "None") else answer
    if answer is not None and not isinstance(answer, str):
        return None
    if dataset_type == "math":
        if answer is None:
            return Graded(None, False, "llm", "judge found no final answer")
        return Graded(answer, reply["is_correct"], "llm") if isinstance(reply.get("is_correct"), bool) else None
    letters = row_letters(row, dataset_type)
    letter = gold_letter(answer) if answer is not None else None
    if answer is not None and (letter is None or letter not in letters):
        return None
    return Graded(letter, choice_correct(letter, gold_letter(row["answer"]), letters), "llm")


def majority_correct(grades: list[Graded], dataset_type: str) -> bool:
    """Whether the most frequent extracted answer (None excluded, ties to the earliest) is correct."""
    votes: dict[str, list[Graded]] = {}
    for grade in grades:
        if grade.answer is not None:
            key = grade.answer if dataset_type != "math" else math_key(grade.answer)
            votes.setdefault(key, []).append(grade)
    if not votes:
        return False
    winner = max(votes.values(), key=len)  # dicts keep first-seen order, so ties go to the earliest answer
    return any(grade.correct for grade in winner)


def summarize(graded: list[list[Graded]], dataset_type: str) -> dict:
    """Sample, pass@k, majority-vote and first-sample accuracy, extraction failures and counts per method."""
    flat = [grade for grades in graded for grade in grades]
    problems = [grades for grades in graded if grades]
    decided = [g for g in flat if g.method in ("procedural", "llm", "no_answer")]

    def ratio(part: int, whole: int) -> float | None:
        return round(part / whole, 6) if whole else None

    lengths = sorted({len(grades) for grades in problems})
    return {
        "problems": len(graded), "samples": len(flat), "samples_per_problem": lengths,
        "methods": {method: sum(g.method == method for g in flat) for method in METHODS},
        "sample_accuracy": ratio(sum(g.correct for g in decided), len(decided)),
        "pass_at_k": ratio(sum(any(g.correct for g in grades) for grades in problems), len(problems)),
        "majority_vote_accuracy": ratio(sum(majority_correct(grades, dataset_type) for grades in problems),
                                        len(problems)),
        "first_sample_accuracy": ratio(sum(grades[0].correct for grades in problems), len(problems)),
        "extraction_failure_rate": ratio(sum(g.answer is None for g in flat), len(flat)),
    }
