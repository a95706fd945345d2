"""95% upper bounds on silent grading errors from a hand-read random sample of each group (issue 31).

Reads the verdicts CSV written by reading the dumped held-out samples (`bench_grading_real.py --dump`), and for each
group prints: its size, how many were read, the errors found (clear, and with arguable ones), the exact 95% upper
bound on the errors in the whole group (hypergeometric: the sample was drawn without replacement; the
Clopper-Pearson binomial bound and the rule of three are printed beside it) and that bound as a share of all
held-out samples. Group sizes are those of main's held-out run (`--set held_out`).

    python bench/bench_silent_error_bounds.py [--csv bench/issue31_silent_errors_read.csv]
"""
from __future__ import annotations

import argparse
import csv
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


if __name__ == "__main__":
    main()
