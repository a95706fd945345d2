"""Judging extracted answers: letter equality, math equivalence (math-verify plus value guards) under timeouts."""
from __future__ import annotations

import contextlib
import logging
import multiprocessing
import random
import re
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from multiprocessing.connection import wait
from typing import Callable, Iterator

MATH_TIMEOUT_S = 5.0
HARD_TIMEOUT_FACTOR = 3  # a worker silent for this many soft timeouts is killed
PRECISION = 60  # significant digits of the value guard
REL_TOL = 1e-12
SPACING = re.compile(r"\\[,;:!> ]|\\(?:left|right|displaystyle|big|Big)\b|\s+")
DEGREES = re.compile(r"\^\s*\{?\\circ\}?|°")
TEXT = re.compile(r"\\(?:text|textbf|textrm|mathrm|mbox|operatorname)\s*\{([^{}]*)\}")
PLAIN_NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")
REPEATING = re.compile(r"(\d*)\.(\d*)\\overline\{(\d+)\}")
WORD = re.compile(r"[A-Za-z]{3,}")
WORD_ANSWER = re.compile(r"[A-Za-z][A-Za-z.,'()-]*")  # a name or phrase (spaces removed): compared without case
LATEX_COMMAND = re.compile(r"\\[A-Za-z]+")
ENVIRONMENT = re.compile(r"\\(?:begin|end)\s*\{[^{}]*\}")
DANGLING = re.compile(r"[-+*/^=,(]\s*$")


class GradeTimeout(BaseException):
    """A math comparison ran past its time limit (BaseException: library `except Exception` cannot swallow it)."""


@contextlib.contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Raise GradeTimeout after `seconds` (SIGALRM, so only in a main thread; elsewhere no limit is applied)."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum: int, frame: object) -> None:
        raise GradeTimeout(f"math comparison took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def math_key(text: str | None) -> str | None:
    """A conservative normal form of a math answer: equal keys mean equal answers (used for voting too)."""
    if text is None:
        return None
    key = SPACING.sub("", text)
    key = DEGREES.sub("", key).replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("$", "")
    previous = None
    while previous != key:
        previous = key
        key = TEXT.sub(r"\1", key)
    key = key.rstrip(".")
    return key.lower() if WORD_ANSWER.fullmatch(key) and WORD.search(key) else key


def plain_number(text: str) -> Fraction | None:
    """The exact value of a plain decimal number (thousands separators allowed), else None."""
    text = SPACING.sub("", text).replace("{,}", ",")
    if not PLAIN_NUMBER.fullmatch(text):
        return None
    return Fraction(text.replace(",", ""))


def repeating_to_fraction(match: re.Match) -> str:
    """0.1\\overline{6} -> \\frac{1}{6}: a repeating decimal written with \\overline as an exact fraction."""
    whole, fixed, period = match.groups()
    value = Fraction(int(whole or 0)) + Fraction(int(fixed or 0), 10 ** len(fixed))
    value += Fraction(int(period), (10 ** len(period) - 1) * 10 ** len(fixed))
    return f"\\frac{{{value.numerator}}}{{{value.denominator}}}"


def prepare_latex(text: str) -> str:
    """Rewrite forms math-verify misreads: \\mathrm{e}, repeating decimals, markdown bold, {,} separators."""
    text = re.sub(r"\\(?:mathrm|mathit|operatorname)\s*\{([A-Za-z])\}", r"\1", text)
    text = REPEATING.sub(repeating_to_fraction, text.replace("**", "").replace("{,}", ","))
    return text.strip().strip("$").strip()


def parse_math(text: str):
    """math-verify's parse of one answer as a sympy object, or None when it cannot be read in full."""
    from math_verify import parse

    parsed = parse("\\boxed{" + prepare_latex(text) + "}", parsing_timeout=None)
    if not parsed or isinstance(parsed[0], str):
        return None
    read = parsed[1] if len(parsed) > 1 and isinstance(parsed[1], str) else ""
    return None if DANGLING.search(read) else parsed[0]


def closed_value(expr):
    """The high-precision value of a closed (symbol-free) sympy expression, or None."""
    try:
        if expr.free_symbols or not expr.is_number:
            return None
        value = expr.evalf(PRECISION)
        return value if value.is_finite else None
    except Exception:  # sympy raises many types on exotic values
        return None


def values_differ(first, second, percent: bool) -> bool:
    """True when two closed expressions have provably different values (relative 1e-12; x100 allowed with %)."""
    a, b = closed_value(first), closed_value(second)
    if a is None or b is None:
        return False
    for scale in ((1, 100, Fraction(1, 100)) if percent else (1,)):
        other = b * scale
        if abs(a - other) <= REL_TOL * max(abs(a), abs(other)):
            return False
    return True


def sample_points(symbols: set) -> list[dict]:
    """Two fixed non-integer points for checking a symbolic identity numerically."""
    import sympy

    rng = random.Random(7)
    return [{s: sympy.Rational(rng.randint(101, 999), 97) for s in sorted(symbols, key=str)} for _ in range(2)]


def guard_differs(gold, pred, percent: bool) -> bool:
    """Whether values prove a math-verify 'equal' wrong: numbers, tuples/sets of numbers, same-side equations."""
    import sympy

    if isinstance(gold, sympy.Eq) and isinstance(pred, sympy.Eq) and gold.lhs == pred.lhs:
        gold, pred = gold.rhs, pred.rhs
    if isinstance(gold, (sympy.Tuple, sympy.FiniteSet)) and isinstance(pred, type(gold)):
        items = [list(gold.args), list(pred.args)]
        if len(items[0]) != len(items[1]):
            return False
        if isinstance(gold, sympy.FiniteSet):
            items = [sorted(group, key=sympy.default_sort_key) for group in items]
        return any(guard_differs(g, p, percent) for g, p in zip(*items))
    if not isinstance(gold, sympy.Expr) or not isinstance(pred, sympy.Expr):
        return False
    if not gold.free_symbols and not pred.free_symbols:
        return values_differ(gold, pred, percent)
    if gold.free_symbols != pred.free_symbols:
        return False
    return all(values_differ(gold.subs(point), pred.subs(point), percent)
               for point in sample_points(gold.free_symbols))


def is_word_answer(text: str) -> bool:
    """Whether an answer is words (a name, a direction, 'no solution'), not mathematics."""
    key = math_key(text) or ""
    return bool(WORD.search(LATEX_COMMAND.sub("", key))) and not re.search(r"\d", key)


def looks_textual(text: str) -> bool:
    """Whether an answer is worded ('5 or -3', '\\text{no solution}'), not a number with a unit in \\text{}."""
    plain = ENVIRONMENT.sub("", text)
    outside = LATEX_COMMAND.sub("", TEXT.sub("", plain))
    inside = " ".join(TEXT.findall(plain))
    return bool(WORD.search(outside)) or bool(WORD.search(inside)) and not re.search(r"\d", plain)


def math_verdict(pred: str, gold: str, timeout: float | None = MATH_TIMEOUT_S) -> tuple[bool | None, str]:
    """(equivalent?, how): True/False when decided, None when the procedural path cannot decide."""
    if math_key(pred) == math_key(gold):
        return True, "same text"
    exact_pred, exact_gold = plain_number(pred), plain_number(gold)
    if exact_pred is not None and exact_gold is not None:
        return exact_pred == exact_gold, "exact numbers"
    try:
        with deadline(timeout):
            return _symbolic_verdict(pred, gold)
    except GradeTimeout:
        return None, "timeout"
    except Exception as err:  # a crash in sympy/latex2sympy must not stop grading
        return None, f"error: {type(err).__name__}"


def _symbolic_verdict(pred: str, gold: str) -> tuple[bool | None, str]:
    """math-verify's verdict with the value guards applied (no time limit of its own)."""
    from math_verify import verify

    if is_word_answer(gold):
        return False, "text answers differ"
    gold_expr, pred_expr = parse_math(gold), parse_math(pred)
    if gold_expr is None or pred_expr is None:
        return None, "unparsed " + ("gold" if gold_expr is None else "answer")
    if not verify(gold_expr, pred_expr, timeout_seconds=None):
        return (None, "textual answer") if looks_textual(pred) else (False, "math-verify")
    if guard_differs(gold_expr, pred_expr, "%" in pred + gold):
        return False, "values differ"
    return True, "math-verify"


def _worker_loop(conn, timeout: float) -> None:
    """Worker process: grade (pred, gold) pairs from conn in this process's main thread until None arrives."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops the workers
    quiet_math_logs()
    while True:
        item = conn.recv()
        if item is None:
            return
        conn.send(math_verdict(item[0], item[1], timeout))


def quiet_math_logs() -> None:
    """Silence math-verify's and latex2sympy's per-item warnings (timeouts are handled here)."""
    for name in ("math_verify", "latex2sympy2_extended"):
        logging.getLogger(name).setLevel(logging.ERROR)


class MathWorkers:
    """Worker processes grading one pair at a time; a worker past the hard limit is killed (that pair: timeout)."""

    def __init__(self, count: int, timeout: float = MATH_TIMEOUT_S) -> None:
        self.context = multiprocessing.get_context("spawn")
        self.timeout = timeout
        self.hard_limit = timeout * HARD_TIMEOUT_FACTOR + 30  # worker start-up (imports) included
        self.workers = [self._start() for _ in range(count)]

    def _start(self) -> dict:
        """A fresh worker with its pipe."""
        parent, child = self.context.Pipe()
        process = self.context.Process(target=_worker_loop, args=(child, self.timeout), daemon=True)
        process.start()
        child.close()
        return {"process": process, "conn": parent, "index": None, "since": 0.0}

    def _replace(self, worker: dict) -> None:
        """Kill a stuck or dead worker and start another in its place."""
        worker["process"].kill()
        worker["process"].join()
        worker["conn"].close()
        worker.update(self._start())

    def map(self, pairs: list[tuple[str, str]], done: Callable[[int], None] = lambda index: None) -> list:
        """Verdicts for every (pred, gold) pair, in order; done(index) after each."""
        results: list = [None] * len(pairs)
        todo = deque(range(len(pairs)))
        busy: dict = {}
        while todo or busy:
            for worker in self.workers:
                if worker["index"] is None and todo:
                    worker["index"], worker["since"] = todo.popleft(), time.monotonic()
                    worker["conn"].send(pairs[worker["index"]])
                    busy[worker["conn"]] = worker
            for conn in wait(list(busy), timeout=0.5):
                worker = busy.pop(conn)
                try:
                    results[worker["index"]] = conn.recv()
                except (EOFError, OSError):
                    results[worker["index"]] = (None, "worker died")
                    self._replace(worker)
                done(worker["index"])
                worker["index"] = None
            for conn, worker in list(busy.items()):
                if time.monotonic() - worker["since"] > self.hard_limit:
                    del busy[conn]
                    results[worker["index"]] = (None, "timeout")
                    self._replace(worker)
                    done(worker["index"])
                    worker["index"] = None
        return results

    def close(self) -> None:
        """Stop every worker."""
        for worker in self.workers:
            with contextlib.suppress(OSError):
                worker["conn"].send(None)
            worker["process"].join(timeout=5)
            if worker["process"].is_alive():
                worker["process"].kill()

    def __enter__(self) -> "MathWorkers":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def math_verdicts(pairs: list[tuple[str, str]], workers: int, done: Callable[[int], None] = lambda index: None,
                  timeout: float = MATH_TIMEOUT_S, pool_min: int = 64) -> list[tuple[bool | None, str]]:
    """Verdicts for (pred, gold) pairs: in this main thread for few pairs or one worker, else in worker processes."""
    quiet_math_logs()
    if workers <= 1 or len(pairs) < pool_min:
        verdicts = []
        for index, (pred, gold) in enumerate(pairs):
            verdicts.append(math_verdict(pred, gold, timeout))
            done(index)
        return verdicts
    with MathWorkers(min(workers, len(pairs)), timeout) as pool:
        return pool.map(pairs, done)


def choice_correct(letter: str | None, gold: str, letters: str) -> bool:
    """Multiple choice: the extracted letter equals the gold letter, both within the valid range."""
    return letter is not None and letter in letters and letter == gold


# ---- grading a dataset: benchmark table, row checks, procedural grading, LLM fallback, summary ----

CHOICE_COUNTS = {"gpqa": 4, "gpqa_diamond": 4, "mmlu": 4, "mmlu_pro": 10}  # default option count per benchmark
DATASET_TYPES = ("math", *CHOICE_COUNTS)
METHODS = ("procedural", "llm", "no_answer", "no_sample", "undecided")
LETTER_ANSWER = re.compile(r"\(?([A-Z])\)?")
JUDGE_TAIL_CHARS = 4000
JUDGE_SYSTEM = "You grade one model response to a benchmark question. Reply with one JSON object and nothing else."
JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


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
    from answer_parsing import valid_letters

    return valid_letters(row_options(row), CHOICE_COUNTS[dataset_type])


def gold_letter(answer: object) -> str | None:
    """The gold letter of a multiple-choice row ('B', ' (B) '), or None when the answer is not a letter."""
    match = LETTER_ANSWER.fullmatch(str(answer).strip()) if isinstance(answer, str) else None
    return match.group(1) if match else None


def check_rows(rows: list[dict], columns: list[str], dataset_type: str) -> None:
    """UserError for input that cannot be graded as `dataset_type` (missing columns, wrong answer kind)."""
    from cli_support import UserError

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
               timeout: float = MATH_TIMEOUT_S) -> list[list[Graded]]:
    """Procedural grades for every sample of every row (math pairs are judged once each, in worker processes)."""
    from answer_parsing import extract_choice, extract_math, gold_math_answer

    graded: list[list[Graded]] = []
    pending: dict[tuple[str, str], list[Graded]] = {}
    for row in rows:
        grades = []
        for sample in row["samples"]:
            if sample is None:
                grades.append(Graded(None, False, "no_sample"))
            elif dataset_type == "math":
                pred = extract_math(sample)
                grade = Graded(pred, False, "no_answer" if pred is None else "undecided")
                if pred is not None:
                    pending.setdefault((pred, gold_math_answer(str(row["answer"]))), []).append(grade)
                grades.append(grade)
            else:
                letters = row_letters(row, dataset_type)
                choice = extract_choice(sample, letters, row_options(row))
                if choice.ambiguous:
                    grades.append(Graded(None, False, "undecided", "several letters in the final statement"))
                elif choice.letter is None:
                    grades.append(Graded(None, False, "no_answer"))
                else:
                    correct = choice_correct(choice.letter, gold_letter(row["answer"]), letters)
                    grades.append(Graded(choice.letter, correct, "procedural"))
        graded.append(grades)
        progress(sum(grade.method != "undecided" or dataset_type != "math" for grade in grades))
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
    from answer_parsing import gold_math_answer

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


def read_judge_reply(text: str | None, row: dict, dataset_type: str) -> Graded | None:
    """The grade a judge reply gives, or None when the reply is not the JSON asked for."""
    import json

    match = JSON_OBJECT.search(text or "")
    try:
        reply = json.loads(match.group(0)) if match else None
    except json.JSONDecodeError:
        return None
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
