"""The decision rule of Step 2's procedural grader: decide only when every reading agrees and nothing revises it.

decide() is the one place every sample goes through. A sample is read by independent readers (grading.readers). It is
decided (method "read": its answer is then compared with the gold one) only when every reading is decidable, all give
the same answer, and the text after the last of them offers no other candidate or revision: revision words ("wait",
"actually", "I made an error", "should be", "the correct value is"), "not X", or a parenthetical naming a value under
a condition. Anything else is "undecided" (the judge's under --llm_fallback auto); a sample with no answer to read is
"no_answer" where grading.cutoff.no_answer_reason says so.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from generation.grading.checking import math_key, number_value, without_unit
from generation.grading.cutoff import BROKEN_END, CUT_FINISHES, no_answer_reason
from generation.grading.quantities import quantities, total
from generation.grading.readers import Reading, note_of, readings_of, value_of

# Words that take back or correct what was just stated (English, Spanish, German, French, Russian, Chinese, Japanese).
REVISION = re.compile(
    r"\b(?:wait|actually|oops|hold\s+on|correction|on\s+second\s+thought|scratch\s+that|I\s+was\s+wrong"
    r"|I\s+(?:have\s+)?made\s+an?\s+(?:\w+\s+)?(?:error|mistake|slip)|(?:my|a|an)\s+(?:\w+\s+)?(?:mistake|slip)"
    r"|miscalculat\w*|recalculat\w*|recomput\w*|redo(?:ing)?|re-do|revis(?:e|ed|ing|ion)"
    r"|(?:should|must)\s+(?:actually\s+)?(?:be|have\s+been)\b(?!\s+(?:noted|mentioned|clear|obvious|emphasi[sz]ed"
    r"|pointed|careful|aware))"
    r"|(?:correct|right|actual|true|real)\s+(?:value|answer|result|option|choice|letter)\s+(?:is|was|would|should)"
    r"|chang\w*\s+(?:my\s+)?answer|espera|en\s+realidad|de\s+hecho|eigentlich|moment\s+mal|korrektur"
    r"|en\s+fait|на\s+самом\s+деле|подожд\w*|исправ\w*)\b|等等|不对|实际上|更正|其实|待って|実は",
    re.IGNORECASE)
# "not X": a value or letter negated after the answer (a question "Why not C?" states nothing).
NOT_VALUE = re.compile(r"\bnot\s+(?:equal\s+to\s+|option\s+|choice\s+)?[\s$(\[{]*(?:\\boxed\{\s*)?"
                       r"(?:[A-Z](?![\w'’-])|[-−]?\d)(?![^.!?\n]*\?)")
PARENTHETICAL = re.compile(r"[(\[]((?:[^()\[\]\n]|[(\[][^()\[\]\n]{0,40}[)\]]){3,300})[)\]]")  # one nested level
CONDITION = re.compile(r"\b(?:if|assuming|assume|when|unless|otherwise|instead|alternatively|would|under)\b",
                       re.IGNORECASE)
DIGIT = re.compile(r"\d")
SIMPLE_FRACTION = re.compile(r"(-?)(?:\\[dt]?frac\{(\d+)\}\{(\d+)\}|(\d+)/(\d+))")  # \frac{1}{2}, \dfrac{1}{2}, 1/2
ASSIGNMENT = re.compile(r"^\s*[A-Za-z](?:_\{?\w+\}?)?\s*=\s*(?=\S)")  # "x = 5" gives the answer 5


@dataclass(frozen=True)
class Decision:
    """How one sample is graded procedurally: method "read" (answer to compare), "undecided" or "no_answer"."""

    answer: str | None
    method: str
    note: str = ""


def agreement_keys(value: str, kind: str) -> set[str]:
    """What a reading offers to agree on (two readings agree when they share one): the letter; for math, the value
    with any 'x =' or unit set aside (exact numbers in any spelling, else its normal form), and a quantity with units
    of the table by its total in the base unit (2 h 30 min = 150 min)."""
    if kind != "math":
        return {value}
    value = ASSIGNMENT.sub("", value, count=1)
    number = without_unit(value) or value
    exact = number_value(number)
    exact = simple_fraction(number) if exact is None else exact
    keys = {str(exact) if exact is not None else math_key(number) or ""}
    read = quantities(value)
    summed = total(read[0]) if read else None
    return keys | {f"{summed[0]}:{summed[1]}"} if summed else keys


def simple_fraction(text: str) -> Fraction | None:
    """The value of a fraction of two integers ('\\frac{1}{2}', '-\\dfrac{3}{4}', '1/2'), else None."""
    match = SIMPLE_FRACTION.fullmatch(text.strip())
    if not match or not int(match.group(3) or match.group(5)):
        return None
    value = Fraction(int(match.group(2) or match.group(4)), int(match.group(3) or match.group(5)))
    return -value if match.group(1) else value


def letter_in(text: str, letters: str) -> bool:
    """Whether a text names one of the answer letters on its own."""
    return any(re.search(rf"(?<![\w'’]){letter}(?![\w'’])", text) for letter in letters)


def revision_note(after: str, kind: str, letters: str) -> str:
    """Why the text after the answer leaves it in doubt ('' when nothing there offers a revision or another value)."""
    if match := REVISION.search(after):
        return f"revised after the answer ({match.group(0).strip()!r})"
    if match := NOT_VALUE.search(after):
        return f"another value negated after the answer ({match.group(0).strip()!r})"
    for match in PARENTHETICAL.finditer(after):
        inside = match.group(1)
        names_value = DIGIT.search(inside) if kind == "math" else letter_in(inside, letters)
        if names_value and CONDITION.search(inside):
            return "another value under a condition after the answer"
    return ""


def verdict_of(plain: str, found: list[Reading], kind: str, letters: str) -> Decision:
    """The decision on a segment's readings: all decidable and agreeing, with nothing after them in doubt."""
    notes = [note_of(reading) for reading in found if note_of(reading)]
    if notes:
        return Decision(None, "undecided", notes[-1])
    values = list(dict.fromkeys(value_of(reading) for reading in found))
    keys = [agreement_keys(value, kind) for value in values]
    if any(not first & second for first in keys for second in keys):
        return Decision(None, "undecided", "readings disagree: " + " vs ".join(values[:3]))
    texts = [plain[max(reading[2] for reading in found):], *values]  # a revision glued to an answer counts too
    note = next(filter(None, (revision_note(text, kind, letters) for text in texts)), "")
    return Decision(None, "undecided", note) if note else Decision(value_of(found[-1]), "read")


def decide(sample: str, kind: str, letters: str = "ABCD", options: list | None = None,
           finish: str | None = None) -> Decision:
    """The one decision every sample goes through (kind: "math" or "choice"; finish: Step 1's finish reason)."""
    if finish in CUT_FINISHES:
        return Decision(None, "no_answer", no_answer_reason(sample, finish=finish))
    plain, found = readings_of(sample, kind, letters, options)
    if found:
        decision = verdict_of(plain, found, kind, letters)
        if decision.method == "read" and finish is None and BROKEN_END.search(sample.rstrip()):
            return Decision(None, "undecided", "cut off inside a word or an expression after its answer")
        return decision
    reason = no_answer_reason(sample, None if kind == "math" else options or list(letters), finish)
    return Decision(None, "no_answer", reason) if reason else Decision(None, "undecided", "no answer statement read")
