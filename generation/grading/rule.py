"""The decision rule of Step 2's procedural grader: decide only when every reading agrees and nothing revises it.

decide() is the one place every sample goes through. A sample is read by independent readers (grading.readers), up to
where it turns to another question. Readings followed by an explicit correction (REVISION) and then a new committed
answer are withdrawn. The sample is decided (method "read": its answer is then compared with the gold one) only when
every standing reading is decidable, all give the same answer (math: equal under the grading's own equivalence), and
the text after the last of them offers no other candidate or revision: revision words ("wait", "actually", "I made an
error", "should be", "the correct value is"), "not X", or a parenthetical naming a value under a condition. Several
different committed letters with no correction between them are a hedge (method "hedged": graded incorrect under the
declared policy, Policy.hedges). Anything else is "undecided" (the judge's under --llm_fallback auto); a sample with
no answer to read is "no_answer" where grading.cutoff.no_answer_reason says so, or, under Policy.answerless, when a
released text (no finish reason) stops mid-sentence without any answer statement.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from generation.grading.checking import MATH_TIMEOUT_S, math_key, math_verdict, number_value, without_unit
from generation.grading.cutoff import (
    BROKEN_END,
    CUT_FINISHES,
    cut_table,
    looping,
    names_option,
    no_answer_reason,
    says_none,
    unfinished,
)
from generation.grading.parsing import is_hedge, is_out_of_range, normalize_option, option_letter
from generation.grading.quantities import quantities, total
from generation.grading.readers import Reading, note_of, readings_of, value_of
from generation.grading.statements import stated_option, worded_after

LOOP_TAIL = 200  # a text cut off in a loop within this many characters of its last answer repeats that answer
HEDGES = ("incorrect", "undecided")  # Step 2's --hedges
ANSWERLESS = ("no_answer", "undecided")  # Step 2's --answerless

# Words that take back or correct what was just stated (English, Spanish, German, French, Russian, Chinese, Japanese).
REVISION = re.compile(
    r"\b(?:wait|actually|oops|hold\s+on|correction|on\s+second\s+thought|scratch\s+that|I\s+was\s+wrong"
    r"|I\s+(?:have\s+)?made\s+an?\s+(?:\w+\s+)?(?:error|mistake|slip)|(?:my|a|an)\s+(?:\w+\s+)?(?:mistake|slip)"
    r"|miscalculat\w*|recalculat\w*|recomput\w*|redo(?:ing)?|re-do|revis(?:e|ed|ing|ion)"
    r"|(?:should|must)\s+(?:actually\s+)?(?:be|have\s+been)\b(?=\s+(?:\(?[A-Z]\)?(?![\w'’])|[-−+$\d(\\.]"
    r"|the\s+(?:correct|right|answer|value|option|choice|result)|closer|close\s+to|around|about|approximately|roughly"
    r"|nearly|option|choice"
    r"|equal|less\s+than|more\s+than|higher|lower|greater|smaller|larger))"
    r"|(?:correct|right|actual|true|real)\s+(?:value|answer|result|option|choice|letter)\s+(?:is|was|would|should)"
    r"|chang\w*\s+(?:my\s+)?answer"
    r"|(?:need|have|are\s+asked)\s+to\s+(?:choose|select|pick)\s+(?:only\s+)?(?:one|a\s+single)"
    r"|only\s+one\s+(?:option|answer|choice)\s+(?:can|should|must|may|is\s+to)\s+be\s+(?:selected|chosen|given|picked)"
    r"|(?:asks|calls)\s+for\s+(?:a\s+single|one|only\s+one)\s+(?:answer|option|choice)|requires\s+a\s+single\s+answer"
    r"|espera|en\s+realidad|de\s+hecho|eigentlich|moment\s+mal|korrektur"
    r"|en\s+fait|на\s+самом\s+деле|подожд\w*|исправ\w*)\b|等等|不对|实际上|更正|其实|待って|実は",
    re.IGNORECASE)
# Words that choose one answer of a hedge stated before: "(F) or (G), but since ..., the final answer is (F)", "(I) or
# (J). However, ... so the answer is (J)". Example: "but since"
NARROWING = re.compile(r"\b(?:but|however|since|final|finally|most|more|better|rather|choose|select|pick|go\s+with"
                       r"|prefer\w*|only\s+one|single)\b", re.IGNORECASE)
HEDGE_LETTERS = re.compile(r"\b[A-Z]\b")  # the letters a hedge's note names ("a hedge between answers: F or G")
# "not X": a value or letter negated after the answer (a question "Why not C?" states nothing).
NOT_VALUE = re.compile(r"\bnot\s+(?:equal\s+to\s+|option\s+|choice\s+)?[\s$(\[{]*(?:\\boxed\{\s*)?"
                       r"(?:[A-Z](?![\w'’-])|[-−]?\d)(?![^.!?\n]*\?)")
# The answer rejected in its own sentence: "The closest option is (E) 3025, but it is not the correct answer."
# Example: "but it is not the correct answer"
REJECTED_AFTER = re.compile(r"\b(?:but|though|although|however)\b,?\s+(?:it|this|that)(?:['’]s|\s+is)\s+not\s+"
                            r"(?:the\s+)?(?:correct|right|exact|true|valid)\b", re.IGNORECASE)
SENTENCE_END = re.compile(r"[!?\n]|\.(?!\d)")  # Example: "."
PARENTHETICAL = re.compile(r"[(\[]((?:[^()\[\]\n]|[(\[][^()\[\]\n]{0,40}[)\]]){3,300})[)\]]")  # one nested level
CONDITION = re.compile(r"\b(?:if|assuming|assume|when|unless|otherwise|instead|alternatively|would|under)\b",
                       re.IGNORECASE)
DIGIT = re.compile(r"\d")
SIMPLE_FRACTION = re.compile(r"(-?)(?:\\[dt]?frac\{(\d+)\}\{(\d+)\}|(\d+)/(\d+))")  # \frac{1}{2}, \dfrac{1}{2}, 1/2
ASSIGNMENT = re.compile(r"^\s*[A-Za-z](?:_\{?\w+\}?)?\s*=\s*(?=\S)")  # "x = 5" gives the answer 5
# A marker of a question's parts between two answers: "(b) ...", "b) ...", "Part 2", "part (c)" (so "(a) ... the answer
# is (C). (b) ... the answer is (F)." is a multi-part answer, not a hedge).
PART_MARKER = re.compile(r"(?<![\w(])\(?[a-e]\)(?=\s)|\b(?i:part)\s+\(?(?:[a-e]|[1-5]|i{1,3}|iv)\)?(?!\w)")


# Letters that answer a question's parts: "(C) and (B) respectively", "(J) and (I) for the two questions".
RESPECTIVELY = re.compile(r"\b(?:respectively|for\s+(?:the\s+)?(?:two|three|both|each|first|second)\s+"
                          r"(?:questions?|parts?))\b", re.IGNORECASE)


@dataclass(frozen=True)
class Policy:
    """The declared grading policies (Step 2's --hedges and --answerless).

    hedges: "incorrect" grades a multiple-choice hedge (several different committed letters with no correction
    between them, or "B or D") incorrect with method procedural and a note, as a human grader does; "undecided" leaves
    it to the judge. answerless: "no_answer" says a released text (no finish reason) with no answer statement anywhere
    that stops mid-sentence holds no answer (it was cut off); "undecided" leaves it to the judge.
    """

    hedges: str = "incorrect"
    answerless: str = "no_answer"

    def __post_init__(self) -> None:
        if self.hedges not in HEDGES or self.answerless not in ANSWERLESS:
            raise ValueError(f"hedges must be one of {HEDGES} and answerless one of {ANSWERLESS}, "
                             f"got {self.hedges!r}, {self.answerless!r}")


@dataclass(frozen=True)
class Decision:
    """How one sample is graded procedurally: method "read" (answer to compare), "undecided" or "no_answer"."""

    answer: str | None
    method: str
    note: str = ""


DEFAULT_POLICY = Policy()


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


def standing(plain: str, found: list[Reading]) -> list[Reading]:
    """The readings not withdrawn: those from the last one that an explicit correction (REVISION, before or in its own
    statement) separates from the reading before it ("Answer: B ... wait, I misread ... Answer: D" stands on D), or
    that narrows a hedge before it down to one of its letters ("The answer is (F) or (G), but since ..., the final
    answer is (F)" stands on F)."""
    start = 0
    for index in range(1, len(found)):
        between = plain[found[index - 1][2]:max(found[index - 1][2], found[index][2])]
        if REVISION.search(plain, found[index - 1][2], max(found[index - 1][2], found[index][2])) or narrows(
                found[index - 1], found[index], between):
            start = index
    return found[start:]


def narrows(hedge: Reading, reading: Reading, between: str) -> bool:
    """Whether a single letter reading chooses one letter of the hedge reading before it, with a word of choice
    between them (NARROWING)."""
    note, letter = note_of(hedge), value_of(reading)
    return is_hedge(note) and bool(letter) and not note_of(reading) and bool(NARROWING.search(between)) \
        and letter in HEDGE_LETTERS.findall(note.split(":", 1)[-1])


def readings_agree(values: list[str], kind: str, timeout: float | None) -> bool:
    """Whether readings give one answer: the same letter; for math the same agreement key, else equal under the
    grading's own equivalence (so \\sqrt8 and 2\\sqrt2 agree)."""
    keys = [agreement_keys(value, kind) for value in values]
    if all(first & second for first in keys for second in keys):
        return True
    return kind == "math" and all(math_verdict(first, second, timeout)[0] is True
                                  for index, first in enumerate(values) for second in values[index + 1:])


def hedged(note: str, policy: Policy) -> Decision:
    """A multiple-choice hedge under the declared policy: graded incorrect (method "hedged"), or undecided."""
    note = "hedged: " + note.removeprefix("readings disagree: ")
    return Decision(None, "hedged" if policy.hedges == "incorrect" else "undecided", note)


def verdict_of(plain: str, found: list[Reading], kind: str, letters: str, options: list | None, policy: Policy,
               timeout: float | None) -> Decision:
    """The decision on a segment's readings: the standing ones all decidable and agreeing, nothing after them in doubt.
    Math readings that disagree stay undecided ("or" also joins the solutions of an equation, and separate boxes
    often answer separate parts)."""
    found = standing(plain, found)
    notes = [note_of(reading) for reading in found if note_of(reading)]
    if notes:
        letters_read = list(dict.fromkeys(value_of(reading) for reading in found if not note_of(reading)))
        hedge_letters = {letter for note in notes if is_hedge(note)
                         for letter in HEDGE_LETTERS.findall(note.split(":", 1)[-1])}
        if kind == "choice" and all(is_hedge(note) or is_out_of_range(note) for note in notes) and (
                len(notes) == len(found) and hedge_letters or len(letters_read) > 1
                or hedge_letters and not set(letters_read) <= hedge_letters):  # "(A) and (I). ... (F)."
            note = notes[-1] if len(letters_read) < 2 else "readings disagree: " + " vs ".join(letters_read[:3])
            if PART_MARKER.search(plain) or RESPECTIVELY.search(plain, found[-1][0]):
                return Decision(None, "undecided", "a multi-part answer: " + note.split(": ", 1)[-1])
            return hedged(note, policy)
        return Decision(None, "undecided", notes[-1])
    values = list(dict.fromkeys(value_of(reading) for reading in found))
    if not readings_agree(values, kind, timeout):
        note = "readings disagree: " + " vs ".join(values[:3])
        if kind == "choice" and PART_MARKER.search(plain, found[0][0], found[-1][0]):
            return Decision(None, "undecided", "a multi-part answer: " + " vs ".join(values[:3]))
        return hedged(note, policy) if kind == "choice" else Decision(None, "undecided", note)
    end = max(reading[2] for reading in found)
    worded = worded_after(plain, end, values[-1], [normalize_option(option) for option in options], letters) \
        if kind == "choice" and options else None
    if worded:  # "The right choice is (F) protecting local optometrists ..." (option B's words)
        return Decision(None, "undecided", worded)
    stated = stated_option(plain, end) if kind == "choice" and options else None
    if stated and option_letter(stated, [normalize_option(option) for option in options], letters) == values[-1]:
        end = plain.index(stated, end) + len(stated)  # the letter's own option text ("(E) It should be used.")
    close = SENTENCE_END.search(plain, end)
    if kind == "choice" and REJECTED_AFTER.search(plain, end, close.start() if close else len(plain)):
        return Decision(None, "undecided", "the answer rejected in its own sentence")
    texts = [plain[end:], *values]  # a revision glued to an answer counts too
    note = next(filter(None, (revision_note(text, kind, letters) for text in texts)), "")
    if note and kind == "choice" and says_none(plain[end:], options):
        return Decision(None, "no_answer", "the answer is withdrawn: none of the options")
    return Decision(None, "undecided", note) if note else Decision(value_of(found[-1]), "read")


def decide(sample: str, kind: str, letters: str = "ABCD", options: list | None = None, finish: str | None = None,
           policy: Policy | None = None, timeout: float | None = MATH_TIMEOUT_S) -> Decision:
    """The one decision every sample goes through (kind: "math" or "choice"; finish: Step 1's finish reason)."""
    policy = policy or DEFAULT_POLICY
    if finish in CUT_FINISHES:
        return Decision(None, "no_answer", no_answer_reason(sample, finish=finish))
    plain, found, cut = readings_of(sample, kind, letters, options)
    if found:
        decision = verdict_of(plain, found, kind, letters, options, policy, timeout)
        if decision.method == "read" and finish is None and not cut and (
                BROKEN_END.search(plain.rstrip()) or sample.rstrip().endswith("|") and cut_table(sample.rstrip())) \
                and not (looping(plain) and len(plain) - found[-1][2] <= LOOP_TAIL):  # a loop repeating its answer
            return Decision(None, "undecided", "cut off inside a word, an expression or a table after its answer")
        return decision
    reason = no_answer_reason(sample, None if kind == "math" else options or list(letters), finish)
    if not reason and finish is None and policy.answerless == "no_answer" and unfinished(sample):
        reason = "no answer statement, and the text stops mid-sentence (no finish reason: cut off)"
    if not reason and kind == "choice" and options and policy.answerless == "no_answer" and "\\boxed" not in plain \
            and not names_option(plain, options, letters):  # (a boxed expression may evaluate to an option)
        reason = "no answer statement, and no option named"
    return Decision(None, "no_answer", reason) if reason else Decision(None, "undecided", "no answer statement read")
