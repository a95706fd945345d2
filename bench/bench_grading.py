"""Benchmark Step 2: grade 20,000 synthetic but realistic samples (MCQ and math) procedurally; report samples/s and
how many samples `--llm_fallback auto` would send to the judge.

    python bench/bench_grading.py [--samples 20000] [--per_problem 32] [--parallel 2] [--cli]
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections import Counter

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "generation"))

import answer_grading as grading  # noqa: E402

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
IRREGULAR_MC = "It is either {L} or {W}; the answer is {L} or {W}."  # hedged: the judge must decide
IRREGULAR_MATH = ["The answer is: {A} square units, roughly", "The answer is: {A} or maybe {W}",
                  "The answer is: $\\text{{about }} {A}$"]
MATH_ENDINGS = [
    "Therefore, the final answer is: $\\boxed{{{A}}}$. I hope it is correct.",
    "Thus\n\\[\n\\boxed{{{A}}}\n\\]",
    "The answer is: ${A}$",
    "**Final Answer:** ${A}$",
    "<think>\nIs it {W}? No, recompute.\n</think>\n\nThe final answer is \\(\\boxed{{{A}}}\\).",
]


def math_problem(rng: random.Random) -> tuple[str, list[str], list[str]]:
    """A gold answer, equivalent ways to write it, and plausible wrong answers."""
    a, b = rng.randint(2, 40), rng.randint(2, 40)
    kind = rng.randrange(8)
    if kind == 0:
        value = a * b
        return str(value), [str(value), f"{value}.0", f"\\text{{{value}}}"], [str(value + 1), str(a + b), str(a)]
    if kind == 1:
        q = b + a + 1
        return (f"\\frac{{{a}}}{{{q}}}", [f"\\frac{{{a}}}{{{q}}}", f"\\dfrac{{{a}}}{{{q}}}", f"{a}/{q}"],
                [f"\\frac{{{q}}}{{{a}}}", f"\\frac{{{a + 1}}}{{{q}}}", str(round(a / q, 2))])
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


def build_rows(rng: random.Random, problems: int, per_problem: int) -> list[tuple[str, dict]]:
    """(dataset_type, row) pairs: half math, half multiple choice (MMLU-style 4 options, MMLU-Pro-style 10)."""
    rows = []
    for index in range(problems):
        samples: list[str | None] = []
        if index % 2 == 0:
            gold, forms, wrong = math_problem(rng)
            for _ in range(per_problem):
                roll = rng.random()
                if roll < 0.01:
                    samples.append(None)  # failed generation
                elif roll < 0.04:
                    samples.append(FILLER * 20)  # truncated at max tokens: no final answer
                elif roll < 0.05:  # worded or hedged answers
                    samples.append(sample_text(rng, rng.choice(IRREGULAR_MATH), A=rng.choice(forms + wrong),
                                               W=rng.choice(wrong)))
                else:
                    answer = rng.choice(forms) if roll < 0.55 else rng.choice(wrong)
                    samples.append(sample_text(rng, rng.choice(MATH_ENDINGS), A=answer, W=rng.choice(wrong)))
            rows.append(("math", {"instruction": f"Problem {index}", "answer": gold, "samples": samples}))
            continue
        options = [f"option text {index}-{k}" for k in range(rng.choice((4, 10)))]
        letters = "".join(chr(65 + k) for k in range(len(options)))
        gold = rng.choice(letters)
        for _ in range(per_problem):
            roll = rng.random()
            if roll < 0.01:
                samples.append(None)
            elif roll < 0.03:
                samples.append(FILLER * 20)
            elif roll < 0.035:
                samples.append(sample_text(rng, IRREGULAR_MC, L=gold, W=rng.choice(letters.replace(gold, ""))))
            else:
                letter = gold if roll < 0.55 else rng.choice(letters)
                samples.append(sample_text(rng, rng.choice(MC_ENDINGS), L=letter, W=rng.choice(letters),
                                           O=options[letters.index(letter)]))
        dataset_type = "mmlu_pro" if len(options) == 10 else "mmlu"
        rows.append((dataset_type, {"instruction": f"Question {index}", "answer": gold, "options": options,
                                    "samples": samples}))
    return rows


def run_cli(rows: list[tuple[str, dict]], parallel: int) -> float:
    """Seconds the real CLI takes (load, grade, save) on the math rows and on the MCQ rows."""
    import datasets

    import unified_evaluation

    total = 0.0
    with tempfile.TemporaryDirectory() as folder:
        for name, kinds in (("math", ("math",)), ("mmlu_pro", ("mmlu", "mmlu_pro"))):
            subset = [row for kind, row in rows if kind in kinds]
            if name == "mmlu_pro":
                subset = [{**row, "options": row["options"] + [""] * (10 - len(row["options"]))} for row in subset]
            source = os.path.join(folder, name)
            datasets.Dataset.from_list(subset).save_to_disk(source)
            started = time.perf_counter()
            unified_evaluation.main(["-i", source, "-o", source + "-out", "-t", name, "-p", str(parallel),
                                     "--llm_fallback", "never"])
            total += time.perf_counter() - started
    return total


def main() -> None:
    """Build the synthetic set, grade it, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--per_problem", type=int, default=32)
    parser.add_argument("--parallel", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--cli", action="store_true", help="also time the full CLI (dataset load and save included)")
    args = parser.parse_args()
    rows = build_rows(random.Random(0), args.samples // args.per_problem, args.per_problem)
    total = sum(len(row["samples"]) for _, row in rows)
    started = time.perf_counter()
    methods: Counter = Counter()
    targets = 0
    for kind in ("math", "mmlu", "mmlu_pro"):
        subset = [row for row_kind, row in rows if row_kind == kind]
        graded = grading.grade_rows(subset, kind, args.parallel, lambda n: None)
        methods.update(g.method for grades in graded for g in grades)
        targets += len(grading.fallback_targets(graded, "auto"))
    elapsed = time.perf_counter() - started
    print(f"samples: {total} ({len(rows)} problems, half math, half MCQ), workers: {args.parallel}, "
          f"CPUs: {os.cpu_count()}")
    print(f"procedural grading: {elapsed:.1f} s, {total / elapsed:.0f} samples/s")
    print(f"methods: {dict(methods)}")
    print(f"--llm_fallback auto would make {targets} LLM calls: {100 * targets / total:.2f} per 100 samples "
          f"(the reference makes 100-200)")
    if args.cli:
        seconds = run_cli(rows, args.parallel)
        print(f"full CLI (load, grade, save, provenance): {seconds:.1f} s, {total / seconds:.0f} samples/s")


if __name__ == "__main__":
    main()
