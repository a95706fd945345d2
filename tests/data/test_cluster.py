"""--num_shards on a two-node Ray (a worker node in its own mount and host-name namespaces): the cluster preflight
refuses an output folder the worker does not share, shards no node can hold, a variable of the environment contract
that a node sets and the driver does not, a file the driver names that a node lacks, and names a dead node as dead,
with one line before any work; with the output shared, the driver's code shipped (the worker's checkout is hidden)
and its environment given to every shard (the nodes were started without it), the sharded run sends the single
run's requests to the single run's server and writes the key nowhere, Ray's temp folder included; a worker node lost
mid-shard is resumed on the other node without --lock takeover."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

import pytest
from ray_nodes import WORKER_HOST, TwoNodeRay
from test_secrets import leaks
from test_sharding import finished_rows, seeded_reply, step1_args

from generation.common.writing import lock_holder
from generation.generate_reasoning_samples import main as step1

from conftest import GENERATION, OFFLINE_ENV, ROOT, run_script
from fixtures_benchmarks import load_output, write_benchmarks
from loopback import LoopbackServer

pytestmark = pytest.mark.slow
KEY = "OPENAI_COMPATIBLE_API_KEY"  # what a --base_url server's key is read from
RAY_TOKEN = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": uuid.uuid4().hex * 2}  # this cluster's own token
NODE_OWN = {"HF_INFERENCE_ENDPOINT": "http://inference.node.invalid"}  # a contract variable both nodes set
DRIVER = {**RAY_TOKEN, **NODE_OWN}  # what a driver needs to pass this cluster's preflight
# Set on the driver only: where the OpenAI SDK sends requests, as which organisation and project, with which key.
OPENAI_ENV = {"OPENAI_API_KEY": "sk-driver-only-7731", "OPENAI_ORG_ID": "org-driver", "OPENAI_PROJECT_ID": "proj-x"}
SEEN_HEADERS = ("authorization", "openai-organization", "openai-project")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two nodes with 1 CPU and 1 GPU each and Ray's temp folder of their own; the worker sees neither `unshared`
    nor the checkout's generation/."""
    folder = tmp_path_factory.mktemp("cluster")
    unshared = folder / "unshared"
    unshared.mkdir()
    ray_tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths
    env = {**{name: value for name, value in os.environ.items() if name not in (KEY, *OPENAI_ENV)}, **RAY_TOKEN,
           **NODE_OWN, "RAY_TMPDIR": ray_tmp}
    nodes = TwoNodeRay(str(folder), hidden=(str(unshared), GENERATION), gpus=1, env=env).start()
    yield nodes, str(unshared)
    nodes.stop()
    shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_benchmarks(str(tmp_path_factory.mktemp("cluster_bench")), ("math", "mmlu_pro"))


def one_error(proc) -> str:
    """The single error line of a refused run (exit 2, no traceback)."""
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error")]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and len(errors) == 1, proc.stderr[-3000:]
    return errors[0]


def test_an_output_folder_the_worker_does_not_share_is_refused_before_any_work(cluster, data_dir):
    nodes, unshared = cluster
    out = os.path.join(unshared, "math.hf")
    with LoopbackServer(seeded_reply()) as server:
        proc = run_script("generate_reasoning_samples.py", *step1_args(server.url, data_dir, out),
                          "--num_shards", "2", "--ray_address", nodes.address, env=DRIVER, timeout=300)
        assert not server.requests
    error = one_error(proc)
    assert "does not see the output folder" in error and unshared in error and "(" in error  # names the node
    assert os.listdir(unshared) == [] or all(name.endswith(".lock") for name in os.listdir(unshared))


def test_a_node_own_variable_and_a_file_it_lacks_are_refused_before_any_request(cluster, data_dir, tmp_path):
    """The driver lacks a contract variable the nodes set, and names a CA bundle the worker cannot see."""
    nodes, unshared = cluster
    bundle = os.path.join(unshared, "ca.pem")
    shutil.copy(__import__("certifi").where(), bundle)
    with LoopbackServer(seeded_reply()) as server:
        proc = run_script("generate_reasoning_samples.py", *step1_args(server.url, data_dir, str(tmp_path / "x.hf")),
                          "--num_shards", "2", "--ray_address", nodes.address,
                          env={**RAY_TOKEN, "HF_INFERENCE_ENDPOINT": "", "SSL_CERT_FILE": bundle}, timeout=300)
        assert not server.requests
    error = one_error(proc)
    assert "sets HF_INFERENCE_ENDPOINT but the driver does not" in error
    lines = [line for line in proc.stderr.splitlines() if line.startswith("preflight: ")]
    assert any(f"has no SSL_CERT_FILE={bundle}" in line for line in lines), proc.stderr[-3000:]
    assert not os.path.exists(tmp_path / "x.hf.checkpoint")


def test_shards_no_node_can_hold_are_refused_naming_the_largest_node(cluster, data_dir, tiny_chat_model, tmp_path):
    nodes, _ = cluster
    out = str(tmp_path / "tp2.hf")
    proc = run_script("generate_reasoning_samples.py", "--model", tiny_chat_model, "--backend", "vllm", "--dataset",
                      "math", "--dataset_path", os.path.join(data_dir, "math.jsonl"), "--output_path", out,
                      "--max_new_tokens", "8", "--max_length", "256", "--tensor_parallel_size", "2",
                      "--num_shards", "2", "--ray_address", nodes.address, env=DRIVER, timeout=300)
    error = one_error(proc)
    assert "each shard needs 1 CPU, 2 GPU but the largest Ray node" in error and "has 1 CPU, 1 GPU" in error
    assert not os.path.exists(out) and not os.path.exists(out + ".checkpoint")


def openai_args(data_dir: str, out: str) -> list[str]:
    """Step 1 on the OpenAI provider with no --base_url: the SDK reads OPENAI_BASE_URL."""
    return [a for a in step1_args("", data_dir, out) if a not in ("--base_url", "")] + ["--model", "gpt-4o-mini"]


def test_with_the_drivers_environment_the_shards_send_the_single_runs_requests_to_its_server(
        cluster, data_dir, tmp_path, monkeypatch):
    nodes, _ = cluster
    single, sharded = str(tmp_path / "single.hf"), str(tmp_path / "sharded.hf")
    started = time.time()
    with LoopbackServer(seeded_reply()) as server:
        contract = {**OPENAI_ENV, "OPENAI_BASE_URL": server.url}
        for name, value in contract.items():
            monkeypatch.setenv(name, value)
        assert step1(openai_args(data_dir, single)) == 0
        proc = run_script("generate_reasoning_samples.py", *openai_args(data_dir, sharded), "--num_shards", "2",
                          "--ray_address", nodes.address, env={**DRIVER, **contract}, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert "cluster preflight: 2 node(s) ready" in proc.stdout
    seen = [(json.dumps(r["json"], sort_keys=True), tuple({k.lower(): v for k, v in r["headers"].items()}.get(h)
                                                          for h in SEEN_HEADERS)) for r in server.requests]
    assert len(seen) == 12 and sorted(seen[6:]) == sorted(seen[:6])  # the same requests, keys, organisation, project
    assert seen[0][1] == ("Bearer sk-driver-only-7731", "org-driver", "proj-x")
    assert load_output(sharded).to_list() == load_output(single).to_list()
    ray_logs = os.path.join(nodes.env["RAY_TMPDIR"], "ray", "session_latest", "logs")
    assert any(name.startswith("runtime_env_agent") for name in os.listdir(ray_logs))
    found = leaks(str(tmp_path), proc.stdout + proc.stderr, since=started, secrets=(OPENAI_ENV["OPENAI_API_KEY"],))
    assert not found, "\n".join(found)  # Ray's temp folder and every file written since


def test_a_driver_without_the_cluster_token_gets_one_line_naming_it(cluster, data_dir, tmp_path):
    nodes, _ = cluster
    with LoopbackServer(seeded_reply()) as server:
        proc = run_script("generate_reasoning_samples.py", *step1_args(server.url, data_dir, str(tmp_path / "x.hf")),
                          "--num_shards", "2", "--ray_address", nodes.address,
                          env={"RAY_AUTH_MODE": "disabled", **NODE_OWN}, timeout=300)
        assert not server.requests
    assert "export RAY_AUTH_MODE=token and the cluster's token" in one_error(proc)  # redaction keeps it


PREFLIGHT = """
import sys
import ray
from generation.data.cluster import preflight
ray.init(address=sys.argv[1], log_to_driver=False)
sys.stdin.readline()  # go: the worker node was just killed, before Ray noticed
preflight(sys.argv[2], {"CPU": 1, "GPU": 0}, {"HF_INFERENCE_ENDPOINT": sys.argv[3]})
"""


def test_a_worker_node_lost_mid_shard_resumes_on_the_other_node_without_lock_takeover(cluster, data_dir, tmp_path):
    """Kill every process of the worker node while it runs a shard: the driver takes over that shard's lock once
    Ray reports the node dead and runs it on the head; no finished row is asked again. A preflight that starts
    before Ray noticed names the node as dead."""
    nodes, _ = cluster
    out = str(tmp_path / "lost.hf")
    env = {**os.environ, **OFFLINE_ENV, **DRIVER}
    with LoopbackServer(seeded_reply(delay=0.4)) as server:
        cmd = [sys.executable, os.path.join(GENERATION, "generate_reasoning_samples.py"),
               *step1_args(server.url, data_dir, out, "mmlu_pro"), "--num_shards", "2", "--ray_address",
               nodes.address]
        driver = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        probe = subprocess.Popen([sys.executable, "-c", PREFLIGHT, nodes.address, str(tmp_path / "probe.hf"),
                                  NODE_OWN["HF_INFERENCE_ENDPOINT"]], env=env, cwd=ROOT, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.time() + 240
            while time.time() < deadline and not worker_shard_rows(out):
                time.sleep(0.1)
            before, asked_before = worker_shard_rows(out) | finished_rows(out), len(server.requests)
            nodes.kill_worker()
            _, checked = probe.communicate("go\n", timeout=300)
            stdout, stderr = driver.communicate(timeout=600)
            resumed = [r["json"]["messages"][-1]["content"] for r in server.requests[asked_before:]]
        finally:
            for proc in (driver, probe):
                proc.kill()
            nodes.start_worker()
    assert probe.returncode and "is dead (Ray lost it during the preflight)" in checked, checked[-3000:]
    assert driver.returncode == 0, stderr[-3000:]
    assert "--lock takeover" not in stderr and "is dead; rows" in stderr and "taking over the lock" in stderr
    data = load_output(out)
    assert len(data) == 12 and all(len(s) == 2 and None not in s for s in data["samples"])
    assert len(before) >= 2
    for row, prompt in enumerate(data["instruction"]):
        assert resumed.count(prompt) <= (0 if f"{row}" in {key.split("-")[0] for key in before} else 2), row


def worker_shard_rows(out: str) -> set[str]:
    """Row keys finished by the shard that runs on the worker node (by its lock), once it has two."""
    folder = os.path.join(out + ".checkpoint", "shards")
    if not os.path.isdir(folder):
        return set()
    for name in os.listdir(folder):
        if name.endswith(".hf.lock") and (lock_holder(os.path.join(folder, name[:-5])) or {}).get("host") == \
                WORKER_HOST:
            log = os.path.join(folder, name[:-5] + ".checkpoint", "samples.jsonl")
            rows = {json.loads(line)["k"].split("/")[1] for line in open(log) if '"s/' in line} \
                if os.path.exists(log) else set()
            return rows if len(rows) >= 2 else set()
    return set()
