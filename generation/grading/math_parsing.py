"""Math final answers: boxes, 'the answer is' statements, bare last lines; and the math engine under answer checks:
value guards on sympy expressions, and two speed-ups of math-verify that keep its verdicts (latex2sympy's two-stage
ANTLR parsing, and no simplify for a difference that is non-zero somewhere), set up once per process by warm_math."""
from __future__ import annotations

import contextlib
import functools
import random
import re
from fractions import Fraction

from generation.grading.boxes import HEDGE_NOTE, HEDGE_WORD, TEXT_WRAPPER, MathReading, box_groups, last_boxed
from generation.grading.parsing import (
    BARE_EQUATION,
    CLAUSE,
    CONCLUSION,
    DANGLING,
    FINAL_ANSWER_LINE,
    LATEX_COMMAND,
    MARKDOWN,
    MATH_SPAN,
    NOT_AN_ANSWER,
    QUESTION,
    SENTENCE_END,
    TRAILER,
    WORDS,
    answer_is_matches,
    committed,
)

PRECISION = 60  # significant digits of the value guard
REL_TOL = 1e-12  # for values written with a decimal approximation (a sympy Float)


def first_clause(text: str) -> str:
    """Text up to an explaining clause ("because", "since", ...) that starts outside math spans and braces."""
    spans = [match.span() for match in MATH_SPAN.finditer(text)]
    for match in CLAUSE.finditer(text):
        cut = match.start()
        if not any(start <= cut < end for start, end in spans) and text.count("{", 0, cut) == text.count("}", 0, cut):
            return text[:cut]
    return text


def clean_math(text: str) -> str | None:
    """An extracted math answer without its sentence around it: its math span, no markdown, no trailing period.

    A sentence with several math spans ("$1$ or $2$") is kept whole, without the $, so a hedge stays a hedge.
    """
    text = first_clause(SENTENCE_END.split(MARKDOWN.sub("", text).strip(), maxsplit=1)[0])
    spans = [next(group for group in span.groups() if group is not None) for span in MATH_SPAN.finditer(text)]
    if len(spans) == 1:
        text = spans[0]
    elif spans:
        text = MATH_SPAN.sub(lambda span: next(group for group in span.groups() if group is not None), text)
    previous = None
    while previous != text:
        previous = text
        text = TRAILER.sub("", text).strip()
    if text.startswith("\\boxed"):
        text = last_boxed(text) or text
    return text or None


def bare_answer(line: str) -> str | None:
    """A line that is only an answer ("4", "$\\frac12$", "**42**", "x = 5"), as written; else None."""
    answer = clean_math(line) if len(line) <= 100 else None
    if not answer or WORDS.search(LATEX_COMMAND.sub("", TEXT_WRAPPER.sub("", line))) or DANGLING.search(answer):
        return None
    if "=" in answer and not BARE_EQUATION.fullmatch(answer) or answer.startswith("="):
        return None
    return answer


def stated(answer: str) -> MathReading:
    """The reading of a stated answer: a hedge ("3 or 4", "5, possibly 6") is undecided."""
    return MathReading(answer, HEDGE_NOTE if HEDGE_WORD.search(TEXT_WRAPPER.sub(r"\1", answer)) else "")


def math_candidates(plain: str, start: int = 0) -> list[tuple[int, MathReading, int]]:
    """Every committed final answer in a segment (markdown removed) from `start` on as (position, reading, where the
    answer ends): boxes, "the answer is", "Answer:" lines."""
    found = [group for group in box_groups(plain) if group[0] >= start]
    for match in answer_is_matches(plain, start) + list(FINAL_ANSWER_LINE.finditer(plain, start)):
        answer = clean_math(match.group(1))
        if answer and not NOT_AN_ANSWER.match(answer) and committed(plain, match.start()) \
                and not QUESTION.match(plain, match.start(1)):
            found.append((match.start(), stated(answer), answer_end(plain, match, answer)))
    return found


def answer_end(text: str, match: re.Match, answer: str) -> int:
    """Where a stated answer ends in the text (the end of its statement when it was rewritten while cleaned)."""
    found = text.find(answer, match.start(1), match.end(1))
    return found + len(answer) if found >= 0 else match.end(1)


def unannounced_answer(plain: str) -> MathReading | None:
    """The answer of a segment with no statement: all of it, or its last line, is only an answer, or its last line
    concludes with one ("Therefore, $x = 5$.")."""
    lines = [line.strip() for line in plain.splitlines() if line.strip()]
    bare = bare_answer(plain.strip()) or (bare_answer(lines[-1]) if lines else None)
    if bare:
        return stated(bare)
    conclusion = CONCLUSION.fullmatch(lines[-1]) if lines else None
    if conclusion:
        return stated((clean_math(conclusion.group(1)) or "") + (conclusion.group(2) or ""))
    return None


def gold_math_answer(answer: str) -> str:
    """The gold answer of a math row: the last \\boxed{} of a worked solution, else the answer as written."""
    boxed = last_boxed(answer)
    return boxed if boxed is not None else clean_math(answer) or answer.strip()


def closed_value(expr):
    """The high-precision value of a closed (symbol-free) sympy expression, or None."""
    try:
        if expr.free_symbols or not expr.is_number:
            return None
        value = expr.evalf(PRECISION)
        if getattr(value, "_prec", PRECISION) < 10:  # no reliable digits: sin(pi) evaluates to 0.e-136
            return None
        return value if value.is_finite else None
    except Exception:  # sympy raises many types on exotic values
        return None


def values_differ(first, second, percent: bool) -> bool:
    """True when two closed expressions have provably different values (x100 allowed with %).

    Exact values differ when their difference evaluates to a non-zero number (so 1/10^20 differs from
    1/(10^20+1)); a value written with a decimal approximation (a sympy Float) must agree to REL_TOL.
    """
    import sympy

    a, b = closed_value(first), closed_value(second)
    if a is None or b is None:
        return False
    exact = not (first.has(sympy.Float) or second.has(sympy.Float))
    for scale in ((1, 100, Fraction(1, 100)) if percent else (1,)):
        if exact:
            gap = closed_value(first - second * sympy.Rational(scale))
            if gap is None or gap == 0:  # None: no reliable digit, i.e. zero as far as 60 digits can tell
                return False
        elif abs(a - b * scale) <= REL_TOL * max(abs(a), abs(b * scale)):
            return False
    return True


def sample_points(symbols: set) -> list[dict]:
    """Two fixed non-integer points for checking a symbolic identity numerically."""
    import sympy

    rng = random.Random(7)
    return [{s: sympy.Rational(rng.randint(101, 999), 97) for s in sorted(symbols, key=str)} for _ in range(2)]


def two_stage_latex_parsing() -> None:
    """Make latex2sympy parse in ANTLR's two stages: SLL prediction first, full LL only when SLL reports a syntax error.

    latex2sympy's grammar needs full-context (LL) lookahead to tell a set, a relation and an expression apart, and
    ANTLR caches none of it: a parse of one answer took about 0.1 s, most of the grading time on real math outputs.
    An SLL parse either fails or returns the parse tree LL returns (ANTLR's PredictionMode.SLL contract; its error
    listener here raises at the first error, so nothing is recovered), and a failed one is parsed again from the
    start by a fresh LL parser: the result is latex2sympy's own, about ten times faster.
    """
    from antlr4.atn.PredictionMode import PredictionMode
    from latex2sympy2_extended.latex2sympy2 import _Latex2Sympy

    full_ll = _Latex2Sympy.create_parser
    if getattr(full_ll, "two_stage", False):
        return

    def create_parser(self: _Latex2Sympy, latex: str) -> object:
        parser = full_ll(self, latex)
        parser._interp.predictionMode = PredictionMode.SLL
        sll_math = parser.math

        def math() -> object:
            try:
                return sll_math()
            except Exception:  # a syntax error, or LL needed: LL decides
                return full_ll(self, latex).math()

        parser.math = math
        return parser

    create_parser.two_stage, create_parser.full_ll = True, full_ll
    _Latex2Sympy.create_parser = create_parser


def nonzero_somewhere(first, second) -> bool:
    """Whether first - second, both exact expressions, has a provably non-zero value at a point its symbols'
    assumptions allow: then it is not identically zero, and no simplification makes it zero."""
    import sympy

    if not isinstance(first, sympy.Expr) or not isinstance(second, sympy.Expr) or first.has(sympy.Float) \
            or second.has(sympy.Float):
        return False
    symbols = first.free_symbols | second.free_symbols
    if not all(isinstance(symbol, sympy.Symbol) for symbol in symbols):
        return False
    return any(values_differ(first.subs(point), second.subs(point), False) for point in sample_points(symbols)
               if all(getattr(value, f"is_{fact}") == holds for symbol, value in point.items()
                      for fact, holds in symbol.assumptions0.items()))


def simplify_only_when_needed() -> None:
    """Make math-verify's last test, simplify(gold - pred) == 0 (seconds on long expressions), answer False at once
    when the difference is non-zero somewhere: the same answer, since a non-zero function never simplifies to 0."""
    from math_verify import grader

    symbolic_eq = grader.sympy_symbolic_eq
    if getattr(symbolic_eq, "needed_only", False):
        return

    def sympy_symbolic_eq(gold, pred) -> bool:
        return not nonzero_somewhere(gold, pred) and symbolic_eq(gold, pred)

    sympy_symbolic_eq.needed_only, sympy_symbolic_eq.__wrapped__ = True, symbolic_eq
    grader.sympy_symbolic_eq = sympy_symbolic_eq


def fast_math() -> None:
    """Both speed-ups, installed once per process."""
    two_stage_latex_parsing()
    simplify_only_when_needed()


@functools.cache
def warm_math() -> None:
    """Import math-verify, latex2sympy and sympy, set up two-stage LaTeX parsing, and verify one pair, once per
    process (their first use takes seconds, more on a loaded machine): called before any per-pair deadline starts."""
    with contextlib.suppress(Exception):
        from math_verify import parse, verify

        fast_math()
        verify(parse("$2$"), parse("$\\frac{4}{2}$"))
