"""No orphaned engines: a small watchdog process notes every descendant of the step (vLLM's EngineCore and workers,
reward-model workers) and kills them all when the step dies, even by `kill -9` of the step alone."""
from __future__ import annotations

import atexit
import os
import subprocess
import sys

POLL_S = 0.2
_WATCHDOG: list[subprocess.Popen] = []

# The watchdog: a child of the step in its own session. It polls the step's process tree (pid, start time) and,
# once the step is gone (the watchdog's parent changes), SIGKILLs every descendant it saw that still runs.
# SIGTERM (the step's normal exit) ends it without killing anything.
WATCHDOG = r"""
import os, signal, sys, time
step, me, seen = int(sys.argv[1]), os.getpid(), {}
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))

def stat(pid):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return int(fields[1]), fields[19], fields[0]  # ppid, start time, state
    except (OSError, IndexError, ValueError):
        return None

def descendants():
    table = {int(p): stat(int(p)) for p in os.listdir("/proc") if p.isdigit()}
    found, frontier = {}, {step}
    while frontier:
        frontier = {p for p, s in table.items() if s and s[0] in frontier and p != me and p not in found}
        found.update({p: table[p][1] for p in frontier})
    return found

while os.getppid() == step:
    seen.update(descendants())
    time.sleep(float(sys.argv[2]))
for pid, started in seen.items():
    now = stat(pid)
    if now and now[1] == started and now[2] != "Z":
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
"""


def guard_descendants() -> None:
    """Start this process's watchdog (once): every process it starts from now on dies with it."""
    if _WATCHDOG and _WATCHDOG[0].poll() is None or not os.path.isdir("/proc"):
        return
    _WATCHDOG[:] = [subprocess.Popen([sys.executable, "-c", WATCHDOG, str(os.getpid()), str(POLL_S)],
                                     stdin=subprocess.DEVNULL, start_new_session=True, close_fds=True)]
    atexit.register(release)


def release() -> None:
    """End the watchdog without killing anything (the step ends normally and has stopped its engines)."""
    for watchdog in _WATCHDOG:
        if watchdog.poll() is None:
            watchdog.terminate()
            watchdog.wait()
    _WATCHDOG.clear()


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
