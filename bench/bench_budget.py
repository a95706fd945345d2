"""--max_cost ledger: how close to the cap a run ends, never past it, against a fake provider with wide replies.

Usage: python bench/bench_budget.py [--seeds 20] [--jobs 200]
What is measured: run_chat_jobs with gpt-5-nano (a reasoning model: no cap is sent, so the ledger reserves its
documented maximum output, 128,000 tokens per completion), n = 4, --max_concurrency 64, against the fake OpenAI
client of tests/costs/fake_provider.py whose completions are 10 to 100,000 tokens (uniform). For each cap it prints
the spend as a share of the cap (over the seeds: lowest, median), the headroom left in units of one job's worst case
(always <= 1), the peak requests in flight and the wall time.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "scripts"), os.path.join(ROOT, "tests"), os.path.join(ROOT, "tests", "costs")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from test_budget_ledger import run_with_cap, worst  # noqa: E402

CAPS = (0.01, 0.1, 0.5, 1.0, 2.0, 5.0)


def main() -> None:
    """Print one line per cap."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=200)
    args = parser.parse_args()
    one = worst()
    print(f"one job's worst case: ${one:.4f} (n = 4 x 128,000 tokens at $0.40/Mtok plus its prompt)")
    print("cap | spent/cap lowest | spent/cap median | headroom (worst cases) highest | peak in flight | s per run")
    for cap in CAPS:
        shares, headrooms, peaks = [], [], []
        started = time.perf_counter()
        for seed in range(args.seeds):
            fake, _, _ = run_with_cap(cap, seed, count=args.jobs)
            assert fake.bill <= cap + 1e-9
            shares.append(fake.bill / cap)
            headrooms.append((cap - fake.bill) / one)
            peaks.append(fake.most_in_flight)
        seconds = (time.perf_counter() - started) / args.seeds
        print(f"${cap:g} | {min(shares):.3f} | {statistics.median(shares):.3f} | {max(headrooms):.2f} | "
              f"{max(peaks)} | {seconds:.2f}", flush=True)


if __name__ == "__main__":
    main()
