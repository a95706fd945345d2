"""Traps in new styles (issue 31): a seeded generator of outputs whose right grade is known by construction, in shapes
no other test uses (answers about other questions, narrowed hedges, final and labelled letters, offers, cut numbers,
loops, notation variants of math answers). The measure: at most one false positive per 300 cases, silent false
negatives under 1%, right-or-undecided at least 97% (bench/README.md, issue 31)."""
from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from generation.grading.decision import grade_rows

LETTERS = "ABCDEFGHIJ"
CASES_PER_STYLE = 14
FOREIGN = ["a surplus of 1100 units", "the Kuiper belt", "cognitive dissonance", "240 W", "Notify the parents",
           "an internal locus of control", "interference of light", "The Treaty of Paris"]
EMPTY_SPELLINGS = ["\\{\\}", "\\O", "\\varnothing", "\\text{no solution}"]
LEADS = ["Let's think step by step. ", "We start from the energy balance. ", "First convert the units. ", ""]


@dataclass(frozen=True)
class Trap:
    """One generated output: its text, the row it answers, and its truth: True (a right answer), False (a wrong one
    or none), None (no single answer: undecided or incorrect are both right)."""

    style: str
    kind: str
    text: str
    gold: str
    options: list[str] | None
    truth: bool | None


def choice_options(rng: random.Random) -> list[str]:
    """Ten distinct option texts in joules."""
    values = rng.sample(range(3, 60), 10)
    return [f"{value} J" for value in values]


def choice_trap(style: str, rng: random.Random) -> Trap:
    """A multiple-choice trap of `style`, its stated letter right or wrong at random."""
    options = choice_options(rng)
    gold, said, other = rng.sample(LETTERS, 3)
    said = gold if rng.random() < 0.5 else said
    text_of = dict(zip(LETTERS, options))
    lead = rng.choice(LEADS) + f"The work done is {rng.randint(2, 99)} J before losses. "
    truth: bool | None = said == gold
    if style == "summary":
        lines = "\n".join(f"The answer is {rng.choice(LETTERS)}. {text}" for text in rng.sample(FOREIGN, 3))
        header = rng.choice(["Now, combining all the answers:\n", "The answers are:\n\n", "", "== response ==\n"])
        text = f"{lead}The answer is ({said}).\n\n{header}{lines}"
    elif style == "narrowed":
        text = (f"{lead}It is either ({other}) or ({said}). However, since only one option matches the units, the "
                f"final answer is ({said}).")
    elif style == "hedge":
        text, truth = f"{lead}Both fit, so the correct answers are ({other}) and ({said}).", None
    elif style == "revision":
        text = (f"{lead}The answer is ({other}).\nHmm, wait, I made an arithmetic slip; recomputing, the answer is "
                f"({said}).")
    elif style == "labelled":
        text = (f"{lead}Comparing the values, the option that fits is:\n\n{said}. {text_of[said]}\n\nIt matches the "
                "balance.")
    elif style == "copula":
        text = f"{lead}The most plausible value is therefore ({said})."
    elif style == "offer":
        text = f"{lead}Answer: ({said}) {text_of[said]}. If you'd like, I can show the derivation step by step."
    elif style == "other_text":
        text, truth = f"{lead}The answer is ({said}) {text_of[other]}.", None if said == gold else False
    elif style == "no_option":
        text, truth = f"{lead}The result comes out to {rng.randint(100, 999)}.5 kJ per mole of fuel.", False
    elif style == "none_listed":
        text, truth = f"{lead}The answer is not provided in the options; the question is likely incomplete.", False
    elif style == "conditional":
        text, truth = f"{lead}If friction is ignored the answer is ({said}); otherwise it would be ({other}).", None
    elif style == "cut_number":
        text, truth = f"{lead}So the total work is W = {rng.randint(1, 9)}.", False
    elif style == "loop":
        text = lead + f"The answer is ({said}).\n" * rng.randint(5, 9) + "The answer is ("
    else:  # "run_on": an invented next question with its own answer
        text = (f"{lead}The answer is ({said}).\n\nQuestion:\nWhich gas is inert?\nOptions:\nA. Neon\nB. Iron\n"
                f"Answer: Let's think step by step. Neon is a noble gas. The answer is ({other}).")
    return Trap(style, "choice", text, gold, options, truth)


def math_trap(style: str, rng: random.Random) -> Trap:
    """A math trap of `style`: its stated answer right or wrong at random (the other value differs)."""
    right = rng.random() < 0.5
    lead = rng.choice(LEADS) + "Solving the equations gives the value below. "
    n = rng.randint(2, 40)
    if style == "text_assignment":
        gold, said = str(n), f"\\boxed{{\\text{{x={n if right else n + 1}}}}}"
    elif style == "empty_set":
        gold = rng.choice(["\\emptyset", "\\varnothing"])
        spelled = rng.choice(EMPTY_SPELLINGS)
        said = f"\\boxed{{{spelled}}}" if right else f"\\boxed{{\\{{{n}\\}}}}"
    elif style == "vector":
        entries = [n, rng.randint(-9, 9)]
        shown = entries if right else [entries[0] + 1, entries[1]]
        gold = f"({entries[0]}, {entries[1]})"
        said = f"\\boxed{{\\begin{{pmatrix}}{shown[0]}\\\\{shown[1]}\\end{{pmatrix}}}}"
    elif style == "decimal_comma":
        gold, said = f"{n}.5", f"The answer is ${n if right else n + 1},5$."
    elif style == "degrees":
        gold, said = f"{n}.5", f"\\boxed{{{n if right else n + 1}^\\circ 30'}}"
    elif style == "restated":
        gold, said = f"{n}\\sqrt{{2}}", (f"\\boxed{{{n}\\sqrt{{2}}}}, that is $\\sqrt{{{2 * n * n}}}$." if right else
                                        f"\\boxed{{{n + 1}\\sqrt{{2}}}}.")
    elif style == "box_revision":
        gold = str(n)
        said = f"\\boxed{{{n + 2}}}. Wait, I made an arithmetic slip: the answer is \\boxed{{{n if right else n + 1}}}."
    elif style == "math_hedge":
        return Trap(style, "math", f"{lead}So $x = {n}$ or possibly $x = {n + 1}$.", str(n), None, None)
    else:  # "problem_run_on"
        gold = str(n)
        said = f"\\boxed{{{n if right else n + 3}}}\n\nProblem:\nCompute $2^5$.\n\nSolution: $\\boxed{{32}}$."
    return Trap(style, "math", lead + said, gold, None, right)


CHOICE_STYLES = ["summary", "narrowed", "hedge", "revision", "labelled", "copula", "offer", "other_text", "no_option",
                 "none_listed", "conditional", "cut_number", "loop", "run_on"]
MATH_STYLES = ["text_assignment", "empty_set", "vector", "decimal_comma", "degrees", "restated", "box_revision",
               "math_hedge", "problem_run_on"]


def traps(seed: int = 31) -> list[Trap]:
    """CASES_PER_STYLE traps of every style, the same for the same seed."""
    rng = random.Random(seed)
    made: list[Trap] = []
    for styles, make in ((CHOICE_STYLES, choice_trap), (MATH_STYLES, math_trap)):
        made += [make(style, rng) for style in styles for _ in range(CASES_PER_STYLE)]
    return made


def graded(cases: list[Trap]) -> list[tuple[Trap, str, bool]]:
    """(trap, method, correct) for every trap, each in a row of its own."""
    out = []
    for kind, dataset_type in (("choice", "mmlu_pro"), ("math", "math")):
        chosen = [case for case in cases if case.kind == kind]
        rows = [{"instruction": "q", "answer": case.gold, "samples": [case.text],
                 **({"options": case.options} if case.options else {})} for case in chosen]
        for case, grades in zip(chosen, grade_rows(rows, dataset_type, 1, lambda n: None)):
            out.append((case, grades[0].method, grades[0].correct))
    return out


def tally(results: list[tuple[Trap, str, bool]], test: Callable[[Trap, str, bool], bool]) -> list[str]:
    """The traps for which `test` holds, described."""
    return [f"{case.style}: {method} {correct} truth={case.truth}: {case.text[-120:]!r}"
            for case, method, correct in results if test(case, method, correct)]


def test_new_trap_styles_meet_the_issue_31_measure():
    results = graded(traps())
    assert len(results) >= 300
    decided = lambda method: method in ("procedural", "no_answer")
    false_positives = tally(results, lambda case, method, correct: decided(method) and correct and not case.truth)
    silent_negatives = tally(results, lambda case, method, correct: decided(method) and not correct and case.truth)
    right_or_undecided = len(results) - len(tally(results, lambda case, method, correct: decided(method) and (
        correct != case.truth) and case.truth is not None))
    assert len(false_positives) <= len(results) // 300, "\n".join(false_positives)
    assert len(silent_negatives) < 0.01 * len(results), "\n".join(silent_negatives)
    assert right_or_undecided >= 0.97 * len(results)
