"""Benchmark files for tests (rows and writer from scripts/example_benchmarks.py) and reading a Step 1 output back."""
from __future__ import annotations

from example_benchmarks import ROWS, gpqa_rows, math_rows, mmlu_pro_rows, mmlu_rows, write_benchmark

__all__ = ["ROWS", "gpqa_rows", "load_output", "math_rows", "mmlu_pro_rows", "mmlu_rows", "write_benchmark",
           "write_benchmarks"]


def write_benchmarks(folder: str, names: tuple[str, ...]) -> str:
    """Write several benchmarks' fixture files into folder; return the folder."""
    for name in names:
        write_benchmark(name, folder)
    return folder


def load_output(path: str):
    """A Step 1 output's `data` split, checking that load_dataset and load_from_disk both read it alike."""
    from datasets import load_dataset, load_from_disk

    data = load_dataset(path)["data"]
    assert load_from_disk(path)["data"]["samples"] == data["samples"]
    return data
