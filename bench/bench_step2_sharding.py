"""Step 2 sharded on Ray vs unsharded, repeatedly, while a CPU burner loads every core (cold workers under load).

Usage: python bench/bench_step2_sharding.py [--runs 20] [--rows 16] [--math_timeout 5] [--burners N]
Writes a Step 1-shaped math output whose answers need math-verify (fractions, surds, powers, expressions), grades
it once unsharded on the quiet machine, then starts a local Ray cluster and `--burners` busy processes (default:
one per core) and runs `unified_evaluation.py --num_shards 2 --ray_address ...` `--runs` times. Every run's shards
start in fresh Ray workers, which import math-verify cold. Each run's output is compared with the unsharded one;
prints one line per run and the count of equal runs, with the load average.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import secrets
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "generation", "unified_evaluation.py")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
# (gold, equivalent form, a wrong form): each pair goes to math-verify (no text or exact-number shortcut)
ANSWERS = [("2", "\\frac{4}{2}", "\\frac{5}{2}"), ("\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt3}{2}", "\\frac{\\sqrt2}{2}"),
           ("2\\sqrt{3}", "\\sqrt{12}", "\\sqrt{13}"), ("x^2+2x+1", "(x+1)^2", "(x+1)^3"),
           ("1024", "2^{10}", "2^{11}"), ("\\frac{1}{2^{99}}", "\\frac{2}{2^{100}}", "\\frac{1}{2^{98}}"),
           ("\\pi/2", "\\frac{\\pi}{2}", "\\frac{\\pi}{3}"), ("3", "\\sqrt{9}", "\\sqrt{8}")]


def burn() -> None:
    """Keep one core busy until killed."""
    while True:
        pass


def write_input(path: str, rows: int) -> None:
    """A Step 1-shaped math output: each row's samples state its answer in an equivalent and a wrong form."""
    import datasets

    data = [{"instruction": f"Problem {i}: simplify.", "answer": gold,
             "samples": [f"We simplify.\n\nThe answer is: {same}", f"So the result is $\\boxed{{{wrong}}}$.",
                         f"Therefore, the final answer is: $\\boxed{{{same}}}$. I hope it is correct."]}
            for i, (gold, same, wrong) in ((i, ANSWERS[i % len(ANSWERS)]) for i in range(rows))]
    datasets.DatasetDict({"data": datasets.Dataset.from_list(data)}).save_to_disk(path)


def grade(input_path: str, output: str, timeout: float, *extra: str) -> float:
    """Run Step 2 (procedural only) and return its wall time; raise with its stderr when it fails."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, SCRIPT, "-i", input_path, "-o", output, "-t", "math", "-p", "2",
                           "--llm_fallback", "never", "--math_timeout", str(timeout), *extra],
                          env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return time.perf_counter() - start


def graded(path: str) -> list[dict]:
    """The rows of a Step 2 output."""
    from datasets import load_from_disk

    return load_from_disk(path)["data"].to_list()


def reasons(path: str) -> dict:
    """The undecided and no-answer reasons a Step 2 output's provenance records."""
    with open(os.path.join(path, "provenance.json")) as handle:
        record = json.load(handle)
    return {key: record.get(key) for key in ("undecided_reasons", "no_answer_reasons")}


def main() -> None:
    """Grade unsharded once, then sharded `--runs` times under the burner; print each comparison and the total."""
    # a token of its own (set before Ray reads its config): other local clusters may rewrite ~/.ray/auth_token
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(16))
    ENV.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=os.environ["RAY_AUTH_TOKEN"])
    import ray

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--math_timeout", type=float, default=5.0, help="Step 2's per-pair deadline (its default)")
    parser.add_argument("--burners", type=int, default=os.cpu_count())
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        step1 = os.path.join(tmp, "step1.hf")
        write_input(step1, args.rows)
        single = os.path.join(tmp, "single.hf")
        seconds = grade(step1, single, args.math_timeout)
        reference = graded(single)
        methods = [m for row in reference for m in row["answer_extraction_method"]]
        print(f"unsharded: {seconds:.1f} s, methods {sorted(set(methods))}", flush=True)
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        address = ray.get_runtime_context().gcs_address
        burners = [multiprocessing.Process(target=burn, daemon=True) for _ in range(args.burners)]
        for burner in burners:
            burner.start()
        equal = 0
        try:
            for run in range(args.runs):
                out = os.path.join(tmp, f"sharded_{run}.hf")
                seconds = grade(step1, out, args.math_timeout, "--num_shards", "2", "--ray_address", address)
                rows = graded(out)
                same = rows == reference
                equal += same
                differing = [(a, b) for a, b in zip(rows, reference) if a != b]
                for row, expected in differing:  # what differs, and why (the shards' undecided reasons)
                    print(json.dumps({"sharded": row, "unsharded": expected, "reasons": reasons(out)}), flush=True)
                print(json.dumps({"run": run + 1, "equal": same, "rows_differing": len(differing),
                                  "seconds": round(seconds, 1), "load": round(os.getloadavg()[0], 1)}), flush=True)
        finally:
            for burner in burners:
                burner.kill()
            ray.shutdown()
        print(f"sharded equal to unsharded in {equal} of {args.runs} runs ({args.rows} rows x 3 samples, "
              f"--math_timeout {args.math_timeout}, {args.burners} burners on {os.cpu_count()} cores, load average "
              f"{' / '.join(f'{x:.1f}' for x in os.getloadavg())})")


if __name__ == "__main__":
    main()
