"""Money at the edges (issue 33): Step 1 against a loopback provider that bills like the real ones.

Usage: python bench/bench_money.py [--seeds 20]
What is measured (tests/loopback_billing.py: reply lengths drawn per request, hidden reasoning billed as output,
the prompt billed once per request, batches at half price, the bill kept on the server whatever the reply says):
1. a gateway that drops `usage`: the provider's bill over the cap, for several caps;
2. three reruns of one capped command on one output (200 rows): the bill of all three over the cap;
3. batch mode: an expired batch with and without --batch_fallback live, the bill over the cap;
4. the dry run's upper figure for uncapped reasoning models against the bill of the real run;
5. a paid pilot (--dry_run --pilot 4 of 40 rows): its expected cost against the bill of the rest, over seeds.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]
os.environ.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OPENAI_API_KEY": "sk-bench",
                   "ANTHROPIC_API_KEY": "sk-ant-bench", "WEAVER_BATCH_POLL_S": "0.01"})

from loopback_billing import BillingProvider  # noqa: E402

from generation.common.cli import run_main  # noqa: E402
from generation.costs.pricing import PRICES  # noqa: E402
from generation.generate_reasoning_samples import main  # noqa: E402

from fixtures_benchmarks import write_benchmark  # noqa: E402
from loopback import LoopbackServer  # noqa: E402
from loopback_batches import BatchService  # noqa: E402


def rows(count: int) -> list[dict]:
    """MATH-500-shaped rows of varied lengths."""
    return [{"problem": f"Compute the sum of the first {i + 2} odd numbers, then explain " + "why " * (i % 7),
             "solution": f"The sum is $\\boxed{{{(i + 2) ** 2}}}$.", "answer": str((i + 2) ** 2), "subject": "Algebra",
             "level": 1 + i % 5,
             "unique_id": f"bench/{i}.json"} for i in range(count)]


def step1(data: str, out: str, url: str, model: str, *extra: str) -> int:
    """Step 1's exit code, its output quiet."""
    args = ["--model", model, "--base_url", url, "--dataset", "math", "--dataset_path", data, "--output_path", out,
            "--samples_per_instruction", "4", "--seed", "1", *extra]
    with contextlib.redirect_stdout(io.StringIO()) as out_text, contextlib.redirect_stderr(io.StringIO()):
        try:
            run_main(main, args)
            code = 0
        except SystemExit as exit_:
            code = exit_.code
    step1.text = out_text.getvalue()
    return code


def usage_less(folder: str, data: str) -> None:
    """1: a capped run against a gateway that drops usage."""
    print("1. gateway without usage (gpt-4o-mini prices, replies 50-400 tokens, cap 400): bill / cap")
    for cap in (0.0005, 0.002, 0.01):
        provider = BillingProvider(PRICES["gpt-4o-mini"], low=50, high=400, omit_usage=True)
        with LoopbackServer(provider) as server:
            code = step1(data, os.path.join(folder, f"u{cap}"), server.url, "gpt-4o-mini", "--provider", "openai",
                         "--max_new_tokens", "400", "--max_cost", str(cap))
        print(f"   cap ${cap}: billed ${provider.bill:.6f} = {provider.bill / cap:.2f} of the cap, "
              f"{provider.requests} requests, exit {code}")


def reruns(folder: str, seeds: int) -> None:
    """2: three reruns of one capped command (200 rows: more work than the cap buys)."""
    data = write_benchmark("math", os.path.join(folder, "many"), rows=rows(200))
    shares = []
    for seed in range(seeds):
        provider = BillingProvider(PRICES["gpt-5-mini"], low=500, high=20_000, reasoning_share=0.8, seed=seed)
        out = os.path.join(folder, f"r{seed}")
        with LoopbackServer(provider) as server:
            for _ in range(3):
                step1(data, out, server.url, "gpt-5-mini", "--provider", "openai", "--max_cost", "3")
        shares.append(provider.bill / 3)
    print(f"2. three reruns, gpt-5-mini uncapped (worst case 4 x 128,000 tokens), cap $3, {seeds} seeds: "
          f"bill of all three / cap: lowest {min(shares):.3f}, median {statistics.median(shares):.3f}, "
          f"highest {max(shares):.3f}")


def batches(folder: str, data: str) -> None:
    """3: an expired batch, with and without the live fallback, under a cap."""
    for fallback in ("none", "live"):
        provider = BillingProvider(PRICES["gpt-4o-mini"], low=200, high=300)
        service = BatchService(provider.batch, expire_after=0)
        with LoopbackServer(provider, batches=service) as server:
            code = step1(data, os.path.join(folder, f"b{fallback}"), server.url, "gpt-4o-mini", "--provider",
                         "openai", "--max_new_tokens", "300", "--api_mode", "batch", "--max_cost", "0.002",
                         "--batch_fallback", fallback)
            live = sum(r["path"].startswith("/v1/chat") for r in server.requests)
        print(f"3. batch of 40 requests expiring with nothing done, --batch_fallback {fallback}, cap $0.002: "
              f"{live} live requests, billed ${provider.bill:.6f} ({provider.bill / 0.002:.2f} of the cap), "
              f"exit {code}")


def upper_figures(folder: str, data: str) -> None:
    """4: the dry run's upper figure for uncapped reasoning models, and the bill of the real run."""
    for model in ("o4-mini", "gpt-5"):
        provider = BillingProvider(PRICES[model], low=500, high=20_000, reasoning_share=0.8)
        out = os.path.join(folder, f"d{model}")
        with LoopbackServer(provider) as server:
            step1(data, out, server.url, model, "--provider", "openai", "--dry_run")
            line = step1.text.split("total estimated API cost: ")[1].splitlines()[0]
            step1(data, out, server.url, model, "--provider", "openai")
        print(f"4. {model} without --max_new_tokens, 40 rows x 4: dry run {line}; billed ${provider.bill:.4f}")


def pilots(folder: str, data: str, seeds: int) -> None:
    """5: a pilot's expected cost against the bill of the rest."""
    for model, low, high, share in (("o4-mini", 500, 8_000, 0.8), ("claude-sonnet-4-5", 50, 2_000, 0.0)):
        errors = []
        for seed in range(seeds):
            provider = BillingProvider(PRICES[model], low=low, high=high, reasoning_share=share, seed=seed)
            out = os.path.join(folder, f"p{model}{seed}")
            with LoopbackServer(provider) as server:
                claude = model.startswith("claude")
                url = server.root if claude else server.url
                extra = ("--provider", "anthropic", "--max_new_tokens", "8000") if claude else ("--provider", "openai")
                step1(data, out, url, model, *extra, "--dry_run", "--pilot", "4", "--max_cost", "50")
                expected = float(step1.text.split("expected ~$")[1].split(" ")[0])
                before = provider.bill
                step1(data, out, url, model, *extra, "--max_cost", "50")
            errors.append((expected - (provider.bill - before)) / (provider.bill - before))
        print(f"5. pilot of 4 of 40 rows, {model} (replies {low}-{high} tokens), {seeds} seeds: (expected - billed) "
              f"/ billed: median {statistics.median(errors):+.3f}, worst {max(errors, key=abs):+.3f}, "
              f"within 30%: {sum(abs(e) <= 0.3 for e in errors)}/{seeds}")


def main_bench() -> None:
    """Print one block per measurement."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        data = write_benchmark("math", folder, rows=rows(40))
        usage_less(folder, data)
        reruns(folder, min(args.seeds, 5))
        batches(folder, data)
        upper_figures(folder, data)
        pilots(folder, data, args.seeds)


if __name__ == "__main__":
    main_bench()
