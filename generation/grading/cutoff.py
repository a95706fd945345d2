"""Whether a sample whose answer was not read holds none: its finish reason from Step 1, else what its text shows."""
from __future__ import annotations

import re

from generation.grading.parsing import THINK_END

CUT_FINISHES = {"length": "cut off at the token limit (finish reason length)",
                "content_filter": "stopped by the provider's content filter", "error": "generation error"}
# A text broken inside a word or an expression: a hyphen right after a letter, an open bracket, a backslash, an
# operator, an underscore or caret. (A last word or number without a final period is no cut-off: "Final: B".)
BROKEN_END = re.compile(r"(?:[A-Za-z]-|[({\[\\^_=+])$")
REFUSAL = re.compile(r"\bI\s+(?:can(?:no|['’])t|am\s+unable\s+to|am\s+not\s+able\s+to|won['’]t|will\s+not)\s+(?:answer|help"
                     r"|determine|provide|choose|select|solve|pick)", re.IGNORECASE)
NONE_OF_THEM = re.compile(r"\bnone\s+of\s+(?:the\s+)?(?:above|options|choices|answers|these|them)\b"
                          r"|\bno\s+(?:correct\s+)?(?:option|choice|answer)\s+(?:is\s+)?(?:correct|fits|matches)"
                          r"|\b(?:answer|it)\s+is\s+not\s+(?:listed|among|in\s+the\s+(?:options|choices)|one\s+of)",
                          re.IGNORECASE)
NONE_OPTION = re.compile(r"\b(?:none|neither)\b", re.IGNORECASE)  # an option that is itself "none of the above"
# How a finished text ends: a sentence mark, a display block, a code fence or a table row, then closing marks
# ("... is 42.", "... \\]", "...)**", "| B |"); a released text ending otherwise stopped mid-sentence.
FINISHED_END = re.compile(r"(?:[.!?。！？…]|\\\]|\$\$|```|\|)[\s\"'”’)\]*_$>}]*$")
LIST_ITEM_END = re.compile(r"\n[ \t]*\d+\.$")  # a text ending on the number of a list item it did not write
LOOP_PROBE = 60
LOOP_WINDOW = 4000


def looping(text: str) -> bool:
    """Whether a text ends in a repetition loop (its last characters occur three times in its last few thousand)."""
    probe = text[-LOOP_PROBE:].strip()
    return len(probe) >= 20 and text.count(probe, max(0, len(text) - LOOP_WINDOW)) >= 3


def no_answer_reason(sample: str, options: list | None = None, finish: str | None = None) -> str | None:
    """Why a sample whose answer was not read holds none, or None if its answer is there for a judge to read.

    Empty texts and refusals (and, for a multiple-choice question with `options`, "none of the options" unless one
    says so) hold none. A cut-off is the finish reason's to say (`length`); only without one (null) does the text
    decide: a repetition loop, an unclosed <think>, or a text broken inside a word or an expression.
    """
    text = sample.rstrip()
    if not text:
        return "empty"
    if finish in CUT_FINISHES:
        return CUT_FINISHES[finish]
    if finish is None:
        if looping(text):
            return "cut off in a repetition loop"
        if "<think>" in text and THINK_END not in text:
            return "cut off inside <think>"
        if BROKEN_END.search(text):
            return "cut off inside a word or an expression"
    tail = text[-300:]
    offers_none = any(NONE_OPTION.search(str(option)) for option in options or [])
    if REFUSAL.search(tail) or options and not offers_none and NONE_OF_THEM.search(tail):
        return "refusal or none of the options"
    return None


def unfinished(sample: str) -> bool:
    """Whether a text stops mid-sentence (no FINISHED_END: "... the force is 4000 N times", "... = 3.17 kJ + 12"), on
    an empty list item ("...\\n\\n1.") or inside display or inline math it opened ("\\[ x = \\frac{0.")."""
    text = sample.rstrip()
    tail = text[-2000:]
    return bool(text) and (not FINISHED_END.search(text[-20:]) or bool(LIST_ITEM_END.search(text))
                           or tail.count("\\[") > tail.count("\\]") or tail.count("\\(") > tail.count("\\)"))
