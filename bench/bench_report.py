"""Benchmark the verifier report: 500 rows x 100 samples x 40 verifiers (30 reward models, 5 judges with K = 3
verdicts, 5 PRMs) in a saved Step 3 dataset; time the whole command (load, metrics, figures, HTML).

    python bench/bench_report.py [--rows 500] [--samples 100] [--export_weaver]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

JUDGES = ("GPT-4o", "GPT-4o-mini", "Claude-3-7-Sonnet", "Claude-3-5-Sonnet", "SkyT1")  # names weaver maps (export)
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def build(path: str, rows: int, samples: int) -> None:
    """A Step 3-shaped dataset whose verifiers are noisy views of answer_correct (a few scores missing)."""
    import datasets

    rng = np.random.default_rng(0)
    correct = rng.random((rows, samples)) < rng.random((rows, 1))
    answers = np.where(correct, "42", rng.integers(0, 20, (rows, samples)).astype(str))
    columns = {"instruction": [f"problem {i}" for i in range(rows)], "samples": [["text"] * samples] * rows,
               "answer": ["42"] * rows, "extracted_answers": answers.tolist(), "answer_correct": correct.tolist()}

    def noisy(strength: float) -> list:
        scores = correct * strength + rng.normal(size=correct.shape)
        return np.where(rng.random(correct.shape) < 0.01, None, scores).tolist()

    for i in range(30):
        columns[f"RM{i}_scores"] = noisy(i / 15)
    for name in JUDGES:
        verdicts = (rng.random((rows, samples, 3)) < 0.3 + 0.4 * correct[..., None]).astype(float)
        columns[f"{name}_verdicts"] = verdicts.tolist()
    for i in range(5):
        for part in ("min", "max", "avg"):
            columns[f"PRM{i}_{part}_scores"] = noisy(1.0)
    datasets.DatasetDict({"data": datasets.Dataset.from_dict(columns)}).save_to_disk(path)


def main() -> None:
    """Build the dataset once, then time the report command."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--export_weaver", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        data = os.path.join(folder, "step3.hf")
        started = time.time()
        build(data, args.rows, args.samples)
        print(f"built {args.rows} x {args.samples} x 40 verifiers in {time.time() - started:.1f} s")
        command = [sys.executable, os.path.join(ROOT, "generation", "verifier_report.py"), "--dataset_path", data,
                   "--output_dir", os.path.join(folder, "report")]
        if args.export_weaver:
            command += ["--export_weaver", os.path.join(folder, "weaver")]
        started = time.time()
        subprocess.run(command, check=True, stderr=subprocess.DEVNULL)
        print(f"verifier_report.py: {time.time() - started:.1f} s wall (whole command: imports, load, metrics, "
              f"figures, files)")


if __name__ == "__main__":
    main()
