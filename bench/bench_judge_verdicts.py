"""Step 3b verdict parsing on real judge replies: judges.verdicts.parse_verdict against each corpus's own label.

Usage: python bench/bench_judge_verdicts.py --mr_gsm8k REPO --scalable_benchmarking REPO --judgebench REPO
       [--old CHECKOUT] [--show N]
Each REPO is a checkout or a bare git directory of the public repository (read at HEAD):
- dvlab-research/MR-GSM8K, eval_results/gpt4-grading/*.json: student judges' replies ("Final Judgement: incorrect",
  then the first error step and its analysis) with the label the authors' parser read, and GPT-4's grading of each
  error reason ("Final Decision: Correct/Wrong") with its label;
- samuelemarro/scalable-benchmarking, critiques/**/*.json: JSON critiques ({"verdict": "correct", "notes": ...}, in
  code fences or not, some with reasoning around them) with the verdict the authors read (insufficient/unknown are
  no verdict);
- ScalerLab/JudgeBench, outputs/*arena_hard*.jsonl: pairwise replies ([[A>B]]), which give no True/False verdict.
--old CHECKOUT measures the parse_verdict of an older checkout instead (generation.judges.prompts).
Prints, per corpus: replies, verdicts, None, agreement with the label, and up to --show disagreements.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import Counter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

LABELS = {"correct": 1.0, "incorrect": 0.0, "wrong": 0.0, "true": 1.0, "false": 0.0}


def repo_files(repo: str, folder: str, suffix: str) -> list[str]:
    """Paths under folder ending in suffix, from a checkout or (no work tree) the git directory's HEAD."""
    if os.path.isdir(os.path.join(repo, folder)):
        return sorted(os.path.relpath(os.path.join(base, name), repo) for base, _, names in
                      os.walk(os.path.join(repo, folder)) for name in names if name.endswith(suffix))
    listing = subprocess.run(["git", "--git-dir", repo, "ls-tree", "-r", "--name-only", "HEAD", folder],
                             capture_output=True, text=True, check=True).stdout.split("\n")
    return sorted(path for path in listing if path.endswith(suffix))


def repo_text(repo: str, path: str) -> str | None:
    """A file's text from a checkout or the git directory's HEAD; None when the snapshot lacks it (large files)."""
    if os.path.exists(os.path.join(repo, path)):
        with open(os.path.join(repo, path), encoding="utf-8") as handle:
            return handle.read()
    shown = subprocess.run(["git", "--git-dir", repo, "show", f"HEAD:{path}"], capture_output=True, text=True)
    return shown.stdout if shown.returncode == 0 else None


def label(value: object) -> float | None:
    """A corpus label as a verdict: correct/true 1.0, incorrect/wrong/false 0.0, anything else None."""
    return LABELS.get(str(value).strip().lower()) if value is not None else None


def mr_gsm8k(repo: str) -> dict[str, list[tuple[str, float | None]]]:
    """(reply, label) of the student judges and of GPT-4's error-reason grading."""
    students, grader = [], []
    for path in repo_files(repo, "eval_results/gpt4-grading", ".json"):
        text = repo_text(repo, path)
        for item in json.loads(text) if text else []:
            output = next(value for key, value in item.items() if key.endswith("_eval_output"))
            students.append((output["response"], label(output.get("correctness_pred"))))
            grading = item.get("gpt4_error_reason_correctness_analysis") or {}
            if grading.get("response"):
                grader.append((grading["response"], label(grading.get("Final Decision"))))
    return {"MR-GSM8K student judges": students, "MR-GSM8K GPT-4 grader": grader}


def scalable_benchmarking(repo: str) -> dict[str, list[tuple[str, float | None]]]:
    """(raw critique, label) of every critique attempt."""
    replies = []
    for path in repo_files(repo, "critiques", ".json"):
        for item in json.loads(repo_text(repo, path) or "[]"):
            for attempt in item.get("attempts", []):
                if attempt.get("raw_critique"):
                    replies.append((attempt["raw_critique"], label(attempt.get("verdict"))))
    return {"scalable-benchmarking JSON critiques": replies}


def judgebench(repo: str) -> dict[str, list[tuple[str, float | None]]]:
    """(pairwise reply, None): these replies compare two answers and never give a True/False verdict."""
    replies = []
    for path in repo_files(repo, "outputs", ".jsonl"):
        text = repo_text(repo, path) if "arena_hard" in path else None
        for line in (text or "").splitlines():
            for judgment in json.loads(line).get("judgments", []):
                replies.append((judgment["judgment"]["response"], None))
    return {"JudgeBench arena-hard pairwise (no True/False verdict)": replies}


def main() -> None:
    """Measure every corpus given and print the table rows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mr_gsm8k")
    parser.add_argument("--scalable_benchmarking")
    parser.add_argument("--judgebench")
    parser.add_argument("--old", metavar="CHECKOUT", help="measure generation.judges.prompts.parse_verdict of an older "
                        "checkout (git worktree add /tmp/old COMMIT) instead")
    parser.add_argument("--show", type=int, default=0, help="print up to N disagreements per corpus")
    args = parser.parse_args()
    if args.old:
        sys.path.insert(0, os.path.abspath(args.old))
        from generation.judges.prompts import parse_verdict
    else:
        from generation.judges.verdicts import parse_verdict
    corpora: dict[str, list[tuple[str, float | None]]] = {}
    for option, load in (("mr_gsm8k", mr_gsm8k), ("scalable_benchmarking", scalable_benchmarking),
                         ("judgebench", judgebench)):
        if getattr(args, option):
            corpora.update(load(getattr(args, option)))
    print("| corpus | replies | verdicts | None | agree with label | verdict where label None | None where label "
          "given | opposite |")
    print("|---|---|---|---|---|---|---|---|")
    for name, replies in corpora.items():
        counts = Counter()
        shown = 0
        for text, expected in replies:
            got = parse_verdict(text)
            kind = ("agree" if got == expected else "invented" if expected is None else
                    "missed" if got is None else "opposite")
            counts[kind] += 1
            counts["verdicts"] += got is not None
            if kind != "agree" and shown < args.show:
                shown += 1
                print(f"--- {name}: label {expected}, parsed {got}\n{text[-700:]}\n", file=sys.stderr)
        print(f"| {name} | {len(replies)} | {counts['verdicts']} | {len(replies) - counts['verdicts']} | "
              f"{counts['agree']} | {counts['invented']} | {counts['missed']} | {counts['opposite']} |")


if __name__ == "__main__":
    main()
