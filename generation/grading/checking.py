"""Judging extracted answers: letter equality, math equivalence (math-verify plus value guards) under timeouts."""
from __future__ import annotations

import contextlib
import functools
import logging
import multiprocessing
import re
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from fractions import Fraction
from multiprocessing.connection import wait

from generation.grading.math_parsing import sample_points, values_differ, warm_math
from generation.grading.parsing import DANGLING, LATEX_COMMAND
from generation.grading.quantities import as_latex, is_compound, notation_pair, quantity_verdict, scientific_value

MATH_TIMEOUT_S = 5.0
HARD_TIMEOUT_FACTOR = 3  # a worker silent for this many soft timeouts is killed
SPACING = re.compile(r"\\[,;:!> ]|\\(?:left|right|displaystyle|big|Big)\b|\s+")
DEGREES = re.compile(r"\^\s*\{?\\circ\}?|°")
TEXT = re.compile(r"\\(?:text|textbf|textrm|mathrm|mbox|operatorname)\s*\{([^{}]*)\}")
NUMBERS = re.compile(r"\d+(?:\.\d+)?")
PLAIN_NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")
REPEATING = re.compile(r"(\d*)\.(\d*)\\overline\{(\d+)\}")
WORD = re.compile(r"[A-Za-z]{3,}")
WORD_ANSWER = re.compile(r"[A-Za-z][A-Za-z.,'()-]*")  # a name or phrase (spaces removed): compared without case
WORD_ANSWER_TOKEN = re.compile(r"[a-z]+")
ENVIRONMENT = re.compile(r"\\(?:begin|end)\s*\{[^{}]*\}")
BASE_NUMBER = re.compile(r"\(?([0-9A-Za-z]+)\)?(?:_\{?(\d+)\}?)?")  # 1011_2, A3_{16}, (101)_{3}
THOUSANDS_GAP = re.compile(r"(?<=\d),(?:\s|\\[,;: ])+(?=\d)")  # "1, 125" is two numbers; "1,125" may be one
LIST_NOT_THOUSANDS = re.compile(r"(?<=\d),(?:\s|\\[,;: ])+(?=\d{3}(?!\d))")  # kept apart from "1,125" in keys
# Units a number may carry ("12 cm", "\text{12 inches}", "5\,\mathrm{m}^2"); other words after a number make a
# worded answer ("12 apples, roughly"), which the procedural path leaves undecided.
UNITS = ("mm|cm|dm|m|km|in|inch|inches|ft|foot|feet|yd|yards?|mi|miles?|(?:milli|centi|kilo)?(?:meters?|metres?)"
         r"|(?:square|sq\.?|cubic)\s+(?:units?|mm|cm|m|km|in|inch|inches|ft|feet|foot|yards?|miles?|meters?|metres?)"
         "|units?|degrees?|deg|rad|radians?|dollars?|cents?|euros?|s|sec|seconds?|min|minutes?|h|hr|hrs|hours?|days?"
         "|weeks?|months?|years?|g|kg|mg|grams?|kilograms?|lbs?|pounds?|oz|ounces?|l|ml|liters?|litres?|gallons?"
         "|mph|km/h|m/s|ways|times"
         # science (no one-letter symbol: "5j" may be complex, "5K" a thousand): "0.26 Å", "3.5 eV", "53 kJ/mol"
         r"|nm|fm|[uµμ]m|microns?|angstroms?|Å|\\AA|[kMG]?eV|kJ|MJ|joules?|ergs?|k?cal|kelvins?|[kMG]?Hz|k?Pa|atm"
         "|m?mol|moles?|AU|k?pc|Mpc|Gyr|Myr|yr|arcsec|arcseconds?|arcmin|arcminutes?")
UNIT_WORD = re.compile(f"(?:{UNITS})|square|cubic", re.IGNORECASE)
# One unit with its power ("cm^2", "s^{-1}"), and a unit made of several ("kJ/mol", "erg s^{-1}", "g/cm^3").
UNIT_TERM = rf"(?:{UNITS})\.?\s*(?:\^\s*\{{?-?[1-3]\}}?|²|³|⁻¹)?"
WITH_UNIT = re.compile(rf"(.*?\d[^A-Za-z]*?)\s*{UNIT_TERM}(?:\s*(?:/|\\cdot|\s)\s*{UNIT_TERM})*\s*\.?", re.IGNORECASE)
UNIT_WRAPPER = re.compile(r"\\(?:text|textrm|mathrm|mbox|operatorname)\s*\{~?((?:[^{}]|\{[^{}]*\})*)\}|\\[,;:! ]|~")
# One-variable inequalities, normalised (no spaces, <= and >=): "x<=3", "-2<x<=5", "3>=x"; and "x \in [1, 2)".
RELATIONS = (("\\leq", "<="), ("\\le", "<="), ("\\geq", ">="), ("\\ge", ">="), ("\\lt", "<"), ("\\gt", ">"),
             ("≤", "<="), ("≥", ">="))
ONE_SIDED = re.compile(r"([a-z])(<=|<|>=|>)([^<>=]+)|([^<>=]+)(<=|<|>=|>)([a-z])")
TWO_SIDED = re.compile(r"([^<>=]+)(<=|<)([a-z])(<=|<)([^<>=]+)|([^<>=]+)(>=|>)([a-z])(>=|>)([^<>=]+)")
MEMBER = re.compile(r"[a-z]\\in(.+)")


class GradeTimeout(BaseException):
    """A math comparison ran past its time limit (BaseException: library `except Exception` cannot swallow it)."""


@contextlib.contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Raise GradeTimeout once this process has used `seconds` of CPU time (SIGPROF, so only in a main thread;
    elsewhere no limit is applied). CPU time, not wall time: a comparison slowed down by other processes on a busy
    machine gets the same verdict as on an idle one."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum: int, frame: object) -> None:
        raise GradeTimeout(f"math comparison used more than {seconds} s of CPU time")

    previous = signal.signal(signal.SIGPROF, on_alarm)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


def math_key(text: str | None) -> str | None:
    """A conservative normal form of a math answer: equal keys mean equal answers (used for voting too)."""
    if text is None:
        return None
    key = SPACING.sub("", LIST_NOT_THOUSANDS.sub(";", text))
    key = DEGREES.sub("", key).replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("$", "")
    previous = None
    while previous != key:
        previous = key
        key = TEXT.sub(r"\1", key)
    key = key.rstrip(".")
    return key.lower() if WORD_ANSWER.fullmatch(key) and WORD.search(key) else key


def plain_number(text: str) -> Fraction | None:
    """The exact value of a plain decimal number (thousands separators allowed), else None."""
    text = text.replace("{,}", ",").replace(",\\!", ",")
    if THOUSANDS_GAP.search(text):
        return None
    text = SPACING.sub("", text)
    if not PLAIN_NUMBER.fullmatch(text):
        return None
    return Fraction(text.replace(",", ""))


def number_value(text: str) -> Fraction | None:
    """The exact value of a plain decimal number or of one in scientific notation (1.2e5, 1.2 \\times 10^5)."""
    value = plain_number(text)
    return value if value is not None else scientific_value(text)


def repeating_to_fraction(match: re.Match) -> str:
    """0.1\\overline{6} -> \\frac{1}{6}: a repeating decimal written with \\overline as an exact fraction."""
    whole, fixed, period = match.groups()
    value = Fraction(int(whole or 0)) + Fraction(int(fixed or 0), 10 ** len(fixed))
    value += Fraction(int(period), (10 ** len(period) - 1) * 10 ** len(fixed))
    return f"\\frac{{{value.numerator}}}{{{value.denominator}}}"


def prepare_latex(text: str) -> str:
    """Rewrite forms math-verify misreads: \\mathrm{e}, repeating decimals, markdown bold, {,} separators."""
    text = re.sub(r"\\(?:mathrm|mathit|operatorname)\s*\{([A-Za-z])\}", r"\1", text)
    text = REPEATING.sub(repeating_to_fraction, as_latex(text.replace("**", "").replace("{,}", ",")))
    return text.strip().strip("$").strip()


@functools.lru_cache(maxsize=4096)
def parse_math(text: str):
    """math-verify's parse of one answer as a sympy object, or None when it cannot be read in full (memoised: a gold
    answer is parsed once, not once per distinct response; a parse cut by a deadline raises and is not kept)."""
    from math_verify import parse

    parsed = parse("\\boxed{" + prepare_latex(text) + "}", parsing_timeout=None)
    if not parsed or isinstance(parsed[0], str):
        return None
    read = parsed[1] if len(parsed) > 1 and isinstance(parsed[1], str) else ""
    return None if DANGLING.search(read) else parsed[0]


def assigned_value(expr):
    """The right side of an assignment 'x = 5', else the expression itself."""
    import sympy

    return expr.rhs if isinstance(expr, sympy.Eq) and isinstance(expr.lhs, sympy.Symbol) else expr


def guard_differs(gold, pred, percent: bool) -> bool:
    """Whether values prove a math-verify 'equal' wrong: numbers, tuples, sets, intervals, relations, 'x = 5'."""
    import sympy

    if isinstance(gold, sympy.Eq) != isinstance(pred, sympy.Eq):
        gold, pred = assigned_value(gold), assigned_value(pred)
    if isinstance(gold, sympy.core.relational.Relational) and type(gold) is type(pred):
        if gold.lhs == pred.lhs:
            gold, pred = gold.rhs, pred.rhs
        elif gold.rhs == pred.rhs:
            gold, pred = gold.lhs, pred.lhs
    if isinstance(gold, (sympy.Tuple, sympy.FiniteSet, sympy.Interval, sympy.Union)) and type(gold) is type(pred):
        items = [list(gold.args), list(pred.args)]
        if len(items[0]) != len(items[1]):
            return False
        if isinstance(gold, (sympy.FiniteSet, sympy.Union)):
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


def base_number(text: str) -> tuple[str, int | None] | None:
    """(digits, base) of an integer written in a base, '1011_2' -> ('1011', 2); ('1011', None) without one."""
    match = BASE_NUMBER.fullmatch(math_key(text) or "")
    if not match:
        return None
    digits, base = match.group(1).upper().lstrip("0") or "0", match.group(2)
    if base is None:
        return (digits, None) if digits.isdigit() else None
    if not 2 <= int(base) <= 36 or not re.search(r"\d", match.group(1) + base) or any(
            int(digit, 36) >= int(base) for digit in digits):
        return None
    return digits, int(base)


def base_verdict(pred: str, gold: str) -> bool | None:
    """Numbers with a base subscript: the same digits in the same base (a missing subscript is the asked one)."""
    numbers = base_number(pred), base_number(gold)
    if None in numbers or (numbers[0][1] is None and numbers[1][1] is None):
        return None
    (pred_digits, pred_base), (gold_digits, gold_base) = numbers
    return pred_digits == gold_digits and (pred_base == gold_base or None in (pred_base, gold_base))


def is_word_answer(text: str) -> bool:
    """Whether an answer is words (a name, a direction, 'no solution'), not mathematics."""
    key = math_key(text) or ""
    return bool(WORD.search(LATEX_COMMAND.sub("", key))) and not re.search(r"\d", key)


def looks_textual(text: str) -> bool:
    """Whether an answer is worded ('5 or -3', '\\text{no solution}', '\\text{about } 5'), not a number with a unit."""
    plain = ENVIRONMENT.sub("", text)
    outside = LATEX_COMMAND.sub("", TEXT.sub("", plain))
    inside = [word for word in WORD.findall(" ".join(TEXT.findall(plain))) if not UNIT_WORD.fullmatch(word)]
    return bool(WORD.search(outside)) or bool(inside)


def without_unit(text: str) -> str | None:
    """The number of an answer that is a number with a unit ("\\text{12 cm}" -> "12"), else None."""
    match = WITH_UNIT.fullmatch(UNIT_WRAPPER.sub(lambda m: f" {m.group(1) or ''} ", text).strip())
    return match.group(1).strip() if match and not re.search(r"[A-Za-z]{2,}", LATEX_COMMAND.sub("", match.group(1)))\
        else None


def as_interval(text: str) -> str | None:
    """A one-variable inequality as an interval ("x \\le 3" -> "(-\\infty,3]"), else None."""
    key = SPACING.sub("", text).replace("$", "")
    for latex, plain in RELATIONS:
        key = key.replace(latex, plain)
    member = MEMBER.fullmatch(key)
    if member:
        return member.group(1)
    two = TWO_SIDED.fullmatch(key)
    if two:
        low, low_op, _, high_op, high = two.groups()[:5] if two.group(1) else two.groups()[9:4:-1]
        return ("[" if low_op in ("<=", ">=") else "(") + f"{low},{high}" + ("]" if high_op in ("<=", ">=") else ")")
    one = ONE_SIDED.fullmatch(key)
    if not one:
        return None
    if one.group(1):
        op, bound = one.group(2), one.group(3)
    else:
        op, bound = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}[one.group(5)], one.group(4)
    closed = "=" in op
    if op.startswith("<"):
        return f"(-\\infty,{bound}" + ("]" if closed else ")")
    return ("[" if closed else "(") + f"{bound},\\infty)"


def word_verdict(pred: str, gold: str) -> tuple[bool | None, str]:
    """Word answers: other words are incorrect; the gold's words among extra ones ("even function") undecided."""
    gold_words = set(WORD_ANSWER_TOKEN.findall((math_key(gold) or "").lower()))
    pred_words = set(WORD_ANSWER_TOKEN.findall(TEXT.sub(r" \1 ", pred).lower()))
    if gold_words and gold_words < pred_words:
        return None, "answer has words beyond the gold answer"
    return False, "text answers differ"


def math_verdict(pred: str, gold: str, timeout: float | None = MATH_TIMEOUT_S) -> tuple[bool | None, str]:
    """(equivalent?, how): True/False when decided, None when the procedural path cannot decide."""
    pred, gold = notation_pair(pred, gold)  # notations math-verify reads apart (quantities)
    if math_key(pred) == math_key(gold):
        return True, "same text"
    based = base_verdict(pred, gold)
    if based is not None:
        return based, "base digits"
    if is_compound(pred) or is_compound(gold):
        return quantity_verdict(pred, gold), "compound quantity compared as a whole"
    pred_number, gold_number = without_unit(pred), without_unit(gold)
    if pred_number is None and looks_textual(pred) and len(NUMBERS.findall(pred)) > 1:
        return None, "several values in a worded answer"  # never graded by one of them (a unit's power is none)
    if pred_number is not None or gold_number is not None:
        if pred_number is not None and gold_number is not None and math_key(pred) != math_key(gold):
            units = [SPACING.sub("", UNIT_WRAPPER.sub(lambda m: m.group(1) or "", t)).lower() for t in (pred, gold)]
            if units[0].replace(pred_number.replace(" ", ""), "") != units[1].replace(gold_number.replace(" ", ""), ""):
                return quantity_verdict(pred, gold), "different units"
        return math_verdict(pred_number or pred, gold_number or gold, timeout)
    intervals = as_interval(pred), as_interval(gold)
    if (intervals[0] is None) != (intervals[1] is None):
        return math_verdict(intervals[0] or pred, intervals[1] or gold, timeout)
    exact_pred, exact_gold = number_value(pred), number_value(gold)
    if exact_pred is not None and exact_gold is not None:
        return exact_pred == exact_gold, "exact numbers"
    warm_math()  # outside the deadline: a cold import must not use up this pair's time
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
        return word_verdict(pred, gold)
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

    def __enter__(self) -> MathWorkers:
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
