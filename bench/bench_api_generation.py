"""Step 1 API speed: samples/s through backends.calls.run_chat_jobs against a loopback server that answers after 200 ms.

Usage: python bench/bench_api_generation.py [--problems 200] [--samples 8] [--max_concurrency 64]
One request per sample (n=1), as the reference sends them, so the figure compares with its 5 samples/s
(one request at a time). Ideal: max_concurrency / latency = 64 / 0.2 s = 320 samples/s. The server runs in a
child process (like a real API, it does not share the client's interpreter); the SDK is imported before timing.
Then the whole Step 1 command (generate_reasoning_samples.py: checkpoint, output, provenance) runs the same
problems against the same server, sending one request per problem with n = samples, as it does by default.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "scripts"), os.path.join(ROOT, "tests")]

from generation.backends.calls import run_chat_jobs  # noqa: E402
from generation.backends.rules import ApiConfig, ChatJob  # noqa: E402

from fixtures_benchmarks import write_benchmark  # noqa: E402
from loopback import Reply, openai_body, serve_in_child  # noqa: E402

LATENCY_S = 0.2


def slow_responder(path: str, request: dict, count: int) -> Reply:
    """Every request answered after LATENCY_S with `n` completions."""
    return Reply(delay=LATENCY_S, body=openai_body(request, ["Reasoning.\nThe answer is: B"] * (request.get("n") or 1)))


def measure(url: str, problems: int, samples: int, concurrency: int, per_request: int = 1) -> tuple[float, dict]:
    """Samples/s for problems x samples, `per_request` samples (n) per request, at the given concurrency."""
    jobs = [ChatJob(key=f"p{p}-s{s}", messages=[{"role": "user", "content": f"Problem {p}"}], seed=s,
                    n=per_request, temperature=0.7, max_tokens=512)
            for p in range(problems) for s in range(samples // per_request)]
    config = ApiConfig(model="loop", provider="openai_compatible", base_url=url, max_concurrency=concurrency,
                       timeout=30.0, max_retries=2)
    received = []
    start, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    stats = run_chat_jobs(config, jobs, lambda job, c: received.append(c), desc=f"concurrency {concurrency}")
    elapsed, used = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
    assert stats["failed_samples"] == 0 and stats["samples"] == problems * samples, stats
    cpu_s = used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime
    stats["client_cpu_ms_per_request"] = 1000 * cpu_s / len(jobs)
    return stats["samples"] / elapsed, stats


def measure_step1(url: str, problems: int, samples: int, concurrency: int) -> tuple[float, float]:
    """Run the Step 1 command on `problems` MATH-style rows; return (samples/s over its generation time, wall s)."""
    rows = [{"problem": f"Compute ${i} + {i}$.", "solution": f"$\\boxed{{{2 * i}}}$", "answer": str(2 * i),
             "subject": "Prealgebra", "level": 1, "unique_id": f"test/{i}.json"} for i in range(problems)]
    with tempfile.TemporaryDirectory() as folder:
        data = write_benchmark("math", folder, rows=rows)
        output = os.path.join(folder, "out.hf")
        command = [sys.executable, os.path.join(ROOT, "generation", "generate_reasoning_samples.py"),
                   "--model", "loop", "--provider", "openai_compatible", "--base_url", url, "--dataset", "math",
                   "--dataset_path", data, "--output_path", output, "--samples_per_instruction", str(samples),
                   "--max_concurrency", str(concurrency)]
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        wall = time.perf_counter() - start
        with open(os.path.join(output, "provenance.json")) as handle:
            provenance = json.load(handle)
    return provenance["counts"]["generated_this_run"] / provenance["generation_time_s"], wall


def main() -> None:
    """Run the main measurement and the reference-style sequential baseline; print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=200)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--max_concurrency", type=int, default=64)
    parser.add_argument("--baseline_requests", type=int, default=20)
    args = parser.parse_args()
    ideal = args.max_concurrency / LATENCY_S
    import openai  # noqa: F401  (a one-off ~1.5 s import, not per-request cost)
    with serve_in_child(slow_responder) as url:
        rate, stats = measure(url, args.problems, args.samples, args.max_concurrency)
        base, _ = measure(url, args.baseline_requests, 1, 1)
        batched, _ = measure(url, args.problems, args.samples, args.max_concurrency, per_request=args.samples)
        step1_rate, step1_wall = measure_step1(url, args.problems, args.samples, args.max_concurrency)
    print(f"{args.problems} problems x {args.samples} samples = {stats['samples']} requests (n=1) at "
          f"max_concurrency {args.max_concurrency}: {rate:.1f} samples/s in {stats['wall_time_s']:.2f} s; "
          f"ideal {ideal:.0f} samples/s; ratio {rate / ideal:.2f} (goal >= 0.8); "
          f"client CPU {stats['client_cpu_ms_per_request']:.2f} ms/request; retries {stats['retries']}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"reference default (one request at a time), {args.baseline_requests} requests: {base:.2f} samples/s "
          f"(ideal {1 / LATENCY_S:.0f}); speed-up {rate / base:.0f}x")
    print(f"one request per problem with n={args.samples} (OpenAI/Together/vLLM servers): {batched:.0f} samples/s")
    print(f"Step 1 command (n={args.samples} per problem, checkpointed): {step1_rate:.0f} samples/s while generating; "
          f"{step1_wall:.1f} s for the whole command including start-up, loading and saving")


if __name__ == "__main__":
    main()
