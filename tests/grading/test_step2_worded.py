"""Worded answers and run-on summaries (issue 31, part 3): seeded generators in the shapes left undecided or misread on
real MMLU-Pro outputs, each variant's right grade known by construction. A letter with a paraphrase of its own option
is that option (never when the paraphrase is negated or words another option); a value stated without a letter names
the option of that value; texts cut inside a table or a display hold no answer; summaries over several questions after
the answer never change the grade; a hedge followed by a third letter is a hedge."""
from __future__ import annotations

import random

from generation.grading.cutoff import unfinished
from generation.grading.rule import decide

LETTERS = "ABCDEFGHIJ"
VARIANTS = 300
# Ten option texts with vocabularies of their own, and a paraphrase of each (other word forms, words dropped).
CLAIMS = [("The tenant abandoned the premises before the lease expired.", "the tenant abandoning the premises early"),
          ("The landlord accepted late payments for several months.", "that the landlord accepted the late payments"),
          ("The contract lacked consideration from the buyer.", "the buyer's contract lacking consideration"),
          ("The witness was bribed by the prosecution.", "that the prosecution bribed the witness"),
          ("The statute protects local optometrists from competition.", "protecting local optometrists from outside "
                                                                         "competition"),
          ("The pharmacist exercised reasonable care under the circumstances.", "he exercised reasonable care"),
          ("The survey gives self-reports about bullying behaviours.", "survey, as it gives self-reports about "
                                                                       "bullying"),
          ("Begin ganciclovir therapy.", "to begin ganciclovir therapy"),
          ("Glaciers carved the valley during the last ice age.", "glaciers carving the valley in the ice age"),
          ("The merchant shipped the goods to the wrong port.", "that the merchant shipped goods to the wrong port")]
OPENINGS = ["The best defense would be", "Therefore, the most appropriate next step is", "The strongest argument is",
            "So the right choice here would be", "Hence the correct option is"]
AFTERS = ["", " This is the standard view of the courts.", " The other options do not address the question.",
          "\nThis follows from the facts above."]
UNITS = ["J", "kg", "m/s", "Btu/hr", ""]
REASONS = ["We apply the usual formula to the given values. ", "First convert the units, then substitute. ", ""]


def claims_row(rng: random.Random) -> tuple[list[str], list[str]]:
    """Ten option texts in a random order and their paraphrases in the same order."""
    shuffled = rng.sample(CLAIMS, len(CLAIMS))
    return [option for option, _ in shuffled], [paraphrase for _, paraphrase in shuffled]


def test_a_letter_with_a_paraphrase_of_its_own_option_is_that_option():
    """'... would be (D) that the prosecution bribed the witness.' reads D (undecided on the code before)."""
    rng = random.Random(3101)
    for _ in range(VARIANTS):
        options, paraphrases = claims_row(rng)
        index = rng.randrange(len(options))
        text = (f"{rng.choice(REASONS)}{rng.choice(OPENINGS)} ({LETTERS[index]}){rng.choice(['', ' -', ':', ','])} "
                f"{paraphrases[index]}.{rng.choice(AFTERS)}")
        decision = decide(text, "choice", LETTERS, options)
        assert (decision.method, decision.answer) == ("read", LETTERS[index]), text


def test_a_negated_or_foreign_paraphrase_never_reads_as_the_letter():
    """A paraphrase with a negation its option lacks, or one that words another option, is never read as the letter's
    option: no false positive from word overlap."""
    rng = random.Random(3102)
    for _ in range(VARIANTS):
        options, paraphrases = claims_row(rng)
        index, other = rng.sample(range(len(options)), 2)
        negated = rng.choice(["not ", "never ", "no longer "]) + paraphrases[index]
        stated = rng.choice([negated, paraphrases[other], f"it is false that {paraphrases[index]}"])
        text = f"{rng.choice(OPENINGS)} ({LETTERS[index]}) {stated}.{rng.choice(AFTERS)}"
        decision = decide(text, "choice", LETTERS, options)
        assert decision.answer != LETTERS[index] or decision.method != "read", text


def value_row(rng: random.Random) -> tuple[list[str], list[float], str]:
    """Ten distinct values with one unit as option texts (some written with a trailing .0)."""
    unit = rng.choice(UNITS)
    values = [float(value) for value in rng.sample(range(12, 990), 10)]
    texts = [f"{value:.1f} {unit}".strip() if rng.random() < 0.5 else f"{value:g} {unit}".strip() for value in values]
    return texts, values, unit


def test_a_value_stated_without_a_letter_names_the_option_of_that_value():
    """'The answer is approximately 385 meters.', '... = 720 / 6 = 120$.' read the option of that value; a negated
    value, a value of no option or two values read none."""
    rng = random.Random(3103)
    for _ in range(VARIANTS):
        options, values, unit = value_row(rng)
        index = rng.randrange(len(options))
        value = f"{values[index]:g}"
        stated = rng.choice([f"approximately {value} {unit}", f"${2 * values[index]:g} / 2 = {value}$",
                             f"({value} {unit})", value, f"about {value}{unit}"]).strip()
        text = f"{rng.choice(REASONS)}The answer is {stated}."
        decision = decide(text, "choice", LETTERS, options)
        assert (decision.method, decision.answer) == ("read", LETTERS[index]), (text, options)
        missing = max(values) + rng.randint(1, 9)
        for wrong in (f"not {value}", f"{missing:g} {unit}".strip(), f"{value} or {values[index - 1]:g}",
                      f"the point (2, 4), since 2 \\cdot 4 = {value}"):
            decision = decide(f"The answer is {wrong}.", "choice", LETTERS, options)
            assert decision.method != "read", (wrong, options)


def test_a_text_cut_inside_a_table_or_a_display_is_unfinished():
    """A released text that stops inside display math or a table row stops mid-sentence; the same text completed does
    not."""
    rng = random.Random(3104)
    for _ in range(VARIANTS):
        columns = rng.randint(3, 7)
        header = "| " + " | ".join(rng.choice("PQRS") for _ in range(columns)) + " |"
        row = "| " + " | ".join(rng.choice("TF") for _ in range(columns)) + " |"
        table = "\n".join([header, "|" + "---|" * columns] + [row] * rng.randint(1, 4))
        cut_row = "| " + " | ".join(rng.choice("TF") for _ in range(rng.randint(1, columns - 1))) + " |"
        display = f"We get:\n$$\ny^2 = {rng.randint(2, 900)}\n$$"
        finished = rng.choice([f"{table}\n", f"{display}\n", f"{table}\n\n{display}\n"])
        assert not unfinished(finished), finished
        cut = rng.choice([f"{table}\n{cut_row}", f"{display}\nThen\n$$", f"{table}\nP(S|U) = P(U|"])
        assert unfinished(cut), cut
        decision = decide(f"Let us build the truth table.\n{cut}", "choice", LETTERS, [f"Option {n}" for n in LETTERS])
        assert decision.answer is None and decision.method in ("no_answer", "undecided"), cut
        numeric = cut.replace("T", "1").replace("F", "0")
        assert decide(f"Let us tabulate.\n{numeric}", "choice", LETTERS, [f"{n} kg" for n in range(10)]).method \
            == "no_answer", numeric


def summary_after(rng: random.Random, said: str) -> str:
    """A run-on after the answer about several questions (the prompt's examples), in one of the real shapes."""
    others = rng.sample([letter for letter in LETTERS if letter != said], 4)
    repeated = others[:2] + [others[0]] + others[2:] + [said]
    return rng.choice([
        f"Now, let's {rng.choice(['combine', 'summarize'])} all the answers{rng.choice(['', ' into one response'])}."
        f"\n\nThe answer is ({others[0]}).",
        f"Final Answer: {', '.join(repeated)}",
        f"Final Answer: The answer is ({others[0]}), ({others[1]}), ({others[0]}), ({said}).",
        f"Final Answer: The answer is ({others[0]}) for the physics question, ({others[1]}) for the law question, and "
        f"({said}) for this question.",
        f"Final Answer:\nThe answer is **{others[0]}**. (Boycotts, Buycotts, Digital technology)"])


def test_a_summary_over_several_questions_after_the_answer_never_changes_the_grade():
    """'The answer is (C).' then a summary of the prompt's questions reads C (a hedge on the code before)."""
    rng = random.Random(3105)
    options = [f"{value} eV" for value in range(11, 21)]
    for _ in range(VARIANTS):
        said = rng.choice(LETTERS)
        text = f"{rng.choice(REASONS)}The answer is ({said}).\n\n{summary_after(rng, said)}"
        decision = decide(text, "choice", LETTERS, options)
        assert (decision.method, decision.answer) == ("read", said), text


def test_a_hedge_then_a_third_letter_is_a_hedge():
    """'The answer is (A) and (I).' then 'Final Answer: (F)' names three answers: graded as a hedge (undecided on the
    code before)."""
    rng = random.Random(3106)
    options = [f"{value} eV" for value in range(11, 21)]
    for _ in range(VARIANTS):
        first, second, third = rng.sample(LETTERS, 3)
        hedge = rng.choice([f"The answer is ({first}) and ({second}).", f"The answers are ({first}) and ({second})."])
        text = f"{rng.choice(REASONS)}{hedge}\n\nFinal Answer: The answer is ({third})."
        assert decide(text, "choice", LETTERS, options).method == "hedged", text


def test_cut_lists_variables_rejections_and_listed_lines_are_no_letter_answers():
    """Shapes misread on held-out outputs: the next label of a cut list, the first letter of a cut repeated word, a
    variable named like a letter, a letter rejected in its sentence, and a final answer over two labelled lines."""
    rng = random.Random(3107)
    options = [f"{value} kg" for value in range(11, 21)]
    for _ in range(VARIANTS):
        index = rng.randrange(1, 9)
        letter, following = LETTERS[index - 1], LETTERS[index]
        items = "\n".join(f"({label}) means {rng.choice(['more', 'less', 'none'])} of it." for label in LETTERS[:index])
        word = rng.choice(["Hence", "Because", "Given", "Clearly"])
        lines = "\n".join(f"{word} x = {rng.randint(1, 9)}." for _ in range(3))
        for text in (f"Now, consider each choice:\n{items}\n({following})", f"{lines}\n{word[0]}"):
            assert decide(text, "choice", LETTERS, options).answer is None, text
        gold = LETTERS[rng.randrange(10)]
        variable = f"We define $I = \\int_0^1 x\\,dx = {rng.randint(2, 9)}$. The answer is ({gold})."
        assert decide(variable, "choice", LETTERS, options).answer == gold, variable
        for rejected in (f"The value is not listed. The closest option is ({letter}), but it's not correct.",
                         f"The closest option is ({letter}) {options[index - 1]}, but it is not the correct answer."):
            assert decide(rejected, "choice", LETTERS, options).answer is None, rejected
        listed = f"So, the final answer is:\n{letter}. {options[index - 1]}\n{following}. {options[index]}"
        assert decide(listed, "choice", LETTERS, options).method != "read", listed



def test_a_placeholder_statement_after_the_answer_never_changes_the_grade():
    """'The answer is ...' (a placeholder) after the answer states nothing (undecided on the code before)."""
    rng = random.Random(3108)
    for _ in range(VARIANTS):
        count = rng.randint(4, 9)
        options = [f"{value} mol" for value in rng.sample(range(2, 80), count)]
        letters = LETTERS[:count]
        said = rng.choice(letters)
        answer = rng.choice([f"which is closest to option ({said}).", f"The answer is ({said})."])
        tail = rng.choice(["The answer is ...", "The answer is …", "Final answer is: ..."])
        text = f"{rng.choice(REASONS)}So the amount is {rng.randint(2, 80)} mol, {answer}\n\n{tail}"
        decision = decide(text, "choice", letters, options)
        assert (decision.method, decision.answer) == ("read", said), text
