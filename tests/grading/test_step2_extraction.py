"""Step 2 extraction tables: multiple-choice letters and math answers from outputs in several models' styles."""
from __future__ import annotations

import itertools

import pytest

from generation.grading.boxes import last_boxed
from generation.grading.math_parsing import gold_math_answer
from generation.grading.parsing import Choice, valid_letters
from generation.grading.readers import readings_of

OPTIONS = ["London", "Paris", "Rome", "Berlin", "Madrid", "Lisbon", "Vienna", "Prague", "Oslo", "Dublin"]

# Final parts of answers in the styles of Llama, Qwen, GPT, Claude and R1-like reasoning models; {L} is the letter,
# {O} the option's text, {W} a different (wrong) letter that appears earlier in the reasoning.
CHOICE_STYLES = {
    "llama-plain": "To solve this, we compare the options.\n\nOption {W} does not fit.\n\nThe answer is: {L}",
    "llama-best": "Let me think step by step.\nStep 1: eliminate {W}.\n\nThe best answer is {L}.",
    "llama-correct": "## Step 1: Read the question\nWe need the capital.\n\nThe final answer is: $\\boxed{{{L}}}$",
    "llama-paren": "Looking at choice ({W}), it is wrong.\nTherefore, the correct answer is ({L}).",
    "qwen-boxed": "First, consider {W}) — incorrect.\n\nTherefore, the answer is \\boxed{{{L}}}.",
    "qwen-boxed-text": "So we conclude.\n\n\\[\n\\boxed{{\\text{{{L}}}}}\n\\]",
    "qwen-answer-is-option": "Option {W} is tempting but wrong.\nThe answer is: {L}) {O}",
    "gpt-bold": "**Step 1.** Eliminate {W}.\n\n**Answer: ({L})**",
    "gpt-heading": "### Reasoning\nA quick check rules out {W}.\n\n### Final Answer\n**{L}) {O}**\n\nAnswer: {L}",
    "gpt-correct-option": "I compared each option carefully.\n\nThe correct option is **{L}**.",
    "gpt-answer-colon-bold": "Reasoning: {W} is a distractor.\n\n**Answer:** {L}",
    "claude-plain": "Looking at this question, I need to consider each option.\n\n- {W}: no\n\nThe answer is: {L}",
    "claude-dash": "I'll work through this. A careful reading helps.\n\nSo the answer is {L} — {O}.",
    "claude-final-line": "After weighing the evidence, I settle on this option.\n\n{L}",
    "claude-final-line-paren": "Putting it together:\n\n({L})",
    "claude-option-text": "I considered {W} first, but it fails.\n\nThe answer is: {O}",
    "r1-think": "<think>\nOkay, so the question asks... maybe the answer is {W}? Wait, no. Let me re-check.\n"
                "Hmm, I think it's {L}.\n</think>\n\nThe answer is: {L}",
    "r1-think-boxed": "<think>\nAnswer: {W}? No wait, that's wrong. I need to redo this.\n</think>\n\n"
                      "**Final Answer**\n\\boxed{{{L}}}",
    "r1-think-option": "<think>\nThe answer is {W}... hmm, actually not.\n</think>\n"
                       "The correct answer is **{L}) {O}**.",
    "r1-no-open-tag": "We need to find it. The answer is {W}? No.\n</think>\n\nAnswer: {L}",
    "letter-first": "Checking each: option {W} is false.\nOption {L} is correct.",
    "two-statements": "Initially the answer is {W}.\nOn reflection, I change my mind.\nThe answer is: {L}",
    "answer-is-option-word": "Having ruled out the rest, the answer is option {L}.",
    "lower-paren": "Thus the answer is ({l}).",
    "trailing-text-with-I": "The answer is {L} because I computed it twice and a check agrees.",
    "claude-letter-is-correct": "Weighing all of this, ({W}) fails, so {L} is the correct answer.",
    "gpt-recap-after-answer": "**Answer: {L}**\n\nFor reference, the options were:\nA) London\nB) Paris\nC) Rome",
    "claude-text-then-letter": "Only one city fits. The answer is {O} ({L}).",
    "answer-to-question": "The answer to this question is {L}.",
}


def extract_choice(sample: str | None, letters: str = "ABCD", options: list | None = None) -> Choice:
    """The last reading of a multiple-choice sample: what the readers take as its final answer."""
    found = readings_of(sample, "choice", letters, options)[1] if sample is not None else []
    return found[-1][1] if found else Choice(None)


def extract_math(sample: str | None) -> str | None:
    """The last reading of a math sample (its answer as written), or None."""
    found = readings_of(sample, "math", "", None)[1] if sample is not None else []
    return found[-1][1].answer if found else None


def choice_cases() -> list[tuple[str, str, str]]:
    """(style, text, expected letter) for every style and letter of a ten-option question."""
    cases = []
    for (style, template), index in itertools.product(CHOICE_STYLES.items(), range(10)):
        letter, wrong = chr(65 + index), chr(65 + (index + 3) % 10)
        text = template.format(L=letter, W=wrong, O=OPTIONS[index], l=letter.lower())
        cases.append((f"{style}-{letter}", text, letter))
    return cases


@pytest.mark.parametrize("name, text, expected", choice_cases(), ids=lambda v: v if isinstance(v, str) and
                         len(v) < 30 else "")
def test_choice_styles(name, text, expected):
    assert extract_choice(text, valid_letters(OPTIONS), OPTIONS).letter == expected


# Traps: (text, valid letters, expected letter or None)
CHOICE_TRAPS = [
    ("Answer", "ABCD", None),  # the word Answer is not the letter A
    ("The answer is B because a car moves.", "ABCD", "B"),  # lm-eval #4188: the article a must not win
    ("The answer is C because I computed the flux.", "ABCDEFGHIJ", "C"),  # the pronoun I must not win
    ("I think the answer is a good one to consider.", "ABCD", None),
    ("The answer is I think B.", "ABCDEFGHIJ", "B"),  # issue 11: a hedge word, not a pronoun answer
    ("The answer is I.", "ABCDEFGHIJ", "I"),
    ("Answer: I", "ABCDEFGHIJ", "I"),
    ("The answer is A because the force is zero.", "ABCD", "A"),
    ("**Answer: D**\n\nwhere \\boxed{\\langle H\\rangle \\ll \\Delta E}", "ABCD", "D"),  # NeMo-Skills #1526
    ("\\boxed{C}", "ABCD", "C"),  # lighteval #1094: boxed letters
    ("The answer is E", "ABCD", None),  # out of range for A-D
    ("The answer is: E", "ABCDE", "E"),
    ("Answer: (J)", "ABCDEFGHIJ", "J"),
    ("The answer is: (b)", "ABCD", "B"),
    ("the answer is b", "ABCD", "B"),  # issue 11: a line-ending lower-case letter
    ("Analysis of All options. Answer: B", "ABCD", "B"),
    ("Apples are Best. Clearly Definitely.", "ABCD", None),
    ("", "ABCD", None),
    ("The answer is: B\n\nWait, let me reconsider. The answer is: D", "ABCD", "D"),
    ("<think>The answer is B.</think>", "ABCD", "B"),  # nothing follows the think block: use it
    ("<think>The answer is B.</think>\nSo I conclude that the answer is: C", "ABCD", "C"),
    ("<think>\nAnswer: C\n</think>\n\nI am not sure.", "ABCD", "C"),
    ("Option A is wrong, option B is wrong.\nThe correct option is D", "ABCD", "D"),
    ("answer = C", "ABCD", "C"),
    ("The answer is $\\boxed{\\textbf{(C)}}$", "ABCD", "C"),
    ("The correct answer is: **(A) London**", "ABCD", "A"),
    ("Final answer: Rome", "ABCD", "C"),  # the option's text itself
    ("The answer is: berlin.", "ABCD", "D"),
    ("The answer is: Atlantis", "ABCD", None),
    ("I'd pick A", "ABCD", "A"),  # issue 11: "I pick X" commits
    ("B) Paris is the answer I'd pick, and A) is wrong.", "ABCD", None),
    ("Answers: see above", "ABCD", None),
    ("Let me restate them.\nChoices:\nA) London\nB) Paris\nI am unsure.", "ABCD", None),
    ("The answer is: A-B bond", "ABCD", None),  # the letter is part of a word
    ("The answer is A's value", "ABCD", None),
    ("The answer choice is B.", "ABCD", "B"),
    ("The answer would be C.", "ABCD", "C"),
    ("Thus, the answer is therefore B.", "ABCD", "B"),
    ("The answer is:\n\nC", "ABCD", "C"),
    ("The answer is: **B**", "ABCD", "B"),
    ("The answer is `C`", "ABCD", "C"),
    ("Answer: \\(\\text{D}\\)", "ABCD", "D"),
    # a boxed formula whose variable is a capital letter is no answer letter
    ("The area is $\\boxed{A = 12}$.", "ABCD", None), ("So \\boxed{E = mc^2}", "ABCDEFGHIJ", None),
    ("The current is $\\boxed{I = 2.5\\text{ A}}$", "ABCDEFGHIJ", None), ("\\boxed{C \\approx 3}", "ABCD", None),
    ("\\boxed{(B) Paris}", "ABCD", "B"), ("\\boxed{B: Paris}", "ABCD", "B"), ("\\boxed{C. 4 m}", "ABCD", "C"),
    # a wrong answer named after the real one, or an option list after the answer, is no statement
    ("The correct answer is C. The most tempting wrong answer is A.", "ABCD", "C"),
    ("Answer: C\n\nA common incorrect answer is B because it ignores friction.", "ABCD", "C"),
    ("The answer is C.\n\nChoices recap:\nA) London\nB) Paris\nC) Rome\nD) Berlin", "ABCD", "C"),
    ("Let's go through each option:\nA. wrong\nB. right", "ABCD", None),
    ("Let's check each option: A. London is in England", "ABCD", None),
    ("Answer: A is incorrect because it ignores friction.", "ABCD", None),
    ("Answer：C", "ABCD", "C"), ("The answer is：B", "ABCD", "B"),  # full-width colons (Qwen)
    ("Best choice: D", "ABCD", "D"), ("Reasoning first.\nChoice: C", "ABCD", "C"), ("Option: B", "ABCD", "B"),
    ("Therefore, C is the correct answer.", "ABCD", "C"), ("Therefore (C) is the correct answer.", "ABCD", "C"),
    ("I is the best option here.", "ABCDEFGHIJ", "I"), ("A is the correct answer.", "ABCD", "A"),
    ("The answer to this question is C.", "ABCD", "C"),
    ("The answer is Rome (C).", "ABCD", "C"), ("Answer: Paris (B)", "ABCD", "B"),
    ("The answer is Rome (B).", "ABCD", None),  # the text and the letter disagree
]


@pytest.mark.parametrize("text, letters, expected", CHOICE_TRAPS)
def test_choice_traps(text, letters, expected):
    assert extract_choice(text, letters, OPTIONS[:len(letters)]).letter == expected


ROMAN = ["I only", "II only", "III only", "I and II", "I and III", "II and III", "I, II and III", "None", "I or II",
         "All"]


@pytest.mark.parametrize("text, expected", [
    ("The answer is I and II.", "D"), ("The answer is: I, II and III", "G"), ("\\boxed{I and II}", "D"),
    ("The answer is II only.", "B"), ("Answer: I only", "A"), ("The answer is (D) I and II", "D"),
    ("The answer is I.", "I"), ("The answer is (I).", "I"),
])
def test_roman_numeral_options(text, expected):
    """MMLU-Pro options written with roman numerals: a statement naming an option's text picks that option."""
    assert extract_choice(text, valid_letters(ROMAN), ROMAN).letter == expected


@pytest.mark.parametrize("text, expected", [("The answer is (I).", "I"), ("The answer is I.", "I"),
                                            ("The answer is II.", "B"), ("Answer: (A) I", "A")])
def test_bare_letter_beats_an_option_reading_like_it(text, expected):
    """Options "I", "II", ...: a bare "(I)" is the letter I (the format asked for), a longer text names its option."""
    options = ["I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X"]
    assert extract_choice(text, valid_letters(options), options).letter == expected


@pytest.mark.parametrize("text", ["The answer is A and C.", "Answer: B, D", "The answer is (A) or (B)",
                                  "The answer is B/C"])
def test_several_letters_are_ambiguous(text):
    assert extract_choice(text, "ABCD").ambiguous


@pytest.mark.parametrize("text, letter, math", [
    ("Answer:" + "\n" * 50000, None, None),  # these were quadratic once; they must stay instant
    ("\\boxed{" * 3000, None, None),
    ("The answer is: B. " * 5000, "B", "B"),
    ("\\boxed{1} " * 5000, None, "1"),
    ("Answer: Paris " * 5000, None, None),  # two options read "Paris": no single letter
    ("The answer is \\[" * 10000, None, None),  # unclosed math spans
    ("answer is $" * 10000, None, None),
])
def test_pathological_inputs(text, letter, math):
    """Extraction stays linear on adversarial text (each case once took seconds to a minute)."""
    assert extract_choice(text, "ABCDEFGHIJ", ["Paris"] * 2).letter == letter
    if math is not None:
        assert extract_math(text) == math


def test_none_sample_and_letter_ranges():
    assert extract_choice(None).letter is None
    assert valid_letters(None) == "ABCD" and valid_letters(OPTIONS) == "ABCDEFGHIJ"
    assert valid_letters(OPTIONS[:7]) == "ABCDEFG"


MATH_ANSWERS = [
    "5", "-7", "\\frac{1}{2}", "\\frac{\\sqrt{3}}{2}", "\\left( 3, \\frac{\\pi}{2} \\right)", "2\\sqrt{5}",
    "\\begin{pmatrix} 1 \\\\ -2 \\end{pmatrix}", "x^{2}+2x+1", "\\{1, 2, 3\\}", "10\\%", "\\text{Evelyn}",
    "[-2, 7)", "\\dfrac{14}{3}", "3.75", "1{,}000", "\\pi^{2}", "y = 2x + 3", "\\sqrt[3]{2}", "e^{i\\pi}",
    "\\binom{10}{3}", "30^\\circ", "\\$18.90", "2, -3", "\\infty", "\\frac{a+b}{\\sqrt{c^{2}+d^{2}}}",
]

# {A} is the answer as written; {W} a wrong intermediate value the model abandoned.
MATH_STYLES = {
    "llama-final": "## Step 3: Simplify\nWe get the value.\n\nThe final answer is: $\\boxed{{{A}}}$",
    "llama-hope": "Final Answer: The final answer is $\\boxed{{{A}}}$. I hope it is correct.",
    "qwen-display": "Thus we have\n\\[\n\\boxed{{{A}}}\n\\]",
    "qwen-two-boxes": "First attempt: \\boxed{{{W}}} is wrong.\nCorrected: \\boxed{{{A}}}.",
    "gpt-answer-is": "Putting it together, the answer is: {A}",
    "gpt-answer-is-dollars": "So the answer is $${A}$$.",
    "claude-answer-line": "Let me verify: it checks out.\n\n**Answer:** ${A}$",
    "claude-answer-is-inline": "The answer is \\({A}\\).",
    "r1-think": "<think>\nMaybe \\boxed{{{W}}}? Wait, that's wrong.\n</think>\n\n"
                "The final answer is \\(\\boxed{{{A}}}\\).",
    "r1-think-answer": "<think>\nso the answer is {W}... no.\n</think>\nThe answer is: ${A}$",
}


def math_cases() -> list[tuple[str, str, str]]:
    """(style, text, expected answer as written) for every style and answer."""
    cases = []
    for (style, template), answer in itertools.product(MATH_STYLES.items(), MATH_ANSWERS):
        cases.append((style, template.format(A=answer, W="42"), answer))
    return cases


@pytest.mark.parametrize("style, text, expected", math_cases())
def test_math_styles(style, text, expected):
    assert extract_math(text) == expected


MATH_TRAPS = [
    ("The answer is **73**", "73"),  # Math-Verify #76: markdown bold
    ("\\boxed{\\frac{1}{\\sqrt{2}}} and later \\boxed{}", "\\frac{1}{\\sqrt{2}}"),  # an empty box is skipped
    ("\\boxed{\\text{(C)}}", "\\text{(C)}"),
    ("\\fbox{12}", "12"),
    ("The answer is: 12 cm.", "12 cm"),
    ("No final statement here, just 12.", None),
    ("The answer is 5. Answer: 6", "5"),  # 'the answer is' outranks a final-answer line
    ("Answer: 6\nMore text.\nAnswer: 7", "7"),
    ("\\boxed{1} then the answer is 2", "2"),  # issue 11: the last committed answer wins (was 1)
    ("unbalanced \\boxed{\\frac{1}{2}", None),
    (None, None),
    ("Final answer:\n\n$$\n2\\sqrt{3}\n$$", "2\\sqrt{3}"),  # a display block on its own lines
    ("The answer is:\n$$\n7\n$$", "7"), ("Therefore the answer is\n\\[\n\\frac{3}{4}\n\\]", "\\frac{3}{4}"),
    ("## Final Answer\n$$2\\sqrt{3}$$", "2\\sqrt{3}"),  # a heading without a colon
    ("<think>\nso the answer is 3\n</think>\n\n**Final Answer**\n4", "4"),
    ("The answer is 5, since 2+3=5.", "5"), ("The answer is 12 because each side is 3.", "12"),
    ("The answer is $5$, which is $\\frac{10}{2}$.", "5"),
    ("The answer is $x=1$ or $x=2$.", "x=1 or x=2"),  # a hedge stays whole (never just its first value)
    ("The answer is $1$ and $2$.", "1 and 2"),
    ("The answer is：$\\frac{1}{2}$", "\\frac{1}{2}"),  # a full-width colon
    # several boxes listed on the final line are one list (two solutions, or a hedge), never just the last one
    ("The solutions are $\\boxed{2}$ and $\\boxed{-3}$.", "2, -3"), ("\\boxed{2}, \\boxed{-3}", "2, -3"),
    ("So $x=\\boxed{2}$ or $x=\\boxed{-3}$.", "2 or -3"),  # issue 11: boxes joined by "or" are a hedge
    ("\\boxed{3} \\text{ or } \\boxed{4}", "3 or 4"),
    ("Thus $\\boxed{5}$, that is, $\\boxed{5}$", "5"), ("$\\boxed{5}$, $\\boxed{5}$", "5"),
]


@pytest.mark.parametrize("text, expected", MATH_TRAPS)
def test_math_traps(text, expected):
    assert extract_math(text) == expected


@pytest.mark.parametrize("answer, gold", [
    ("\\frac{1}{2}", "\\frac{1}{2}"),
    ("So $x = 3$, and the total is $\\boxed{\\frac{7}{2}}$.", "\\frac{7}{2}"),
    ("Step 1 \\boxed{2}. Finally \\boxed{\\{1,2\\}}", "\\{1,2\\}"),
    (" 42 ", "42"),
    ("$5$", "5"),
    ("\\text{Yes, as shown}", "\\text{Yes, as shown}"),  # a clause inside braces is part of the answer
])
def test_gold_math_answer(answer, gold):
    assert gold_math_answer(answer) == gold


def test_last_boxed_nested():
    assert last_boxed("\\boxed{a} \\boxed{\\frac{\\sqrt{\\frac{1}{2}}}{3}}") == "\\frac{\\sqrt{\\frac{1}{2}}}{3}"
