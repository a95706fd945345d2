"""Where a response turns to other questions: text about other questions is not part of this question's answer.

Few-shot outputs go on after their answer: they invent the next question in the prompt's format, "summarize" the
answers to the prompt's example questions, or start another response. Each turn is a named marker below; the text
from the first marker after an answer on is cut (as a stop sequence would have cut it). For multiple choice, a letter
stated with an option text that shares no word with this question's options answers another question too.
"""
from __future__ import annotations

import functools
import re

# A new question in the prompt's own format: a line opening with "Question:", "Question 2:", "Q:", "Problem:" or
# "## Problem 3:" (markdown already removed). Example: "Question: What is 2 + 2?"
NEW_QUESTION = re.compile(r"^[ \t>#-]*(?:question|problem|q)(?:[ \t]*\d+)?[ \t]*[:：]", re.IGNORECASE | re.MULTILINE)
# The prompt's option-list and answer-cue lines (MMLU-Pro's "Options:" and "Answer: Let's think step by step.").
# Example: "Options:"
PROMPT_LINE = re.compile(r"^[ \t]*(?:(?:options|choices)[ \t]*[:：][ \t]*$|answer[ \t]*:[ \t]*let['’]s[ \t]+think"
                         r"[ \t]+step[ \t]+by[ \t]+step)", re.IGNORECASE | re.MULTILINE)
# A header over the answers of several questions: "The answers are:", "For the other questions:", "Now, combining all
# the answers:", "Now, considering all the questions and answers:", "总结以上问题的答案：". Example: "The answers are:"
SUMMARY_HEADER = re.compile(
    r"^[^\n]{0,60}?(?:\b(?:the\s+answers\s+are(?:\s+as\s+follows)?|(?:all|each|every|the\s+other|other|previous"
    r"|above|preceding|these|remaining)\s+(?:the\s+)?(?:questions?|answers)|questions\s+and\s+answers)\b"
    r"|(?:以上|所有|上述|前面|其他)[^\n]{0,10}?(?:问题|答案))[^\n]{0,60}?[:：][ \t]*$", re.IGNORECASE | re.MULTILINE)
# A line that starts another response ("=== response ===", "== output =="; a bare "===" may go on with the same
# question). Example: "== response =="
RESPONSE_SEPARATOR = re.compile(r"^[ \t]*=+[ \t]*(?:response|answer|output)[ \t]*=+[ \t]*$",
                                re.IGNORECASE | re.MULTILINE)
CHOICE_TURNS = (NEW_QUESTION, PROMPT_LINE, SUMMARY_HEADER, RESPONSE_SEPARATOR)
MATH_TURNS = (NEW_QUESTION,)  # a math reply's "The answers are:" may list its own solutions; also the turn before any answer
# The words of an option text compared between questions: numbers and words of three letters or more.
CONTENT_WORD = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]{3,}")
# Words every option list shares, so they tell no question from another. Example: "the"
FUNCTION_WORD = re.compile(
    r"the|and|for|are|was|were|with|that|this|from|not|all|its|his|her|has|have|had|been|but|than|more|less|most"
    r"|least|only|both|none|any|which|who|whom|whose|what|when|where|how|why|their|there|they|them|these|those|into"
    r"|onto|upon|over|under|between|about|above|below|each|other|some|such|can|could|may|might|will|would|should"
    r"|does|did|one|two|three|also|very|because|answer|option|choice|correct|true|false")
# An option text stated after its letter, a label mark and a space: "A. 240 W", "(B) 6.2 eV", "C: Paris"; not
# "A.<EOS>", "(J), but ...", "B based on ...", "(B) (with a caveat)", "(C) for the first part", nor "(B). The ..."
# (a new sentence after a bracketed letter). Example: ". 240 W"
STATED_OPTION = re.compile(r"(?<![)\]])(?:[.:)\]]|[ \t]*[-–—:])[ \t]+|(?<=[)\]])(?:[ \t]*[-–—:])?[ \t]+")
STATED_TEXT = re.compile(r"(?!(?:for|with|since|because|as|which|that|but|and|or|if|when|where|while|so|then|in|on"
                         r"|at|by|from|to|of|is|was|are|were|however|although|though|see)\b)([\w$\\][^\n]{0,299}?)"
                         r"[ \t*.]*(?:\n|$)", re.IGNORECASE)
STATED_TEXT_WORDS = 20  # an option text is a phrase: a longer stated text is an explanation


def content_words(text: str) -> set[str]:
    """The words that tell one option text from another: numbers (as values: "4.0" is "4") and words of three
    letters or more, lower-cased, function words left out."""
    words = set()
    for word in CONTENT_WORD.findall(text.lower()):
        if word[0].isdigit():
            word = word.replace(",", "")
            word = word.rstrip("0").rstrip(".") if "." in word else word
        elif FUNCTION_WORD.fullmatch(word):
            continue
        words.add(word)
    return words


def option_words(options: list | None) -> frozenset[str]:
    """The content words of all of a question's options."""
    return options_words(tuple(map(str, options or [""])))


@functools.lru_cache(maxsize=1024)
def options_words(options: tuple[str, ...]) -> frozenset[str]:
    """option_words of a tuple of option texts, remembered (rows of one benchmark share their options often)."""
    return frozenset().union(*(content_words(option) for option in options))


def stated_option(text: str, end: int) -> str | None:
    """The option text stated right after a letter that ends at `end` (STATED_OPTION, STATED_TEXT), else None."""
    mark = STATED_OPTION.match(text, end)
    stated = STATED_TEXT.match(text, mark.end()) if mark else None
    return stated.group(1) if stated else None


def foreign_text(stated: str, words: set[str]) -> bool:
    """Whether an option text stated with a letter is another question's: a phrase (at most STATED_TEXT_WORDS words)
    with content words, none of them in this question's options (`words`, from option_words)."""
    own = content_words(stated)
    return bool(words) and bool(own) and len(stated.split()) <= STATED_TEXT_WORDS and not own & words


def turn_after(text: str, position: int, markers: tuple[re.Pattern, ...]) -> int | None:
    """Where the text first turns to other questions after `position` (a line of `markers`), else None."""
    starts = [match.start() for marker in markers if (match := marker.search(text, position))]
    return min(starts) if starts else None
