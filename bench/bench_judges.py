"""Step 3b API judge speed: verdicts/s through judges.judging.run_judge against a loopback server answering
after 200 ms.

Usage: python bench/bench_judges.py [--samples 1000] [--verdicts 3] [--max_concurrency 64]
What is counted: each sample is one request asking for K = --verdicts judgments (`n`=K), so verdicts/s = K x
requests/s. Ideal: max_concurrency / latency = 64 / 0.2 s = 320 requests/s = 960 verdicts/s at K = 3. The figure
is the whole run_judge call (prompt building, cache writes, verdict parsing), from an empty cache. A second,
smaller run at concurrency 4 stands for the reference, whose API judges ran 4 requests at a time.
The server runs in a child process (like a real API, it does not share the client's interpreter).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "scripts"), os.path.join(ROOT, "tests")]

from loopback import Reply, openai_body, serve_in_child  # noqa: E402

LATENCY_S = 0.2


def slow_judge(path: str, request: dict, count: int) -> Reply:
    """Every request answered after LATENCY_S with `n` judgments ending in a verdict."""
    return Reply(delay=LATENCY_S, body=openai_body(request, ["The steps hold.\nTrue"] * (request.get("n") or 1)))


def measure(url: str, samples: int, k: int, concurrency: int) -> dict:
    """Run one judge over `samples` samples (10 per row) with K verdicts each; return the figures."""
    from datasets import Dataset

    from generation.common.cli import settings_from
    from generation.judges.judging import run_judge
    from generation.judges.registry import parse_judge
    from generation.steps.settings import VerifySettings
    from generation.steps.verify import build_parser

    args = build_parser().parse_args(["--verdicts_per_sample", str(k), "--base_url", url,
                                      "--max_concurrency", str(concurrency)])
    options = settings_from(VerifySettings, vars(args)).judges
    rows = (samples + 9) // 10
    data = Dataset.from_dict({"instruction": [f"Problem {r}" for r in range(rows)],
                              "samples": [[f"Solution {r}.{s}" for s in range(10)] for r in range(rows)]})
    data = data.select(range(rows)) if samples % 10 == 0 else data
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        columns, stats = run_judge(parse_judge("Bench=openai_compatible:loop"), data, options, cache)
        elapsed = time.perf_counter() - start
    verdicts = sum(v == 1.0 for row in columns["Bench_verdicts"] for sample in row for v in sample)
    requests = stats["requests"]
    assert stats["failures"] == 0 and verdicts == requests * k, stats
    ideal = concurrency / LATENCY_S
    return {"concurrency": concurrency, "requests": requests, "verdicts": verdicts, "seconds": round(elapsed, 2),
            "requests_per_s": round(requests / elapsed, 1), "verdicts_per_s": round(verdicts / elapsed, 1),
            "ideal_requests_per_s": ideal, "fraction_of_ideal": round(requests / elapsed / ideal, 3)}


def main() -> None:
    """Start the server, run the measured and baseline judges, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--verdicts", type=int, default=3)
    parser.add_argument("--max_concurrency", type=int, default=64)
    parser.add_argument("--baseline_samples", type=int, default=100)
    opts = parser.parse_args()
    import openai  # noqa: F401 - SDK import outside the timed region

    with serve_in_child(slow_judge) as url:
        result = measure(url, opts.samples, opts.verdicts, opts.max_concurrency)
        baseline = measure(url, opts.baseline_samples, opts.verdicts, 4)
    print(f"\nK = {opts.verdicts} verdicts per sample, one request (n = K) per sample, {LATENCY_S * 1000:.0f} ms "
          f"server latency")
    for name, figures in (("measured", result), ("reference-like (4 at a time)", baseline)):
        print(f"{name}: " + ", ".join(f"{key}={value}" for key, value in figures.items()))
    print(f"speed-up over 4 at a time: {result['verdicts_per_s'] / baseline['verdicts_per_s']:.1f}x; "
          f"goal >= 0.8 of ideal: {'met' if result['fraction_of_ideal'] >= 0.8 else 'NOT met'}")


if __name__ == "__main__":
    main()
