"""The verdict parser over generated judgments: the last committed verdict counts once reasoning (or a verdict
label: "Final verdict:") separates it from earlier ones; final statements that disagree give None; notes and mentions
around them change nothing."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from generation.judges.verdicts import parse_verdict

# committed statements: value -> text (bare lines and sentences, labelled readings, wrapped and negated forms)
STATEMENTS = [
    lambda v: f"{v}", lambda v: f"{v}.", lambda v: f"**{v}**", lambda v: f"\\boxed{{{v}}}",
    lambda v: f"Final verdict: {v}", lambda v: f"I think the answer is {v}.", lambda v: f"**Verdict: {v}**",
    lambda v: f"Final answer: \\boxed{{\\text{{{v}}}}}", lambda v: f"Verdict: {v} (checked every step).",
    lambda v: f"The answer is not {'False' if v == 'True' else 'True'}.",
]
HEADED = {4, 6, 8}  # statements under a verdict label ("Final verdict:", "Verdict:"): each starts a new run
# reasoning: no committed verdict in it, though some mention the words
REASONING = [
    "Let me check the algebra.", "But wait, the final step is wrong.", "Step 2 divides by zero.",
    "Actually, the first two steps are true, and the sign error cancels out.", "Hmm, re-reading step 3 again.",
    "A false positive is possible here.", "The claim in step 1 is untrue at first sight, but it holds.",
    "On reflection the bound is tight.",
]
NOTES = ["(Note: the first two steps are true, the third is not.)", "I hope this helps!",
         "Note: some steps were false starts."]
SEPARATORS = ["\n", "\n\n", " "]


@st.composite
def judgments(draw) -> tuple[str, float | None]:
    """A judgment of reasoning and verdict runs, and the verdict of its final run (None if it disagrees); a run
    starts after reasoning or at a statement under a verdict label."""
    parts: list[str] = [draw(st.sampled_from(REASONING))] if draw(st.booleans()) else []
    final: list[str] = []
    for index in range(draw(st.integers(1, 4))):
        if index:
            parts.append(draw(st.sampled_from(REASONING)))
        final = draw(st.lists(st.sampled_from(["True", "False"]), min_size=1, max_size=3))
        kinds = [draw(st.sampled_from(range(len(STATEMENTS)))) for _ in final]
        parts += [STATEMENTS[kind](value) for kind, value in zip(kinds, final)]
        final = final[max([i for i, kind in enumerate(kinds) if kind in HEADED], default=0):]
    parts += draw(st.lists(st.sampled_from(NOTES), max_size=2))
    text = parts[0]
    for part in parts[1:]:  # a bare verdict is its own sentence or line
        text += draw(st.sampled_from(SEPARATORS if text.endswith((".", "!", ")")) else SEPARATORS[:2])) + part
    expected = None if len(set(final)) > 1 else float(final[0] == "True")
    return text, expected


@settings(max_examples=400, deadline=None)
@given(judgments())
def test_the_final_committed_verdicts_decide(case):
    text, expected = case
    assert parse_verdict(text) == expected, text


@settings(max_examples=200, deadline=None)
@given(judgments(), st.sampled_from(REASONING))
def test_thinking_before_the_answer_is_ignored(case, thought):
    text, expected = case
    assert parse_verdict(f"<think>{thought} So it is True. No, False.</think>\n{text}") == expected


def test_a_later_verdict_after_reasoning_overrides_a_labelled_one():
    assert parse_verdict("I think the answer is True. But wait, the final step is wrong. False") == 0.0
    assert parse_verdict("Verdict: False\n\nOn reflection the bound is tight.\n\nVerdict: True") == 1.0
    assert parse_verdict("The answer is True.\nFalse") is None  # final statements disagree
