"""A seeded corpus of realistic model outputs for Step 2's grading tests and bench (texts written for this project).

The shapes follow real outputs: MMLU-Pro eval_results ("Let's think step by step. ... The answer is (X)."), Qwen2.5-Math
("... the final answer is $\\boxed{x}$."), Minerva ("Final Answer: The final answer is $x$. I hope it is correct."),
GPT/Claude markdown (headings, bullet lists, tables, code blocks, bold answers) and R1-style <think> traces. Each output
is a reasoning body plus an ending that states one answer; the metamorphic relations change only the ending.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, replace

LETTERS = "ABCDEFGHIJ"
OPTIONS = ["2.0 eV", "3.1 eV", "4.5 eV", "6.2 eV", "1.2 eV", "0.8 eV", "5.0 eV", "7.4 eV", "9.9 eV", "2.6 eV"]

CHOICE_BODIES = [
    "Let's think step by step. The photon energy follows from E = hc/λ. With λ = 400 nm, hc = 1240 eV·nm, so "
    "E = 1240/400 = 3.1 eV. Option ({W}) would need a shorter wavelength, so we can rule it out.",
    "Let's think step by step. We need to compare each option against the definition. Options ({W}) and ({V}) describe "
    "a different mechanism, and the remaining ones do not fit the data given in the question.",
    "### Step 1: Identify the quantity\nThe question asks for the energy of one photon.\n\n### Step 2: Compute\n"
    "- $E = hc/\\lambda$\n- $\\lambda = 400$ nm\n- so $E \\approx 3.1$ eV\n\n### Step 3: Compare\n"
    "Option ({W}) is too large by a factor of two.",
    "| Option | Value | Fits? |\n|---|---|---|\n| ({W}) | 2 eV | no |\n| ({V}) | 7.4 eV | no |\n\n"
    "Only one of the listed values agrees with the computation.",
    "<think>\nOkay, so the question is about the photon energy. Maybe the answer is ({W})? Wait, no: 1240/400 is "
    "3.1, not 2. Let me re-check the options once more... yes.\n</think>\n\nThe energy is about 3.1 eV.",
    "To solve this, recall the relation between energy and wavelength:\n\n```python\nenergy = 1240 / 400  # eV\n"
    "print(energy)  # 3.1\n```\n\nThe computed value rules out ({W}) and ({V}).",
    "I need to weigh each option carefully. ({W}) confuses frequency with wavelength, and ({V}) uses the wrong "
    "constant; **the remaining candidates** differ in the second digit only.",
]
CHOICE_ENDINGS = {  # {L}: the stated letter, {O}: its option text
    "mmlu_pro": " The answer is ({L}).",
    "mmlu_pro_newline": "\n\nThe answer is ({L}).",
    "gemini_bold": "\n\nThe answer is **({L})**.",
    "gpt_bold": "\n\n**Answer: ({L}) {O}**",
    "claude": "\n\nThe correct answer is **{L}) {O}**.",
    "qwen_boxed": "\n\nTherefore, the answer is $\\boxed{{{L}}}$.",
    "final_line": "\n\nFinal answer: {L}",
    "minerva": "\n\nFinal Answer: The final answer is {L}. I hope it is correct.",
    "heading": "\n\n### Final Answer\n**({L}) {O}**",
}
CHOICE_WRAPS = {  # the same answer in markdown, a table, a code block, another language, a labelled line
    "bold_sentence": "\n\n**The answer is ({L}).**",
    "table": "\n\n| Step | Result |\n|---|---|\n| Compare options | done |\n| **Final answer** | **({L})** |",
    "table_plain": "\n\n| Answer | ({L}) |",
    "code_block": "\n\n```\nAnswer: {L}\n```",
    "spanish": "\n\nLa respuesta es ({L}).",
    "chinese": "\n\n答案：{L}",
    "russian": "\n\nОтвет: {L}",
    "german": "\n\nDie Antwort ist ({L}).",
    "french": "\n\nLa réponse est ({L}).",
    "portuguese": "\n\nA resposta é ({L}).",
    "arrow_label": "\n\nFinal answer → {L}",
    "dash_label": "\n\nChoice — ({L})",
}
CHOICE_REVISIONS = {  # {W}: a different letter
    "wait_error": " Wait, I made an error: the correct option is ({W}).",
    "actually_not": "\n\nActually, it should be ({W}), not ({L}).",
    "second_thought": "\n\nHmm, on second thought, ({W}) fits better.",
    "condition": " (If the collision were elastic, the answer would be ({W}).)",
    "correction": "\n\n**Correction:** ({W})",
    "oops": "\n\nOops, I misread the table; it should be ({W}).",
    "spanish_wait": "\n\nEspera, la respuesta correcta es ({W}).",
    "bracket": " [Correction: the right option is ({W}).]",
    "same_paragraph": " Hmm, I made an error in the conversion, so ({W}) is correct.",
}
CHOICE_SECOND = {  # a second, different candidate after the answer
    "again": "\n\nThe answer is ({W}).",
    "box": "\n\n$\\boxed{{{W}}}$",
    "part_b": "\n\n(b) For the second part, the answer is ({W}).",
    "table": "\n\n| Answer | ({W}) |",
    "final_line": "\n\nFinal answer: {W}",
    "closest": "\n\nOf the listed values, the closest option is ({W}).",
}
CHOICE_UNREAD = [  # ended normally, no answer statement: the judge must read them
    "\n\nSo the photon described in the option with {O} is the one we want.",
    "\n\nAfter comparing the options, the closest match is the one with {O}.",
]

MATH_BODIES = [
    "We start by setting up the equation. Let $x$ be the unknown quantity; then $3x + 2 = 2x + {N}$, so we "
    "isolate $x$ and simplify.",
    "## Step 1: Understand the problem\nWe need the total after combining both parts.\n\n## Step 2: Compute\n"
    "First part: ${N}$; second part: ${M}$. Combining them and checking the units gives the result.",
    "<think>\nLet me compute. First I get ${M}$... wait, that ignores the second term. Redo: the total is different. "
    "Okay.\n</think>\n\nCombining the two contributions gives the value below.",
    "| Quantity | Value |\n|---|---|\n| first term | {N} |\n| second term | {M} |\n\nAdding the rows and simplifying "
    "gives the result.",
    "To verify, we can compute it directly:\n\n```python\nprint({N} + {M})\n```\n\nThe output confirms the hand "
    "calculation.",
    "Problem: find the value.\n\nSolution: Substituting $n = {N}$ into the formula and simplifying step by step, we "
    "obtain the value stated below.",
]
MATH_ENDINGS = {  # {A}: the stated answer (LaTeX)
    "qwen_boxed": "\n\nTherefore, the final answer is $\\boxed{{{A}}}$.",
    "minerva": "\n\nFinal Answer: The final answer is ${A}$. I hope it is correct.",
    "llama": "\n\nThe final answer is: $\\boxed{{{A}}}$",
    "gpt_heading": "\n\n### Final Answer\n\\[\n\\boxed{{{A}}}\n\\]",
    "answer_is": "\n\nThe answer is ${A}$.",
    "bold_label": "\n\n**Final Answer:** ${A}$",
}
MATH_WRAPS = {
    "bold_sentence": "\n\n**The answer is ${A}$.**",
    "table": "\n\n| Quantity | Value |\n|---|---|\n| Final answer | ${A}$ |",
    "code_block": "\n\n```\nFinal answer: {A}\n```",
    "chinese": "\n\n答案：${A}$",
    "russian": "\n\nОтвет: ${A}$",
    "spanish": "\n\nLa respuesta es ${A}$.",
    "german": "\n\nDie Antwort ist ${A}$.",
    "total_label": "\n\nTotal: ${A}$",
    "arrow_label": "\n\nResult → ${A}$",
}
MATH_REVISIONS = {  # {W}: a different value
    "wait_error": " Wait, I made an arithmetic error: the correct value is ${W}$.",
    "should_be": "\n\nActually, the answer should be ${W}$, not ${A}$.",
    "condition": " (If we count the endpoints, it would be ${W}$ instead.)",
    "correction": "\n\nCorrection: ${W}$.",
    "redo_box": "\n\nI made a sign slip above; redoing it gives $\\boxed{{{W}}}$.",
    "chinese": "\n\n等等，我算错了，应该是 ${W}$。",
    "bracket": " [Correction: ${W}$]",
    "made_error": "\n\nI made an error in step 2, so the value should be ${W}$.",
}
MATH_SECOND = {
    "again": "\n\nThe answer is ${W}$.",
    "box": "\n\n$\\boxed{{{W}}}$",
    "label": "\n\n**Final Answer:** ${W}$",
    "table": "\n\n| Final answer | ${W}$ |",
    "part_b": "\n\n(b) For the second part, the answer is ${W}$.",
}
MATH_UNREAD = ["\n\nThis completes the computation of the sum.",
               "\n\nThus the triangle is obtuse, as its largest angle exceeds a right angle."]


@dataclass(frozen=True)
class Output:
    """One realistic output: its body and ending, the answer it states (right or not), the gold answer, and a different
    candidate for revisions and second answers."""

    kind: str  # "choice" or "math"
    body: str
    ending: str
    answer: str  # the letter or LaTeX answer the ending states
    gold: str
    other: str
    right: bool  # whether `answer` is the gold answer (by construction)

    @property
    def text(self) -> str:
        """The whole output."""
        return self.body + self.ending

    def fill(self, template: str) -> str:
        """A template filled with this output's answer ({L}/{A}), its option text ({O}) and the other one ({W})."""
        return template.format(L=self.answer, A=self.answer, W=self.other, O=option_text(self.answer))

    def with_ending(self, template: str) -> Output:
        """The same body and answer with another ending."""
        return replace(self, ending=self.fill(template))

    def appended(self, template: str) -> Output:
        """This output with text appended after its ending (a revision or a second candidate)."""
        return replace(self, ending=self.ending + self.fill(template))


def option_text(letter: str) -> str:
    """The option text of a letter ('' for a math answer)."""
    return OPTIONS[LETTERS.index(letter)] if len(letter) == 1 and letter in LETTERS else ""


def math_values(rng: random.Random) -> tuple[str, str, str]:
    """(gold, the same value as a model may write it, a different value) in one of several answer kinds."""
    a, b = rng.randint(2, 60), rng.randint(2, 59)
    kind = rng.randrange(8)
    if kind == 0:
        return str(a * b), str(a * b), str(a * b + rng.choice([-1, 1, 10]))
    if kind == 1:
        return f"{a}.{b}", f"{a}.{b}", f"{a}.{b + 1}"
    if kind == 2:
        exponent = rng.randint(3, 9)
        spelled = rng.choice([f"{a / 10}e{exponent}", f"{a / 10} \\times 10^{{{exponent}}}", f"{a / 10}E{exponent}"])
        return f"{a / 10} \\times 10^{{{exponent}}}", spelled, f"{a / 10} \\times 10^{{{exponent + 1}}}"
    if kind == 3:
        return f"{a}", f"{a} \\text{{ cm}}", f"{a + 2} \\text{{ cm}}"
    if kind == 4:
        hours, minutes = rng.randint(1, 9), rng.randint(1, 59)
        return (f"{hours * 60 + minutes} \\text{{ min}}", f"{hours} \\text{{ h }} {minutes} \\text{{ min}}",
                f"{hours} \\text{{ h }} {(minutes + 7) % 60} \\text{{ min}}")
    if kind == 5:
        return (f"{a} \\text{{ cm}} \\times {b} \\text{{ cm}}", f"\\text{{{a} cm by {b} cm}}",
                f"\\text{{{a} cm by {b + 1} cm}}")
    if kind == 6:
        feet, inches = rng.randint(4, 6), rng.randint(1, 11)
        return (f"{feet * 12 + inches} \\text{{ inches}}", f"{feet} \\text{{ ft }} {inches} \\text{{ in}}",
                f"{feet} \\text{{ ft }} {inches - 1} \\text{{ in}}")
    return f"-{a}", f"-{a}", f"{a}"


def choice_output(rng: random.Random) -> Output:
    """A multiple-choice output on ten options, right or wrong with equal chance."""
    gold = rng.choice(LETTERS)
    stated = gold if rng.random() < 0.5 else rng.choice([c for c in LETTERS if c != gold])
    other = rng.choice([c for c in LETTERS if c != stated])
    distractors = rng.sample([c for c in LETTERS if c not in (stated, gold)], 2)
    body = rng.choice(CHOICE_BODIES).format(W=distractors[0], V=distractors[1])
    output = Output("choice", body, "", stated, gold, other, stated == gold)
    return output.with_ending(rng.choice(list(CHOICE_ENDINGS.values())))


def math_output(rng: random.Random) -> Output:
    """A math output whose stated answer is the gold value (as a model may spell it) or a different one."""
    gold, same, different = math_values(rng)
    right = rng.random() < 0.5
    stated, other = (same, different) if right else (different, same)
    body = rng.choice(MATH_BODIES).format(N=rng.randint(2, 99), M=rng.randint(2, 99))
    return Output("math", body, "", stated, gold, other, right).with_ending(rng.choice(list(MATH_ENDINGS.values())))


def corpus(count: int, seed: int = 18) -> list[Output]:
    """`count` outputs, half multiple choice and half math, the same for the same seed."""
    rng = random.Random(seed)
    return [choice_output(rng) if i % 2 == 0 else math_output(rng) for i in range(count)]
