"""Math final answers: boxes, 'the answer is' statements, bare last lines."""
from __future__ import annotations

import contextlib
import functools
import re

from generation.grading.boxes import HEDGE_NOTE, HEDGE_WORD, TEXT_WRAPPER, MathReading, box_groups, last_boxed
from generation.grading.math_engine import fast_math
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


@functools.cache
def warm_math() -> None:
    """Import math-verify, latex2sympy and sympy, set up two-stage LaTeX parsing, and verify one pair, once per
    process (their first use takes seconds, more on a loaded machine): called before any per-pair deadline starts."""
    with contextlib.suppress(Exception):
        from math_verify import parse, verify

        fast_math()
        verify(parse("$2$"), parse("$\\frac{4}{2}$"))
