"""Independent readers of a sample's final answer; each reading is (position, Choice or MathReading, answer end).

The readers: boxes; "the answer is" / "Answer:" / "Final Answer:" statements (in the supported languages); a last line
or table cell labelled as the answer ("Total: 42", "| Final answer | B |", "Choice → B"); for multiple choice every
committed letter statement. The decision (grading.rule) uses all of them.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Callable

from generation.grading.boxes import MathReading
from generation.grading.math_parsing import (
    answer_end,
    bare_answer,
    clean_math,
    math_candidates,
    stated,
    unannounced_answer,
)
from generation.grading.parsing import (
    MARKDOWN,
    Choice,
    answer_segments,
    choice_candidates,
    letter_after,
    letter_end,
    named_option,
    normalize_option,
    stated_text_agrees,
)

Reading = tuple[int, object, int]
TABLE_ROW = re.compile(r"^[ \t]*\|(.*)\|[ \t]*$", re.MULTILINE)
TABLE_RULE = re.compile(r"[\s|:-]*")
CODE_FENCE = re.compile(r"^[ \t]*(?:```|~~~)[\w+-]*[ \t]*$", re.MULTILINE)
# A line labelled as the answer, its value after a colon, equals sign, dash or arrow.
LABEL_LINE = re.compile(
    r"^[ \t>*#-]*(?:final(?:[ \t]+(?:answer|result|choice|value))?|answer|total|result|choice|selected[ \t]+option"
    r"|respuesta(?:[ \t]+final)?|r[ée]ponse(?:[ \t]+finale)?|(?:endg[üu]ltige[ \t]+)?antwort|ergebnis|resultado"
    r"|resposta(?:[ \t]+final)?|ответ|итог|最终答案|答案|答え|正解|结果)[ \t]*"
    r"(?:[:=：]|->|=>|→|⟹|⇒|—|–|-{1,2})[ \t]*(\S.*?)[ \t]*$", re.IGNORECASE | re.MULTILINE)
LABEL_LINES = 3  # a labelled line counts among the segment's last lines only
# A new question in the prompt's own format, where a stop sequence would have ended the response: a line opening with
# "Question:", "Question 2:", "Q:", "Problem:" or "## Problem 3:" (markdown already removed).
NEW_QUESTION = re.compile(r"^[ \t>#-]*(?:question|problem|q)(?:[ \t]*\d+)?[ \t]*[:：]", re.IGNORECASE | re.MULTILINE)


def flatten_tables(text: str) -> str:
    """Markdown tables as text: a two-cell row reads 'label: value', a rule row is dropped, wider rows are joined;
    code fences are dropped (their content stays)."""
    def row(match: re.Match) -> str:
        cells = [cell.strip() for cell in match.group(1).split("|")]
        if TABLE_RULE.fullmatch(match.group(1)):
            return ""
        return f"{cells[0]}: {cells[1]}" if len(cells) == 2 else "  ".join(cells)

    return CODE_FENCE.sub("", TABLE_ROW.sub(row, text)) if "|" in text or "`" in text or "~" in text else text


def plain_segments(sample: str) -> list[str]:
    """The segments to read (the text after </think> first), tables flattened and markdown removed."""
    return [MARKDOWN.sub("", flatten_tables(segment)) for segment in answer_segments(sample)]


def label_lines(plain: str) -> list[re.Match]:
    """Labelled lines among the segment's last LABEL_LINES non-empty lines."""
    lines = [line for line in plain.splitlines() if line.strip()][-LABEL_LINES:]
    if not lines:
        return []
    start = plain.rfind(lines[0])
    return list(LABEL_LINE.finditer(plain, start))


def choice_readings(plain: str, letters: str, options: list | None) -> list[Reading]:
    """Every committed letter reading of a segment: statements, boxes, a last letter line, labelled lines."""
    found = choice_candidates(plain, letters, options)
    normalized = [normalize_option(option) for option in options or []]
    for match in label_lines(plain):
        choice = letter_after(match.group(1), 0, letters)
        letter = named_option(match.group(1), normalized, letters) if normalized and not choice else None
        if choice or letter:
            read = choice or Choice(letter)
            end = letter_end(plain, match.start(1), read.letter) if choice else match.end()
            found.append((match.start(), stated_text_agrees(read, plain, end, normalized, letters), end))
    return sorted(found, key=lambda reading: reading[0])


def math_readings(plain: str) -> list[Reading]:
    """Every committed math reading of a segment: boxes, answer statements, labelled lines."""
    found = math_candidates(plain)
    for match in label_lines(plain):
        answer = bare_answer(match.group(1)) or clean_math(match.group(1))
        if answer:
            found.append((match.start(), stated(answer), answer_end(plain, match, answer)))
    return sorted(found, key=lambda reading: reading[0])


def unannounced(plain: str) -> list[Reading]:
    """A segment's answer when no reader found one: a reply or last line that is only an answer, or a concluding
    'Therefore, $x = 5$.' (at the segment's end)."""
    reading = unannounced_answer(plain)
    return [(len(plain), reading, len(plain))] if reading else []


def own_answer(plain: str, read: Callable[[str], list[Reading]]) -> tuple[str, list[Reading]]:
    """A segment up to where it turns to another question (NEW_QUESTION after a reading: a few-shot run-on inventing
    the next "Question: ... The answer is ..." block), and its readings."""
    found = read(plain)
    for match in NEW_QUESTION.finditer(plain) if found else ():
        if any(reading[0] < match.start() for reading in found):
            return plain[:match.start()], read(plain[:match.start()])
    return plain, found


def readings_of(sample: str, kind: str, letters: str, options: list | None) -> tuple[str, list[Reading]]:
    """The first segment with readings, cut where it turns to another question, and its readings (an empty list when
    no reader finds an answer)."""
    segments = plain_segments(sample)
    read = math_readings if kind == "math" else functools.partial(choice_readings, letters=letters, options=options)
    for segment in segments:
        plain, found = own_answer(segment, read)
        if found:
            return plain, found
    if kind == "math":
        return segments[0], unannounced(segments[0])
    return segments[0], []


def value_of(reading: Reading) -> str | None:
    """The answer a reading gives (a letter or math answer as written), None for an undecidable one."""
    item = reading[1]
    return item.letter if isinstance(item, Choice) else item.answer


def note_of(reading: Reading) -> str:
    """Why a reading is undecidable ('' when it is not)."""
    item = reading[1]
    if isinstance(item, Choice):
        return item.note or ("" if item.letter else "no letter read")
    return item.note if isinstance(item, MathReading) else ""
