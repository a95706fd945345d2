"""Benchmark Step 2: grade 20,000 synthetic but realistic samples (MCQ and math) procedurally; report samples/s and
how many samples `--llm_fallback auto` would send to the judge; then the outcome mix on the tests' realistic corpus
(tests/grading/realistic_outputs.py) and its metamorphic variants (wrapped, revised, a second candidate, no final
period), with its own throughput.

    python bench/bench_grading.py [--samples 20000] [--per_problem 32] [--parallel 2] [--corpus 4000] [--cli]
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import random
import sys
import tempfile
import time
from collections import Counter

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests", "grading")]

import realistic_outputs as realistic  # noqa: E402

from generation.grading import decision as grading  # noqa: E402

FILLER = ("We start by restating the problem and the quantities involved. Next, we set up the relevant relation "
          "and simplify step by step, checking each intermediate value against the constraints. ")
MC_ENDINGS = [  # Llama, Qwen, GPT, Claude and R1-like endings; {L} answer, {W} an earlier distractor, {O} option text
    "Option {W} does not fit.\n\nThe answer is: {L}",
    "The best answer is {L}.",
    "Therefore, the answer is \\boxed{{{L}}}.",
    "**Answer: ({L})**",
    "### Final Answer\n**{L}) {O}**",
    "Looking at {W} first, it fails.\n\nThe answer is: {L}",
    "So the answer is {L} because I checked each option.",
    "<think>\nmaybe {W}? wait, no.\n</think>\n\nThe answer is: {L}",
    "The correct option is **{L}**.",
    "After weighing everything:\n\n{L}",
]
UNTIDY_MC = [  # the less tidy endings of issue 11, each still naming one letter
    "Therefore, {L} is correct.", "The answer is most likely {L}.", "I'll go with {L}.", "答案：{L}",
    "Answer: {W}\n\nActually, wait. Redoing the last step, it should be {L}.",
    "We get that value, which is choice ({L}).", "answer: {l}", "La respuesta correcta es {L}.",
    "The answer is {L}.\nOption {W} is correct only when friction is ignored.", "So I'd answer {L}.",
    "I'm going with ({L}).", "**{L} is correct.**", "因此，正确答案是 {L}。", "Ответ: {L}",
    "The answer is ({L}). " * 30,  # a Llama loop repeating its answer until the token limit
]
UNREAD_MC = ["After comparing the options, the closest match is the one about {O}.",  # ended normally: judge reads it
             "It is either {L} or {W}; the answer is {L} or {W}.", "The answer is {L}, or possibly {W}."]
IRREGULAR_MATH = ["The answer is: {A} square units, roughly", "The answer is: {A} or maybe {W}",
                  "The answer is: $\\text{{about }} {A}$"]
MATH_ENDINGS = [
    "Therefore, the final answer is: $\\boxed{{{A}}}$. I hope it is correct.",
    "Thus\n\\[\n\\boxed{{{A}}}\n\\]",
    "The answer is: ${A}$",
    "**Final Answer:** ${A}$",
    "<think>\nIs it {W}? No, recompute.\n</think>\n\nThe final answer is \\(\\boxed{{{A}}}\\).",
]
UNTIDY_MATH = ["Therefore, ${A}$.", "**{A}**", "答案：${A}$",
               "$\\boxed{{{W}}}$\n\nWait, I made an arithmetic slip. The answer is ${A}$.",
               "So the result is $\\boxed{{{A}}}$ and nothing else changes.", "{A}"]


def cut_off(rng: random.Random) -> str:
    """A sample stopped by the token limit: mid-sentence, or in a repetition loop."""
    if rng.random() < 0.5:
        text = FILLER * 20
        return text[:rng.randrange(len(text) // 2, len(text))].rstrip(" .")
    return FILLER * 3 + "Wait, let me re-check that step once more. " * rng.randint(30, 60)


def math_problem(rng: random.Random) -> tuple[str, list[str], list[str]]:
    """A gold answer, equivalent ways to write it, and plausible wrong answers."""
    a, b = rng.randint(2, 40), rng.randint(2, 40)
    b += b == a  # so that no "wrong" form equals the gold one
    kind = rng.randrange(8)
    if kind == 0:
        value = a * b
        return str(value), [str(value), f"{value}.0", f"\\text{{{value}}}"], [str(value + 1), str(a + b + 1), str(a)]
    if kind == 1:
        q = b + a + 1
        return (f"\\frac{{{a}}}{{{q}}}", [f"\\frac{{{a}}}{{{q}}}", f"\\dfrac{{{a}}}{{{q}}}", f"{a}/{q}"],
                [f"\\frac{{{q}}}{{{a}}}", f"\\frac{{{a + 1}}}{{{q}}}", f"{a / q + 0.001:.3f}"])
    if kind == 2:
        return (f"{a}\\sqrt{{{b + 1}}}", [f"{a}\\sqrt{{{b + 1}}}", f"{a} \\sqrt{{{b + 1}}}"],
                [f"{b + 1}\\sqrt{{{a}}}", f"{a + 1}\\sqrt{{{b + 1}}}"])
    if kind == 3:
        return f"{a}\\pi", [f"{a}\\pi", f"{a} \\pi", f"\\pi {a}"], [f"{a + 1}\\pi", f"{2 * a}\\pi", str(a)]
    if kind == 4:
        return (f"({a}, {b})", [f"({a},{b})", f"\\left( {a}, {b} \\right)"], [f"({b}, {a})", f"({a}, {b + 1})"])
    if kind == 5:
        return f"[{a}, {a + b})", [f"[{a},{a + b})", f"[{a}, {a + b})"], [f"({a}, {a + b}]", f"[{a}, {a + b}]"]
    if kind == 6:
        return (f"{a}x + {b}", [f"{a}x+{b}", f"{b} + {a}x"], [f"{a}x - {b}", f"{b}x + {a}"])
    value = a * 1000 + b
    return (str(value), [str(value), f"{value // 1000},{value % 1000:03d}"], [str(value + 10), str(value - 1000)])


def sample_text(rng: random.Random, ending: str, **fields: str) -> str:
    """A sample of realistic length: reasoning filler and an ending in one model's style."""
    return FILLER * rng.randint(3, 12) + "\n\n" + ending.format(**fields)


def build_rows(rng: random.Random, problems: int, per_problem: int) -> list[tuple[str, dict, list]]:
    """(dataset_type, row, labels) triples: half math, half multiple choice (MMLU-style 4 options, MMLU-Pro-style 10);
    labels: per sample True/False when its ending states a right/wrong answer, None when no grader could say."""
    rows = []
    for index in range(problems):
        samples: list[str | None] = []
        labels: list[bool | None] = []
        if index % 2 == 0:
            gold, forms, wrong = math_problem(rng)
            for _ in range(per_problem):
                roll = rng.random()
                answer = rng.choice(forms) if rng.random() < 0.5 else rng.choice(wrong)
                label = answer in forms
                if roll < 0.01:
                    samples.append(None)  # failed generation
                    label = None
                elif roll < 0.04:
                    samples.append(cut_off(rng))
                    label = None
                elif roll < 0.05:  # worded or hedged answers
                    samples.append(sample_text(rng, rng.choice(IRREGULAR_MATH), A=answer, W=rng.choice(wrong)))
                    label = None
                elif roll < 0.15:
                    samples.append(sample_text(rng, rng.choice(UNTIDY_MATH), A=answer, W=rng.choice(wrong)))
                else:
                    samples.append(sample_text(rng, rng.choice(MATH_ENDINGS), A=answer, W=rng.choice(wrong)))
                labels.append(label)
            rows.append(("math", {"instruction": f"Problem {index}", "answer": gold, "samples": samples}, labels))
            continue
        options = [f"option text {index}-{k}" for k in range(rng.choice((4, 10)))]
        letters = "".join(chr(65 + k) for k in range(len(options)))
        gold = rng.choice(letters)
        for _ in range(per_problem):
            roll = rng.random()
            letter = gold if rng.random() < 0.5 else rng.choice(letters)
            fields = {"L": letter, "l": letter.lower(), "W": rng.choice(letters.replace(letter, "")),
                      "O": options[letters.index(letter)]}
            label = letter == gold
            if roll < 0.01:
                samples.append(None)
                label = None
            elif roll < 0.03:
                samples.append(cut_off(rng))
                label = None
            elif roll < 0.035:
                samples.append(sample_text(rng, rng.choice(UNREAD_MC), **fields))
                label = None
            elif roll < 0.15:
                samples.append(sample_text(rng, rng.choice(UNTIDY_MC), **fields))
            else:
                samples.append(sample_text(rng, rng.choice(MC_ENDINGS), **fields))
            labels.append(label)
        dataset_type = "mmlu_pro" if len(options) == 10 else "mmlu"
        rows.append((dataset_type, {"instruction": f"Question {index}", "answer": gold, "options": options,
                                    "samples": samples}, labels))
    return rows


def run_cli(rows: list[tuple[str, dict, list]], parallel: int) -> float:
    """Seconds the real CLI takes (load, grade, save) on the math rows and on the MCQ rows."""
    import datasets

    from generation import unified_evaluation
    total = 0.0
    with tempfile.TemporaryDirectory() as folder:
        for name, kinds in (("math", ("math",)), ("mmlu_pro", ("mmlu", "mmlu_pro"))):
            subset = [row for kind, row, _ in rows if kind in kinds]
            if name == "mmlu_pro":
                subset = [{**row, "options": row["options"] + [""] * (10 - len(row["options"]))} for row in subset]
            source = os.path.join(folder, name)
            datasets.Dataset.from_list(subset).save_to_disk(source)
            started = time.perf_counter()
            unified_evaluation.main(["-i", source, "-o", source + "-out", "-t", name, "-p", str(parallel),
                                     "--llm_fallback", "never"])
            total += time.perf_counter() - started
    return total


def corpus_variants(count: int) -> dict[str, list[tuple[realistic.Output, bool | None]]]:
    """The realistic corpus and its variants as (output, label): label True/False for a plain right/wrong answer,
    None where the text leaves the answer in doubt (a revision, a second candidate)."""
    rng = random.Random(7)
    base = realistic.corpus(count, seed=7)

    def pick(output: realistic.Output, choice: dict, math: dict) -> str:
        return rng.choice(list((choice if output.kind == "choice" else math).values()))

    return {
        "plain": [(output, output.right) for output in base],
        "wrapped": [(output.with_ending(pick(output, realistic.CHOICE_WRAPS, realistic.MATH_WRAPS)), output.right)
                    for output in base],
        "revised": [(output.appended(pick(output, realistic.CHOICE_REVISIONS, realistic.MATH_REVISIONS)), None)
                    for output in base],
        "second candidate": [(output.appended(pick(output, realistic.CHOICE_SECOND, realistic.MATH_SECOND)), None)
                             for output in base],
        "no final period": [(dataclasses.replace(output, ending=output.ending.rstrip(".")), output.right)
                            for output in base],
    }


def corpus_mix(count: int, parallel: int) -> None:
    """Print the outcome mix per variant family of the realistic corpus, and the throughput over all of them."""
    families = corpus_variants(count)
    total, started = 0, time.perf_counter()
    for family, items in families.items():
        mix: Counter = Counter()
        for kind, dataset_type in (("choice", "mmlu_pro"), ("math", "math")):
            chosen = [(output, label) for output, label in items if output.kind == kind]
            rows = [{"instruction": "q", "answer": output.gold, "samples": [output.text],
                     **({"options": realistic.OPTIONS} if kind == "choice" else {})} for output, _ in chosen]
            for grades, (_, label) in zip(grading.grade_rows(rows, dataset_type, parallel, lambda n: None), chosen):
                grade = grades[0]
                if grade.method != "procedural":
                    mix[grade.method] += 1
                elif label is None:
                    mix["decided despite doubt" + (" (correct)" if grade.correct else "")] += 1
                else:
                    mix[{(True, True): "right", (False, False): "right", (True, False): "false positive",
                         (False, True): "false negative"}[(grade.correct, label)]] += 1
        total += len(items)
        print(f"  {family:17s} {len(items)}: " + ", ".join(f"{name} {n}" for name, n in sorted(mix.items())))
    elapsed = time.perf_counter() - started
    print(f"realistic corpus: {total} samples in {elapsed:.1f} s, {total / elapsed:.0f} samples/s")


def main() -> None:
    """Build the synthetic set, grade it, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--per_problem", type=int, default=32)
    parser.add_argument("--parallel", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--corpus", type=int, default=4000, help="outputs of the realistic corpus (x5 variants)")
    parser.add_argument("--cli", action="store_true", help="also time the full CLI (dataset load and save included)")
    args = parser.parse_args()
    rows = build_rows(random.Random(0), args.samples // args.per_problem, args.per_problem)
    total = sum(len(row["samples"]) for _, row, _ in rows)
    load = os.getloadavg()
    started = time.perf_counter()
    methods: Counter = Counter()
    wrong: Counter = Counter()
    targets = 0
    for kind in ("math", "mmlu", "mmlu_pro"):
        subset = [(row, labels) for row_kind, row, labels in rows if row_kind == kind]
        graded = grading.grade_rows([row for row, _ in subset], kind, args.parallel, lambda n: None)
        methods.update(g.method for grades in graded for g in grades)
        targets += len(grading.fallback_targets(graded, "auto"))
        for grades, (_, labels) in zip(graded, subset):
            for grade, label in zip(grades, labels):
                if grade.method != "procedural":
                    continue
                if grade.correct and label is not True:
                    wrong["false positive"] += 1
                elif not grade.correct and label is True:
                    wrong["false negative"] += 1
                elif label is None:
                    wrong["irregular answer decided incorrect"] += 1
    elapsed = time.perf_counter() - started
    print(f"samples: {total} ({len(rows)} problems, half math, half MCQ), workers: {args.parallel}, "
          f"CPUs: {os.cpu_count()}, load average before: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    print(f"procedural grading: {elapsed:.1f} s, {total / elapsed:.0f} samples/s")
    print(f"methods: {dict(methods)}; undecided: {100 * methods['undecided'] / total:.2f}% of samples")
    print(f"procedural grades against the synthetic labels: {dict(wrong) or 'all right'}")
    print(f"--llm_fallback auto would make {targets} LLM calls: {100 * targets / total:.2f} per 100 samples "
          f"(the reference makes 100-200)")
    print("outcome mix on the realistic corpus (per variant family):")
    corpus_mix(args.corpus, args.parallel)
    if args.cli:
        seconds = run_cli(rows, args.parallel)
        print(f"full CLI (load, grade, save, provenance): {seconds:.1f} s, {total / seconds:.0f} samples/s")


if __name__ == "__main__":
    main()
