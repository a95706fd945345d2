"""Placing reward models on devices: in-process in sequence, or one worker process per free GPU (or GPU group)."""
from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable

from generation.common.cli import error_line
from generation.common.processes import guard_descendants
from generation.common.records import stable_hash
from generation.common.writing import write_json_atomic
from generation.data.sharding import run_store
from generation.reward_models.inputs import ScoreOptions
from generation.reward_models.registry import RewardModelSpec
from generation.reward_models.scoring import score_items

GPU_HEADROOM = 0.9  # share of a GPU's memory a model may plan to use


@dataclass
class Job:
    """One reward model to score: its spec, options, and where its inputs and results live."""

    spec: RewardModelSpec
    options: ScoreOptions
    items_path: str
    store_path: str  # scores by item_key, for this model and settings (run_store: any shard layout's are found)
    summary_path: str
    own_only: bool = False  # --overwrite: reuse no score of another log

    def to_json(self) -> dict:
        """A JSON-able form for a worker process."""
        return {"spec": dataclasses.asdict(self.spec), "options": dataclasses.asdict(self.options),
                "items_path": self.items_path, "store_path": self.store_path, "summary_path": self.summary_path,
                "own_only": self.own_only}

    @classmethod
    def from_json(cls, data: dict) -> "Job":
        """Inverse of to_json."""
        return cls(spec=RewardModelSpec(**data["spec"]), options=ScoreOptions(**data["options"]),
                   items_path=data["items_path"], store_path=data["store_path"], summary_path=data["summary_path"],
                   own_only=data["own_only"])


def item_key(instruction: str, sample: str | None) -> str:
    """The content key of one scored (instruction, sample) pair."""
    return stable_hash([instruction, sample])[:32]


def read_items(job: Job) -> list[tuple[str, str | None]]:
    """The (instruction, sample) pairs a job scores, in item order."""
    with open(job.items_path, encoding="utf-8") as handle:
        return [tuple(pair) for pair in json.load(handle)]


def stored_results(job: Job) -> list:
    """Each item's stored score (None where none is stored) from the run's logs for the job's model and settings."""
    keys = [item_key(*item) for item in read_items(job)]
    with run_store(job.store_path, set(keys), own_only=job.own_only) as store:
        return [store.get(key) for key in keys]


def run_job(job: Job, show_progress: bool = True) -> dict:
    """Score one model here and now: reuse the scores any log of the run holds for its items, record each new one
    under its item_key, write a summary JSON (resumed: items reused, scored: items scored now)."""
    from tqdm import tqdm

    items = read_items(job)
    keys = [item_key(*item) for item in items]
    summary: dict = {"model": job.spec.name}
    with run_store(job.store_path, set(keys), job.options.batch_size, job.own_only) as store:
        done = {i: store.get(key) for i, key in enumerate(keys) if key in store}
        scored: list[int] = []

        def keep(index: int, value) -> None:
            store.put(keys[index], value)
            scored.append(index)

        bar = tqdm(total=len(items), desc=f"{job.spec.name}", unit="sample", disable=not show_progress)
        try:
            run = score_items(job.spec, items, job.options, done=done, on_result=keep, progress=bar.update)
            summary.update(errors={str(k): v for k, v in run.errors.items()}, truncated=run.truncated,
                           backend=run.backend, load_s=round(run.load_s, 3), score_s=round(run.score_s, 3),
                           tokens=run.tokens, resumed=len(done), scored=len(scored), attn_implementation=run.attn)
        except Exception as err:  # noqa: BLE001 - a model that cannot load or run is reported, not fatal
            summary["fatal"] = error_line(err)
        finally:
            bar.close()
    write_json_atomic(job.summary_path, summary)
    return summary


def gpus_needed(spec: RewardModelSpec, per_gpu_gb: float) -> int:
    """How many GPUs of per_gpu_gb a model's memory estimate needs."""
    return max(1, math.ceil(spec.memory_gb / (per_gpu_gb * GPU_HEADROOM)))


def plan_order(jobs: list[Job], per_gpu_gb: float, n_gpus: int) -> list[tuple[Job, int]]:
    """Jobs largest first with their GPU counts (capped at the GPUs present)."""
    ranked = sorted(jobs, key=lambda j: -j.spec.memory_gb)
    return [(job, min(n_gpus, gpus_needed(job.spec, per_gpu_gb))) for job in ranked]


def run_parallel(jobs: list[Job], gpu_ids: list[int], per_gpu_gb: float,
                 on_done: Callable[[Job, dict], None], poll_s: float = 0.5) -> None:
    """Run each job in its own worker process with CUDA_VISIBLE_DEVICES set to the GPUs it was given.

    Jobs are queued largest first; a job starts as soon as enough GPUs are free; a job wider than one GPU gets
    several and spreads over them with device_map="auto".
    """
    queue = plan_order(jobs, per_gpu_gb, len(gpu_ids))
    free = list(gpu_ids)
    running: list[tuple[subprocess.Popen, Job, list[int]]] = []
    while queue or running:
        for entry in list(queue):
            job, need = entry
            if need <= len(free):
                taken, free = free[:need], free[need:]
                queue.remove(entry)
                running.append((_launch(job, taken), job, taken))
        time.sleep(poll_s)
        for proc, job, taken in list(running):
            if proc.poll() is None:
                continue
            running.remove((proc, job, taken))
            free = sorted(free + taken)
            on_done(job, _read_summary(job, proc.returncode))


def _launch(job: Job, gpus: list[int]) -> subprocess.Popen:
    """Start a worker for job that sees only the given GPUs."""
    if len(gpus) > 1:
        job = dataclasses.replace(job, options=dataclasses.replace(job.options, device_map="auto"))
    if job.options.device.startswith("cuda"):
        job = dataclasses.replace(job, options=dataclasses.replace(job.options, device="cuda:0"))
    job_path = job.summary_path + ".job.json"
    write_json_atomic(job_path, job.to_json())
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # holds the package
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ",".join(str(g) for g in gpus), "PYTHONPATH": path}
    guard_descendants()  # a worker holding a GPU never outlives this step
    return subprocess.Popen([sys.executable, "-m", "generation.reward_models.placement", job_path], env=env)


def _read_summary(job: Job, returncode: int) -> dict:
    """The worker's summary, or a fatal record when it died without one."""
    if os.path.exists(job.summary_path):
        with open(job.summary_path, encoding="utf-8") as handle:
            summary = json.load(handle)
        if summary.get("model") == job.spec.name:
            return summary
    return {"model": job.spec.name, "fatal": f"worker process exited with code {returncode} and no summary"}


def gpu_inventory() -> list[tuple[int, float]]:
    """(index, memory GB) of each visible GPU; empty without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return []
    return [(i, torch.cuda.get_device_properties(i).total_memory / 2**30) for i in range(torch.cuda.device_count())]


def run_all(jobs: list[Job], device: str, sequential: bool, on_done: Callable[[Job, dict], None]) -> str:
    """Score every job: workers per GPU by default on GPU machines, in-process in sequence otherwise; the mode used."""
    gpus = gpu_inventory() if device.startswith("cuda") else []
    if not gpus or sequential:
        for job in jobs:
            if gpus:
                total = sum(mem for _, mem in gpus)
                wide = gpus_needed(job.spec, gpus[0][1]) > 1
                options = dataclasses.replace(job.options, device_map="auto" if wide else None,
                                              device="cuda:0" if not wide else "cuda")
                if job.spec.memory_gb > total * GPU_HEADROOM:
                    print(f"warning: {job.spec.name} (~{job.spec.memory_gb:g} GB) exceeds the GPUs' memory; "
                          f"accelerate will offload layers to CPU", file=sys.stderr)
                job = dataclasses.replace(job, options=options)
            on_done(job, run_job(job))
        return "sequential (in-process)" + (" on GPU" if gpus else " on CPU")
    run_parallel(jobs, [i for i, _ in gpus], min(mem for _, mem in gpus), on_done)
    return f"parallel: one worker process per GPU ({len(gpus)} GPUs)"


def _worker_main(job_path: str) -> None:
    """Entry point of a worker process (started by Step 3 with its job file's path): run one job file."""
    with open(job_path, encoding="utf-8") as handle:
        job = Job.from_json(json.load(handle))
    summary = run_job(job)
    sys.exit(1 if "fatal" in summary else 0)


if __name__ == "__main__":
    _worker_main(sys.argv[1])
