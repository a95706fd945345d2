"""Step 2 checking: math equivalence policy and traps, timeouts in worker processes, judge replies, summary metrics."""
from __future__ import annotations

import importlib.abc
import json
import sys
import time

import pytest

from generation.grading import checking
from generation.grading.checking import MathWorkers, choice_correct, math_key, math_verdict, math_verdicts
from generation.grading.decision import Graded, grade_rows, read_judge_reply, summarize
from generation.grading.math_parsing import warm_math

# (gold, prediction) pairs that must be judged equivalent: the grading policy in docs/step2-grade.md.
EQUIVALENT = [
    ("\\frac{1}{2}", "0.5"), ("\\frac{1}{2}", "\\dfrac{1}{2}"), ("\\frac{1}{2}", "1/2"), ("\\frac12", "\\tfrac{1}{2}"),
    ("0.25", "\\frac{1}{4}"), ("\\frac{7}{2}", "3.5"), ("11\\frac{1}{4}", "\\frac{45}{4}"),
    ("\\frac{1}{3}", "0.\\overline{3}"), ("\\frac{1}{6}", "0.1\\overline{6}"),
    ("1000", "1,000"), ("1000000", "1{,}000{,}000"), ("12345", "12,345"),
    ("10\\%", "10"), ("10\\%", "0.1"), ("50", "50\\%"),
    ("5", "5\\text{ cm}"), ("5\\text{ cm}", "5"), ("18.90", "\\$18.90"), ("30^\\circ", "30"), ("30", "30^{\\circ}"),
    ("\\text{Evelyn}", "Evelyn"), ("\\text{Evelyn}", "\\textbf{Evelyn}"), ("\\text{east}", "East"),
    ("13", "\\text{13}"), ("\\text{(C)}", "C"), ("\\text{(C)}", "(C)"),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})"), ("(1,2)", "(1, 2)"),
    ("\\{1,2,3\\}", "\\{3,2,1\\}"), ("-3, 2", "2, -3"), ("1,2", "2, 1"),
    ("[1, 2)", "[1,2)"), ("(-\\infty, 2]", "(-\\infty,2]"),
    ("\\sqrt{2}/2", "\\frac{\\sqrt{2}}{2}"), ("\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt3}{2}"),
    ("2\\sqrt{3}", "\\sqrt{12}"),
    ("3", "\\sqrt{9}"), ("x^2+2x+1", "(x+1)^2"), ("1-\\frac{1}{e}", "1-1/e"), ("\\pi", "\\pi"), ("8\\pi", "8 \\pi"),
    ("2+3i", "3i+2"), ("\\infty", "\\infty"), ("-\\frac{1}{2}", "-0.5"), ("\\frac{-1}{2}", "-\\frac12"),
    ("5", "x = 5"), ("y = 2x + 3", "y=2x+3"), ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}",
                                              "\\begin{pmatrix}1\\\\2\\end{pmatrix}"),
    ("4!", "24"), ("\\binom{5}{2}", "10"), ("\\log_2 8", "3"), ("**73**", "73"), ("73", "**73**"),
    ("\\frac{1}{2006!}", "\\frac{1}{2006!}"), ("2^{10}", "1024"), ("10^{-3}", "0.001"),
    ("1-\\frac{1}{\\mathrm{e}}", "1-1/e"),
    ("1011_2", "1011"), ("1011_2", "1011_{2}"), ("A3_{16}", "a3_{16}"), ("11", "11_{10}"),  # base subscripts
    ("0", "\\sin\\pi"),  # evaluates to 0.e-136: no digit proves a difference
]

# Pairs that must not be judged equivalent, including math-verify's known false positives (Math-Verify #14).
DIFFERENT = [
    ("\\frac{1}{2004!}", "\\frac{1}{2006!}"), ("\\frac{1}{2006!}", "\\frac{1}{2004!}"),
    ("\\frac{1}{2^{99}}", "\\frac{1}{2^{98}}"), ("\\frac{1}{2^{98}}", "\\frac{1}{2^{99}}"),
    ("1-1/\\mathrm{e}", "1+1/\\mathrm{e}"), ("1-\\frac{1}{e}", "1+\\frac{1}{e}"),
    ("10^{-20}", "10^{-21}"), ("2^{-60}", "2^{-61}"), ("e^{-100}", "e^{-101}"),
    ("\\frac{1}{3}", "0.333333"), ("\\frac{1}{3}", "0.33"), ("\\pi", "3.14159"), ("2", "2.0000001"),
    ("(1,2)", "(2,1)"), ("\\left(3, \\frac{\\pi}{2}\\right)", "\\left(\\frac{\\pi}{2}, 3\\right)"),
    ("[1,2]", "[1,2)"), ("\\{1,2\\}", "\\{1,3\\}"), ("2, -3", "2, 3"),
    ("x=2", "x=3"), ("y=2x+1", "y=2x+2"), ("x^2+y^2=1", "x^2+y^2=2"), ("1-1/x", "1+1/x"),
    ("5", "6"), ("1000", "1001"), ("1,000", "100"), ("-7", "7"), ("\\frac{1}{2}", "\\frac{2}{1}"),
    ("\\sqrt{2}", "\\sqrt{3}"), ("2\\sqrt{3}", "3\\sqrt{2}"), ("\\text{Evelyn}", "Bob"), ("\\text{east}", "west"),
    ("\\text{(C)}", "(D)"), ("10\\%", "20"), ("x^2", "x^3"), ("\\infty", "-\\infty"), ("3+2i", "3-2i"),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix} 2 \\\\ 1 \\end{pmatrix}"), ("2", "5 or 2"),
    # math-verify says equal to all of these: a base is not dropped, values beyond float precision count
    ("1011_2", "1011_3"), ("1011_3", "1011_2"), ("101_2", "1011_2"), ("A3_{16}", "A4_{16}"),
    ("\\frac{1}{10^{20}}", "\\frac{1}{10^{20}+1}"), ("x^{2}+\\frac{1}{2^{99}}", "x^{2}+\\frac{1}{2^{98}}"),
    ("(0, \\frac{1}{2^{99}})", "(0, \\frac{1}{2^{98}})"), ("[0, \\frac{1}{2^{99}}]", "[0, \\frac{1}{2^{98}}]"),
    ("(-\\infty, \\frac{1}{2^{99}})", "(-\\infty, \\frac{1}{2^{98}})"),
    ("\\frac{1}{2^{99}} < x", "\\frac{1}{2^{98}}<x"),
    ("x=\\frac{1}{2^{99}}", "\\frac{1}{2^{98}}"), ("\\frac{1}{2^{99}}", "x=\\frac{1}{2^{98}}"),
    ("\\frac{1}{2}x+\\frac{1}{2^{60}}", "\\frac{1}{2}x+\\frac{1}{2^{61}}"),
]


@pytest.mark.parametrize("gold, pred", EQUIVALENT)
def test_equivalent(gold, pred):
    assert math_verdict(pred, gold)[0] is True


@pytest.mark.parametrize("gold, pred", DIFFERENT)
def test_different(gold, pred):
    assert math_verdict(pred, gold)[0] is False


@pytest.mark.parametrize("gold, pred", [
    ("5", "\\text{five apples, roughly}"),  # words the procedural path cannot read
    ("10^{10^{10}}", "5"),  # evaluation runs past the time limit
])
def test_undecided(gold, pred):
    verdict, note = math_verdict(pred, gold, timeout=1.0)
    assert verdict is None and note


def test_math_key_is_conservative():
    assert math_key("\\left( 1, 2 \\right)") == math_key("(1,2)")
    assert math_key("\\dfrac{1}{2}.") == math_key("\\frac{1}{2}")
    assert math_key("\\text{Evelyn}") == math_key("evelyn")
    assert math_key("x") != math_key("X") and math_key("1/2") != math_key("2/1")
    assert math_key("\\frac{X}{2}") != math_key("\\frac{x}{2}") and math_key("East") == math_key("east")


def busy(seconds: float) -> None:
    """Use `seconds` of this process's CPU time."""
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


class SlowImport(importlib.abc.MetaPathFinder):
    """Makes the first import of one module use `seconds` of CPU (a cold worker's import), then defers."""

    def __init__(self, name: str, seconds: float) -> None:
        self.name, self.seconds, self.imports = name, seconds, 0

    def find_spec(self, fullname, path, target=None):
        """Spend the time, then find nothing: the normal finders import the module."""
        if fullname == self.name:
            self.imports += 1
            busy(self.seconds)


DEADLINE = 0.5  # CPU seconds: far above what these pairs need warm, below the simulated slow parts
MATH_ROWS = [{"answer": gold, "samples": [f"The answer is: {pred}", f"The answer is: {gold}"]}
             for gold, pred in [("2", "\\frac{4}{2}"), ("\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt3}{2}"),
                                ("\\frac{1}{2^{99}}", "\\frac{1}{2^{98}}"), ("x^2+2x+1", "(x+1)^2")]]


def warm_grades() -> list:
    """MATH_ROWS graded in this (warm) process: all decided."""
    grades = grade_rows(MATH_ROWS, "math", 1, lambda done: None, timeout=DEADLINE)
    assert {grade.method for row in grades for grade in row} == {"procedural"}
    return grades


def test_the_per_pair_deadline_never_counts_the_math_warm_up(monkeypatch):
    """Rule: --math_timeout limits one comparison, never math-verify's import and first use. Graded from a cold
    process whose math-verify import uses 1.5 times the deadline in CPU, every grade equals the warm process's."""
    import math_verify  # noqa: F401 - loaded, so that the cold process below can be simulated by unloading it

    warm = warm_grades()
    slow = SlowImport("math_verify", 1.5 * DEADLINE)
    warm_math.cache_clear()
    monkeypatch.delitem(sys.modules, "math_verify")
    monkeypatch.setattr(sys, "meta_path", [slow, *sys.meta_path])
    cold = grade_rows(MATH_ROWS, "math", 1, lambda done: None, timeout=DEADLINE)
    warm_math.cache_clear()  # warmed with the simulated module: the next use warms again with the real one
    assert slow.imports == 1
    assert cold == warm


def test_the_per_pair_deadline_never_counts_time_other_processes_take(monkeypatch):
    """Rule: a comparison's verdict does not depend on the machine's load. Each comparison here is held off the CPU
    for longer than the deadline (as a busy machine does to a worker): every grade equals the idle machine's; a
    comparison that itself computes past the deadline is still stopped."""
    warm = warm_grades()
    compare = checking._symbolic_verdict

    def descheduled(pred, gold):
        time.sleep(1.5 * DEADLINE)
        return compare(pred, gold)

    monkeypatch.setattr(checking, "_symbolic_verdict", descheduled)
    assert grade_rows(MATH_ROWS, "math", 1, lambda done: None, timeout=DEADLINE) == warm
    monkeypatch.setattr(checking, "_symbolic_verdict", lambda pred, gold: busy(5 * DEADLINE))
    assert math_verdict("\\sqrt{12}", "2\\sqrt{3}", timeout=DEADLINE) == (None, "timeout")


@pytest.mark.slow
def test_pool_matches_inline():
    pairs = [(pred, gold) for gold, pred in EQUIVALENT[:8] + DIFFERENT[:8]]
    seen = []
    pooled = math_verdicts(pairs, workers=2, done=seen.append, pool_min=1)
    assert [v for v, _ in pooled] == [True] * 8 + [False] * 8
    assert sorted(seen) == list(range(len(pairs)))


@pytest.mark.slow
def test_worker_past_hard_limit_is_replaced():
    with MathWorkers(1, timeout=60) as pool:
        pool.hard_limit = 8  # below the soft limit, so only the kill can stop the first pair
        results = pool.map([("5", "10^{10^{10}}"), ("0.5", "\\frac{1}{2}")])
    assert results[0] == (None, "timeout") and results[1][0] is True


def test_choice_correct():
    assert choice_correct("B", "B", "ABCD") and not choice_correct("C", "B", "ABCD")
    assert not choice_correct(None, "B", "ABCD") and not choice_correct("E", "E", "ABCD")


MC_ROW = {"instruction": "q", "answer": "B", "options": ["a", "b", "c", "d"], "samples": []}
MATH_ROW = {"instruction": "q", "answer": "\\boxed{5}", "samples": []}


@pytest.mark.parametrize("reply, row, dataset_type, expected", [
    ('{"extracted_answer": "B"}', MC_ROW, "gpqa", Graded("B", True, "llm")),
    ('```json\n{"extracted_answer": "(C)"}\n```', MC_ROW, "mmlu_pro", Graded("C", False, "llm")),
    ('{"extracted_answer": null}', MC_ROW, "gpqa", Graded(None, False, "llm")),
    ('{"extracted_answer": "E"}', MC_ROW, "gpqa", None),
    ('{"extracted_answer": "5", "is_correct": true}', MATH_ROW, "math", Graded("5", True, "llm")),
    ('{"extracted_answer": "6", "is_correct": false}', MATH_ROW, "math", Graded("6", False, "llm")),
    ('{"extracted_answer": "6", "is_correct": "yes"}', MATH_ROW, "math", None),
    ('{"extracted_answer": null, "is_correct": true}', MATH_ROW, "math",
     Graded(None, False, "llm", "judge found no final answer")),
    # LaTeX with single backslashes: "\\f" must not become a form feed, "\\s" must not make the JSON unreadable
    ('{"extracted_answer": "\\frac{1}{2}", "is_correct": true}', MATH_ROW, "math", Graded("\\frac{1}{2}", True, "llm")),
    ('{"extracted_answer": "\\sqrt{2}", "is_correct": false}', MATH_ROW, "math", Graded("\\sqrt{2}", False, "llm")),
    ('{"extracted_answer": "\\\\sqrt{2}", "is_correct": false}', MATH_ROW, "math", Graded("\\sqrt{2}", False, "llm")),
    ("yes.", MATH_ROW, "math", None),
    ("{not json}", MC_ROW, "gpqa", None),
    (None, MC_ROW, "gpqa", None),
])
def test_read_judge_reply(reply, row, dataset_type, expected):
    assert read_judge_reply(reply, row, dataset_type) == expected


def grades(*items: tuple) -> list[Graded]:
    """Graded list from (answer, correct[, method]) tuples."""
    return [Graded(a, c, m[0] if m else ("procedural" if a is not None else "no_answer")) for a, c, *m in items]


def test_summary_metrics():
    graded = [
        grades(("B", False), ("C", True), ("B", False)),  # majority B (wrong); pass@k yes; first wrong
        grades(("A", True), ("D", False), (None, False)),  # tie A/D -> earliest A (right)
        grades((None, False, "no_sample"), (None, False, "undecided"), ("C", False)),
    ]
    summary = summarize(graded, "gpqa")
    assert summary["samples"] == 9 and summary["problems"] == 3 and summary["samples_per_problem"] == [3]
    assert summary["methods"] == {"procedural": 6, "llm": 0, "no_answer": 1, "no_sample": 1, "undecided": 1}
    assert summary["sample_accuracy"] == pytest.approx(2 / 7, abs=1e-6)
    assert summary["pass_at_k"] == pytest.approx(2 / 3, abs=1e-6)
    assert summary["majority_vote_accuracy"] == pytest.approx(1 / 3, abs=1e-6)
    assert summary["first_sample_accuracy"] == pytest.approx(1 / 3, abs=1e-6)
    assert summary["extraction_failure_rate"] == pytest.approx(3 / 9, abs=1e-6)
    json.dumps(summary)


def test_math_majority_groups_equal_keys():
    graded = [grades(("\\frac{1}{2}", True), ("\\dfrac{1}{2}", True), ("3", False), ("3", False), ("3", False))]
    assert summarize(graded, "math")["majority_vote_accuracy"] == 0.0
    graded = [grades(("\\frac{1}{2}", True), ("\\dfrac{1}{2}", True), ("3", False))]
    assert summarize(graded, "math")["majority_vote_accuracy"] == 1.0


def generated_pairs() -> list[tuple[str, str, bool]]:
    """(gold, prediction, equivalent?) over families of MATH-style answers, their other forms and near misses."""
    cases = []
    for a, b in [(1, 2), (3, 4), (5, 8), (7, 3), (12, 5), (2, 9), (11, 6), (13, 20)]:
        frac = f"\\frac{{{a}}}{{{b}}}"
        cases += [(frac, f"\\dfrac{{{a}}}{{{b}}}", True), (frac, f"{a}/{b}", True),
                  (frac, f"\\frac{{{2 * a}}}{{{2 * b}}}", True), (frac, f"\\frac{{{b}}}{{{a}}}", False),
                  (frac, f"\\frac{{{a + 1}}}{{{b}}}", False),
                  (frac, f"{a / b:.2f}", a * 100 % b == 0)]  # a rounded decimal is not the exact value
    for a, b in [(2, 3), (3, 5), (4, 7), (5, 2), (6, 11)]:
        cases += [(f"{a}\\sqrt{{{b}}}", f"\\sqrt{{{a * a * b}}}", True),
                  (f"{a}\\sqrt{{{b}}}", f"{b}\\sqrt{{{a}}}", False),
                  (f"{a}\\pi", f"\\pi {a}", True), (f"{a}\\pi", f"{a + 1}\\pi", False),
                  (f"({a}, {b})", f"\\left({a},{b}\\right)", True), (f"({a}, {b})", f"({b}, {a})", False),
                  (f"[{a}, {a + b})", f"[{a},{a + b})", True), (f"[{a}, {a + b})", f"({a}, {a + b}]", False),
                  (f"{a}x+{b}", f"{b}+{a}x", True), (f"{a}x+{b}", f"{b}x+{a}", False),
                  (f"\\{{{a}, {b}\\}}", f"\\{{{b}, {a}\\}}", True), (f"{a * 1000 + b}", f"{a},{b:03d}", True)]
    for n in (20, 50, 99, 300, 2004):  # values too small or too large for math-verify's float comparison
        cases += [(f"\\frac{{1}}{{{n}!}}", f"\\frac{{1}}{{{n + 2}!}}", False),
                  (f"\\frac{{1}}{{2^{{{n}}}}}", f"\\frac{{1}}{{2^{{{n - 1}}}}}", False),
                  (f"10^{{-{n}}}", f"10^{{-{n + 1}}}", False), (f"e^{{-{n}}}", f"e^{{-{n + 1}}}", False),
                  (f"\\frac{{1}}{{2^{{{n}}}}}", f"2^{{-{n}}}", True), (f"{n}!", f"{n}!", True),
                  (f"(0, 10^{{-{n}}})", f"(0, 10^{{-{n + 1}}})", False),  # intervals
                  (f"x = \\frac{{1}}{{2^{{{n}}}}}", f"\\frac{{1}}{{2^{{{n - 1}}}}}", False),  # an assignment
                  (f"y = x + \\frac{{1}}{{{n}!}}", f"y = x + \\frac{{1}}{{{n + 2}!}}", False)]  # in a variable
    return cases


@pytest.mark.parametrize("gold, pred, expected", generated_pairs())
def test_generated_pairs(gold, pred, expected):
    assert math_verdict(pred, gold)[0] is bool(expected)
