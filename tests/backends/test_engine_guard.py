"""No orphaned engines: processes a step starts (forked or spawned, and their own children) die with the step, even
after `kill -9` of the step's pid alone (backends/engine_guard.py)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import GENERATION, OFFLINE_ENV, script_path
from fixtures_benchmarks import write_benchmark

STEP = """
import multiprocessing, os, subprocess, sys, time
sys.path.insert(0, {generation!r})
from backends.engine_guard import guard_descendants

def engine():  # like vLLM's EngineCore: a child of the step that starts workers of its own
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    print(os.getpid(), worker.pid, flush=True)
    time.sleep(300)

if __name__ == "__main__":
    guard_descendants()
    multiprocessing.get_context({method!r}).Process(target=engine).start()
    time.sleep(300)
"""


def alive(pid: int) -> bool:
    """Whether a process runs (a zombie waiting to be reaped does not)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_engine_processes_die_after_kill_9_of_the_step_alone(tmp_path, method):
    script = tmp_path / "step.py"
    script.write_text(STEP.format(generation=GENERATION, method=method))
    step = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, **OFFLINE_ENV}, start_new_session=True)
    try:
        engine, worker = map(int, step.stdout.readline().split())
        time.sleep(1.0)  # the watchdog has seen them
        assert alive(engine) and alive(worker)
        step.send_signal(signal.SIGKILL)  # the step alone: not its process group
        step.wait()
        deadline = time.time() + 5
        while (alive(engine) or alive(worker)) and time.time() < deadline:
            time.sleep(0.1)
        assert not alive(engine) and not alive(worker)
    finally:
        for pid in locals().get("engine", 0), locals().get("worker", 0):
            if pid and alive(pid):
                os.kill(pid, signal.SIGKILL)


def descendants(root: int) -> set[int]:
    """Every running process below root."""
    parents = {}
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{name}/stat") as handle:
                parents[int(name)] = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier and pid not in found}
        found |= frontier
    return {pid for pid in found if alive(pid)}


@pytest.mark.slow
def test_vllm_engine_dies_after_kill_9_of_step1_alone(tiny_chat_model, tmp_path):
    path = write_benchmark("math", str(tmp_path / "bench"))
    out = str(tmp_path / "out")
    step = subprocess.Popen([sys.executable, script_path("generate_reasoning_samples.py"), "--model", tiny_chat_model,
                             "--backend", "vllm", "--dataset", "math", "--dataset_path", path, "--output_path", out,
                             "--samples_per_instruction", "64", "--max_new_tokens", "1500", "--max_length", "1600"],
                            env={**os.environ, **OFFLINE_ENV}, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples = os.path.join(out + ".checkpoint", "samples.jsonl")
    seen: set[int] = set()
    try:
        deadline = time.time() + 600
        while time.time() < deadline and step.poll() is None:  # until the engine has finished a first prompt
            seen |= descendants(step.pid)
            if os.path.exists(samples) and sum(1 for _ in open(samples)) > 1:
                break
            time.sleep(0.5)
        assert step.poll() is None and len(seen) >= 2, "the engine never started generating"
        step.send_signal(signal.SIGKILL)
        step.wait()
        deadline = time.time() + 10
        while any(alive(pid) for pid in seen) and time.time() < deadline:
            time.sleep(0.2)
        assert not [pid for pid in seen if alive(pid)]
    finally:
        step.kill()
        for pid in seen:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
