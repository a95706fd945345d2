"""No orphaned engines: processes a step starts (forked or spawned, and their own children) die with the step, even
after `kill -9` of the step's pid alone (backends/engine_guard.py)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import GENERATION, OFFLINE_ENV

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
