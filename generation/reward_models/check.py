"""--check: load each reward model, score two built-in correct/wrong pairs, and print how it loaded and behaved."""
from __future__ import annotations

import math
import os
import threading
import time
from typing import Any

from generation.common.cli import error_line
from generation.reward_models.inputs import ScoreOptions
from generation.reward_models.registry import RewardModelSpec
from generation.reward_models.scoring import gpm_pair_score, score_items

# (question, a correct solution, a wrong solution): an easy math problem and a multiple-choice question
CHECK_PAIRS = (
    ("What is 12 + 30? Put the final answer in \\boxed{}.",
     "Step 1: Add the tens: 10 + 30 = 40.\n\nStep 2: Add the units: 40 + 2 = 42.\n\nThe answer is \\boxed{42}.",
     "Step 1: Add the tens: 10 + 30 = 40.\n\nStep 2: Add the units: 40 + 5 = 45.\n\nThe answer is \\boxed{45}."),
    ("Which planet is closest to the Sun? A) Venus B) Mercury C) Mars D) Earth. "
     "End with 'The answer is: X'.",
     "Mercury has the smallest orbit of all planets.\n\nThe answer is: B",
     "Venus is the hottest planet, so it must be the closest.\n\nThe answer is: A"),
)
HEADER = f"{'model':<28} {'loaded':<34} {'finite':<7} {'correct>wrong':<14} {'seconds':>8} {'peak memory':>12}"


def as_number(value: Any) -> float:
    """A scalar view of a result: the score, or the mean step score of a PRM."""
    return sum(value) / len(value) if isinstance(value, list) else value


def finite(value: Any) -> bool:
    """Whether every number in a result (score, step list, GPM vectors) is finite."""
    if isinstance(value, dict):
        return all(finite(v) for v in value.values())
    if isinstance(value, list):
        return bool(value) and all(finite(v) for v in value)
    return isinstance(value, float) and math.isfinite(value)


def prefers_correct(correct: Any, wrong: Any, kind: str) -> bool:
    """Whether the model ranks the correct solution above the wrong one (GPM: by its preference score)."""
    if kind == "gpm":
        return gpm_pair_score(correct, wrong) > 0
    return as_number(correct) > as_number(wrong)


def resident_bytes() -> int:
    """This process's resident memory now (Linux /proc), 0 where it cannot be read."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class ResidentPeak:
    """While open: the peak of this process's resident memory above its level on entry, sampled in a thread (one
    model's own memory on the CPU, where the process-wide peak would repeat the largest model's for every later one)."""

    def __init__(self, interval_s: float = 0.02) -> None:
        self.interval_s, self.base, self.peak = interval_s, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> "ResidentPeak":
        self.base = self.peak = resident_bytes()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        """Record the highest resident memory seen until stopped."""
        while not self._stop.wait(self.interval_s):
            self.peak = max(self.peak, resident_bytes())

    @property
    def used(self) -> int:
        """Bytes above the level on entry."""
        return max(self.peak, resident_bytes()) - self.base


def check_model(spec: RewardModelSpec, options: ScoreOptions) -> tuple[str, bool]:
    """One line of the --check table for spec, and whether it passed (loaded, all scores finite); memory is this
    model's own peak: GPU memory on CUDA, resident memory above the level before it loaded on the CPU."""
    import torch

    cuda = options.device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    items = [(q, answer) for q, correct, wrong in CHECK_PAIRS for answer in (correct, wrong)]
    started = time.time()
    try:
        with ResidentPeak() as resident:
            run = score_items(spec, items, options)
    except Exception as err:  # noqa: BLE001 - a load failure is the check's answer for this model
        return f"{spec.name:<28} FAILED TO LOAD: {error_line(err)[:300]}", False
    seconds = time.time() - started
    memory = (f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB GPU" if cuda
              else f"{resident.used / 2**30:.3f} GiB RSS")
    loaded = "vLLM" if run.backend == "vllm" else spec.loading
    ok = not run.errors and all(finite(v) for v in run.results)
    wins = sum(prefers_correct(run.results[2 * i], run.results[2 * i + 1], spec.kind)
               for i in range(len(CHECK_PAIRS))) if ok else 0
    line = (f"{spec.name:<28} {loaded:<34} {'yes' if ok else 'NO':<7} {f'{wins}/{len(CHECK_PAIRS)}':<14} "
            f"{seconds:>8.1f} {memory:>12}")
    if run.errors:
        line += f"  ({next(iter(run.errors.values()))})"
    return line, ok


def check_models(specs: list[RewardModelSpec], options: ScoreOptions) -> int:
    """Print the --check table; 1 when any model failed to load or gave a non-finite score, else 0."""
    print(HEADER)
    passed = True
    for spec in specs:
        line, ok = check_model(spec, options)
        print(line, flush=True)
        passed &= ok
    return 0 if passed else 1
