"""A seeded corpus of realistic LM-judge replies for Step 3b's verdict tests (texts written for this project).

The shapes follow public judge transcripts: step-by-step evaluations ending in a labelled verdict and first-error
notes (MR-GSM8K judges: "Final Judgement: wrong / First Error Step: 2"), graders' numbered sections ("3. Final
Decision:" then the verdict on its own line), JSON critiques in code fences ({"verdict": ..., "notes": ...}),
R1-style <think> traces, markdown reviews, and the final True/False line our prompt asks for. A reply is a body
(reasoning that commits to no verdict though it uses the words: "step 2 is correct", "the correct value", "a false
start") plus an ending that states one verdict; the metamorphic relations change only what follows the body.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

BODIES = [
    "Step 1: The student sets up 3x + 5 = 20. This is correct.\nStep 2: Subtracting 5 gives 3x = 15, which is "
    "correct.\nStep 3: Dividing by 3 gives x = 5; the arithmetic is right.",
    "Let me check each step.\n\n1. The expansion of (a+b)^2 is correct.\n2. The substitution uses the correct value "
    "b = 3.\n3. The simplification in the last line drops a term, a common false step.",
    "<think>\nThe claim looks true at first. Let me verify step 2... 12/4 = 3, fine. Is step 3 right? It is, "
    "though the bound is loose. So far it seems correct.\n</think>\n\nI checked the solution step by step.",
    "## Analysis\n\n- **Inference steps:** each follows from the previous one.\n- **Calculations:** 7 × 8 = 56 is "
    "correct.\n- **Edge cases:** n = 0 is not covered, which may or may not matter.",
    "The solution claims that every prime greater than 2 is odd, which is a true statement, and then uses it to "
    "bound the sum by 2n + 1.",
    "Evaluating the reasoning: the author computes the discriminant as 16 - 12 = 4 and finds two real roots. The "
    "correct value of the discriminant is indeed 4, and the roots follow.",
    "Checking the units: the answer is given in meters, as the problem asks. The conversion 3 km = 3000 m is "
    "correct; a false assumption about the speed would change everything, but none is made.",
    "Step-by-step Evaluation:\n- In step 1, the student uses the relative speed 70 - 55 = 15 mph, which is the "
    "correct approach.\n- In step 2, the student divides 75 by 15 and gets 5 hours.",
    "Is 91 prime? No: 91 = 7 × 13, as the student notes. Can the sum be negative? No.\n\nIs step 2 correct? Yes. "
    "Does the student use the right formula? Yes, the one from the statement.",
]
WORDS = {  # value -> the words a style uses for it ({yes}: the answer to "Is it correct?", {no}: to "Any errors?")
    True: {"V": "True", "v": "true", "C": "Correct", "c": "correct", "es": "Verdadero", "de": "richtig",
           "fr": "correcte", "ru": "верно", "zh": "正确", "ja": "正しい", "json": "true", "yes": "Yes", "no": "No",
           "esyes": "Sí", "fryes": "Oui", "deyes": "Ja", "ruyes": "Да", "zhyes": "是", "jayes": "はい"},
    False: {"V": "False", "v": "false", "C": "Wrong", "c": "incorrect", "es": "Falso", "de": "falsch",
            "fr": "incorrecte", "ru": "неверно", "zh": "错误", "ja": "正しくない", "json": "false", "yes": "No",
            "no": "Yes", "esyes": "No", "fryes": "Non", "deyes": "Nein", "ruyes": "Нет", "zhyes": "否",
            "jayes": "いいえ"},
}
# Endings that state one verdict, in the styles real judges write ({V}: the verdict word of that style).
ENDINGS = [
    "\n\n{V}", "\n\n**{V}**", "\n\nFinal verdict: {V}", "\n\nVerdict: {V}.", "\n\n\\boxed{{{V}}}",
    "\n\nTherefore, the solution is {c}.", "\n\nIn conclusion: {V}", "\n\nSo my answer is {V}.",
    "\n\nFinal Judgement: {c}\nFirst Error Step: N/A", "\n\n3. Final Decision:\n{C}",
    "\n\n```json\n{{\"verdict\": \"{c}\", \"notes\": \"Each step was checked; the claim in step 2 is true.\"}}\n```",
    "\n\nOverall, the solution is {c}.", "\n\nHence: {V}", "\n\n| Criterion | Result |\n|---|---|\n| Verdict | {V} |",
    "\n\n## Verdict\n\n{V}", "\n\nVeredicto: {es}", "\n\nFazit: Die Lösung ist {de}.", "\n\n结论：{zh}",
    "\n\nИтак, решение {ru}.", "\n\nDonc, la solution est {fr}.", "\n\n結論：{ja}", "\n\n> **Final answer:** {V}",
    "\n\n{{\"reasoning\": \"The last step is {v} to the data.\", \"is_correct\": {json}}}",
    "\n\nAll things considered, I judge the solution to be {v}.", "\n\n{V} — every claim was checked above.",
    "\n\nMy final assessment: the solution is {c}.", "\n\nThus, {V}.", "\n\n[[{V}]]",
]
# A question about the solution's correctness and its yes/no answer ("Are there any errors?" is answered by {no}).
QUESTION_ENDINGS = [
    "\n\nIs the solution correct? {yes}.", "\n\nIs the final answer correct?\n\n{yes}", "\n\nCorrect? {yes}",
    "\n\nQ: Is the final answer right? A: {yes}.", "\n\n**Is the solution correct?** {yes} — see the checks above.",
    "\n\nSo, does the solution arrive at the correct answer? {yes}.", "\n\nAre there any errors in the solution? {no}.",
    "\n\n- Final answer correct: {yes}", "\n\n¿Es correcta la solución? {esyes}.",
    "\n\nLa solution est-elle correcte ? {fryes}.", "\n\nIst die Lösung richtig? {deyes}.",
    "\n\nВерно ли решение? {ruyes}.", "\n\n该解答正确吗？{zhyes}。", "\n\nこの解答は正しいですか？{jayes}。",
]
ENDINGS += QUESTION_ENDINGS
PLAIN = "\n\n{V}"
# Notes after a verdict that mention the other value ({O}: its word) without revising the verdict.
NOTES = [
    "\n\nNote: the answer would be {O} if the problem allowed n = 0.",
    "\n\n(If step 3 were justified, the verdict would be {O}.)",
    "\n\nThe prompt reserves \"{O}\" for solutions without any doubt.",
    "\n\nFor example, with n = 2 the identity is {o}.",
    "\n\nA reader who only checks the final number might call it {O}.",
    "\n\nOne could argue it is {O}, but I stand by the analysis above.",
    "\n\nRemark: whether the original claim is {o} for n < 3 was not asked.",
    "\n\nP.S. Had the author covered n = 1, I would have answered {O}.",
    "\n\n(Answering {O} would require a proof of the lemma in step 2.)",
    "\n\nNB: a \"{O}\" here would need the missing case; see above.",
    "\n\nIs step 2 {oc}? {oyes}, but the verdict rests on the whole solution.",
    "\n\nShould the units be checked as well? {oyes}.",
    "\n\n(Is the solution {oc} if n = 0? {oyes}.)",
]
# Genuine revisions to the other value (or to no verdict) after the verdict.
REVISIONS = [
    "\n\nWait, I misread step 3: it is fine. So the solution is {oc}.",
    "\n\nActually, on reflection, the bound in step 2 holds after all.\n\n{O}",
    "\n\nHmm, let me reconsider step 4.",
    "\n\nOn second thought: {O}.",
    "\n\nCorrection: the verdict is {O}.",
    "\n\nI made an error above; the verdict should be {O}.",
    "\n\nHold on. Re-reading the problem, n starts at 1, so step 2 is valid. Final verdict: {O}",
    "\n\nWait, no. {O}.",
    "\n\nEspera, revisé el paso 3. Veredicto: {oes}",
    "\n\nEn fait, l'étape 3 est juste. Donc, la solution est {ofr}.",
    "\n\nWait — is the solution really {c}? No.",
    "\n\nActually, is it {c}? No: step 3 reads differently on a second pass.",
]
# Endings that never commit: the judge says it cannot decide, or that neither value applies.
UNDECIDED = [
    "\n\nI cannot determine whether the solution is correct without the missing lemma.",
    "\n\nNeither True nor False: the problem statement is ambiguous.",
    "\n\nVerdict: undetermined",
    "\n\nIt is impossible to tell if the final answer is correct.",
    "\n\nI'm not sure; both readings of the problem are plausible.",
    "\n\nThe problem is ambiguous, so neither value applies.",
    "\n\nI am unable to decide between True and False here.",
    "\n\nBoth readings are plausible, so I will not give a verdict.",
    "\n\nIs the solution correct? Hard to say.",
    "\n\nIs the solution correct?",
    "\n\nIs the final answer correct? I cannot tell without the missing lemma.",
]


@dataclass(frozen=True)
class Reply:
    """A judge reply: a body and an ending stating `value` in one style."""

    body: str
    ending: str
    value: bool

    @property
    def text(self) -> str:
        """The whole reply."""
        return self.body + self.ending

    def words(self, template: str, value: bool | None = None) -> str:
        """A template filled with the words of `value` (this reply's by default) and, as {O}/{o}/{oc}/..., of the
        other value."""
        value = self.value if value is None else value
        other = {f"o{key}" if key not in ("V", "v") else ("O" if key == "V" else "o"): word
                 for key, word in WORDS[not value].items()}
        return template.format(**WORDS[value], **other)


def corpus(count: int, seed: int, endings: list[str] = ENDINGS) -> list[Reply]:
    """`count` replies: a random body, verdict and ending style each, reproducible from `seed`."""
    rng = random.Random(seed)
    replies = []
    for _ in range(count):
        value = rng.random() < 0.5
        reply = Reply(rng.choice(BODIES), "", value)
        replies.append(Reply(reply.body, reply.words(rng.choice(endings)), value))
    return replies


def appended(replies: list[Reply], templates: list[str], seed: int) -> list[tuple[Reply, str]]:
    """Each reply with one of the templates (filled with its words) appended, drawn at random."""
    rng = random.Random(seed)
    return [(reply, reply.text + reply.words(rng.choice(templates))) for reply in replies]

