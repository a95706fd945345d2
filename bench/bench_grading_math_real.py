"""Benchmark Step 2's procedural grading on real math generations (Qwen2.5-Math evaluation-harness output files).

Each input is a JSON-lines file as the Qwen2.5-Math / ToRA evaluation harnesses write them (`question`, `gt`, `code`:
the model's responses, `score`: the harness's own verdicts, optional). Every response is graded as Step 2 does for a
math row with `--llm_fallback never` (released texts, no finish reasons), in one process; the script prints per file
the throughput in CPU time (samples/s per core), the undecided and no_answer shares, and how often the decided grade
differs from the harness's own score.

Public files used for bench/README.md (issue 31): NovaSky-AI/SkyThought at commit 505894e,
`skythought/Qwen2.5-Math/evaluation/outputs/<model>/{math500,minerva_math}_eval/...jsonl`, and microsoft/ToRA,
`src/outputs/llm-agents/<model>/gsm8k/test_tora_-1_seed0_t0.0_s0_e1319.jsonl`.

    python bench/bench_grading_math_real.py FILE.jsonl [FILE.jsonl ...] [--dump grades.jsonl]
        [--compare-to grades.jsonl]

`--dump` writes every sample's grade (file, row, sample, answer, correct, method, note) as JSON lines; `--compare-to`
reads such a dump (of another version of the code) and fails, listing the first differences, unless every grade is
identical: the check that a speed-up changed no decision.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
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


def grade_file(path: str, records: list[dict], timeout: float = grading.MATH_TIMEOUT_S) -> Counter:
    """Grade one file, appending each sample's grade to `records`; counts for its table line."""
    rows, scores = load_rows(path)
    started = time.process_time()
    graded = grading.grade_rows(rows, "math", 1, lambda n: None, timeout)
    counts: Counter = Counter(seconds=time.process_time() - started)
    for row_index, (grades, score) in enumerate(zip(graded, scores)):
        for index, grade in enumerate(grades):
            records.append({"file": path, "row": row_index, "sample": index, "answer": grade.answer,
                            "correct": grade.correct, "method": grade.method, "note": grade.note})
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
    parser.add_argument("--math_timeout", type=float, default=grading.MATH_TIMEOUT_S,
                        help="CPU seconds per math comparison, as Step 2's --math_timeout")
    parser.add_argument("--dump", help="write every sample's grade to this JSON-lines file")
    parser.add_argument("--compare-to", help="a --dump of another code version: fail unless every grade is the same")
    args = parser.parse_args()
    print("| file | samples | samples/s per core (CPU) | undecided /100 | no_answer /100 | decided, harness score "
          "differs |")
    print("|---|---|---|---|---|---|")
    total: Counter = Counter()
    records: list[dict] = []
    common = os.path.commonpath([os.path.abspath(path) for path in args.files]) if len(args.files) > 1 else ""
    for path in args.files:
        counts = grade_file(path, records, args.math_timeout)
        total.update(counts)
        print(line(os.path.relpath(os.path.abspath(path), common) if common else os.path.basename(path), counts),
              flush=True)
    if len(args.files) > 1:
        print(line("all", total))
    if args.dump:
        with open(args.dump, "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(record) + "\n" for record in records)
    if args.compare_to:
        with open(args.compare_to, encoding="utf-8") as handle:
            before = [json.loads(text) for text in handle]
        changed = [(old, new) for old, new in zip(before, records) if old != new]
        if len(before) != len(records) or changed:
            for old, new in changed[:20]:
                print(f"changed: {old} -> {new}", file=sys.stderr)
            sys.exit(f"{len(changed)} of {len(records)} grades differ from {args.compare_to} "
                     f"({len(before)} grades there)")
        print(f"all {len(records)} grades identical to {args.compare_to}")


def line(name: str, counts: Counter) -> str:
    """One table line."""
    samples = counts["samples"]
    return (f"| {name} | {samples} | {samples / counts['seconds']:.0f} | {100 * counts['undecided'] / samples:.2f} | "
            f"{100 * counts['no_answer'] / samples:.2f} | {counts['differs']} of {counts['compared']} |")


if __name__ == "__main__":
    main()
