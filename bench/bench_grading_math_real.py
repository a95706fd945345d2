"""Benchmark Step 2's procedural grading on real math generations (Qwen2.5-Math evaluation-harness output files).

Each input is a JSON-lines file as the Qwen2.5-Math / ToRA evaluation harnesses write them (`question`, `gt`, `code`:
the model's responses, `score`: the harness's own verdicts, optional). Every response is graded as Step 2 does for a
math row with `--llm_fallback never` (released texts, no finish reasons), in one process; the script prints per file
the throughput in CPU time (samples/s per core), the undecided and no_answer shares, and how often the decided grade
differs from the harness's own score.

Public files used for bench/README.md (issue 31): NovaSky-AI/SkyThought at commit 505894e,
`skythought/Qwen2.5-Math/evaluation/outputs/<model>/{math500,minerva_math}_eval/...jsonl`, and microsoft/ToRA,
`src/outputs/llm-agents/<model>/gsm8k/test_tora_-1_seed0_t0.0_s0_e1319.jsonl`.

    python bench/bench_grading_math_real.py FILE.jsonl [FILE.jsonl ...]
"""
from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter

from generation.grading import decision as grading


def load_rows(path: str) -> tuple[list[dict], list[list[bool] | None]]:
    """Step 2 math rows of one output file, and the harness's own scores per row (None where absent)."""
    rows, scores = [], []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            rows.append({"instruction": record["question"], "answer": str(record["gt"]),
                         "samples": [text if isinstance(text, str) else None for text in record["code"]]})
            scores.append(record.get("score"))
    return rows, scores


def grade_file(path: str) -> Counter:
    """Grade one file; counts for its table line."""
    rows, scores = load_rows(path)
    started = time.process_time()
    graded = grading.grade_rows(rows, "math", 1, lambda n: None)
    counts: Counter = Counter(seconds=time.process_time() - started)
    for grades, score in zip(graded, scores):
        for index, grade in enumerate(grades):
            counts["samples"] += 1
            counts[grade.method] += 1
            if score is not None and grade.method == "procedural":
                counts["compared"] += 1
                counts["differs"] += grade.correct != bool(score[index])
    return counts


def main() -> None:
    """Print one table line per file and a total."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", help="evaluation-harness output files (.jsonl)")
    args = parser.parse_args()
    print("| file | samples | samples/s per core (CPU) | undecided /100 | no_answer /100 | decided, harness score "
          "differs |")
    print("|---|---|---|---|---|---|")
    total: Counter = Counter()
    for path in args.files:
        counts = grade_file(path)
        total.update(counts)
        print(line(os.path.basename(path), counts), flush=True)
    if len(args.files) > 1:
        print(line("all", total))


def line(name: str, counts: Counter) -> str:
    """One table line."""
    samples = counts["samples"]
    return (f"| {name} | {samples} | {samples / counts['seconds']:.0f} | {100 * counts['undecided'] / samples:.2f} | "
            f"{100 * counts['no_answer'] / samples:.2f} | {counts['differs']} of {counts['compared']} |")


if __name__ == "__main__":
    main()
