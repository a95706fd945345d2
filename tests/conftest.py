"""Session fixtures: offline environment, import path, tiny models and a real vLLM OpenAI-compatible server."""
from __future__ import annotations

import functools
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GENERATION = os.path.join(ROOT, "generation")
TESTS = os.path.dirname(os.path.abspath(__file__))
# generation/ (the pipeline's packages), tests/ (shared helpers) and each test folder (tests import shared fixtures
# from one another by module name).
TEST_FOLDERS = sorted(entry.path for entry in os.scandir(TESTS) if entry.is_dir() and not entry.name.startswith((".", "_")))
for folder in (*TEST_FOLDERS, GENERATION, TESTS):
    if folder not in sys.path:
        sys.path.insert(0, folder)

# No test may reach the hub or any website; API keys of the caller must not leak into tests.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
    "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1",
    "TOKENIZERS_PARALLELISM": "false", "VLLM_LOGGING_LEVEL": "WARNING",
}
os.environ.update(OFFLINE_ENV)
# Ray 2.60 turns token authentication on. Every cluster the tests start (the session's, a step's own local one, the
# two-node ones) and every driver and step use this process's own token from the environment, never the shared
# ~/.ray/auth_token file, which other test workers and sessions rewrite.
os.environ.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": uuid.uuid4().hex * 2})
# For tests of what a vLLM engine computes (not of its processes): the engine runs inside the step's process (vLLM's
# VLLM_ENABLE_V1_MULTIPROCESSING=0) instead of two more processes (EngineCore, worker) that each import vLLM and torch
# again, about 25 s of CPU per engine. Only for steps run in a subprocess (run_script(..., env=ENGINE_IN_PROCESS)):
# an in-process engine binds its process's threads. The multiprocess engine stays covered by Step 1's vLLM run, the
# engine guard, the streaming and offline judge tests, the Ray shards and the vLLM server.
ENGINE_IN_PROCESS = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
for key in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "TOGETHER_API_KEY", "OPENAI_COMPATIBLE_API_KEY", "OPENAI_BASE_URL"):
    os.environ.pop(key, None)


def pytest_configure(config: pytest.Config) -> None:
    """Register the `slow` marker: vLLM engines and servers, Ray clusters, kill loops, training, the example run."""
    config.addinivalue_line("markers", "slow: a slow test (vLLM, Ray, kill loops, training); --quick leaves it out")


# Fixtures that make every test using them slow: a vLLM server and a Ray cluster.
SLOW_FIXTURES = {"vllm_server", "ray_address"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use a slow fixture are `slow` without saying so (so `--quick` never starts vLLM or Ray for them)."""
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@functools.cache
def work_unit(test_file: str) -> str:
    """What `pytest -n 2` (scripts/run_tests.sh) gives one worker as a whole: the tests of every file that asks for a
    session fixture of SLOW_FIXTURES (one vLLM server, one Ray cluster per run), else one test file (its module
    fixtures are built once)."""
    source = open(os.path.join(ROOT, test_file)).read()
    used = [name for name in sorted(SLOW_FIXTURES) if re.search(rf"def \w+\([^)]*\b{name}\b", source)]
    return used[0] if used else test_file


def estimated_cost(nodeids: list[str]) -> int:
    """How many slow tests a work unit holds (from the sources: @pytest.mark.slow and slow modules); units are handed
    out most costly first, so that no long file starts last."""
    files = {nodeid.split("::")[0] for nodeid in nodeids}
    sources = [open(os.path.join(ROOT, name)).read() for name in files]
    return sum(text.count("mark.slow") + ("pytestmark = pytest.mark.slow" in text) * text.count("def test_")
               for text in sources) + 1000 * any(unit in SLOW_FIXTURES for unit in map(work_unit, files))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """pytest-xdist: whole work units (see work_unit) to each worker, the most costly first."""
    from xdist.scheduler import LoadScopeScheduling

    class WorkUnits(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid.split("::")[0])

        def schedule(self) -> None:
            if self.collection is None and self.collection_is_completed:
                config.option.loadscopereorder = False  # the order below instead of "most tests first"
                units: dict[str, list[str]] = {}
                for nodeid in next(iter(self.registered_collections.values())):
                    units.setdefault(self._split_scope(nodeid), []).append(nodeid)
                order = sorted(units, key=lambda unit: -estimated_cost(units[unit]))
                rank = {nodeid: order.index(unit) for unit, ids in units.items() for nodeid in ids}
                for node, collection in self.registered_collections.items():
                    self.registered_collections[node] = sorted(collection, key=rank.__getitem__)
            super().schedule()

    return WorkUnits(config, log)


@pytest.fixture(autouse=True)
def fresh_notices():
    """Each test is one run: notices printed "once per process" are printed again in the next test."""
    from backends import rules

    rules._NOTICES.clear()


def script_path(name: str) -> str:
    """Absolute path of a pipeline script in generation/."""
    return os.path.join(GENERATION, name)


def run_script(name: str, *args: str, env: dict | None = None, timeout: float = 600,
               cwd: str | None = None) -> subprocess.CompletedProcess:
    """Run a pipeline script in a subprocess with the offline environment; return the completed process."""
    full_env = {**os.environ, **OFFLINE_ENV, **(env or {})}
    return subprocess.run([sys.executable, script_path(name), *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout, cwd=cwd or ROOT)


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Holds the session's Ray cluster in a process of its own: the test process stays free of Ray, so a step run in it
# (with or without --ray_address) starts and stops its own driver as from the command line.
RAY_HOLDER = """
import sys, ray
ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
print(ray.get_runtime_context().gcs_address, flush=True)
sys.stdin.read()
ray.shutdown()
"""


@pytest.fixture(scope="session")
def ray_address():
    """One local Ray cluster for the whole session (held by a child process); the scripts join it with
    --ray_address."""
    holder = subprocess.Popen([sys.executable, "-c", RAY_HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    address = holder.stdout.readline().strip()
    assert address, "the session's Ray cluster did not start"
    yield address
    holder.stdin.close()
    try:
        holder.wait(timeout=120)
    except subprocess.TimeoutExpired:
        holder.kill()


@pytest.fixture(scope="session")
def tiny_chat_model(tmp_path_factory) -> str:
    """Path of a tiny random Llama chat model (Llama-3-style template) saved in this session."""
    from tiny_models import build_chat_model

    return build_chat_model(str(tmp_path_factory.mktemp("models") / "tiny-chat"))


@pytest.fixture(scope="session")
def vllm_server(tiny_chat_model, tmp_path_factory) -> str:
    """A real vLLM OpenAI-compatible server on 127.0.0.1 serving the tiny chat model; yields its /v1 URL."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("vllm") / "server.log"
    log = open(log_path, "w")
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", tiny_chat_model,
           "--served-model-name", "tiny-chat", "--host", "127.0.0.1", "--port", str(port),
           "--enforce-eager", "--max-model-len", "2048", "--dtype", "float32", "--max-num-seqs", "64"]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **OFFLINE_ENV},
                            start_new_session=True)
    deadline = time.time() + 300
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"vLLM server exited early:\n{open(log_path).read()[-4000:]}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError(f"vLLM server did not start:\n{open(log_path).read()[-4000:]}")
            time.sleep(1)
        yield f"{url}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
