"""Before a local engine starts: each GPU it will use has the memory it asks for (the watchdog that ends the
engine's processes with the step is common.processes.guard_descendants)."""
from __future__ import annotations

import os
import subprocess


def gpu_memory_shortfalls(gpus_csv: str, apps_csv: str, visible: str | None, used: int, utilization: float
                          ) -> list[str]:
    """Why the first `used` visible GPUs cannot give an engine `utilization` of their memory (vLLM's own start-up
    rule: free >= utilization x total), naming the processes that hold them; [] when they can or cannot be told.

    gpus_csv / apps_csv: `nvidia-smi --query-gpu=index,uuid,memory.total,memory.free` and
    `--query-compute-apps=gpu_uuid,pid,process_name,used_memory` with `--format=csv,noheader,nounits` (MiB)."""
    gpus = {}
    for line in gpus_csv.splitlines():
        fields = [field.strip() for field in line.split(",")]
        if len(fields) == 4 and fields[2].isdigit() and fields[3].isdigit():
            gpus[fields[0]] = gpus[fields[1]] = (fields[0], fields[1], int(fields[2]), int(fields[3]))
    names = [name.strip() for name in visible.split(",") if name.strip()] if visible is not None else \
        sorted({gpu[0] for gpu in gpus.values()}, key=int)
    if any(name not in gpus for name in names[:used]):  # MIG slices, or names nvidia-smi does not list
        return []
    apps = [[field.strip() for field in line.split(",")] for line in apps_csv.splitlines() if line.count(",") >= 3]
    found = []
    for index, uuid, total, free in (gpus[name] for name in names[:used]):
        if free >= utilization * total:
            continue
        holders = ", ".join(f"pid {pid} ({name.rsplit('/', 1)[-1]}, {memory} MiB)"
                            for gpu, pid, name, memory in (app[:4] for app in apps) if gpu == uuid)
        found.append(f"GPU {index} has {free / 1024:.1f} of {total / 1024:.1f} GiB free, less than the "
                     f"{utilization:.2f} the engine asks for; held by {holders or 'processes nvidia-smi cannot see'}")
    return found


def check_gpu_memory(utilization: float, used: int, flag: str | None) -> None:
    """UserError before an engine starts when a visible GPU lacks the memory it will ask for (often a stale
    engine of an earlier run); nothing when nvidia-smi is not there."""
    from generation.common.cli import UserError

    query = ["nvidia-smi", "--format=csv,noheader,nounits"]
    try:
        gpus = subprocess.run([*query, "--query-gpu=index,uuid,memory.total,memory.free"], capture_output=True,
                              text=True, timeout=30, check=True).stdout
        apps = subprocess.run([*query, "--query-compute-apps=gpu_uuid,pid,process_name,used_memory"],
                              capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return
    found = gpu_memory_shortfalls(gpus, apps, os.environ.get("CUDA_VISIBLE_DEVICES"), used, utilization)
    if found:
        lower = f", or lower {flag}" if flag else ""
        raise UserError(f"{'; '.join(found)}: stop those processes (an engine left by an earlier run?){lower}")
