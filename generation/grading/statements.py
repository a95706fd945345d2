"""Statements and turns of a response beyond "the answer is X".

Where a response turns to other questions: few-shot outputs go on after their answer: they invent the next question in
the prompt's format, "summarize" the answers to the prompt's example questions, or start another response. Each turn
is a named marker below; the text from the first marker after an answer on is cut (as a stop sequence would have cut
it). For multiple choice, a letter stated with an option text that shares no word with this question's options answers
another question too.

Multiple-choice statements: several letters named as the answer (a hedge for a question with one answer), a sentence
that closes on a bracketed letter after "is" ("The best defense would be (E)."), and a last letter written with its own
option text ("... is B. Awareness stage.").
"""
from __future__ import annotations

import functools
import re

from generation.grading.boxes import HEDGE_NOTE
from generation.grading.cutoff import NUMBER_TOLERANCE, content_words, numbers, unfinished
from generation.grading.parsing import UNCOMMITTED_AFTER, Choice, committed, normalize_option, option_letter

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
# A sentence that announces the answers of all the questions: "Now, let's combine all the answers into a single
# response.", "Let me summarize all the answers." (a line of its own). Example: "Now, let's combine all the answers."
COMBINE_ANSWERS = re.compile(r"^[^\n]{0,40}?\b(?:combin\w*|summar\w*|list\w*|compil\w*|collect\w*)[ \t]+(?:all[ \t]+)?"
                             r"(?:of[ \t]+)?(?:the[ \t]+|these[ \t]+|our[ \t]+)?answers\b[^\n]{0,60}$",
                             re.IGNORECASE | re.MULTILINE)
# A line listing letters with one of them repeated: the answers of several questions in turn ("Final Answer: C, A, C,
# I"), no choice among this question's options. Example: "The answer is (A), (C), (A)."
REPEATED_LETTERS = re.compile(r"^[^\n]*?(?<![\w(])\(?([A-Z])\)?(?:[ \t]*,[ \t]*\(?[A-Z]\)?)*[ \t]*,[ \t]*"
                              r"\(?\1\)?(?!\w)", re.MULTILINE)
# A line giving letters for several named questions: "(B) for the physics question, (D) for the law question".
# Example: "(B) for the physics question, (D) for"
PER_QUESTION = re.compile(r"^[^\n]*?\(?[A-Z]\)?[ \t]+for[ \t]+(?:the[ \t]+)?[^\n()]{0,60}?\bquestions?\b[^\n]*?"
                          r"\(?[A-Z]\)?[ \t]+for\b", re.MULTILINE)
CHOICE_TURNS = (NEW_QUESTION, PROMPT_LINE, SUMMARY_HEADER, RESPONSE_SEPARATOR, COMBINE_ANSWERS, REPEATED_LETTERS,
                PER_QUESTION)
# A math reply's "The answers are:" may list its own solutions; NEW_QUESTION is also the turn before any answer.
MATH_TURNS = (NEW_QUESTION,)
# An option text stated after its letter, a label mark and a space: "A. 240 W", "(B) 6.2 eV", "C: Paris"; not
# "A.<EOS>", "(J), but ...", "B based on ...", "(B) (with a caveat)", "(C) for the first part", nor "(B). The ..."
# (a new sentence after a bracketed letter). Example: ". 240 W"
STATED_OPTION = re.compile(r"(?<![)\]])(?:[.:)\]]|[ \t]*[-–—:])[ \t]+|(?<=[)\]])(?:[ \t]*[-–—:])?[ \t]+")
STATED_TEXT = re.compile(r"(?!(?:for|with|since|because|as|which|that|but|and|or|if|when|where|while|so|then|in|on"
                         r"|at|by|from|to|of|is|was|are|were|however|although|though|see)\b)([\w$\\][^\n]{0,299}?)"
                         r"[ \t*.]*(?:\n|$)", re.IGNORECASE)
# An option text in brackets after a letter's mark, no comment on it ("(approximately ...)", "(Note: ...)").
# Example: ". (Boycotts, Buycotts)"
BRACKETED_TEXT = re.compile(r"[.:][ \t]+\((?!(?:note|with|approx\w*|assuming|if|see|based|because|since|this|that|which"
                            r"|i|we|it|or|and|but|not|rounded|closest|given)\b)([A-Z][^()\n]{2,200})\)[ \t.]*(?:\n|$)",
                            re.IGNORECASE)
STATED_TEXT_WORDS = 20  # an option text is a phrase: a longer stated text is an explanation


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


def stated_or_bracketed(text: str, end: int) -> str | None:
    """stated_option, or an option text in brackets after the letter's mark ("H. (Boycotts, Buycotts)")."""
    bracketed = BRACKETED_TEXT.match(text, end)
    return stated_option(text, end) or (bracketed.group(1) if bracketed else None)


def foreign_text(stated: str, words: set[str]) -> bool:
    """Whether an option text stated with a letter is another question's: a phrase (at most STATED_TEXT_WORDS words)
    with content words, none of them in this question's options (`words`, from option_words)."""
    own = content_words(stated)
    return bool(words) and bool(own) and len(stated.split()) <= STATED_TEXT_WORDS and not own & words


def turn_after(text: str, position: int, markers: tuple[re.Pattern, ...]) -> int | None:
    """Where the text first turns to other questions after `position` (a line of `markers`), else None."""
    starts = [match.start() for marker in markers if (match := marker.search(text, position))]
    return min(starts) if starts else None


# Several letters listed: "(C) and (J)", "A, B and E", "(B, D, and F)", "(A), (B), (D)".
LETTER_LIST = (r"[(\[]?[A-Z][)\]]?(?:[ \t]*(?:,[ \t]*(?:and[ \t]+)?|and[ \t]+|&[ \t]*)[(\[]?[A-Z](?![\w'’-])[)\]]?)+"
               r"(?![ \t]*(?:\w|\())")
# A statement that names several letters as the answer: "the correct answers are (C) and (J)", "The answers are (E)
# and (B).", "The true statements are (F) and (I).", "the answer must be a combination of (B) and (F)", "(C) and (J)
# are the correct answers", "The answer is (GH)" / "is DE." (letters written together).
# Example: "the correct answers are (C) and (J)"
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
# An answer statement ending in a colon over two lines labelling different options: "the final answer is:\nC. ...\nH.
# ...". Example: "the final answer is:\nC. Water\nH. Saline"
LABELLED_LINES = re.compile(r"\b(?:answer|option|choice)[ \t]+is[ \t]*[:：][ \t]*\n\s*\(?([A-Z])[.)][ \t]+\S[^\n]*\n"
                            r"\s*\(?(?!\1)([A-Z])[.)][ \t]+\S", re.IGNORECASE)
# What every SEVERAL_LETTERS statement holds, searched first because it is fast: two letters listed or written
# together. Example: "(C) and (J)"
LETTERS_TOGETHER = re.compile(r"[A-Z][)\]]?[ \t]*(?:,|and\b|&)[ \t]*(?:and[ \t]+)?[(\[]?[A-Z](?![a-z])|\([A-Z]{2,4}\)"
                              r"|\b[A-Z]{2,4}[ \t]*[.!]?[ \t]*$", re.MULTILINE)
# The last sentence that closes on a bracketed letter after a copula: "The most appropriate statement is (A).",
# "The man's best defense would be (E).", "This is option E.", or goes on with that option's own text: "... is (G)
# Branding.", "... was (F) his lavish spending", "... is (G): The proportion ...". Example: "The best defense would
# be (E)."
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
# The rest of a sentence after its letter, up to a sentence mark that is no decimal point or its line's end.
# Example: " that he didn't know what was in the package."
SENTENCE_REST = re.compile(r"[ \t]*[-–—:]?[ \t]*((?:[^.!?\n]|\.(?=\d))*)")
# Where a comment on the answer opens: "(E) 2 diopters, but note ...", "(C) 108 candles (which is ...)", or nowhere.
# Example: ", but note"
COMMENT = re.compile(r",?[ \t]+(?:but|however|although|though)\b|[ \t]*\(|$", re.IGNORECASE)
PARAPHRASE_STEM = 5  # "protecting" and "protect" share the stem "prote"
# A negation or a rejection in a text or an option. Example: "didn't"
PARAPHRASE_NEGATION = re.compile(r"\b(?:not|no|never|none|nor|neither|without|cannot|incorrect|wrong|false|unlikely"
                                 r"|lack\w*|absen\w*|fail\w*)\b"
                                 r"|n['’]t\b", re.IGNORECASE)
SENTENCE_CLOSE = re.compile(r"[ \t*]*(?:[.!;:](?!\d)|$|\n|,?[ \t]+(?:as|because|since|which|due\s+to|given)\b)")


def several_letters(text: str, letters: str) -> list[tuple[int, Choice, int]]:
    """Statements naming several different valid letters as the answer, each an undecidable hedge reading; also an
    answer statement ending in a colon over two lines that label different options (LABELLED_LINES)."""
    found = [(match.start(), Choice(None, True, f"{HEDGE_NOTE}: {match.group(1)} and {match.group(2)} (several "
                                                f"letters)"), match.end())
             for match in LABELLED_LINES.finditer(text) if {match.group(1), match.group(2)} <= set(letters)]
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
    if not committed(text, match.start()) or UNCOMMITTED_AFTER.match(text, end):
        return []
    if closes:
        return [(match.start(), Choice(letter), end)]
    sentence = SENTENCE_REST.match(text, end)
    closest = paraphrased_option(sentence.group(1), normalized, letters)
    if closest == (letter, True):
        return [(match.start(), Choice(letter), sentence.end(1))]
    return [(match.start(), Choice(None, True, worded_against(letter, closest)), sentence.end(1))] if closest else []


def worded_against(letter: str, closest: tuple[str, bool]) -> str:
    """The note of a letter stated with words of another option, or against its own option's sense."""
    if closest[0] == letter:
        return f"letter {letter} stated against the sense of its option (a negation or another number)"
    return f"letter {letter} stated with the text of option {closest[0]}"


def paraphrased_option(stated: str, normalized: list[str], letters: str) -> tuple[str, bool] | None:
    """The letter of the option a text stated after a letter words in its own way ("(D) that he didn't know what was
    in the package" for "the defendant didn't know what was in the package"), and whether the text keeps its sense: the
    one option sharing strictly the most word stems with it (PARAPHRASE_STEM), at least two or all of the text's; it
    keeps the sense with its numbers near the option's (cutoff.NUMBER_TOLERANCE) and, unless it is a part of the
    option's own text, as many negations (PARAPHRASE_NEGATION), so "(D) does not protect ..." words "... will help
    protect ..." against its sense; else None."""
    words = stems(stated)
    if not words:
        return None
    shared = [len(words & stems(option)) for option in normalized[:len(letters)]]
    best = max(shared, default=0)
    if best == 0 or shared.count(best) > 1:
        return None
    index = shared.index(best)
    option = normalized[index]
    if best < 2 and not words <= stems(option):
        return None
    offered = numbers(option)
    close = all(any(abs(value - number) <= NUMBER_TOLERANCE * abs(number) for number in offered)
                for value in numbers(stated))
    own_words = normalize_option(stated) in option  # a part of the option's own text keeps its sense
    return letters[index], close and (own_words or len(PARAPHRASE_NEGATION.findall(stated))
                                      == len(PARAPHRASE_NEGATION.findall(option)))


def worded_after(text: str, end: int, letter: str, normalized: list[str], letters: str) -> str | None:
    """Why the words right after `letter` (ending at `end`) word another option or go against its own, or None: both
    the rest of the sentence and its part before an explaining clause (SENTENCE_CLOSE) or a comment (COMMENT) must say
    so (paraphrased_option),
    so "(H) as the landlord has the right to reenter" or an option's own "which" clause leaves the letter standing."""
    rest = SENTENCE_REST.match(text, end).group(1)
    cut = min(SENTENCE_CLOSE.search(" " + rest).start(), COMMENT.search(" " + rest).start())  # " " + : "(H) as ..."
    readings = [paraphrased_option(part, normalized, letters) for part in (rest[:max(0, cut - 1)], rest)]
    return None if not rest or any(reading in (None, (letter, True)) for reading in readings) \
        else worded_against(letter, readings[0])


@functools.lru_cache(maxsize=4096)
def stems(text: str) -> frozenset[str]:
    """The content words of a text (cutoff.content_words) but its negations (counted apart), words cut to their
    first PARAPHRASE_STEM letters."""
    words = content_words(PARAPHRASE_NEGATION.sub(" ", text))
    return frozenset(word if word[0].isdigit() else word[:PARAPHRASE_STEM] for word in words)


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
    if opening and not text[:line_start].rstrip().endswith(":") \
            or LABEL_AGAINST.search(text, line_start, match.start()):
        return []
    if any(stop > match.start(1) for _, _, stop in read) or not committed(text, match.start()):
        return []  # a reading after it (a box, a statement) has the last word
    return [(match.start(), Choice(match.group(1)), match.end())]
