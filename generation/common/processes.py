"""No orphaned processes: a small watchdog process notes every descendant of a step (vLLM's EngineCore and workers,
reward-model workers, the processes of a local Ray) and kills them all when the step dies, even by `kill -9` of the
step alone."""
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
