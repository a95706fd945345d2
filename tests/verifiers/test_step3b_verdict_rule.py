"""Metamorphic relations of the judge-verdict rule (issue 32) over a seeded corpus of realistic judge replies.

Each relation changes only what follows a reply's body and states what may become of the verdict:
- the corpus itself: a body and an ending stating one verdict is read as that verdict;
- wrapping the verdict (markdown, a table, a box, JSON, another language, a conclusion phrase) keeps it;
- appending a note that mentions the other value (a condition, a quotation, an example) keeps it;
- appending a genuine revision to the other value flips it or gives None, never keeps it;
- removing the verdict, or ending on a statement that no verdict can be given, gives None (never False).
Plus one table of reply styles, one per kind the issue names, each read as a careful human reads it, and a second
table (judge_reply_styles.py) of 300+ styles a new user's judges write: never a wrong verdict, and the verdict a
careful reader reads except in the known gaps it marks.
"""
from __future__ import annotations

import random

import pytest
from judge_replies import BODIES, ENDINGS, NOTES, PLAIN, QUESTION_ENDINGS, REVISIONS, UNDECIDED, Reply, appended, corpus
from judge_reply_styles import STYLES as MORE_STYLES
from judge_reply_styles import outcome

from generation.judges.verdicts import parse_verdict

VARIANTS = 400  # per relation


def verdict(value: bool) -> float:
    """A boolean verdict as parse_verdict gives it."""
    return float(value)


def broken(pairs: list[tuple[Reply, str]], allowed) -> list[str]:
    """The (reply, changed text) pairs whose verdict breaks the relation `allowed(reply, verdict)`."""
    return [f"{parse_verdict(text)!r} for {reply.value}: {text[-200:]!r}" for reply, text in pairs
            if not allowed(reply, parse_verdict(text))]


def report(failures: list[str], total: int) -> str:
    """A failure message with a few examples."""
    return f"{len(failures)} of {total} broke the relation, e.g.\n" + "\n".join(failures[:8])


def test_the_corpus_itself_is_read_right():
    replies = corpus(VARIANTS, 1)
    failures = broken([(reply, reply.text) for reply in replies], lambda r, got: got == verdict(r.value))
    assert not failures, report(failures, len(replies))


def test_wrapping_the_verdict_keeps_it():
    rng = random.Random(2)
    plain = corpus(VARIANTS, 2, [PLAIN])
    pairs = [(reply, reply.body + reply.words(rng.choice(ENDINGS))) for reply in plain]
    failures = broken(pairs, lambda r, got: got == parse_verdict(r.text) == verdict(r.value))
    assert not failures, report(failures, len(pairs))


def test_a_note_that_mentions_the_other_value_keeps_the_verdict():
    pairs = appended(corpus(VARIANTS, 3), NOTES, 3)
    failures = broken(pairs, lambda r, got: got == verdict(r.value))
    assert not failures, report(failures, len(pairs))


def test_a_revision_to_the_other_value_flips_the_verdict_or_leaves_none():
    pairs = appended(corpus(VARIANTS, 4), REVISIONS, 4)
    failures = broken(pairs, lambda r, got: got is None or got == verdict(not r.value))
    assert not failures, report(failures, len(pairs))


def test_without_a_verdict_or_undecided_the_reply_is_none():
    rng = random.Random(5)
    replies = corpus(VARIANTS, 5)
    pairs = [(reply, reply.body + (rng.choice(UNDECIDED) if rng.random() < 0.7 else "")) for reply in replies]
    pairs += [(reply, reply.body + reply.words(rng.choice(NOTES))) for reply in replies[:100]]  # a note, no verdict
    failures = broken(pairs, lambda r, got: got is None)
    assert not failures, report(failures, len(pairs))


def test_a_cut_judgment_is_none_whatever_it_ends_on():
    assert all(parse_verdict(reply.text, truncated=True) is None for reply in corpus(50, 6))


STYLES = [  # (reply, verdict): one per kind of reply the issue names
    # a concluding verdict after an earlier labelled one
    ("The answer is True for the first part.\n\nIn conclusion, the solution is False.", 0.0),
    ("Step 1 holds, so the answer looks true so far.\n\nStep 3 fails.\n\nTo sum up: False.", 0.0),
    ("All things considered, I judge the solution to be false.", 0.0),
    ("Overall verdict — False", 0.0),
    ("The answer is true up to step 3. Ultimately, though, the solution is incorrect.", 0.0),
    ("The answer is True only if we ignore step 3. Since step 3 is essential, my conclusion: False.", 0.0),
    ("Taking everything into account, the solution is false.", 0.0),
    ("I think the answer is True. But wait, the final step is wrong. False", 0.0),
    # notes after a committed verdict
    ("False\n\nIt would be True if the problem allowed n = 0.", 0.0),
    ("**Verdict: False**\n\n(If the author had checked the case n=2, the answer would be True.)", 0.0),
    ('False\n\nNote that "True" is reserved for solutions without any gap.', 0.0),
    ("Final verdict: False.\nThe only way the answer could be True is if x were negative.", 0.0),
    ("False — the proof fails at step 4; the statement itself is true for n ≥ 5, but that is not what was asked.", 0.0),
    ("Verdict: True (it would be False if n could be 0).", 1.0),
    ("**Final Verdict:** True\n\nThe only risk would be a false positive on n=1, which the solution handles.", 1.0),
    ("Every step checks out.\n\nTrue\n\nNote: a false start in step 2 is corrected in step 3.", 1.0),
    # replies that never commit
    ("I cannot decide whether the solution is true or false.", None),
    ("Neither True nor False: the problem is ill-posed.", None),
    ("The verdict is inconclusive.", None),
    ("Without the missing lemma I'm unable to say whether it is True or False.", None),
    ("True or False? Hard to say.", None),
    ("Final Judgement: [Insert only correct or wrong here]", None),
    ("Assistant A's answer is correct.\n\nMy final verdict is: Assistant A is slightly better [[A>B]]", None),
    ("Final verdict: the proof is sound and complete.\n\nTrue", 1.0),
    # other languages, JSON, markdown, labels
    ("Conclusión: la solución es incorrecta.", 0.0),
    ("En conclusión, la respuesta es verdadera.", 1.0),
    ("因此，该解答是正确的。", 1.0),
    ('```json\n{"reasoning": "Step 2 is true but step 3 is false.", "verdict": false}\n```', 0.0),
    ('{"verdict": "True", "confidence": 0.9}', 1.0),
    ('{"verdict": "insufficient", "notes": "The statement is true for n > 2 only."}', None),
    ("| Criterion | Result |\n|---|---|\n| Logic | ok |\n| Final verdict | False |", 0.0),
    ("- Verdict: `False`", 0.0),
    ("Decision = False", 0.0),
    ("Final Judgement: correct\nFirst Error Step: N/A\nError Analysis: N/A", 1.0),
    ("Step 8: The answer is: 2. This is correct.\nFinal Judgement: wrong\nFirst Error Step: 4", 0.0),
    ("Therefore, the student's explanation misses the correct 13/4.\n\n3. Final Decision:\nWrong", 0.0),
    # revisions
    ("Verdict: True\n\nActually, on reflection, the bound in step 2 fails; the solution is false.", 0.0),
    ("True\n\nHmm, let me reconsider step 4.", None),
    ("My initial verdict was True, but after re-checking step 3, it is False.", 0.0),
]


@pytest.mark.parametrize("text,expected", STYLES)
def test_reply_styles(text, expected):
    assert parse_verdict(text) == expected


def test_bodies_alone_commit_to_nothing():
    assert [parse_verdict(body) for body in BODIES] == [None] * len(BODIES)


@pytest.mark.parametrize("text,expected", MORE_STYLES)
def test_more_reply_styles_as_a_careful_reader_reads_them(text, expected):
    got = parse_verdict(text)
    assert outcome(expected, got) == "right" or expected.endswith("~") and got is None, (expected, got)


def question_replies() -> list[Reply]:
    """Replies ending on a question about the solution's correctness and its yes/no answer."""
    return corpus(VARIANTS, 7, QUESTION_ENDINGS)


def test_a_yes_or_no_to_a_question_about_the_solution_keeps_its_verdict_when_wrapped_or_noted():
    rng = random.Random(7)
    pairs = [(reply, reply.body + reply.words(rng.choice(QUESTION_ENDINGS))) for reply in question_replies()]
    pairs += appended(question_replies(), NOTES, 7)
    failures = broken(pairs, lambda r, got: got == verdict(r.value))
    assert not failures, report(failures, len(pairs))


def test_a_yes_or_no_to_a_question_about_the_solution_is_flipped_or_undone_by_a_revision():
    pairs = appended(question_replies(), REVISIONS, 8)  # read before the revision, flipped or None after it
    failures = broken(pairs, lambda r, got: parse_verdict(r.text) == verdict(r.value) and got != verdict(r.value))
    assert not failures, report(failures, len(pairs))


def test_a_question_without_its_answer_or_about_something_else_gives_none():
    replies = [reply for reply in question_replies() if parse_verdict(reply.text) == verdict(reply.value)]
    assert len(replies) == VARIANTS  # each read with its answer, None without it
    pairs = [(reply, reply.body + reply.ending[:reply.ending.rindex("?") + 1]) for reply in replies
             if "?" in reply.ending]
    pairs += [(reply, reply.body + reply.words(template)) for reply in replies[:200] for template in
              ("\n\nIs step 2 {c}? {yes}.", "\n\nCan I explain more? {yes}.", "\n\nIs 91 prime? {yes}.")]
    failures = broken(pairs, lambda r, got: got is None)
    assert not failures, report(failures, len(pairs))
