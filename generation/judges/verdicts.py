"""Judge verdicts by rule: independent readers of a reply, and the verdict the reply ends on wins.

parse_verdict is the one reader of every standard judgment (API, vLLM, K verdicts per sample). Its readers each give
readings (start, end, value), value 1.0 (True), 0.0 (False), PARTIAL or None (no verdict can be given):
- a JSON object with a verdict field: {"verdict": "False", "notes": "..."}, {"is_correct": "no"};
- a labelled clause: "Final verdict: False", "The answer is True", "Veredicto: Falso", "结论：错误", "<answer>False";
- a status word or score under a verdict label: "Status: PASS", "Decision: No", "Grade: 0/1", "Score: 0";
- a concluding clause: "Therefore, the solution is incorrect", ", so it is False", "In conclusion ...", "Donc ...";
- a sentence or line that is only a verdict: "False.", "**True**", "\\boxed{False}", "So my answer is: True.", "✅";
- a yes or no right after a question about the solution's correctness: "Is the solution correct? No.", "Correct? Yes",
  "Are there any errors in the solution? No.", "¿Es correcta la solución? Sí.", "Final answer correct: No";
- a statement that no verdict can be given: "I cannot determine ...", "neither correct nor incorrect";
- when nothing else reads: the reply's last sentence, if it predicates one verdict ("This is not true.").
A reply that ends on a verdict in another format ("My final verdict is: [[A>B]]", "Decision: accept") has none.
Mentions are never readings: verdict words in parentheses or quoted phrases, in a question, under a condition
("it would be True if n were even") or a concession ("Although the answer is correct, ..."), reported from the
solution ("The student claims the answer is correct"), offered as options ("True or False"), about a part of the
solution ("step 3 is wrong"), attributive ("the correct answer"), or in a note ("Note: ..."). A qualified verdict
("partially correct", "correct except for step 3", "correct, but the method is invalid") is PARTIAL: no verdict
alone, consistent with False, and None after a True. The last run of readings (only filler between them; a
conclusion word or a verdict label starts a new one) must agree, and the text after it must not revise it ("Wait,
...", "On reflection ...", "I made a mistake"); otherwise the verdict is None.
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator

from generation.judges import verdict_words as vocabulary
from generation.judges.prompts import strip_thinking

Reading = tuple[int, int, float | None]
ANOTHER_FORMAT = math.nan  # a labelled verdict with no True/False in it ("Final verdict: [[A>B]]", "Decision: accept")
PARTIAL = 0.5  # a qualified verdict ("partially correct", "correct except for step 3"): agrees with False only

SOLUTION_MARKERS = re.compile(r"<\|(?:begin|end)_of_solution\|>")  # Sky-T1 wraps its answer in these
JSON_START = re.compile(r"\{\s*[\"']")
INVALID_ESCAPE = re.compile(r"\\(?![\"\\/bfnrtu])")  # LaTeX in a JSON string: "\frac" is no JSON escape
LATEX_WRAPPER = re.compile(r"\\(?:boxed|text|textbf|textit|mathrm|mathbf|fbox)\{([^{}]*)\}")
MARKUP = re.compile(r"\*+|`+|\$+|~~|\[\[|\]\]|^[ \t]*(?:#+|>+|[-+•]|\d+[.)])(?=\s)", re.MULTILINE)
TABLE_ROW = re.compile(r"^[ \t]*\|([^|\n]*)\|([^|\n]*)\|[ \t]*$", re.MULTILINE)  # "| Verdict | False |"
TABLE_BAR = re.compile(r"\|")
XML_TAG = re.compile(r"<(/?)([A-Za-z][\w-]*)(?:\s[^<>\n]*)?/?>")  # "<answer>", "</verdict>", "<step n=\"1\">"
SENTENCE = re.compile(r"(?:[^\n.!?。！？]|[.!?](?=[^\s.!?]))+[.!?。！？]*")
PARAGRAPH = re.compile(r"(?:[^\n]|\n(?![ \t]*\n))+")
ASIDE = re.compile(r"\([^()\n]*\s[^()\n]*\)|\"[^\"\n]*\s[^\"\n]*\"|“[^”\n]*”|‘[^’\n]*’|«[^»\n]*»"  # phrases only
                   r"|(?<![^\W\d_])'[^'\n]*\s[^'\n]*'(?![^\W\d_])")  # 'a quoted phrase', never an apostrophe
WORD = re.compile(r"[^\W\d_]+")
LABEL_CHARS = 80  # a label and its link lie within the first characters of a clause
QUESTION_CHARS = 300  # a question answered by a yes or a no lies within the characters before it
JSON_PRIMARY = frozenset(vocabulary.LABELS)
JSON_SECONDARY = frozenset({"correct", "is_correct", "iscorrect", "valid", "is_valid", "pass", "passed"})
UNDECIDED_VALUES = frozenset({"insufficient", "unknown", "undetermined", "uncertain", "unclear", "n/a", "none",
                              "null", "partial", "partially correct", "indeterminate", "inconclusive", "abstain"})


def blank(text: str) -> str:
    """Spaces in place of text, newlines kept (every normalisation keeps positions, so readers share them)."""
    return re.sub(r"[^\n]", " ", text)


def verdict_value(match: re.Match) -> float:
    """1.0 or 0.0 for a VERDICT match, negation applied."""
    return float(bool(match.group("true")) != bool(match.group("neg")))


def predicative(text: str, match: re.Match) -> bool:
    """Whether a verdict word predicates ("is False.", "correct and complete") rather than qualifies a noun ("the
    correct answer", "False Positive")."""
    follower = re.match(r"[ \t]+([^\W_]+)", text[match.end():])  # a word or a number ("the correct 13/4")
    return not follower or follower.group(1).lower() in vocabulary.PREDICATIVE_FOLLOWERS


def clause_verdicts(clause: str) -> list[float | None]:
    """The values of the verdict words a clause predicates, mentions left out (a condition before or right after a
    verdict word, a part of the solution named before it, or a report of what the solution says); PARTIAL for a
    qualified one ("partially correct", "correct except for step 3")."""
    values = []
    for match in vocabulary.VERDICT.finditer(clause):
        before, after = clause[:match.start()], clause[match.end():match.end() + 24]
        if not predicative(clause, match) or vocabulary.PART.search(before) or vocabulary.CONDITION.search(before) \
                or vocabulary.CONDITION.match(after.lstrip()) or vocabulary.REPORTED.search(before):
            continue
        qualified = vocabulary.QUALIFIED.search(before) or vocabulary.QUALIFIED_AFTER.match(clause[match.end():])
        raised = bool(vocabulary.NEG_RAISING.search(before))  # "I don't think it is correct"
        values.append(PARTIAL if qualified else float(verdict_value(match) != raised))
    return values


def agreed(values: list[float | None]) -> float | None:
    """The one value all agree on; None when they disagree."""
    return values[0] if len(set(values)) == 1 else None


def status_verdict(value: str, label: str, status_label: bool = False) -> float | None:
    """The verdict of a label's whole value that is a status word under a status label ("Status: PASS", "Verdict:
    No"; status_label: the label is known to name the verdict) or a score under a score label ("Grade: 0/1",
    "Score: 0", "100%", "Correctness: 1"): no credit is False, full credit True; None for anything else ("Score:
    7/10", and "Score: 1" with no scale)."""
    value = value.strip(" \t.!")
    word = vocabulary.STATUS_WORD.match(value)
    if word and (status_label or vocabulary.STATUS_LABEL.search(label)):
        return float(bool(word.group("true")))
    points = vocabulary.SCORE.match(value) if vocabulary.SCORE_LABEL.search(label) else None
    if not points:
        return None
    default = "1" if vocabulary.BINARY_LABEL.search(label) else "nan"
    scale = 100.0 if points.group("percent") else float(points.group("scale") or default)
    return 0.0 if float(points.group("points")) == 0 else 1.0 if float(points.group("points")) == scale else None


def json_value(key: str, value: object) -> tuple[bool, float | None]:
    """(is a verdict, its value) of a verdict-named JSON field's value: a boolean (or 0/1), a verdict word or
    sentence, a status word or score ("pass", "no", "0/1"), or 'insufficient'."""
    key = key.replace("_", " ")
    if isinstance(value, bool) or value in (0, 1) and isinstance(value, int) and not vocabulary.SCORE_LABEL.search(key):
        return True, float(value)
    if value is None:
        return True, None
    if not isinstance(value, (str, int, float)):
        return False, None
    text = str(value).strip().strip(".!").lower()
    if text in UNDECIDED_VALUES or vocabulary.UNDECIDED.search(text):
        return True, None
    values = clause_verdicts(text)
    status = None if values else status_verdict(text, key, status_label=True)
    return (True, agreed(values)) if values else (status is not None, status)


def json_fields(value: object) -> Iterator[tuple[str, object]]:
    """Every (key, value) of a JSON value, nested objects and lists included, in order."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key), item
            yield from json_fields(item)
    elif isinstance(value, list):
        for item in value:
            yield from json_fields(item)


def json_verdict(obj: object) -> tuple[bool, float | None]:
    """(has a verdict, its value) of a JSON object: its verdict-named fields (primary labels first) must agree."""
    primary, secondary = [], []
    for key, value in json_fields(obj):
        tokens = set(re.findall(r"[a-z]+", re.sub(r"([a-z])([A-Z])", r"\1 \2", key).lower()))
        found, verdict = json_value(key, value)
        if found and tokens & JSON_PRIMARY:
            primary.append(verdict)
        elif found and (tokens & JSON_SECONDARY or key.lower() in JSON_SECONDARY):
            secondary.append(verdict)
    chosen = primary or secondary
    return (True, chosen[0] if len(set(chosen)) == 1 else None) if chosen else (False, None)


def object_end(text: str, start: int) -> int | None:
    """The end of the balanced {...} starting at start (braces inside strings ignored), None if it never closes."""
    depth, quote, escaped = 0, "", False
    for index in range(start, len(text)):
        char = text[index]
        if quote:
            escaped, quote = (not escaped and char == "\\"), ("" if char == quote and not escaped else quote)
        elif char in "\"'":
            quote = char
        elif char in "{}":
            depth += 1 if char == "{" else -1
            if not depth:
                return index + 1
    return None


def json_readings(text: str) -> tuple[list[Reading], str]:
    """Readings of the JSON objects in text, and text with every decoded object blanked (its strings unread)."""
    found: list[Reading] = []
    position = 0
    while match := JSON_START.search(text, position):
        end = object_end(text, match.start())
        if end is None:
            break
        source = text[match.start():end]
        try:
            obj = json.loads(source)
        except ValueError:
            try:
                obj = json.loads(INVALID_ESCAPE.sub(r"\\\\", source))
            except ValueError:
                position = match.start() + 1
                continue
        has_verdict, value = json_verdict(obj)
        if has_verdict:
            found.append((match.start(), end, value))
        text = text[:match.start()] + blank(source) + text[end:]
        position = end
    return found, text


def xml_label(tag: re.Match) -> str:
    """An opening XML tag as a label of its element ("<final>" as " final:"), a closing one blanked."""
    return blank(tag.group(0)) if tag.group(1) else (" " + tag.group(2) + ":").ljust(len(tag.group(0)))


def normalise(text: str) -> str:
    """Markup blanked (bold, code, LaTeX wrappers, list markers, headings, closing XML tags), two-cell table rows and
    opening XML tags as labels ("| Verdict | False |", "<verdict>False" as "Verdict: False")."""
    text = TABLE_ROW.sub(lambda m: " " + m.group(1) + ":" + m.group(2) + " ", text)
    previous = None
    while previous != text:
        previous, text = text, LATEX_WRAPPER.sub(lambda m: " " * (len(m.group(0)) - len(m.group(1)) - 1)
                                                 + m.group(1) + " ", text)
    return TABLE_BAR.sub(" ", MARKUP.sub(lambda m: blank(m.group(0)), XML_TAG.sub(xml_label, text)))


def label_clause(clause: str) -> str | None:
    """The text after a label ("Final verdict: False" gives "False"), None when the clause has no label."""
    offset = len(clause) - len(clause.lstrip())
    link = vocabulary.LABEL_LINK.search(clause[:offset + LABEL_CHARS], offset)
    if not link:
        return None
    label = clause[:link.start()]
    tokens = WORD.findall(label)
    named = any(token.lower() in vocabulary.LABELS for token in tokens) or vocabulary.CJK_LABEL.search(label)
    if not named or len(tokens) > vocabulary.LABEL_WORDS or re.search(r"\d", label) or vocabulary.PART.search(label) \
            or vocabulary.REPORTED.search(label):
        return None  # "Step 3: False", "The student says the answer is correct"
    return clause[link.end():]


def clauses(sentence: str, start: int) -> Iterator[tuple[int, str]]:
    """(position, text) of each clause of a sentence."""
    position = 0
    for boundary in vocabulary.CLAUSE_BREAK.finditer(sentence):
        if boundary.start() > position:
            yield start + position, sentence[position:boundary.start()]
        position = boundary.end()
    if position < len(sentence):
        yield start + position, sentence[position:]


def is_bare(sentence: str) -> bool:
    """Whether a sentence is only a verdict: its other words are labels, connectives and fillers, and it relates no
    quantities ("5 and 24 → 24 > 12 → Invalid" checks a case)."""
    rest = vocabulary.VERDICT.sub(" ", vocabulary.NEG_RAISING.sub(" ", sentence))
    return not re.search(r"[=<>→⇒≤≥≠]", rest) and all(
        token.lower() in vocabulary.FILLER or token.lower() in vocabulary.LABELS or vocabulary.CONCLUSION.match(token)
        for token in WORD.findall(rest))


def sentence_readings(sentence: str, start: int, starts_line: bool) -> list[Reading]:
    """The readings of one sentence (parentheses and quoted phrases already blanked); a pronoun-only sentence after
    other text on its line ("Step 8: ... This is correct.") remarks on that text, not on the solution."""
    if "?" in sentence or "？" in sentence:
        return []
    if vocabulary.UNDECIDED.search(sentence):
        return [(start, start + len(sentence), None)]
    values = clause_verdicts(sentence)
    tokens = {token.lower() for token in WORD.findall(vocabulary.VERDICT.sub(" ", sentence))}
    remark = not starts_line and tokens & {"this", "that", "it"} and tokens <= vocabulary.PRONOUN_REMARK
    if values and is_bare(sentence) and not remark:
        return [(start, start + len(sentence), agreed(values))]
    lead = vocabulary.LEAD_VERDICT.match(sentence) if starts_line else None  # "False — the proof fails at step 4"
    lead = None if lead and vocabulary.YES_NO.match(sentence[lead.end():].lstrip()) else lead  # "Correct: no"
    found, concluding = ([(start, start + lead.end(), verdict_value(lead))] if lead else []), False
    previous = ""
    for index, (position, clause) in enumerate(clauses(sentence, start)):
        concluding = concluding or bool(vocabulary.CONCLUSION.match(clause) or vocabulary.REVISION_START.match(clause))
        reported = vocabulary.REPORTED.match(previous)  # "According to the solution, the answer is correct"
        previous = clause
        if vocabulary.CONCESSION.match(clause) or reported:
            continue  # "Although the answer is correct, ..."
        labelled = label_clause(clause)
        label = clause[:len(clause) - len(labelled)] if labelled is not None else ""
        values = clause_verdicts(labelled if labelled is not None else
                                 vocabulary.CONCLUSION.sub(lambda m: blank(m.group(0)), clause, count=1))
        bare = index and is_bare(vocabulary.CONTRAST_START.sub("", clause, count=1))  # "..., but it is False"
        last = not sentence[position - start + len(clause):].strip(" \t.!")  # "Verdict: no, no, no" lists answers
        status = status_verdict(labelled, label) if labelled and last else None
        if values and (concluding or labelled is not None or bare):
            found.append((position, position + len(clause), agreed(values)))
        elif status is not None:
            found.append((position, position + len(clause), status))  # "Status: PASS", "Grade: 0/1"
        elif labelled and WORD.search(labelled) and vocabulary.VERDICT_LABEL.search(label):
            found.append((position, position + len(clause), ANOTHER_FORMAT))  # "My final verdict is: [[A>B]]"
    return [conceded(reading, sentence, start) for reading in found]


def conceded(reading: Reading, sentence: str, start: int) -> Reading:
    """A True reading made PARTIAL by a contrast after it in its sentence that names something False ("The answer
    is correct, but the method is invalid"); any other reading as it is."""
    rest = sentence[reading[1] - start:]
    if reading[2] != 1.0 or not vocabulary.CONTRAST_START.match(rest):
        return reading
    falses = [match for match in vocabulary.VERDICT.finditer(rest) if not verdict_value(match)]
    return (reading[0], reading[1], PARTIAL) if falses else reading


def question_verdict(stem: str, starts_line: bool) -> float | None:
    """The verdict a yes gives to a question about the solution's correctness ("Is the final answer correct",
    "Are there any errors in the solution", "¿Es correcta la solución"); None for any other question: about a step,
    a number or anything else, negated ("Isn't it correct"), or a pronoun remarking on the text before it on its
    line ("Step 3: 4 × 3 = 12. Is that right")."""
    stem = re.split(r"[:：;,，]", stem)[-1]  # the question's last clause: "So, is the solution correct"
    matches = [*vocabulary.VERDICT.finditer(stem), *vocabulary.QUESTION_VERDICT.finditer(stem)]
    rest = vocabulary.QUESTION_VERDICT.sub(" ", vocabulary.VERDICT.sub(" ", stem))
    tokens = {vocabulary.CJK_QUESTION_FILLER.sub("", token.lower()) for token in WORD.findall(rest)} - {""}
    named = vocabulary.SOLUTION_NOUN.search(stem)
    if not matches or any(match.groupdict().get("neg") for match in matches) or vocabulary.PART.search(rest) \
            or not tokens <= vocabulary.QUESTION_WORDS | vocabulary.FILLER | vocabulary.LABELS \
            or not named and (re.search(r"\d", stem) or not starts_line and tokens & {"this", "that", "it"}):
        return None
    return agreed([float(bool(match.group("true"))) for match in matches])


def question_readings(text: str, asides: str) -> list[Reading]:
    """Readings of a yes or a no right after a question about the solution's correctness, or after such a label
    ("Is the solution correct? No." is False, "Q: Is the answer right? A: Yes." True, "Final answer correct: No"
    False); asides is text with parentheses and quotations blanked, where no answer is read."""
    found: list[Reading] = []
    for answer in vocabulary.YES_NO.finditer(text):
        offset = max(0, answer.start() - QUESTION_CHARS)
        before = text[offset:answer.start()]
        label = vocabulary.ANSWER_LABEL.search(before)
        mark = re.search(r"[?？:：][\"'”»)\s]*$", before[:label.start()] if label else before)
        if not mark or not asides[answer.start()].strip():
            continue
        start = max(before.rfind(stop, 0, mark.start()) for stop in "\n.!?。！？") + 1
        line = text[text.rfind("\n", 0, offset + start) + 1:offset + start]
        value = question_verdict(before[start:mark.start()], not line.strip())
        if value is not None:
            yes = answer.group("yes") or answer.group("cjkyes")
            found.append((offset + start, answer.end(), value if yes else 1 - value))
    return found


def blank_options(text: str) -> str:
    """Text with verdict words offered as options blanked ("True or False", "(True/False)", "correct or wrong")."""
    for separator in vocabulary.OPTION_SEPARATOR.finditer(text):
        after = vocabulary.VERDICT.match(text, separator.end() + len(text[separator.end():separator.end() + 4]) -
                                         len(text[separator.end():separator.end() + 4].lstrip(" \t")))
        left = max(0, separator.start() - 24)
        stop = left + len(text[left:separator.start()].rstrip(" \t"))
        before = after and [match for match in vocabulary.VERDICT.finditer(text, left, stop) if match.end() == stop]
        if before:
            start, end = before[-1].start(), after.end()
            text = text[:start] + blank(text[start:end]) + text[end:]
    return text


def reply_readings(text: str) -> tuple[list[Reading], list[tuple[int, int]]]:
    """Every reading of a reply in order, and the spans of its notes (read as mentions)."""
    found, text = json_readings(text)
    text = normalise(text)
    asides = blank_options(ASIDE.sub(lambda m: blank(m.group(0)), text))
    notes = []
    for paragraph in PARAGRAPH.finditer(asides):
        if vocabulary.NOTE.match(paragraph.group(0)):
            notes.append(paragraph.span())
            continue
        for sentence in SENTENCE.finditer(paragraph.group(0)):
            line = paragraph.group(0)[:sentence.start()].rsplit("\n", 1)[-1]
            found += sentence_readings(sentence.group(0), paragraph.start() + sentence.start(), not line.strip())
    found += [reading for reading in question_readings(text, asides)
              if not any(start <= reading[0] < end for start, end in notes)]
    return sorted(found), notes


def last_sentence_reading(text: str, notes: list[tuple[int, int]]) -> list[Reading]:
    """The fallback reader: the last sentence outside notes when it says the solution (only fillers before its first
    verdict word: "This is not true.", "The solution is incorrect because ...") is one value."""
    text = blank_options(ASIDE.sub(lambda m: blank(m.group(0)), normalise(json_readings(text)[1])))
    sentences = [s for s in SENTENCE.finditer(text) if s.group(0).strip() and not any(
        start <= s.start() < end for start, end in notes)]
    last = sentences[-1].group(0) if sentences else "?"
    first = vocabulary.VERDICT.search(last)
    if "?" in last or not first or not is_bare(last[:first.start()]):
        return []
    values = clause_verdicts(last)
    return [(sentences[-1].start(), sentences[-1].end(), values[0])] if len(set(values)) == 1 else []


def revises(text: str) -> bool:
    """Whether text revises what came before it ("Wait, ...", "On reflection ...", "I made a mistake")."""
    return bool(vocabulary.REVISION_ANYWHERE.search(text) or any(
        vocabulary.REVISION_START.match(sentence.group(0)) for sentence in SENTENCE.finditer(text)))


def final_verdict(text: str, readings: list[Reading], notes: list[tuple[int, int]]) -> float | None:
    """The verdict the reply ends on: its last run of readings agreeing (a run: readings with only labels and filler
    between them; reasoning, a conclusion word or a verdict label starts a new one), and nothing after it revising
    it."""
    run: list[float | None] = []
    previous_end = 0
    for start, end, value in readings:
        lead = text[previous_end:end]
        if previous_end and (vocabulary.CONCLUSION.match(lead) or vocabulary.VERDICT_HEADING.search(lead)) or any(
                word.lower() not in vocabulary.FILLER and word.lower() not in vocabulary.LABELS
                for word in WORD.findall(text[previous_end:start] if previous_end else "")):
            run = []
        run.append(value)
        previous_end = max(previous_end, end)
    tail = "".join(" " if any(s <= i < e for s, e in notes) else char
                   for i, char in enumerate(text[previous_end:], previous_end))
    return None if revises(tail) or len(set(run)) != 1 else run[0]


def parse_verdict(text: str | None, opened_thinking: bool = False, truncated: bool = False) -> float | None:
    """The verdict of a standard judgment: 1.0 (True), 0.0 (False) or None (no final verdict, undecided, cut off)."""
    if text is None or truncated:
        return None
    answer = strip_thinking(text, opened_thinking)
    if answer is None or not answer.strip():
        return None
    answer = SOLUTION_MARKERS.sub(lambda m: "\n" + " " * (len(m.group(0)) - 1), answer)
    readings, notes = reply_readings(answer)
    readings = readings or last_sentence_reading(answer, notes)
    committed = [reading for reading in readings if reading[2] != PARTIAL]
    if not committed or math.isnan(committed[-1][2] if committed[-1][2] is not None else 0.0):
        return None  # no verdict, only a qualified one, or one in another format at the end
    verdict = final_verdict(answer, [r for r in committed if r[2] is None or not math.isnan(r[2])], notes)
    qualified_after = any(start > committed[-1][0] for start, _, value in readings if value == PARTIAL)
    return None if verdict == 1.0 and qualified_after else verdict  # "True. It is only partially correct."


BOXED_INTEGER = re.compile(r"\\boxed\{\s*(-?\d+)\s*\}")


def parse_critique(text: str | None, opened_thinking: bool = False, truncated: bool = False) -> float | None:
    """The verdict of a critique: the last \\boxed{integer}; -1 (no wrong paragraph) is 1.0, any other 0.0."""
    if text is None or truncated:
        return None
    answer = strip_thinking(text, opened_thinking)
    boxes = BOXED_INTEGER.findall(answer or "")
    if not boxes:
        return None
    return 1.0 if int(boxes[-1]) == -1 else 0.0
