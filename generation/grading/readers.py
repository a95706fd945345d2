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
from generation.grading.statements import (
    CHOICE_TURNS,
    MATH_TURNS,
    copula_letter,
    foreign_text,
    labelled_option,
    option_words,
    several_letters,
    stated_or_bracketed,
    turn_after,
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
# A statement line with a placeholder instead of its answer: it states nothing. Example: "The answer is ..."
EMPTY_STATEMENT = re.compile(r"^[ \t]*(?:the[ \t]+)?(?:final[ \t]+)?answer[ \t]+is[ \t]*[:：]?[ \t]*(?:\.{3}|…)[ \t]*$",
                             re.IGNORECASE | re.MULTILINE)
LABEL_LINES = 3  # a labelled line counts among the segment's last lines only
# What may open a line before its statement ("1. ", "- ", "The ", "2. The final "). Example: "1. The "
LINE_OPENING = re.compile(r"[ \t>*-]*(?:\d+[.)][ \t]*)?(?:the[ \t]+(?:(?:final|correct|right|best)[ \t]+)?)?",
                          re.IGNORECASE)


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
    """The segments to read (the text after </think> first), tables flattened, markdown and placeholder statements
    (EMPTY_STATEMENT) removed."""
    return [EMPTY_STATEMENT.sub("", MARKDOWN.sub("", flatten_tables(segment))) for segment in answer_segments(sample)]


def label_lines(plain: str) -> list[re.Match]:
    """Labelled lines among the segment's last LABEL_LINES non-empty lines."""
    lines = [line for line in plain.splitlines() if line.strip()][-LABEL_LINES:]
    if not lines:
        return []
    start = plain.rfind(lines[0])
    return list(LABEL_LINE.finditer(plain, start))


def choice_readings(plain: str, letters: str, options: list | None) -> list[Reading]:
    """Every committed letter reading of a segment: statements, boxes, a last letter line, labelled lines, statements
    naming several letters, sentences closing on a bracketed letter after "is"."""
    found = choice_candidates(plain, letters, options)
    normalized = [normalize_option(option) for option in options or []]
    found += several_letters(plain, letters) + copula_letter(plain, letters, normalized, found)
    found += labelled_option(plain, letters, normalized, found)
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


def about_other_question(plain: str, reading: Reading, words: set[str]) -> bool:
    """Whether a letter reading answers another question: a line that opens with the statement and states the letter
    with an option text ("The answer is A. 240 W") that shares no word with this question's options (`words`)."""
    item, end = reading[1], reading[2]
    if not isinstance(item, Choice) or not item.letter or not LINE_OPENING.fullmatch(
            plain, plain.rfind("\n", 0, reading[0]) + 1, reading[0]):
        return False
    stated = stated_or_bracketed(plain, end)
    return stated is not None and foreign_text(stated, words)


def own_answer(plain: str, read: Callable[[str], list[Reading]], options: list | None = None) -> \
        tuple[str, list[Reading], bool]:
    """A segment up to where it turns to other questions, its readings, and whether it was cut. After its answer: a
    turn marker (grading.statements: a new question in the prompt's format; for multiple choice also the prompt's
    option list, a header over several questions' answers, another response), a letter stated with another
    question's option text (when a reading of this question stands: such letters before it are no readings either).
    Without an answer: a new question after its opening (so the answer of an invented question is never read)."""
    def own(found: list[Reading]) -> list[Reading]:
        if not options or len(found) < 2:
            return found
        kept = [reading for reading in found if not about_other_question(plain, reading, option_words(options))]
        return kept or found

    found = read(plain)
    kept = own(found)
    if kept:
        cuts = [turn_after(plain, kept[0][0] + 1, CHOICE_TURNS if options else MATH_TURNS)]
    else:  # a new question right at the start is the response restating its own
        cuts = [turn_after(plain, len(plain) - len(plain.lstrip()) + 1, MATH_TURNS)]
    cuts += [plain.rfind("\n", 0, reading[0]) + 1 for reading in found
             if reading not in kept and reading[0] > kept[0][0]]
    cut = min((cut for cut in cuts if cut is not None), default=None)
    return (plain, kept, False) if cut is None else (plain[:cut], own(read(plain[:cut])), True)


def readings_of(sample: str, kind: str, letters: str, options: list | None) -> tuple[str, list[Reading], bool]:
    """The first segment with readings, cut where it turns to other questions, its readings (an empty list when no
    reader finds an answer), and whether it was cut (its end is then no end of the response)."""
    segments = plain_segments(sample)
    read = math_readings if kind == "math" else functools.partial(choice_readings, letters=letters, options=options)
    first = None
    for segment in segments:
        plain, found, cut = own_answer(segment, read, options if kind != "math" else None)
        if found:
            return plain, found, cut
        first = first or (plain, cut)
    plain, cut = first
    return plain, unannounced(plain) if kind == "math" else [], cut


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
