"""Step 2 three-way outcome on less tidy endings (issue 11): every sample is graded right or left undecided.

Each table row is (sample, gold, expected). expected is the letter / True / False of a decided grade, "undecided"
(the judge reads it under --llm_fallback auto) or "no_answer" (the sample holds no answer: empty, cut off, a
refusal). The endings are written in the styles of Llama, Qwen, GPT-4o, Claude, R1 and o-series models.
"""
from __future__ import annotations

import pytest

from generation.grading.decision import Graded, fallback_targets, grade_rows
from generation.grading.parsing import MATH_ANSWER_IS, STATEMENTS, answer_is_matches, foreign_hint, statement_matches
from generation.grading.rule import Policy

OPTIONS4 = ["2 eV", "3.1 eV", "4.5 eV", "6 eV"]
OPTIONS10 = [f"{n} J" for n in range(10, 110, 10)]
REASONING = ("Let me work through this carefully. The photon energy follows from E = hc / lambda, and with "
             "lambda = 400 nm we get about 3.1 eV. Checking the other quantities gives the same picture.\n\n")
CUT = "We now substitute the values into the expression and find that the numerator becomes"
LOOP = "Wait, let me re-check the calculation of the energy. " * 40

# --- multiple choice: (sample, gold letter, expected) on four options unless the sample says otherwise ----------
LETTER_IS_CORRECT = [
    ("Therefore, B is correct.", "B", "B"), ("So B is correct.", "B", "B"), ("Hence (C) is right.", "C", "C"),
    (REASONING + "After checking the units, C is correct.", "C", "C"),  # GPT-4o
    (REASONING + "Only (D) is right.", "D", "D"),
    (REASONING + "**B is correct.**", "B", "B"),  # Claude, bold conclusion
    (REASONING + "That means A is correct, since the others violate energy conservation.", "A", "A"),
    (REASONING + "Therefore B is the correct one.", "A", "B"),
    (REASONING + "Clearly, (C) is right!", "C", "C"),
]
HEDGE_WORDS = [
    ("The answer is most likely B.", "B", "B"), ("Answer: I believe it's B.", "B", "B"),
    ("The right answer here is B.", "B", "B"),
    (REASONING + "The answer is likely to be D.", "D", "D"),  # Llama
    (REASONING + "The answer is almost certainly C.", "C", "C"),
    (REASONING + "Answer: I think it's (A).", "A", "A"),
    (REASONING + "The answer, I believe, is D.", "D", "D"),
    (REASONING + "The correct answer in this case is A.", "A", "A"),
    (REASONING + "Final answer: I'd say B.", "C", "B"),
]
CHOOSE = [
    ("I'll go with C.", "C", "C"), ("I choose B.", "B", "B"), ("So I'd answer B.", "B", "B"),
    (REASONING + "I'm going with (D).", "D", "D"),  # Claude
    (REASONING + "I will select option A.", "A", "A"),
    (REASONING + "Going with B.", "B", "B"),
    (REASONING + "I'd pick C.", "A", "C"),
    (REASONING + "Let's go with A.", "A", "A"),
    (REASONING + "I select (C).", "C", "C"),
]
LANGUAGES = [
    ("答案：C", "C", "C"), ("La respuesta correcta es B", "B", "B"), ("Ответ: A", "A", "A"),
    (REASONING + "因此，正确答案是 B。", "B", "B"),  # Qwen in Chinese
    (REASONING + "所以答案为（D）。", "D", "D"),
    (REASONING + "故选C。", "C", "C"),
    (REASONING + "Por lo tanto, la respuesta es (A).", "A", "A"),
    (REASONING + "La bonne réponse est (A).", "A", "A"),
    (REASONING + "Donc, la réponse est C.", "C", "C"),
    (REASONING + "Die richtige Antwort ist D.", "D", "D"),
    (REASONING + "Antwort: B", "B", "B"),
    (REASONING + "Правильный ответ: C", "C", "C"),
    (REASONING + "Ответ — D.", "D", "D"),
    (REASONING + "正解は B です。", "B", "B"),
    (REASONING + "答え：A", "A", "A"),
    (REASONING + "A resposta correta é C.", "C", "C"),
    (REASONING + "Resposta: (D)", "D", "D"),
]
LOWER_CASE = [
    ("answer: c", "C", "C"),
    (REASONING + "final answer: b", "B", "B"),
    (REASONING + "answer: d.", "D", "D"),
    (REASONING + "so the answer is c", "C", "C"),
    (REASONING + "**answer:** a", "A", "A"),
    (REASONING + "the correct option is d", "D", "D"),
]
NAMED_LATER = [
    ("The answer is a 3.1 eV photon, i.e. option B.", "B", "B"),
    (REASONING + "The energy is 3.1 eV, which is choice (B).", "B", "B"),  # Llama on MMLU-Pro
    (REASONING + "Of the listed values the closest is (B).", "B", "B"),
    (REASONING + "We get 3.1 eV, which corresponds to option B.", "B", "B"),
    (REASONING + "That gives 4.4 eV, matching option C.", "C", "C"),
    (REASONING + "The result is 6 eV, corresponding to (D).", "D", "D"),
    (REASONING + "The closest option to our value of 3.1 eV is (B).", "B", "B"),  # Llama on MMLU-Pro
    (REASONING + "This matches option C.", "C", "C"),
]
CORRECTIONS = [  # issue 31: an answer withdrawn by an explicit correction before a new committed one is no reading
    ("Answer: B\n\nActually, wait. I mixed up the wavelength; redoing it, it should be D.", "D", "D"),  # R1
    ("The answer is not A; it is C.", "C", "C"),
    ("**Answer: A**\n\nHmm, wait. Rechecking the sign, it should be (C).", "C", "C"),
    ("Answer: B\n\nOn second thought, D.", "D", "D"),
    ("Answer: A\nActually, it's C.", "C", "C"),
    ("The answer is B. Correction: D.", "D", "D"),
    ("Answer: C\n\nHmm, no. It must be B.", "B", "B"),
    ("Answer: D. Wait, that's not right; I'll change my answer to A.", "A", "A"),
    (REASONING + "$\\boxed{B}$\n\nHmm, wait: I misread the sign. It should be D.", "D", "D"),  # Qwen, R1
    ("Answer: B\n\nWait, I misread the question.\n\nAnswer: D\n\nHmm, actually B may fit better.", "D", "undecided"),
    ("The answer is B. Actually, it should be D, or possibly C.", "D", "hedged"),
]
OUT_OF_RANGE = [
    (REASONING + "The answer is C.\n\nHmm, none of these match 7 J exactly; the answer is E.", "C", "undecided"),
    (REASONING + "Answer: B\n\nWait, recomputing gives 7 J, which isn't listed... so the answer is F.", "B",
     "undecided"),
    (REASONING + "\\boxed{E}", "A", "undecided"),  # Qwen boxing a fifth letter on a four-option question
    (REASONING + "Answer: C\n\nFinal answer: G", "C", "undecided"),
    (REASONING + "The answer is H.", "A", "undecided"),
    (REASONING + "So the answer is (K).", "A", "undecided"),  # ten options: A-J (see OUT_OF_RANGE_TEN)
]
EXPLANATORY = [
    ("The answer is B.\nOption D is correct only when friction is ignored.", "B", "B"),
    (REASONING + "The answer is A.\nChoice B is the right answer only for an ideal gas.", "A", "A"),
    (REASONING + "Answer: C\n\nOption A is correct for a closed system, but this one is open.", "C", "C"),
    (REASONING + "The correct answer is D. Option B is correct in classical mechanics, but not here.", "D", "D"),
    (REASONING + "**Answer: B**\n\nWhy not C? C is the correct answer when the temperature is constant.", "B", "B"),
    (REASONING + "The answer is (C).\n(A) is the best option if cost matters more than speed.", "C", "C"),
    (REASONING + "The answer is B. To check whether the answer is C instead, compare the units.", "B", "B"),
]
LETTER_HEDGES = [  # issue 31: a hedge is graded incorrect (declared policy --hedges incorrect), with its note
    (REASONING + "It's either B or D.", "B", "hedged"),
    (REASONING + "The answer is B, or possibly D.", "B", "hedged"),
    (REASONING + "The answer is most likely B, but C is also possible.", "B", "hedged"),
    (REASONING + "Answer: B (or maybe D)", "B", "hedged"),
    (REASONING + "The answer is A or possibly C.", "A", "hedged"),
    (REASONING + "Either (A) or (C) could be correct here.", "A", "hedged"),
    ("The answer is (A).\n\nThe answer is (C).\n\nThe answer is (B).\n\nThe answer is (A).", "A", "hedged"),
    (REASONING + "The answer is (B).\nAnswer: (D)", "B", "hedged"),
    (REASONING + "The answer is (B) and (D).", "B", "hedged"),  # several letters for one question
    (REASONING + "The answers are (B) and (D), respectively.", "B", "undecided"),  # a multi-part answer
    ("(a) The speed is 3 m/s. The answer is (B). (b) The time is 2 s. The answer is (D).", "B", "undecided"),
]
ENDED_UNREAD = [  # ended normally, answer not readable procedurally: the judge must read them
    (REASONING + "After comparing the options, the closest match is the second one.", "B", "undecided"),
    (REASONING + "So the photon described in the second option is the one we want.", "B", "undecided"),
    (REASONING + "It has to be the one about 3.1 eV.", "B", "undecided"),
    (REASONING + "Both of the middle options look plausible to me.", "B", "undecided"),
    (REASONING + "The energy is 3.1 eV.", "B", "undecided"),
]
BARE_LETTERS = [("(c)", "C", "C"), ("b", "B", "B"), ("c", "C", "C"), ("(d)", "D", "D"), ("**b**", "B", "B"),
                ("b)", "B", "B"), ("d.", "D", "D"),
                ("B) 3.1 eV photon", "B", "B"), ("**C.** 4.5 eV, from E = hc/lambda", "C", "C"),  # o-series replies
                ("A. This one is wrong because the units differ.", "A", "undecided")]
NO_ANSWER = [
    ("", "B", "no_answer"), ("   \n\n ", "B", "no_answer"),
    (REASONING + CUT, "B", "no_answer"),  # no statement, stops mid-sentence, no finish reason (--answerless)
    (REASONING + LOOP, "B", "no_answer"),  # Llama repetition loop until the limit
    (REASONING + LOOP + "Wait, let me re-check the calc", "B", "no_answer"),
    ("<think>\nOkay, the photon energy. Let me compute hc/lambda first. That gives 3.1 eV. Now the options.",
     "B", "no_answer"),  # R1 cut inside its thinking
    (REASONING + "None of the options is correct.", "B", "no_answer"),
    (REASONING + "I cannot determine the answer from the information given.", "B", "no_answer"),
]
# Guards for the new readings: remarks after the answer that must not replace it (most were right before too).
CHOICE_GUARDS = [
    ("The answer is B.\n\nStatement I is correct, and statement II is wrong.", "B", "B"),
    ("The answer is C.\n\nVitamin C is the right one for scurvy, which is why.", "C", "C"),
    ("Answer: B\n\nSo it's not A.", "B", "undecided"),  # issue 18: "not X" after the answer
    ("Answer: D\n\nI think A is correct only in vacuum.", "D", "D"),
    ("Answer: B\nNote: if the answer were C, the units would differ.", "B", "B"),
    ("Answer: B\n\nMaybe the answer is C?", "B", "B"), ("Answer: A\n\nWait, is it C? No, A is right.", "A", "A"),
    ("Answer: B\n\nIt should be noted that A is close.", "B", "B"),
    ("Before I answer, note that C is tempting.\n\nAnswer: B", "B", "B"),
    ("The answer is B. None of the other options fit.", "B", "B"),
    ("The answer is B, but let me double-check the units once more. They agree.", "B", "B"),
    ("The answer is B.\n\nNote that the product has no C.", "B", "B"),
    ("The answer is B.\n\nThat is, option D overestimates it.", "B", "B"),
    ("The answer is B.\n\nGoing with D would be wrong.", "B", "B"),
    ("The answer is B.\n\nThe closest wrong option is D.", "B", "B"),
    ("The answer is B.\n\nI'd go with D if we ignored friction.", "B", "B"),
    ("The answer is B.\n\nIs it D? No.", "B", "B"),
]
CHOICE_TABLE = (LETTER_IS_CORRECT + HEDGE_WORDS + CHOOSE + LANGUAGES + LOWER_CASE + NAMED_LATER + CORRECTIONS
                + OUT_OF_RANGE + EXPLANATORY + LETTER_HEDGES + ENDED_UNREAD + BARE_LETTERS + NO_ANSWER + CHOICE_GUARDS)


def grade_one(sample: str, gold: str, dataset_type: str, options: list | None = None,
              policy: Policy = Policy()) -> Graded:
    """The grade of one sample in a one-row dataset."""
    row = {"instruction": "q", "answer": gold, "samples": [sample]}
    if options is not None:
        row["options"] = options
    return grade_rows([row], dataset_type, 1, lambda n: None, policy=policy)[0][0]


def outcome(grade: Graded) -> object:
    """A grade as the tables write it: the letter / True / False when decided, else its method."""
    return grade.method if grade.method in ("undecided", "no_answer") else grade.correct


@pytest.mark.parametrize("sample, gold, expected", CHOICE_TABLE)
def test_choice_outcomes(sample, gold, expected):
    options = OPTIONS10 if "(K)" in sample else OPTIONS4
    grade = grade_one(sample, gold, "mmlu_pro", options)
    if expected == "hedged":
        assert (grade.method, grade.answer, grade.correct) == ("procedural", None, False)
        assert grade.note.startswith("hedged") and grade_one(sample, gold, "mmlu_pro", options,
                                                             Policy(hedges="undecided")).method == "undecided"
    elif expected in ("undecided", "no_answer"):
        assert grade.method == expected and grade.correct is False and grade.note
    else:
        assert grade.method == "procedural" and grade.answer == expected
        assert grade.correct is (gold == expected)
        other = next(letter for letter in "ABCD" if letter != expected)  # no false positive
        assert grade_one(sample, other, "mmlu_pro", options).correct is False


# --- math: (sample, gold, expected) ----------------------------------------------------------------------------
BARE_MATH = [
    ("12", "12", True), ("**42**", "42", True), ("$\\frac12$", "\\frac{1}{2}", True),
    ("4", "4", True),  # an o-series short reply
    ("$\\frac{3}{4}$", "0.75", True), ("\\[ 2\\sqrt{3} \\]", "\\sqrt{12}", True), ("-7", "-7", True),
    ("(2, 5)", "(2,5)", True), ("x = 5", "5", True), ("0.25", "\\frac14", True), ("13", "12", False),
    (REASONING + "**42**", "42", True),  # a bold final line after the working
]
CONCLUSIONS = [
    ("Therefore, $x = 5$.", "5", True),
    (REASONING + "So the total is $42$.", "42", True),
    (REASONING + "Thus the area is $24$ square units.", "24", True),
    (REASONING + "Hence $n = 12$.", "12", True),
    (REASONING + "Therefore, the probability is $\\frac{1}{6}$.", "\\frac16", True),
    (REASONING + "So the remainder is 3.", "3", True),
    (REASONING + "Thus $m + n = 17$.", "18", False),
]
MATH_CORRECTIONS = [  # issue 18: a box revised in words is left to the judge
    ("$\\boxed{12}$ ... The correct answer is 14", "14", True),  # issue 31: the withdrawn 12 is no reading
    (REASONING + "$\\boxed{12}$\n\nWait, I double-counted the corners. The answer is 8.", "8", True),
    (REASONING + "So $\\boxed{3}$. Hmm, actually the answer should be $4$.", "4", True),
    (REASONING + "\\boxed{5}\n\nOn rechecking the second case: Answer: 7", "7", "undecided"),  # no correction word
    (REASONING + "$\\boxed{10}$\n\nCorrection: the final answer is $\\frac{21}{2}$.", "\\frac{21}{2}", True),
    (REASONING + "\\boxed{12}\n\nWait, I forgot the empty set. The answer is 13.", "12", False),
    (REASONING + "\\boxed{12}\n\nWait, I forgot one case. The answer is 13, or maybe 14.", "13", "undecided"),
]
MATH_HEDGES = [
    ("\\boxed{3}$ or possibly $\\boxed{4}", "4", "undecided"),
    (REASONING + "\\boxed{3} \\text{ or } \\boxed{4}", "3", "undecided"),
    (REASONING + "The answer is 3 or 4.", "4", "undecided"),
    (REASONING + "$\\boxed{7}$ (or maybe $\\boxed{8}$)", "8", "undecided"),
    (REASONING + "The answer is either $\\boxed{2}$ or $\\boxed{5}$.", "5", "undecided"),
    (REASONING + "Final answer: $\\boxed{12}$ or $\\boxed{13}$, I am not sure which.", "12", "undecided"),
]
BOX_LISTS = [
    ("The roots are \\(\\boxed{2}\\) and \\(\\boxed{3}\\).", "2, 3", True),
    ("The roots are \\(\\boxed{2}\\) and \\(\\boxed{3}\\).", "3", False),
    ("$x_1=\\boxed{2}, x_2=\\boxed{3}$", "2, 3", True),
    ("$$\\boxed{2}\\quad\\text{and}\\quad\\boxed{3}$$", "3", False),
    (REASONING + "\\[\nx = \\boxed{-1}\n\\]\n\\[\nx = \\boxed{4}\n\\]", "-1, 4", True),
    (REASONING + "\\boxed{1}, \\quad \\boxed{5}", "1, 5", True),
    (REASONING + "\\(x = \\boxed{2}\\), \\(y = \\boxed{7}\\)", "7", False),
    (REASONING + "\\[ x = \\boxed{1} \\]\n\\[ x = \\boxed{6} \\]", "6", False),
    (REASONING + "\\(\\boxed{0}\\), \\(\\boxed{9}\\)", "0, 9", True),
]
THOUSANDS = [
    ("\\boxed{1125}", "1, 125", False), ("\\boxed{1, 125}", "1125", False),
    ("\\boxed{12, 345}", "12345", False), ("\\boxed{1,125}", "1, 125", False),
    ("\\boxed{2000}", "2, 000", False), ("The answer is $10, 250$.", "10250", False),
]
UNITS = [
    ("\\boxed{\\text{12 cm}}", "12", True), ("\\boxed{\\text{12 inches}}", "12", True),
    ("\\boxed{12\\,\\mathrm{cm}}", "12", True), ("\\boxed{\\text{7 days}}", "7", True),
    ("\\boxed{\\text{5 meters}}", "5", True), ("\\boxed{\\text{3 hours}}", "3", True),
    ("\\boxed{\\text{8 feet}}", "8", True),
]
INTERVALS = [
    ("\\boxed{x \\le 3}", "(-\\infty, 3]", True), ("\\boxed{2 \\le x < 5}", "[2, 5)", True),
    ("\\boxed{x \\ge 2}", "[2, \\infty)", True), ("\\boxed{x > -1}", "(-1, \\infty)", True),
    ("\\boxed{-3 < x < 3}", "(-3, 3)", True), ("\\boxed{3 \\ge x}", "(-\\infty, 3]", True),
    ("\\boxed{x \\le -1}", "(-\\infty, -1]", True),
]
WORDS_EXTRA = [
    ("\\boxed{\\text{even function}}", "\\text{even}", "undecided"),
    ("\\boxed{\\text{the function is odd}}", "odd", "undecided"),
    ("\\boxed{\\text{not even}}", "\\text{even}", "undecided"),
    ("\\boxed{\\text{east of the river}}", "east", "undecided"),
    ("\\boxed{\\text{Evelyn Smith}}", "\\text{Evelyn}", "undecided"),
]
MATH_UNREAD = [
    (REASONING + "Thus the triangle is obtuse, as its largest angle exceeds a right angle.", "3", "undecided"),
    (REASONING + "This completes the computation of the sum.", "3", "undecided"),
    (REASONING + CUT, "3", "no_answer"), (REASONING + LOOP, "3", "no_answer"), ("", "3", "no_answer"),
    (REASONING + "I cannot solve this problem with the given information.", "3", "no_answer"),
    ("<think>\nLet me set up the equation: 3x + 2 = 11, so x", "3", "no_answer"),
]
MATH_LANGUAGES = [
    (REASONING + "答案：$\\frac{1}{2}$", "\\frac12", True), (REASONING + "Ответ: 12", "12", True),
    (REASONING + "La respuesta es $7$.", "7", True), (REASONING + "Die Antwort ist 9.", "9", True),
    (REASONING + "A resposta é $5$.", "5", True),
]
# Guards: graded right before issue 11 too; they must stay right (no false positive from the new readings).
GUARDS = [
    ("\\boxed{1,125}", "1125", True), ("\\boxed{12345}", "12,345", True), ("\\boxed{125, 1}", "1, 125", True),
    ("\\boxed{12 \\text{ inches}}", "12", True), ("\\boxed{24 \\text{ cm}^2}", "24", True),
    ("The answer is 24 square units.", "24", True), ("\\boxed{\\text{13 cm}}", "12", False),
    ("\\boxed{45^\\circ}", "45", True), ("\\boxed{x < 3}", "(-\\infty, 3]", False),
    ("\\boxed{(1, \\infty)}", "x > 1", True), ("\\boxed{[-2, \\infty)}", "x \\geq -2", True),
    ("\\boxed{x \\leq 4}", "(-\\infty, 3]", False), ("\\boxed{x \\in [1, 2)}", "[1,2)", True),
    ("\\boxed{\\text{odd}}", "\\text{even}", False), ("\\boxed{\\text{Tuesday}}", "Tuesday", True),
    ("\\boxed{\\text{9 feet}}", "8", False), (REASONING + "The answer is $6$, possibly $7$.", "6", "undecided"),
    (REASONING + "\\boxed{6}\n\nThis answer is consistent with the symmetry of the problem.", "6", True),
    (REASONING + "$$x = \\boxed{-1}$$ and $$x = \\boxed{4}$$", "4", False),
    ("\\boxed{5}\n\nThe answer is in the form a/b.", "5", True), ("\\boxed{5}\n\nIf the answer is 6, then", "5", True),
    ("The answer is 5.\n\nWe can verify: 2 + 3 = 5", "5", True), ("\\boxed{12}\n\nSo the answer is 12 cm.", "12", True),
    ("Thus the answer is $\\boxed{12}$.\n\nThis is the final answer.", "12", True),
    ("So we get $\\boxed{12}$.\n\nHmm, the answer is 12 or 13? It is 12.", "12", True),
    ("So we get $\\boxed{12}$.\n\nThe answer is exactly what we expected.", "12", True),
    ("So we get $\\boxed{12}$.\n\nNote: the answer is an integer, as expected.", "12", True),
    ("So we get $\\boxed{12}$.\n\nThe answer is 12 cm^2.", "12", True),
]
MATH_TABLE = (BARE_MATH + CONCLUSIONS + MATH_CORRECTIONS + MATH_HEDGES + BOX_LISTS + THOUSANDS + UNITS + INTERVALS
              + WORDS_EXTRA + MATH_UNREAD + MATH_LANGUAGES + GUARDS)


@pytest.mark.parametrize("sample, gold, expected", MATH_TABLE)
def test_math_outcomes(sample, gold, expected):
    grade = grade_one(sample, gold, "math")
    assert outcome(grade) == expected
    if expected in ("undecided", "no_answer"):
        assert grade.correct is False and grade.note


@pytest.mark.parametrize("options, expected", [(OPTIONS4, "no_answer"), (OPTIONS4[:3] + ["None of the above"],
                                                                          "undecided")])
def test_none_of_the_above_is_an_answer_where_an_option_says_so(options, expected):
    """"None of the above is correct" names no option on most questions, but is the answer where an option reads so."""
    grade = grade_one(REASONING + "After checking each value, none of the above is correct.", "D", "mmlu", options)
    assert grade.method == expected


def test_auto_sends_every_undecided_sample_and_no_empty_one():
    """--llm_fallback auto targets exactly the undecided samples; cut-off and empty ones stay no_answer."""
    table = ENDED_UNREAD + LETTER_HEDGES + OUT_OF_RANGE[:5] + NO_ANSWER
    row = {"instruction": "q", "answer": "B", "options": OPTIONS4, "samples": [sample for sample, _, _ in table]}
    graded = grade_rows([row], "mmlu", 1, lambda n: None)
    undecided = [(0, i) for i, (_, _, expected) in enumerate(table) if expected == "undecided"]
    assert fallback_targets(graded, "auto") == undecided and len(undecided) >= 10
    assert fallback_targets(graded, "never") == []


EDGES = ["The answer is B.\n  Option: C\n\tgoing with D\nFinal Answer\nA", "x_answer is 5; 3answer: 4"]


@pytest.mark.parametrize("text", [sample for sample, _, _ in CHOICE_TABLE + MATH_TABLE] + EDGES)
def test_fast_statement_search_equals_the_regex_scan(text):
    """Trying the statement regexes only at opening words and line starts finds what a full regex scan finds."""
    spans = [match.span() for match in statement_matches(text, 0)]
    assert spans == [match.span() for match in STATEMENTS[foreign_hint(text)].finditer(text)]
    spans = [match.span() for match in answer_is_matches(text, 0)]
    assert spans == [match.span() for match in MATH_ANSWER_IS[foreign_hint(text)].finditer(text)]
