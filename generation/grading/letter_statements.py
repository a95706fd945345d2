"""Multiple-choice statements beyond "the answer is X": several letters named as the answer (a hedge for a question
with one answer), a sentence that closes on a bracketed letter after "is" ("The best defense would be (E)."), and a
last letter written with its own option text ("... is B. Awareness stage.")."""
from __future__ import annotations

import re

from generation.grading.boxes import HEDGE_NOTE
from generation.grading.cutoff import unfinished
from generation.grading.other_questions import stated_option
from generation.grading.parsing import UNCOMMITTED_AFTER, Choice, committed, normalize_option, option_letter

# Several letters listed: "(C) and (J)", "A, B and E", "(B, D, and F)", "(A), (B), (D)".
LETTER_LIST = (r"[(\[]?[A-Z][)\]]?(?:[ \t]*(?:,[ \t]*(?:and[ \t]+)?|and[ \t]+|&[ \t]*)[(\[]?[A-Z](?![\w'’-])[)\]]?)+"
               r"(?![ \t]*(?:\w|\())")
# A statement that names several letters as the answer: "the correct answers are (C) and (J)", "The answers are (E)
# and (B).", "The true statements are (F) and (I).", "the answer must be a combination of (B) and (F)", "(C) and (J) are the correct answers", "The answer is
# (GH)" / "is DE." (letters written together). Example: "the correct answers are (C) and (J)"
SEVERAL_LETTERS = re.compile(
    r"\b(?:the|final|correct|right|best|my)\s+(?:(?:correct|right|best|final|true)\s+)?(?:answers|options|choices"
    r"|statements)\s+"
    r"(?:are|would\s+be|must\s+be|should\s+be)\s*[:：]?\s*(?:both\s+)?(?P<listed>" + LETTER_LIST + ")"
    r"|\b(?:answer|option|choice)\s+(?:is|must\s+be|would\s+be|should\s+be)\s+(?:a\s+combination\s+of|both)\s+"
    r"(?P<combined>" + LETTER_LIST + ")"
    r"|(?<![\w(])(?-i:(?P<first>" + LETTER_LIST + r"))\s+are\s+(?:both\s+|all\s+)?(?:the\s+)?(?:correct|right|true"
    r"|best)\b"
    r"|\b(?:answer|option|choice)\s+(?:is|would\s+be)\s*[:：]?\s*(?:\((?P<joined>[A-Z]{2,4})\)"
    r"|(?P<bare>[A-Z]{2,4})(?=[ \t]*[.!]?[ \t]*(?:$|\n)))", re.IGNORECASE)
LISTED_LETTER = re.compile(r"[A-Z]")
# What every SEVERAL_LETTERS statement holds, searched first because it is fast: two letters listed or written
# together. Example: "(C) and (J)"
LETTERS_TOGETHER = re.compile(r"[A-Z][)\]]?[ \t]*(?:,|and\b|&)[ \t]*(?:and[ \t]+)?[(\[]?[A-Z](?![a-z])|\([A-Z]{2,4}\)"
                              r"|\b[A-Z]{2,4}[ \t]*[.!]?[ \t]*$", re.MULTILINE)
# The last sentence that closes on a bracketed letter after a copula: "The most appropriate statement is (A).", "The man's
# best defense would be (E).", "This is option E.", or goes on with that option's own text: "... is (G) Branding.",
# "... was (F) his lavish spending", "... is (G): The proportion ..."; a question's negation
# in its subject ("the option that is not ...") is no rejection. Example: "The best defense would be (E)."
COPULA_LETTER = re.compile(r"\b(?:is|was|would\s+be|must\s+be|should\s+be|will\s+be)[ \t]+(?:\(([A-Z])\)"
                           r"|(?i:option|choice)[ \t]+\(?([A-Z])\b\)?)")
BRACKETED_LETTER = re.compile(r"\([A-Z]\)")
# A letter labelling the option text that follows it: "B. Awareness stage", "(A) greater rights", "I: Salmond".
# Example: "B. "
OPTION_LABELLED = re.compile(r"(?<![\w(])\(?([A-Z])(?:\)|[.:])[ \t]+")
OPTION_TEXT_END = re.compile(r"[\s\"'”’*)\]]*(?:[.,;:!?]|$)")  # where an option text written in a sentence ends
# A letter named after a labelled option (another answer) and a negation just before the label. Example: "(C)"
NAMED_AFTER = re.compile(r"\([A-Z]\)|\b(?i:option|choice)\s+\(?[A-Z]\b|(?<![\w(])[A-Z][.)][ \t]+[A-Z]")
LABEL_AGAINST = re.compile(r"\b(?:not|no|never|cannot|isn['’]t|rather\s+than|instead\s+of|unlike|except|if)\b"
                           r"[^.!?\n]{0,30}$", re.IGNORECASE)
# What may open a line before a label that heads a list item, not a sentence: "- ", "2. ", "* Option ".
LABEL_OPENING = re.compile(r"[ \t>*•-]*(?:\d+[.)][ \t]*)?(?:(?i:option|choice)[ \t]+)?")
LABELLED_CHARS = 600  # the labelled option is looked for this far from the end
# Where a sentence closes after its letter: a mark, its end, or an explaining clause ("is (H), as it increases ...").
SENTENCE_CLOSE = re.compile(r"[ \t*]*(?:[.!;:](?!\d)|$|\n|,?[ \t]+(?:as|because|since|which|due\s+to|given)\b)")


def several_letters(text: str, letters: str) -> list[tuple[int, Choice, int]]:
    """Statements naming several different valid letters as the answer, each an undecidable hedge reading."""
    found = []
    if not LETTERS_TOGETHER.search(text):
        return found
    for match in SEVERAL_LETTERS.finditer(text):
        listed = next(group for group in match.group("listed", "combined", "first", "joined", "bare") if group)
        named = list(dict.fromkeys(LISTED_LETTER.findall(listed)))
        if len(named) > 1 and set(named) <= set(letters) and committed(text, match.start()) and (
                listed.isupper() or not match.group("bare")):
            found.append((match.start(), Choice(None, True, f"{HEDGE_NOTE}: {' and '.join(named)} (several letters)"),
                          match.end()))
    return found


def copula_letter(text: str, letters: str, normalized: list[str],
                  read: list[tuple[int, Choice, int]]) -> list[tuple[int, Choice, int]]:
    """The last sentence closing on a bracketed valid letter after a copula (COPULA_LETTER), or going on with that
    option's own text, where no bracketed letter follows it and the text finishes; committed (no condition before or
    after it) and not a letter another statement already read."""
    match = None
    for match in COPULA_LETTER.finditer(text):
        pass
    letter = match and (match.group(1) or match.group(2))
    if not letter or letter not in letters or BRACKETED_LETTER.search(text, match.end()) or unfinished(text):
        return []
    end = match.end()
    if any(start < end <= stop for start, _, stop in read):
        return []
    stated = stated_option(text, end)
    closes = SENTENCE_CLOSE.match(text, end) or stated and option_letter(stated, normalized, letters) == letter
    return [(match.start(), Choice(letter), end)] if closes and committed(text, match.start()) and \
        not UNCOMMITTED_AFTER.match(text, end) else []


def labelled_option(text: str, letters: str, normalized: list[str],
                    read: list[tuple[int, Choice, int]]) -> list[tuple[int, Choice, int]]:
    """The last letter written with its own option text in a sentence ("... is B. Awareness stage.", "... supports the
    goal of (A) greater rights for unions."; inline, or opening the line after one ending in a colon), where no other
    letter is named and nothing is read after it, no negation stands just before it and the text finishes."""
    match = None
    for candidate in OPTION_LABELLED.finditer(text, max(0, len(text) - LABELLED_CHARS)):
        letter = candidate.group(1)
        index = letters.find(letter)
        if index < 0 or index >= len(normalized) or not normalized[index]:
            continue
        line_end = text.find("\n", candidate.end())
        line = normalize_option(text[candidate.end():line_end if line_end >= 0 else len(text)])
        if line.startswith(normalized[index]) and OPTION_TEXT_END.match(line, len(normalized[index])):
            match = candidate
    if not match or unfinished(text) or NAMED_AFTER.search(text, match.end()):
        return []
    line_start = text.rfind("\n", 0, match.start()) + 1
    opening = LABEL_OPENING.fullmatch(text, line_start, match.start())
    if opening and not text[:line_start].rstrip().endswith(":") or LABEL_AGAINST.search(text, line_start, match.start()):
        return []
    if any(stop > match.start(1) for _, _, stop in read) or not committed(text, match.start()):
        return []  # a reading after it (a box, a statement) has the last word
    return [(match.start(), Choice(match.group(1)), match.end())]
