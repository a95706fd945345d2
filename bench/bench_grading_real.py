"""Benchmark Step 2's procedural grading on real MMLU-Pro outputs (the MMLU-Pro repository's public eval_results).

Each model's file holds one output per question with the official extractor's letter (`pred`). Every output is graded
as Step 2 does with `--llm_fallback never` (no finish reasons: released texts), and the script prints per model the
undecided and no_answer shares, how often the decided letter differs from the official one, and the throughput in
CPU time (samples/s per core). With --dump, every difference and every undecided sample is written as JSON lines
for reading.

Get the files (about 30 models; a few are stored elsewhere and are absent from the snapshot):
    git clone https://github.com/TIGER-AI-Lab/MMLU-Pro && ls MMLU-Pro/eval_results/*.zip

    python bench/bench_grading_real.py --folder MMLU-Pro/eval_results [--set development|held_out|all]
        [--models NAME ...] [--dump differences.jsonl]
"""
from __future__ import annotations

import argparse
import json
import os
import time
import zipfile
from collections import Counter

from generation.grading import decision as grading

# The split of issue 31: two models of the last round plus nine drawn with random.Random(31) from the rest are used
# to develop the rule; the others are held out to measure it.
DEVELOPMENT = ("DeepSeek-Coder-V2", "Llama-2-13b-hf", "Llama-2-7b-hf", "Meta-Llama-3-70B", "Meta-Llama-3_1-8B-Instruct",
               "Mistral-7B-v0.2-hf", "Phi-3-mini-4k-instruct", "Yi-6b-Chat", "c4ai-command-r-v01",
               "gemini-1.5-pro-002", "gemma-7b")


def model_name(path: str) -> str:
    """'model_outputs_gemma-7b_5shots.zip' -> 'gemma-7b'."""
    name = os.path.basename(path).split(".json")[0].split(".zip")[0]
    return name.removeprefix("model_outputs_").rsplit("_5shots", 1)[0]


def load(path: str) -> list[dict]:
    """The records of one eval_results file (.zip holding one .json, or the .json itself); non-records dropped."""
    if path.endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            records = json.loads(archive.read(archive.namelist()[0]))
    else:
        with open(path, encoding="utf-8") as handle:
            records = json.load(handle)
    return [record for record in records if isinstance(record, dict)]


def as_row(record: dict) -> dict:
    """A Step 2 row of one sample (no finish reason: a released text)."""
    text = record.get("generated_text", record.get("model_outputs"))
    return {"instruction": record["question"], "options": record["options"], "answer": record["answer"],
            "samples": [text if isinstance(text, str) else None]}


def grade_model(path: str, dump) -> dict:
    """Grade one model's outputs; figures for the table, differences written to `dump`."""
    records = load(path)
    rows = [as_row(record) for record in records]
    started = time.process_time()
    graded = grading.grade_rows(rows, "mmlu_pro", 1, lambda n: None)
    seconds = time.process_time() - started
    counts: Counter = Counter()
    for record, row, grades in zip(records, rows, graded):
        grade, official = grades[0], record.get("pred")
        counts[grade.method] += 1
        kind = None
        if grade.note.startswith("hedged") and grade.method == "procedural":
            kind = "hedged"
            counts["hedged"] += 1
        elif grade.method == "procedural" and grade.answer != official:
            kind = "decided, official differs"
            counts["differs"] += 1
            counts["differs, ours correct" if grade.correct else "differs, ours incorrect"] += 1
        elif grade.method == "no_answer" and official:
            kind = "no_answer, official read a letter"
            counts["no_answer with official letter"] += 1
        elif grade.method == "undecided":
            kind = "undecided"
        if kind and dump:
            dump.write(json.dumps({"model": model_name(path), "kind": kind, "question_id": record["question_id"],
                                   "gold": record["answer"], "official": official, "ours": grade.answer,
                                   "method": grade.method, "note": grade.note, "options": record["options"],
                                   "text": row["samples"][0]}, ensure_ascii=False) + "\n")
    counts["samples"], counts["seconds"] = len(rows), seconds
    return counts


def main() -> None:
    """Grade the chosen models' files and print one line per model."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", required=True, help="folder holding the eval_results files (.zip or .json)")
    parser.add_argument("--set", choices=("development", "held_out", "all"), default="development")
    parser.add_argument("--models", nargs="*", help="only these models (names as in the files)")
    parser.add_argument("--dump", help="write differences and undecided samples here (JSON lines)")
    args = parser.parse_args()
    paths = sorted(os.path.join(args.folder, name) for name in os.listdir(args.folder)
                   if name.startswith("model_outputs_") and name.endswith((".zip", ".json")))
    chosen = [path for path in paths if (model_name(path) in args.models if args.models else
                                         args.set == "all" or (model_name(path) in DEVELOPMENT) == (
                                             args.set == "development"))]
    dump = open(args.dump, "w", encoding="utf-8") if args.dump else None
    print("| model | samples | undecided /100 | no_answer /100 | hedged (incorrect) | decided, official letter differs "
          "(ours correct / incorrect) | no_answer, official read a letter | samples/s per core |")
    print("|---|---|---|---|---|---|---|---|")
    total: Counter = Counter()
    for path in chosen:
        counts = grade_model(path, dump)
        total.update(counts)
        print(line(model_name(path), counts), flush=True)
    if len(chosen) > 1:
        print(line("all", total))
    if dump:
        dump.close()


def line(name: str, counts: Counter) -> str:
    """One table line."""
    samples = counts["samples"]
    return (f"| {name} | {samples} | {100 * counts['undecided'] / samples:.2f} | "
            f"{100 * counts['no_answer'] / samples:.2f} | {counts['hedged']} | {counts['differs']} "
            f"({counts['differs, ours correct']} / {counts['differs, ours incorrect']}) | "
            f"{counts['no_answer with official letter']} | {samples / counts['seconds']:.0f} |")


if __name__ == "__main__":
    main()
