"""Issue 18: whole answers (scientific notation, compound quantities) and Step 1's finish reasons in Step 2.

Seeded generation over hundreds of values: every common spelling of one number in scientific notation is that number;
a compound quantity (h + min, ft + in, A cm by B cm) is compared as a whole and never by its first number; a sample's
finish reason decides whether it was cut off, and without one a missing final period alone never does.
"""
from __future__ import annotations

import random

from realistic_outputs import MATH_UNREAD, corpus

from generation.grading.checking import math_verdict
from generation.grading.decision import grade_rows
from generation.grading.rule import Policy

SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
CASES = 300


def spellings(mantissa: str, exponent: int) -> list[str]:
    """One number in scientific notation, written the ways models write it."""
    return [f"{mantissa}e{exponent}", f"{mantissa}E{exponent}", f"{mantissa} \\times 10^{{{exponent}}}",
            f"{mantissa}\\times10^{exponent}", f"{mantissa} x 10^{exponent}", f"{mantissa} × 10^{exponent}",
            f"{mantissa} × 10{str(exponent).translate(SUPERSCRIPT)}", f"{mantissa} \\cdot 10^{{{exponent}}}"]


def test_every_spelling_of_scientific_notation_is_one_number():
    rng = random.Random(181)
    wrong = []
    for _ in range(CASES):
        mantissa, exponent = f"{rng.randint(1, 9)}.{rng.randint(0, 99):02d}", rng.choice([-9, -4, -1, 2, 3, 5, 8, 23])
        forms = spellings(mantissa, exponent)
        pred, gold = rng.choice(forms), rng.choice(forms)
        other = rng.choice(spellings(mantissa, exponent + 1))
        if math_verdict(pred, gold, timeout=None)[0] is not True or math_verdict(other, gold, timeout=None)[0]:
            wrong.append((pred, gold, other))
    assert not wrong, f"{len(wrong)} of {CASES}, e.g. {wrong[:5]}"


def compound_pairs(rng: random.Random) -> tuple[str, str, str]:
    """(a compound answer, the same quantity written as a whole, its first number alone)."""
    kind = rng.randrange(4)
    if kind == 0:
        hours, minutes = rng.randint(1, 12), rng.randint(1, 59)
        return (rng.choice([f"{hours} h {minutes} min", f"\\text{{{hours} hours and {minutes} minutes}}",
                            f"{hours} \\text{{ h }} {minutes} \\text{{ min}}"]),
                rng.choice([f"{hours * 60 + minutes} \\text{{ min}}", f"{hours * 60 + minutes} minutes"]), str(hours))
    if kind == 1:
        feet, inches = rng.randint(1, 9), rng.randint(1, 11)
        return (rng.choice([f"{feet} ft {inches} in", f"{feet}'{inches}\"", f"\\text{{{feet} feet {inches} inches}}"]),
                f"{feet * 12 + inches} \\text{{ inches}}", str(feet))
    if kind == 2:
        width, height = rng.randint(2, 40), rng.randint(2, 40)
        return (f"\\text{{{width} cm by {height} cm}}", f"{width} \\text{{ cm}} \\times {height} \\text{{ cm}}",
                str(width))
    hours, minutes = rng.randint(1, 5), rng.choice([15, 30, 45])
    return f"{hours} h {minutes} min", f"{hours + minutes / 60:g} \\text{{ hours}}", str(hours)


def test_compound_quantities_are_compared_whole_never_by_their_first_number():
    rng = random.Random(182)
    wrong = []
    for _ in range(CASES):
        compound, whole, first = compound_pairs(rng)
        if math_verdict(compound, whole, timeout=None)[0] is not True \
                or math_verdict(compound, first, timeout=None)[0] is True \
                or math_verdict(first, whole, timeout=None)[0] is True:
            wrong.append((compound, whole, first))
    assert not wrong, f"{len(wrong)} of {CASES}, e.g. {wrong[:5]}"


def grades_with(finishes: list[str | None] | None, samples: list[str], policy: Policy = Policy()) -> list[str]:
    """The methods of one math row's samples graded with (or, for None, without) a sample_finish_reasons column."""
    row = {"instruction": "q", "answer": "12", "samples": samples}
    if finishes is not None:
        row["sample_finish_reasons"] = finishes
    return [grade.method for grade in grade_rows([row], "math", 1, lambda n: None, policy=policy)[0]]


LOOP = "Wait, let me re-check the calculation once more. " * 40
CUT_WORD = "We substitute the values and the numerator becomes"
ANSWERED = "So the total is 3 + 9.\n\nThe answer is $\\boxed{12}$."


def test_finish_reasons_decide_cut_offs_and_text_only_without_them():
    samples = [LOOP, CUT_WORD, ANSWERED, ANSWERED, "\\boxed{12} and then \\frac{"]
    assert grades_with(["stop", "stop", "stop", "length", "content_filter"], samples) == [
        "undecided", "undecided", "procedural", "no_answer", "no_answer"]
    assert grades_with([None] * 5, samples) == grades_with(None, samples) == [  # released datasets: text heuristics
        "no_answer", "no_answer", "procedural", "procedural", "undecided"]  # --answerless no_answer (issue 31)
    assert grades_with(None, samples, Policy(answerless="undecided")) == [
        "no_answer", "undecided", "procedural", "procedural", "undecided"]


def test_a_complete_reply_without_its_final_period_is_never_no_answer_whatever_its_finish_reason():
    """Replies that state their answer; replies that end without a statement are the judge's when they ended normally
    or under --answerless undecided, and no_answer by the declared policy only without a finish reason (issue 31)."""
    outputs = [output for output in corpus(CASES, 183) if output.kind == "math"]
    stated = [output.text[:-1] for output in outputs if output.text.endswith(".")]
    unread = [output.with_ending(MATH_UNREAD[i % 2]).text[:-1] for i, output in enumerate(outputs)]
    for finishes in (None, ["stop"] * len(stated)):
        assert "no_answer" not in grades_with(finishes, stated)
    assert set(grades_with(["stop"] * len(unread), unread)) == {"undecided"}
    assert set(grades_with(None, unread, Policy(answerless="undecided"))) == {"undecided"}
    assert set(grades_with(None, unread)) == {"no_answer"}


def test_readings_that_spell_one_value_differently_agree():
    """A box and a statement of the same value in other spellings are one answer (no needless judge call)."""
    pairs = [("\\dfrac{1}{2}", "0.5"), ("1.2e5", "1.2 \\times 10^{5}"), ("x = 5", "5"), ("12 \\text{ cm}", "12"),
             ("-\\frac{3}{4}", "-0.75"), ("2 \\text{ h } 30 \\text{ min}", "150 \\text{ min}")]
    samples = [f"Work.\n\n$\\boxed{{{box}}}$\n\nThe answer is ${stated}$." for box, stated in pairs]
    row = {"instruction": "q", "answer": "7", "samples": samples}
    grades = grade_rows([row], "math", 1, lambda n: None)[0]
    assert [grade.method for grade in grades] == ["procedural"] * len(pairs)
