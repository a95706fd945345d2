"""Whether a sample whose answer was not read holds none: its finish reason from Step 1, else what its text shows."""
from __future__ import annotations

import re

from generation.grading.parsing import THINK_END, normalize_option

CUT_FINISHES = {"length": "cut off at the token limit (finish reason length)",
                "content_filter": "stopped by the provider's content filter", "error": "generation error"}
# A text broken inside a word or an expression: a hyphen right after a letter, an open bracket, a backslash, an
# operator, an underscore or caret. (A last word or number without a final period is no cut-off: "Final: B".)
BROKEN_END = re.compile(r"(?:[A-Za-z]-|[({\[\\^_=+])$")
# A refusal, or a statement that the answer cannot be told: "I cannot answer", "we cannot determine the correct
# answer", "The answer cannot be determined from the given information". Example: "I cannot determine"
REFUSAL = re.compile(r"\bI\s+(?:can(?:no|['’])t|am\s+unable\s+to|am\s+not\s+able\s+to|won['’]t|will\s+not)\s+"
                     r"(?:answer|help|determine|provide|choose|select|solve|pick)"
                     r"|\b(?:we|one)\s+(?:can(?:no|['’])t|are\s+unable\s+to|are\s+not\s+able\s+to)\s+(?:\w+ly\s+)?"
                     r"(?:determine|select|choose|identify|find|give|provide)\s+(?:the|a|an|which)\s+"
                     r"(?:correct\s+|right\s+|exact\s+|final\s+)?"
                     r"(?:answer|option|choice)"
                     r"|\b(?:answer|question)\s+(?:cannot|can['’]t|could\s+not)\s+be\s+(?:determined|answered|found)",
                     re.IGNORECASE)
# "None of the options": "none of the above", "The answer is not listed / not provided in the options", "The answer
# is (not applicable)", "(no answer)", "(cannot be determined)", "not an option", "the question is likely
# incomplete", "there is no solution", "The correct answer based on the calculation is not among the options".
# Example: "The answer is not provided in the options."
NONE_OF_THEM = re.compile(r"\bnone\s+of\s+(?:the\s+)?(?:given\s+|provided\s+|listed\s+)?(?:above|options|choices"
                          r"|answers|these|them)\b"
                          r"|\bthe\s+question\s+is\s+(?:likely\s+|probably\s+)?(?:incorrect|incomplete|flawed"
                          r"|phrased\s+incorrectly)"
                          r"|\bthere\s+is\s+no\s+(?:solution|correct\s+(?:answer|option))\b"
                          r"|\bno\s+(?:correct\s+)?(?:option|choice|answer)\s+(?:is\s+)?(?:correct|fits|matches)"
                          r"|\b(?:answer|it|this|result|value)(?:\s+[\w-]+){0,5}?\s+is\s+not\s+(?:listed|among"
                          r"|in\s+the\s+(?:given\s+|provided\s+)?(?:list|options|choices)|one\s+of"
                          r"|provided|given|available|included|present|an\s+option)"
                          r"|\banswer\s+is\s*[:：]?\s*\((?:not\s+(?:applicable|listed|provided|an\s+option)"
                          r"|no\s+answer|none"
                          r"|cannot\s+be\s+determined|insufficient)\b",
                          re.IGNORECASE)
# An option that is itself "none of the above" or "cannot be determined". Example: "None of the above"
NONE_OPTION = re.compile(r"\b(?:none|neither|cannot\s+be\s+determined|insufficient\s+(?:information|data)"
                         r"|not\s+enough\s+information)\b", re.IGNORECASE)
# How a finished text ends: a sentence mark, a display block, a code fence or a table row, then closing marks
# ("... is 42.", "... \\]", "...)**", "| B |"); a released text ending otherwise stopped mid-sentence.
FINISHED_END = re.compile(r"(?:[.!?。！？…]|\\\]|\$\$|```|\|)[\s\"'”’)\]*_$>}]*$")
LIST_ITEM_END = re.compile(r"\n[ \t]*\d+\.$")  # a text ending on the number of a list item it did not write
# A text ending inside a decimal number after an operator ("= 0.", "* 1.", "\\approx 3.", "{0."): the sentence mark
# is the number's decimal point. Example: "= 0."
CUT_NUMBER = re.compile(r"(?:[=≈×*/+({\[−-]|\\(?:approx|times|cdot))[ \t$]*[-−]?\d+\.$")
ENVIRONMENT_OPEN = re.compile(r"\\begin\s*\{")  # \begin{aligned} ... without its \end{aligned}: math it opened
ENVIRONMENT_CLOSE = re.compile(r"\\end\s*\{")
DISPLAY_DOLLARS = "$$"  # a text holding an odd number of these stops inside the display math it opened
# A markdown table row, its cells counted by its bars: a last row with fewer bars than the row before it was cut off.
# Example: "| T | F |"
TABLE_ROW = re.compile(r"^[ \t]*\|.*\|[ \t]*$")
# How a text names an option by its letter: "(C)", "option C", "choice (C)", a line "C." / "C)" / "C:", or a capital
# standing alone that is no article, pronoun or variable ("B is wrong", not "A car", "I think", "E = mc^2").
# Example: "option C"
OPTION_LABEL = re.compile(r"\(([A-Z])\)|\b(?i:option|choice)\s+\(?([A-Z])\b|^[ \t*]*([A-Z])[.):]"
                          r"|(?<![\w'’.\\-])([B-HJ-Z])(?![\w'’-])(?!\s*[=_^(])", re.MULTILINE)
# An option named by its place: "the third option", "the last choice", "option two". Example: "the third option"
OPTION_PLACE = re.compile(r"\b(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|last)\s+(?:option"
                          r"|choice|answer|one)\b|\b(?:option|choice)\s+(?:one|two|three|four|five|six|seven|eight"
                          r"|nine|ten|\d+)\b", re.IGNORECASE)
NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")
NUMBER_TOLERANCE = 0.02  # an option's number is named by a value within 2% (a computed 0.2423 names the option 0.24)
NAMING_CHARS = 4000  # how much of a text's end the judge reads (decision.JUDGE_TAIL_CHARS)
# The words of an option text compared between questions: numbers and words of three letters or more.
CONTENT_WORD = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]{3,}")
# Words every option list shares, so they tell no question from another. Example: "the"
FUNCTION_WORD = re.compile(
    r"the|and|for|are|was|were|with|that|this|from|not|all|its|his|her|has|have|had|been|but|than|more|less|most"
    r"|least|only|both|none|any|which|who|whom|whose|what|when|where|how|why|their|there|they|them|these|those|into"
    r"|onto|upon|over|under|between|about|above|below|each|other|some|such|can|could|may|might|will|would|should"
    r"|does|did|one|two|three|also|very|because|answer|option|choice|correct|true|false")
LOOP_PROBE = 60
LOOP_WINDOW = 4000


def looping(text: str) -> bool:
    """Whether a text ends in a repetition loop (its last characters occur three times in its last few thousand,
    overlapping occurrences counted: a repeated sentence shorter than the probe)."""
    probe = text[-LOOP_PROBE:].strip()
    if len(probe) < 20:
        return False
    window, count, position = text[-LOOP_WINDOW:], 0, -1
    while count < 3 and (position := window.find(probe, position + 1)) >= 0:
        count += 1
    return count >= 3


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
    return "refusal or none of the options" if says_none(text[-300:], options) else None


def says_none(text: str, options: list | None) -> bool:
    """Whether a text refuses or says that none of the options is right (unless an option says so itself)."""
    offers_none = any(NONE_OPTION.search(str(option)) for option in options or [])
    return bool(REFUSAL.search(text) or options and not offers_none and NONE_OF_THEM.search(text))


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


def numbers(text: str) -> list[float]:
    """The numbers written in a text (thousands separators allowed)."""
    return [float(number.replace(",", "")) for number in NUMBER.findall(text)]


def names_option(text: str, options: list, letters: str) -> bool:
    """Whether a text could name one of the options for a judge: a letter label (OPTION_LABEL), a place
    (OPTION_PLACE), an option's text, most
    of an option's words (two in three), or every number of an option (within NUMBER_TOLERANCE). Generous on purpose:
    a text that names nothing gives the judge nothing to read as an answer."""
    tail = text[-NAMING_CHARS:]
    if any(letter in letters for match in OPTION_LABEL.finditer(tail) for letter in match.groups() if letter) \
            or OPTION_PLACE.search(tail):
        return True
    normalized, words, values = f" {normalize_option(tail)} ", content_words(tail), numbers(tail)
    for option in map(str, options):
        wanted, option_values = normalize_option(option), numbers(option)
        if len(wanted) >= 2 and re.search(rf"(?<!\w){re.escape(wanted)}(?!\w)", normalized):
            return True
        if option_values and all(any(abs(value - wanted) <= NUMBER_TOLERANCE * abs(wanted) for value in values)
                                 for wanted in option_values):
            return True
        own = content_words(option)
        if not option_values and own and 3 * len(own & words) >= 2 * len(own):
            return True
    return False


def unfinished(sample: str) -> bool:
    """Whether a text stops mid-sentence (no FINISHED_END: "... the force is 4000 N times", "... = 3.17 kJ + 12"), on
    an empty list item ("...\\n\\n1."), inside a number ("... = 0.") or inside display or inline math or an environment
    it opened ("\\[ x = \\frac{0.", "\\begin{aligned} ... &= 0.", "$$ y^2 = 576$$ $$"), or inside a table (a last line
    ending in a bar that is no row, or a row with fewer cells than the row before it)."""
    text = sample.rstrip()
    tail = text[-2000:]
    return bool(text) and (not FINISHED_END.search(text[-20:]) or bool(LIST_ITEM_END.search(text))
                           or bool(CUT_NUMBER.search(text[-40:])) or text.count(DISPLAY_DOLLARS) % 2 == 1
                           or tail.count("\\[") > tail.count("\\]") or tail.count("\\(") > tail.count("\\)")
                           or len(ENVIRONMENT_OPEN.findall(tail)) > len(ENVIRONMENT_CLOSE.findall(tail))
                           or text.endswith("|") and cut_table(text))


def cut_table(text: str) -> bool:
    """Whether a text ending in a bar stops inside a table or a bracket: its last line is no row (TABLE_ROW) and holds
    an odd number of bars or an open bracket ("P(S|U) = P(U|"; "is |x|" is closed), or it is a row with fewer cells
    than the row before."""
    lines = text[-2000:].splitlines()
    if not TABLE_ROW.match(lines[-1]):
        return lines[-1].count("|") % 2 == 1 or lines[-1].count("(") > lines[-1].count(")")
    return len(lines) > 1 and bool(TABLE_ROW.match(lines[-2])) and lines[-1].count("|") < lines[-2].count("|")
