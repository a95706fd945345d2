"""Metamorphic relations of Step 2's procedural grader over a seeded corpus of realistic outputs (issue 18).

Each relation changes only the ending of hundreds of generated outputs and states what may become of the verdict:
- wrapping the answer (markdown, a table, a code block, another language, a labelled line) keeps it;
- appending a revision to a different value flips it or makes it undecided, never keeps it;
- appending a second, different candidate never leaves a false positive (a decided "correct");
- removing the final period of a complete reply never makes it no_answer.
"""
from __future__ import annotations

import random
from dataclasses import replace

from realistic_outputs import (
    CHOICE_REVISIONS,
    CHOICE_SECOND,
    CHOICE_UNREAD,
    CHOICE_WRAPS,
    MATH_REVISIONS,
    MATH_SECOND,
    MATH_UNREAD,
    MATH_WRAPS,
    OPTIONS,
    Output,
    corpus,
)

from generation.grading.decision import Graded, grade_rows
from generation.grading.rule import Policy

VARIANTS = 400  # per relation


def grade_all(outputs: list[Output], policy: Policy = Policy()) -> list[Graded]:
    """The grade of each output, every one in a row of its own (ten options for multiple choice)."""
    rows = [{"instruction": "q", "answer": output.gold, "samples": [output.text],
             **({"options": OPTIONS} if output.kind == "choice" else {})} for output in outputs]
    choice = [i for i, output in enumerate(outputs) if output.kind == "choice"]
    math = [i for i, output in enumerate(outputs) if output.kind == "math"]
    grades: list[Graded | None] = [None] * len(outputs)
    for indices, dataset_type in ((choice, "mmlu_pro"), (math, "math")):
        for index, graded in zip(indices, grade_rows([rows[i] for i in indices], dataset_type, 1, lambda n: None,
                                                     policy=policy)):
            grades[index] = graded[0]
    return grades


def outcome(grade: Graded) -> object:
    """A grade as a verdict: True/False when decided, else its method."""
    return grade.correct if grade.method == "procedural" else grade.method


def variants(templates: dict[str, str] | list[str], seed: int) -> list[tuple[Output, str]]:
    """VARIANTS (output, template) pairs: each corpus output with one of the templates of its kind, drawn at random."""
    rng = random.Random(seed)
    outputs = corpus(VARIANTS, seed)
    return [(output, rng.choice(list(templates[output.kind]))) for output in outputs]


def failures(pairs: list[tuple[Output, Output]], allowed, policy: Policy = Policy()) -> list[str]:
    """The (before, after) pairs whose grades break the relation `allowed(before_grade, after_grade, after)`."""
    grades = grade_all([before for before, _ in pairs] + [after for _, after in pairs], policy)
    befores, afters = grades[:len(pairs)], grades[len(pairs):]
    return [f"{outcome(b)} -> {outcome(a)} ({a.note}): {after.text[-160:]!r}"
            for (_, after), b, a in zip(pairs, befores, afters) if not allowed(b, a, after)]


def test_the_corpus_itself_is_graded_right():
    """Every output of the corpus states one answer plainly: it is decided, and decided right."""
    outputs = corpus(VARIANTS, 1)
    wrong = [f"{outcome(grade)} ({grade.note}): {output.text[-120:]!r}" for output, grade in
             zip(outputs, grade_all(outputs)) if outcome(grade) is not output.right]
    assert not wrong, f"{len(wrong)} of {len(outputs)} misgraded, e.g.\n" + "\n".join(wrong[:8])


WRAPS = {"choice": CHOICE_WRAPS.values(), "math": MATH_WRAPS.values()}
REVISIONS = {"choice": CHOICE_REVISIONS.values(), "math": MATH_REVISIONS.values()}
SECONDS = {"choice": CHOICE_SECOND.values(), "math": MATH_SECOND.values()}


def test_wrapping_the_answer_keeps_the_verdict():
    pairs = [(output, output.with_ending(template)) for output, template in variants(WRAPS, 2)]
    broken = failures(pairs, lambda before, after, _: outcome(after) == outcome(before))
    assert not broken, f"{len(broken)} of {len(pairs)} changed, e.g.\n" + "\n".join(broken[:8])


def test_a_revision_to_another_value_flips_the_verdict_or_leaves_it_undecided():
    pairs = [(output, output.appended(template)) for output, template in variants(REVISIONS, 3)]

    def allowed(before: Graded, after: Graded, revised: Output) -> bool:  # issue 31: decided by the new answer
        other_right = revised.other == revised.gold if revised.kind == "choice" else not revised.right
        return after.method == "undecided" or after.method == "procedural" and after.answer == revised.other \
            and after.correct is other_right

    broken = failures(pairs, allowed)
    assert not broken, f"{len(broken)} of {len(pairs)} kept the old verdict, e.g.\n" + "\n".join(broken[:8])


def test_a_second_candidate_after_the_answer_never_leaves_a_false_positive():
    pairs = [(output, output.appended(template)) for output, template in variants(SECONDS, 4)]
    broken = failures(pairs, lambda before, after, _: not (after.method == "procedural" and after.correct))
    assert not broken, f"{len(broken)} of {len(pairs)} graded correct, e.g.\n" + "\n".join(broken[:8])


def test_removing_the_final_period_never_makes_a_reply_no_answer():
    """Replies that state their answer, and (under --answerless undecided) replies that end without a statement;
    under the default policy an answerless released text that stops mid-sentence is no_answer (issue 31)."""
    endings = {"choice": CHOICE_UNREAD, "math": MATH_UNREAD}
    rng = random.Random(5)
    pairs, answerless = [], []
    for output, template in variants(endings, 5):
        complete = output.with_ending(template) if rng.random() < 0.5 else output
        if complete.text.endswith("."):
            (answerless if complete is not output else pairs).append(
                (complete, replace(complete, ending=complete.ending[:-1])))
    assert len(pairs) > VARIANTS // 4 and len(answerless) > VARIANTS // 4

    def kept(before: Graded, after: Graded, _: Output) -> bool:
        return after.method != "no_answer" and (outcome(after) == outcome(before) or after.method == "undecided")

    broken = failures(pairs, kept) + failures(answerless, kept, Policy(answerless="undecided"))
    assert not broken, f"{len(broken)} of {len(pairs)} became no_answer, e.g.\n" + "\n".join(broken[:8])
    cut = failures(answerless, lambda before, after, _: after.method == "no_answer")
    assert not cut, f"{len(cut)} of {len(answerless)} not no_answer, e.g.\n" + "\n".join(cut[:8])
