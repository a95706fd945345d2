"""95% upper bounds on silent grading errors from a hand-read random sample of each group (issue 31).

Reads the verdicts CSV written by reading the dumped held-out samples (`bench_grading_real.py --dump`), and for each
group prints: its size, how many were read, the errors found (clear, and with arguable ones), the exact 95% upper
bound on the errors in the whole group (hypergeometric: the sample was drawn without replacement; the
Clopper-Pearson binomial bound and the rule of three are printed beside it) and that bound as a share of all
held-out samples. Group sizes are those of main's held-out run (`--set held_out`).

    python bench/bench_silent_error_bounds.py [--csv bench/issue31_silent_errors_read.csv] [--dump held_out.jsonl]

With --dump (the JSON lines `bench_grading_real.py --set held_out --dump` writes), the two hedge shapes that repeat
the prompt examples' answers are also counted over every dumped hedge, with how many name the gold letter where
this question's answer stands.
"""
from __future__ import annotations

import argparse
import csv
import json
import re
from collections import Counter
from math import comb

HELD_OUT_SAMPLES = 216_556
# group -> (size in main's held-out run, the verdicts that count as an error of the group's kind)
GROUPS = {
    "ours_correct": (696, "silent false positive"),
    "ours_incorrect": (1_599, "silent false negative"),
    "noans_official_letter": (2_025, "silent false negative"),
    "hedged": (1_904, "silent false negative"),
    # the hedged samples other than the two shapes that repeat the prompt examples' answers, which are counted exactly
    # by a regex over all held-out samples instead (bench/README.md): 289 "Final Answer" lines after an answer
    # (Qwen1.5 chat models; 175 name the gold letter first) and 97 runs of six bare answer lines (gemini-1.5-flash;
    # 43 give the gold letter in the sixth line)
    "hedged, other shapes": (1_904 - 289 - 97, "silent false negative"),
}
PROMPT_EXAMPLE_SHAPES = ("answer letter, then a final-answer line repeating the prompt example answer",
                         "five bare answer lines for the prompt examples")


# "The answer is (C).\n\nFinal Answer: The answer is (E)." or "... Now, let's combine all the answers.\n\nThe answer
# is E.": the later letter is the prompt's example answer (the same across a category); this question's is the first.
FINAL_LINE_AFTER_ANSWER = re.compile(
    r"The answer is \(?([A-J])\)?\.?\s*\n\s*(?:\n\s*)?(?:Final [Aa]nswer:?\s*\n?\s*The answer is\s*\*{0,2}\(?([A-J])\b"
    r"|Now, let's combine all the answers\.?\s*\n\s*\n?\s*The answer is \(?([A-J])\b)")
# six lines "The answer is (A)" ... "The answer is (G)": five for the prompt's examples, the sixth for this question
BARE_ANSWER_LINE = re.compile(r"^\s*The answer is \(([A-J])\)\s*$", re.MULTILINE)


def count_prompt_example_shapes(dump: str) -> Counter:
    """Hedges of the two shapes in a dump, and how many give the gold letter where this question's answer stands."""
    counts: Counter = Counter()
    with open(dump, encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            text = record["text"] or ""
            if record["kind"] != "hedged":
                continue
            match, bare = FINAL_LINE_AFTER_ANSWER.search(text), BARE_ANSWER_LINE.findall(text)
            if match and match.group(1) != (match.group(2) or match.group(3)):
                counts["final line"] += 1
                counts["final line, first letter gold"] += match.group(1) == record["gold"]
            elif len(bare) >= 6:
                counts["six bare lines"] += 1
                counts["six bare lines, sixth gold"] += bare[5] == record["gold"]
    return counts


def hypergeometric_cdf(errors: int, size: int, bad: int, read: int) -> float:
    """P(at most `errors` bad ones among `read` drawn without replacement from `size` holding `bad`)."""
    return sum(comb(bad, k) * comb(size - bad, read - k) for k in range(errors + 1)) / comb(size, read)


def hypergeometric_upper(size: int, read: int, errors: int, level: float = 0.95) -> int:
    """Largest number of errors in the group that still gives >= 5% chance of seeing at most `errors` in `read`."""
    bound = errors
    while bound < size and hypergeometric_cdf(errors, size, bound + 1, read) >= 1 - level:
        bound += 1
    return bound


def clopper_pearson_upper(read: int, errors: int, level: float = 0.95) -> float:
    """One-sided exact binomial upper bound on the error rate (bisection on the binomial tail)."""
    def at_most(rate: float) -> float:
        return sum(comb(read, k) * rate ** k * (1 - rate) ** (read - k) for k in range(errors + 1))
    low, high = errors / read, 1.0
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if at_most(middle) > 1 - level else (low, middle)
    return high


def main() -> None:
    """Print the table for bench/README.md."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", default="bench/issue31_silent_errors_read.csv")
    parser.add_argument("--dump", help="held-out dump of bench_grading_real.py, to count the prompt-example shapes")
    args = parser.parse_args()
    with open(args.csv, encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["group"] in GROUPS]
    rows += [dict(row, group="hedged, other shapes") for row in rows
             if row["group"] == "hedged" and not row["reason"].startswith(PROMPT_EXAMPLE_SHAPES)]
    read, verdicts = Counter(row["group"] for row in rows), Counter((row["group"], row["verdict"]) for row in rows)
    print("| group | size | read | errors: clear / with arguable | 95% bound in group, clear: hypergeometric "
          "(Clopper-Pearson, rule of three) | as share of all held-out | 95% bound with arguable | as share |")
    print("|---|---|---|---|---|---|---|---|")
    for group, (size, kind) in GROUPS.items():
        n, clear = read[group], verdicts[(group, kind)]
        arguable = clear + verdicts[(group, f"{kind} (arguable)")]
        bound, bound_arguable = hypergeometric_upper(size, n, clear), hypergeometric_upper(size, n, arguable)
        cp = clopper_pearson_upper(n, clear) * size
        three = f", {3 * size / n:.0f}" if clear == 0 else ""
        print(f"| {group} | {size:,} | {n} | {clear} / {arguable} | {bound} ({cp:.0f}{three}) | "
              f"{100 * bound / HELD_OUT_SAMPLES:.3f}% | {bound_arguable} | "
              f"{100 * bound_arguable / HELD_OUT_SAMPLES:.3f}% |")
    if args.dump:
        print(dict(count_prompt_example_shapes(args.dump)))


if __name__ == "__main__":
    main()
