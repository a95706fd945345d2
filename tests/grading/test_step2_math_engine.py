"""The math engine's speed-ups keep math-verify's results: two-stage LaTeX parsing returns latex2sympy's own (full LL)
parse, and simplify is skipped only where it could not have found the two answers equal."""
from __future__ import annotations

import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from generation.grading.math_parsing import fast_math, nonzero_somewhere, warm_math

ATOMS = st.sampled_from(["x", "t", "a", "2", "3", "10", "\\pi", "\\frac{1}{2}", "\\sqrt{3}", "C_1", "\\omega_n", "e"])
EXPRESSIONS = st.recursive(ATOMS, lambda inner: st.one_of(
    st.tuples(inner, st.sampled_from(["+", "-", " ", "\\cdot ", "/"]), inner).map("".join),
    st.tuples(inner, inner).map(lambda pair: f"\\frac{{{pair[0]}}}{{{pair[1]}}}"),
    st.tuples(inner, ATOMS).map(lambda pair: f"{{{pair[0]}}}^{{{pair[1]}}}"),
    inner.map(lambda text: f"\\sqrt{{{text}}}"), inner.map(lambda text: f"\\left({text}\\right)"),
    inner.map(lambda text: f"-{text}"), inner.map(lambda text: f"\\sin({text})"),
    inner.map(lambda text: f"e^{{{text}}}"),
), max_leaves=6)
# Answer shapes around an expression: a bare value, a tuple, a set, an interval, an assignment, an inequality, and
# answers SLL alone cannot parse (a leading minus before a power, a bracket times a function): LL decides those.
ANSWERS = st.one_of(EXPRESSIONS, st.tuples(EXPRESSIONS, EXPRESSIONS).map(lambda p: f"({p[0]}, {p[1]})"),
                    st.tuples(EXPRESSIONS, EXPRESSIONS).map(lambda p: f"\\{{{p[0]}, {p[1]}\\}}"),
                    st.tuples(EXPRESSIONS, EXPRESSIONS).map(lambda p: f"[{p[0]}, {p[1]})"),
                    EXPRESSIONS.map(lambda text: f"y = {text}"), EXPRESSIONS.map(lambda text: f"x \\le {text}"),
                    EXPRESSIONS.map(lambda text: f"-t^2-{text}"), EXPRESSIONS.map(lambda text: f"({text})e^{{-t}}"))
NEEDS_LL = ["-t^2-t-3", "(\\frac{t^{2}}{2}-t+C)e^{-t}", "-\\frac{1}{2}X^{-\\frac{1}{2}}"]


def parsed(latex: str, create_parser: object) -> str:
    """latex2sympy's reading of `latex` (srepr, or the error's type) with the given parser factory."""
    from latex2sympy2_extended.latex2sympy2 import _Latex2Sympy, latex2sympy

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_Latex2Sympy, "create_parser", create_parser)
        try:
            return sympy.srepr(latex2sympy(latex))
        except Exception as err:  # an unreadable answer must stay unreadable
            return f"error {type(err).__name__}"


def two_stage() -> tuple[object, object]:
    """The two-stage parser factory warm_math installs, and latex2sympy's own full-LL one."""
    from latex2sympy2_extended.latex2sympy2 import _Latex2Sympy

    warm_math()
    create_parser = _Latex2Sympy.create_parser
    assert getattr(create_parser, "two_stage", False), "warm_math must install two-stage parsing"
    return create_parser, create_parser.full_ll


def test_the_fallback_cases_need_ll() -> None:
    """The LL examples really fail under SLL alone: the fallback path is what parses them."""
    from antlr4.atn.PredictionMode import PredictionMode
    from latex2sympy2_extended.latex2sympy2 import _Latex2Sympy

    full_ll = two_stage()[1]
    for latex in NEEDS_LL:
        parser = full_ll(_Latex2Sympy(), latex)
        parser._interp.predictionMode = PredictionMode.SLL
        with pytest.raises(Exception):
            parser.math()
        assert not parsed(latex, full_ll).startswith("error")


@settings(max_examples=150, deadline=None)
@given(ANSWERS)
def test_two_stage_parse_is_the_ll_parse(latex: str) -> None:
    """Every answer shape reads the same, or fails the same way, with two-stage and with full-LL parsing."""
    create_parser, full_ll = two_stage()
    assert parsed(latex, create_parser) == parsed(latex, full_ll)


IDENTITIES = [("(x+1)^2", "x^2+2*x+1"), ("sin(x)**2 + cos(x)**2", "1"), ("sqrt(8)", "2*sqrt(2)"),
              ("exp(a+t)", "exp(a)*exp(t)"), ("(x**2-1)/(x-1)", "x+1"), ("log(2*x)", "log(2) + log(x)")]


@pytest.mark.parametrize(("first", "second"), IDENTITIES)
def test_no_shortcut_on_equal_answers(first: str, second: str) -> None:
    """Answers that are equal everywhere (real symbols, as latex2sympy makes them) are left to simplify."""
    symbols = {name: sympy.Symbol(name, real=True) for name in ("x", "a", "t")}
    assert not nonzero_somewhere(*(sympy.sympify(text, locals=symbols, evaluate=False) for text in (first, second)))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-9, 9), min_size=1, max_size=4), st.integers(1, 5), st.integers(-3, 3).filter(bool))
def test_shortcut_exactly_when_values_differ(coefficients: list[int], power: int, shift: int) -> None:
    """A polynomial against its expansion: no shortcut; against itself plus a constant: the shortcut (decided False,
    as simplify would decide); with an integer symbol, where the sample points are not allowed: never a shortcut."""
    x, n = sympy.Symbol("x", real=True), sympy.Symbol("n", integer=True)
    poly = (x + sum(c * x**i for i, c in enumerate(coefficients))) ** power
    assert not nonzero_somewhere(poly, sympy.expand(poly))
    assert nonzero_somewhere(poly, poly + shift)
    assert not nonzero_somewhere(n + shift, n)
    assert not nonzero_somewhere(sympy.Float(0.5) * x, x / 2 + shift)  # decimals: left to math-verify's own rules


@settings(max_examples=40, deadline=None)
@given(EXPRESSIONS, EXPRESSIONS)
def test_shortcut_keeps_math_verify_verdicts(gold: str, pred: str) -> None:
    """math-verify's verdict on two answers, or on an answer and its own rewriting, is the same with the shortcut."""
    from math_verify import grader, parse, verify

    fast_math()
    shortcut = grader.sympy_symbolic_eq
    for first, second in ((gold, pred), (gold, f"\\left({gold}\\right) + 0")):
        gold_expr, pred_expr = parse(f"${first}$", parsing_timeout=None), parse(f"${second}$", parsing_timeout=None)
        fast = verify(gold_expr, pred_expr, timeout_seconds=None)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(grader, "sympy_symbolic_eq", shortcut.__wrapped__)
            assert verify(gold_expr, pred_expr, timeout_seconds=None) == fast
