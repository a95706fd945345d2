"""Boxed answers: every \\boxed{...}/\\fbox{...} with nested braces, placeholders and sentences in boxes, and runs of
boxes listed together ("2 and 3") or hedged ("3 or possibly 4")."""
from __future__ import annotations

import re
from dataclasses import dataclass

HEDGE_NOTE = "a hedge between answers"  # every note of a hedge starts so (see parsing.is_hedge)
TEXT_WRAPPER = re.compile(r"\\(?:text|textbf|mathrm|mathbf|textit|mbox)\s*\{([^{}]*)\}")
BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
# What a box holds when it is a placeholder in a restated equation, not an answer: spacing, \phantom{...}, blanks,
# "?" ("\boxed{\phantom{0}}", "\boxed{\quad}", "\boxed{\,\,}", "\boxed{\_\_}", "\boxed{?}").
PLACEHOLDER = re.compile(r"(?:\s|~|\\[,;:! ]|\\q?quad\b|\\(?:h|v)?phantom\s*\{[^{}]*\}|\\hspace\*?\s*\{[^{}]*\}"
                         r"|\\_|_|\?|\.{3}|\\[lc]?dots\b)*")
# A box holding a sentence (four or more words with a verb or a full stop): "\boxed{\text{The series converges.}}",
# "\boxed{\text{it is the same for all n}}"; "\boxed{\text{the set of all real numbers}}" is an answer.
SENTENCE_BOX = re.compile(r"(?=(?:[^A-Za-z]*[A-Za-z]{2,}){4})"
                          r"(?=.*(?:\b(?:is|are|was|were|equals|has|have|does|do)\b|[a-z]\.\s*\}?\s*$))",
                          re.IGNORECASE | re.DOTALL)
BRACE = re.compile(r"(?<!\\)[{}]")
# Between boxes that list several answers ("$\boxed{2}$ and $\boxed{3}$", "x_1=\boxed{2}, x_2=\boxed{3}",
# "\)\quad\text{and}\quad\(", display lines) or hedge between them ("\boxed{3}$ or possibly $\boxed{4}").
BOX_GAP_TOKEN = (r"\s|\$|\\[()\[\]]|\\q?quad\b|\\[,;: !]|[,;&]|\\\\|\band\b|\bboth\b|"
                 r"[A-Za-z](?:_\{?\w+\}?)?\s*=")
BOX_LIST_GAP = re.compile(f"(?:{BOX_GAP_TOKEN})*")
BOX_HEDGE_GAP = re.compile(rf"(?:{BOX_GAP_TOKEN}|[()]|\b(?:or|either|possibly|maybe|perhaps|else)\b)*")
HEDGE_WORD = re.compile(r"\b(?:or|possibly|maybe|perhaps|either)\b", re.IGNORECASE)
BOX_GAP_CHARS = 80


def closing_braces(text: str) -> dict[int, int]:
    """Position of each unescaped '{' -> position of its matching '}' (unmatched ones are absent); one pass."""
    stack: list[int] = []
    pairs: dict[int, int] = {}
    for match in BRACE.finditer(text):
        if match.group(0) == "{":
            stack.append(match.start())
        elif stack:
            pairs[stack.pop()] = match.start()
    return pairs


def boxed_contents(text: str) -> list[tuple[int, int, str]]:
    """(start, end, content) of every \\boxed{...}/\\fbox{...} with nested braces, in order; a placeholder or a
    sentence in a box reads as an empty box (no reading)."""
    boxes = list(BOXED.finditer(text))
    pairs = closing_braces(text) if boxes else {}
    found = [(box.start(), pairs[box.end() - 1] + 1, text[box.end():pairs[box.end() - 1]].strip())
             for box in boxes if box.end() - 1 in pairs]
    return [(start, end, "" if placeholder(content) else content) for start, end, content in found]


def placeholder(content: str) -> bool:
    """Whether a box's content is no answer: a placeholder (PLACEHOLDER) or a sentence (SENTENCE_BOX)."""
    return bool(PLACEHOLDER.fullmatch(content)) or bool(SENTENCE_BOX.match(TEXT_WRAPPER.sub(r" \1 ", content)))


@dataclass(frozen=True)
class MathReading:
    """A math extraction: the answer as written (None if none read); note says why it is undecided (a hedge)."""

    answer: str | None
    note: str = ""


def box_link(text: str, start: int, end: int) -> str | None:
    """How the text between two boxes joins them: 'list' ("2 and 3"), 'hedge' ("3 or possibly 4"), else None."""
    if end - start > BOX_GAP_CHARS:
        return None
    gap = TEXT_WRAPPER.sub(r" \1 ", text[start:end])
    if not gap.strip(" \t\n$"):
        return None  # boxes side by side with nothing between them are no list
    if BOX_LIST_GAP.fullmatch(gap):
        return "list"
    return "hedge" if HEDGE_WORD.search(gap) and BOX_HEDGE_GAP.fullmatch(gap) else None


def box_groups(text: str) -> list[tuple[int, MathReading, int]]:
    """(position of the last box, reading, its end) of every run of boxes listed together; a run joined by "or" is a
    hedge."""
    groups: list[tuple[int, MathReading]] = []
    previous = None
    for start, end, content in boxed_contents(text):
        if not content:
            continue
        link = box_link(text, previous[1], start) if previous else None
        if link and groups:
            answers = groups[-1][1].answer.split(" or " if groups[-1][1].note else ", ")
            hedged = bool(groups[-1][1].note) or link == "hedge"
            answers = list(dict.fromkeys(answers + [content]))
            reading = MathReading((" or " if hedged else ", ").join(answers) if len(answers) > 1 else answers[0],
                                  HEDGE_NOTE if hedged and len(answers) > 1 else "")
            groups[-1] = (start, reading, end)
        else:
            groups.append((start, MathReading(content), end))
        previous = (start, end)
    return groups


def last_boxed(text: str) -> str | None:
    """The final boxed answer: the last non-empty \\boxed{...}, joined with the boxes listed just before it
    ("$\\boxed{2}$ and $\\boxed{3}$" -> "2, 3"; "\\boxed{3} or \\boxed{4}" -> "3 or 4", a hedge)."""
    groups = box_groups(text)
    return groups[-1][1].answer if groups else None
