"""Session fixtures: offline environment, import path, tiny models and a real vLLM OpenAI-compatible server."""
from __future__ import annotations

import gc
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
import warnings

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GENERATION = os.path.join(ROOT, "generation")
TESTS = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.join(ROOT, "scripts")
# The checkout's root (its `generation` package before any installed copy), scripts/ (the example's builders: tiny
# models, benchmark files), tests/ (shared helpers) and each test folder (tests import shared fixtures from one another
# by module name). Subprocesses get the root on PYTHONPATH, so every script a test starts runs this checkout's package.
TEST_FOLDERS = sorted(entry.path for entry in os.scandir(TESTS)
                      if entry.is_dir() and not entry.name.startswith((".", "_")))
for folder in (*TEST_FOLDERS, ROOT, SCRIPTS, TESTS):
    if folder not in sys.path:
        sys.path.insert(0, folder)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))

from scheduling import SLOW_FIXTURES, UnitSeconds, make_scheduler  # noqa: E402 (needs tests/ on the path)

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
# Ray runs its workers at nice 15 (RAY_worker_niceness) to keep a busy node's raylet responsive; next to the other
# test workers on a 2-core machine that starves every Ray task (a sharded step then waits minutes for CPU). Clusters
# the tests start run their workers at the test processes' own priority.
os.environ["RAY_worker_niceness"] = "0"
# torch on CPU runs one OpenMP thread per core, and an idle OpenMP thread spin-waits for the next parallel region.
# Three test workers on two cores keep both cores busy, so the spinning threads take CPU from the others' work: Step 1
# on the transformers backend took 35 s of CPU beside a busy neighbour instead of 13 s with one thread. The tests'
# tiny models gain nothing from a second thread; vLLM sets its own engine's threads.
os.environ["OMP_NUM_THREADS"] = "1"
# For tests of what a vLLM engine computes (not of its processes): the engine runs inside the step's process (vLLM's
# VLLM_ENABLE_V1_MULTIPROCESSING=0) instead of two more processes (EngineCore, worker) that each import vLLM and torch
# again, about 25 s of CPU per engine. Only for steps run in a subprocess (run_script(..., env=ENGINE_IN_PROCESS)):
# an in-process engine binds its process's threads. The multiprocess engine stays covered by Step 1's vLLM shards on
# Ray (each a whole Step 1 run), the engine guard, the streaming and offline judge tests and the vLLM server.
ENGINE_IN_PROCESS = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
for key in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "TOGETHER_API_KEY", "OPENAI_COMPATIBLE_API_KEY", "OPENAI_BASE_URL"):
    os.environ.pop(key, None)


def pytest_configure(config: pytest.Config) -> None:
    """Register the `slow` marker: vLLM engines and servers, Ray clusters, kill loops, training, the example run."""
    config.addinivalue_line("markers", "slow: a slow test (vLLM, Ray, kill loops, training); --quick leaves it out")
    if config.getoption("record_unit_seconds"):
        config.pluginmanager.register(UnitSeconds(), "unit_seconds")


def pytest_addoption(parser: pytest.Parser) -> None:
    """--record-unit-seconds: write each work unit's seconds to tests/unit_seconds.json (tests/scheduling.py)."""
    parser.addoption("--record-unit-seconds", action="store_true",
                     help="write each work unit's measured seconds to tests/unit_seconds.json (run the whole suite)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use a slow fixture (a vLLM server, a Ray cluster) are `slow` without saying so (so `--quick` never
    starts vLLM or Ray for them)."""
    for item in items:
        if set(SLOW_FIXTURES) & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """pytest-xdist: whole work units to each worker, the longest first (tests/scheduling.py)."""
    return make_scheduler(config, log)


@pytest.fixture(autouse=True)
def fresh_notices():
    """Each test is one run: notices printed "once per process" are printed again in the next test."""
    from generation.backends import rules

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


@pytest.fixture(autouse=True)
def collect_earlier_garbage(request) -> None:
    """A test that turns warnings into errors first collects what earlier tests of its worker left to the garbage
    collector (an engine's ZeroMQ context, a child's pipe): their ResourceWarnings are theirs, not this test's."""
    if any(mark.args[:1] == ("error",) for mark in request.node.iter_markers("filterwarnings")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gc.collect()


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
    holder.stdout.close()  # left open, the garbage collector reports it in whichever test runs last


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
                raise RuntimeError(f"vLLM server exited early:\n{log_path.read_text()[-4000:]}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError(f"vLLM server did not start:\n{log_path.read_text()[-4000:]}")
            time.sleep(1)
        yield f"{url}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
