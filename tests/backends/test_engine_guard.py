"""No orphaned engines: processes a step starts (forked or spawned, and their own children) die with the step, even
after `kill -9` of the step's pid alone (common/processes.py); the GPU memory check (backends/engine_guard.py)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generation.backends.engine_guard import gpu_memory_shortfalls

from conftest import OFFLINE_ENV, ROOT, script_path
from fixtures_benchmarks import write_benchmark

STEP = """
import multiprocessing, os, subprocess, sys, time
sys.path.insert(0, {generation!r})
from generation.common.processes import guard_descendants

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
    script.write_text(STEP.format(generation=ROOT, method=method))
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
                             "--samples_per_instruction", "2", "--max_new_tokens", "1500", "--max_length", "1600",
                             "--vllm_sequences_in_flight", "2"],  # one prompt at a time: five are left after the first
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
            time.sleep(0.2)
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


GPU_UUIDS = [f"GPU-{i:08x}-aaaa-bbbb-cccc-{i:012x}" for i in range(8)]


@settings(max_examples=300, deadline=None)
@given(gpus=st.lists(st.tuples(st.integers(1024, 200_000), st.floats(0, 1)), min_size=1, max_size=8),
       utilization=st.floats(0.05, 0.99), used=st.integers(1, 8), data=st.data())
def test_an_engine_is_refused_exactly_when_a_gpu_it_uses_lacks_the_share_it_asks_for(gpus, utilization, used, data):
    """vLLM's start-up rule (free >= utilization x total on every GPU it uses), over random machines,
    CUDA_VISIBLE_DEVICES by index or UUID, and holders named by pid."""
    rows = [(i, GPU_UUIDS[i], total, int(total * share)) for i, (total, share) in enumerate(gpus)]
    gpus_csv = "\n".join(f"{i}, {uuid}, {total}, {free}" for i, uuid, total, free in rows)
    apps_csv = "\n".join(f"{uuid}, {4000 + i}, /usr/bin/python3, {total - free}" for i, uuid, total, free in rows)
    order = data.draw(st.permutations(range(len(rows))))
    by_uuid = data.draw(st.booleans())
    visible = data.draw(st.sampled_from([None, ",".join(GPU_UUIDS[i] if by_uuid else str(i) for i in order)]))
    in_use = [rows[i] for i in (order if visible is not None else range(len(rows)))][:used]
    found = gpu_memory_shortfalls(gpus_csv, apps_csv, visible, used, utilization)
    short = [row for row in in_use if row[3] < utilization * row[2]]
    assert len(found) == len(short)
    for line, (index, _, _, _) in zip(found, short):
        assert line.startswith(f"GPU {index} has") and f"pid {4000 + index} (python3," in line


def test_a_stale_engine_on_the_gpu_is_named_before_vllm_starts(tmp_path, monkeypatch):
    """On a GPU machine whose GPU 0 is held by an earlier run's engine, start_engine stops in one line naming that
    process and the flag to lower; vLLM is never started (nvidia-smi is a stand-in printing the documented CSV)."""
    import torch

    from generation.backends import vllm_engine
    from generation.common.cli import UserError

    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\ncase \"$*\" in\n"
                    f"  *query-gpu*) echo '0, {GPU_UUIDS[0]}, 143771, 5120'\n"
                    f"    echo '1, {GPU_UUIDS[1]}, 143771, 143000';;\n"
                    f"  *query-compute-apps*) echo '{GPU_UUIDS[0]}, 31337, python3, 138000';;\n"
                    "esac\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(vllm_engine, "guard_descendants", lambda: pytest.fail("vLLM was started"))
    with pytest.raises(UserError, match=r"GPU 0 has 5\.0 of 140\.4 GiB free, less than the 0\.90 .* pid 31337 "
                                        r"\(python3, 138000 MiB\).*or lower --judge_gpu_memory_utilization"):
        vllm_engine.start_engine("--judge_gpu_memory_utilization", model="m", gpu_memory_utilization=0.9,
                                 tensor_parallel_size=2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")  # the free GPU only: nothing to say, vLLM would start
    with pytest.raises(pytest.fail.Exception, match="vLLM was started"):
        vllm_engine.start_engine(model="m", gpu_memory_utilization=0.9)
