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
    MATH_ENDINGS,
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


# --- issue 31: three relations on real-output shapes ---------------------------------------------------------------
RUN_ONS = {  # a few-shot run-on inventing the next question in the prompt's format, with another answer ({W})
    "choice": ["\n\nQuestion:\nWhich of the following is a noble gas?\nOptions:\nA. Oxygen\nB. Neon\nC. Iron\n"
               "Answer: Let's think step by step. Noble gases fill their outer shell. The answer is ({W}).",
               "\n\nQuestion 2: What is 2 + 2?\nThe answer is ({W}).\n\nQuestion 3: What is 3 + 3?\nThe answer is (",
               "\nQ: Which planet is largest?\nA: Jupiter is the largest. The answer is ({W}).",
               "\n\nQuestion:\nA ball is dropped from 5 m. Options:\nA. 1 s\nB. 2 s\nAnswer: Let's think step by step. "
               "Using h = gt^2/2 gives about 1 s, which is option ({W}). Wait, actually it should be ({W})."],
    "math": ["\n\nProblem:\nFind the sum of the first ten odd numbers.\n\nSolution: The sum is $\\boxed{{{W}}}$.",
             "\n\nProblem 2: What is $3 \\cdot 4$?\nThe answer is ${W}$.\n\nProblem 3: Compute $2^5$.\nThe answer",
             "\n\nQuestion: Solve for $y$.\n\nWe get $y = {W}$, so the final answer is $\\boxed{{{W}}}$."],
}
OFFERS = ["\n\nIf you want, I can explain.", " If you want, I can explain more.",
          "\n\nIf you'd like, I can walk through any step again.", "\n\nLet me know if you have any questions!",
          " If anything is unclear, feel free to ask.", "\n\nIf you have another question, I'm happy to help."]


def test_a_run_on_into_another_question_never_changes_the_grade():
    pairs = [(output, output.appended(template)) for output, template in variants(RUN_ONS, 31)]
    broken = failures(pairs, lambda before, after, _: outcome(after) == outcome(before))
    assert not broken, f"{len(broken)} of {len(pairs)} changed, e.g.\n" + "\n".join(broken[:8])


def test_offering_to_explain_never_changes_the_grade():
    pairs = [(output, output.appended(template)) for output, template in variants({"choice": OFFERS,
                                                                                    "math": OFFERS}, 32)]
    broken = failures(pairs, lambda before, after, _: outcome(after) == outcome(before))
    assert not broken, f"{len(broken)} of {len(pairs)} changed, e.g.\n" + "\n".join(broken[:8])


def equivalent_spellings(rng: random.Random) -> tuple[str, str, str]:
    """(an answer, the same value spelled another way, a different value): surds, powers, multiples of pi."""
    k, m = rng.randint(2, 9), rng.choice([2, 3, 5, 6, 7, 10, 11])
    n, e = rng.randint(2, 9), rng.randint(2, 4)
    return rng.choice([(f"{k}\\sqrt{{{m}}}", f"\\sqrt{{{k * k * m}}}", f"{k + 1}\\sqrt{{{m}}}"),
                       (str(n ** e), f"{n}^{{{e}}}", str(n ** e + 1)),
                       (f"{k}\\pi", f"\\pi \\cdot {k}", f"{k + 1}\\pi"),
                       (f"\\frac{{{k}}}{{\\sqrt{{{m}}}}}", f"\\frac{{{k}\\sqrt{{{m}}}}}{{{m}}}",
                        f"\\frac{{{k}}}{{{m}}}")])


def test_restating_the_answer_in_an_equivalent_spelling_never_makes_it_undecided():
    rng = random.Random(33)
    pairs = []
    for output in corpus(VARIANTS, 33):
        if output.kind != "math":
            continue
        answer, same, other = equivalent_spellings(rng)
        right = rng.random() < 0.5
        stated = Output("math", output.body, "", answer, answer if right else other, other, right)
        stated = stated.with_ending(rng.choice(list(MATH_ENDINGS.values())))
        pairs.append((stated, replace(stated, ending=stated.ending + rng.choice(
            [f"\n\nIn other words, the answer is ${same}$.", f"\n\nEquivalently, $\\boxed{{{same}}}$.",
             f"\n\nThat is, the answer is ${same}$."]))))
    assert len(pairs) > VARIANTS // 4
    broken = failures(pairs, lambda before, after, restated: outcome(after) == outcome(before) == restated.right)
    assert not broken, f"{len(broken)} of {len(pairs)} changed, e.g.\n" + "\n".join(broken[:8])


# --- issue 31, part 2: answers about other questions ---------------------------------------------------------------
FOREIGN_TEXTS = ["1000 times more", "The Kuiper belt", "interference", "Notify the parents in writing",
                 "an internal locus of control", "individualism", "cognitive", "240 W",
                 "Parvoviruses lack nucleic acid"]
SUMMARIES = ["\n\nNow, combining all the answers:\n{lines}", "\n\nThe answers are:\n\n{numbered}",
             "\n\n== response ==\n{lines}", "\n\nFor the other questions:\n{numbered}", "\n\n{lines}"]


def summary(rng: random.Random, letters: str = "ABCDEFGHIJ") -> str:
    """A few-shot "summary" of the prompt's example questions: letters stated with texts that are none of this
    question's options, under a header or alone."""
    texts = rng.sample(FOREIGN_TEXTS, rng.randint(2, 5))
    picked = [rng.choice(letters) for _ in texts]
    lines = "\n".join(f"The answer is {letter}. {text}" for letter, text in zip(picked, texts))
    numbered = "\n\n".join(f"{index}. The answer is ({letter})." for index, letter in enumerate(picked, 1))
    template = rng.choice(SUMMARIES)
    return template.format(lines=lines, numbered=numbered)


def test_a_summary_of_other_questions_answers_never_changes_the_grade():
    """Letters stated after the answer with option texts of other questions, or under a header over several
    questions' answers, answer other questions: the grade stays (graded as a hedge on main)."""
    rng = random.Random(34)
    pairs = [(output, output.appended(summary(rng))) for output in corpus(VARIANTS, 34) if output.kind == "choice"]
    broken = failures(pairs, lambda before, after, _: outcome(after) == outcome(before))
    assert not broken, f"{len(broken)} of {len(pairs)} changed, e.g.\n" + "\n".join(broken[:8])
