"""A two-node Ray cluster on one machine: a head node, and a worker node in its own mount and host-name namespaces
(host name WORKER_HOST) where a tmpfs hides given folders (an output folder that is not shared, a checkout that is
not there), as on real clusters; the worker node can be killed (all its processes) and started again."""
from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time

from conftest import free_port

RAY = os.path.join(os.path.dirname(sys.executable), "ray")
WORKER_HOST = "ray-worker-node"


class TwoNodeRay:
    """start() brings both nodes up; `address` is for --ray_address; stop() ends only the processes started here."""

    def __init__(self, log_dir: str, hidden: tuple[str, ...], gpus: int, env: dict[str, str]) -> None:
        self.log_dir, self.hidden, self.gpus, self.env = log_dir, hidden, gpus, env
        self.address = f"127.0.0.1:{free_port()}"
        self.procs: list[subprocess.Popen] = []
        self.worker_lost = False  # kill_worker() ran and the worker was not started again

    def _start(self, name: str, argv: list[str]) -> None:
        """Start one process in its own session (so stop() ends it and its children)."""
        log = open(os.path.join(self.log_dir, f"{name}.log"), "a")
        self.procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                           start_new_session=True))

    def _node(self) -> list[str]:
        """`ray start` of one node with 1 CPU and the GPUs asked for."""
        return [RAY, "start", "--block", "--num-cpus", "1", "--num-gpus", str(self.gpus), "--disable-usage-stats"]

    def start(self, timeout: float = 240) -> "TwoNodeRay":
        """The head, then the worker node."""
        self._start("head", [*self._node(), "--head", "--port", self.address.rsplit(":", 1)[1], "--include-dashboard",
                             "false"])
        self._wait(1, timeout)
        self.start_worker(timeout)
        return self

    def start_worker(self, timeout: float = 240) -> None:
        """The worker node: `ray start` in new mount and host-name namespaces, a tmpfs over each hidden folder."""
        mounts = "".join(f"mount -t tmpfs tmpfs {shlex.quote(folder)} && " for folder in self.hidden)
        worker = " ".join(map(shlex.quote, [*self._node(), "--address", self.address]))
        self._start("worker", ["unshare", "-m", "-u", "--propagation", "private", "sh", "-c",
                               f"hostname {WORKER_HOST} && {mounts}exec {worker}"])
        self._wait(self._alive() + 1, timeout)
        self.worker_lost = False

    def ensure_worker(self) -> None:
        """Start the worker node again if a test killed it (both nodes alive for the next test)."""
        if self.worker_lost:
            self.start_worker()

    def kill_worker(self) -> None:
        """SIGKILL every process of the worker node (those in its mount namespace), as when a machine is lost."""
        worker = self.procs.pop()
        namespace = os.readlink(f"/proc/{worker.pid}/ns/mnt")
        for pid in [int(p) for p in os.listdir("/proc") if p.isdigit()]:
            try:
                if os.readlink(f"/proc/{pid}/ns/mnt") == namespace:
                    os.kill(pid, signal.SIGKILL)
            except OSError:  # ended meanwhile
                continue
        worker.wait()
        self.worker_lost = True

    def _alive(self) -> int:
        """How many nodes Ray reports alive."""
        probe = f"import ray; ray.init(address={self.address!r}); print(sum(n['Alive'] for n in ray.nodes()))"
        seen = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=self.env)
        lines = seen.stdout.split()
        return int(lines[-1]) if lines and lines[-1].isdigit() else 0

    def _wait(self, count: int, timeout: float) -> None:
        """Until `count` nodes are alive (RuntimeError naming the logs when a node dies or time runs out)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if any(proc.poll() is not None for proc in self.procs):
                raise RuntimeError(f"a Ray node exited; see the logs in {self.log_dir}")
            if self._alive() == count:
                return
            time.sleep(2)
        raise RuntimeError(f"{count} Ray node(s) not up after {timeout} s; see the logs in {self.log_dir}")

    def stop(self, grace_s: float = 5) -> None:
        """End both nodes (SIGTERM to their sessions, SIGKILL after grace_s: the head's `ray start --block` and GCS
        outlive a SIGTERM by more than 30 s)."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.time() + grace_s
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
