"""--num_shards on a two-node Ray (a worker node in its own mount and host-name namespaces), one cluster for the
module: the cluster preflight refuses an output folder the worker does not share, shards no node can hold, a variable
of the environment contract that a node sets and the driver does not, a file the driver names that a node lacks, and
names a dead node as dead, before any work; with the output shared, the driver's code shipped (the worker's checkout
is hidden) and its environment given to every shard (the nodes were started without it), the sharded run sends the
single run's requests to the single run's servers (OpenAI, Anthropic and Together SDKs, an HTTP proxy) and writes
no key anywhere, Ray's temp folder included; a worker node lost mid-shard is resumed on the other node without
--lock takeover."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

import datasets
import pytest
from ray_nodes import WORKER_HOST, TwoNodeRay
from test_secrets import leaks
from test_sharding import finished_rows, seeded_reply, step1_args

from generation.common.writing import lock_holder
from generation.unified_RMs_and_LM_Judges import main as step3

from conftest import GENERATION, OFFLINE_ENV, ROOT, run_script
from fixtures_benchmarks import load_output, write_benchmarks
from loopback import LoopbackServer, Reply, anthropic_body, openai_body

pytestmark = pytest.mark.slow
RAY_TOKEN = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": uuid.uuid4().hex * 2}  # this cluster's own token
NODE_OWN = {"HF_INFERENCE_ENDPOINT": "http://inference.node.invalid"}  # a contract variable both nodes set
DRIVER = {**RAY_TOKEN, **NODE_OWN}  # what a driver needs to pass this cluster's preflight
# Set on the driver only: each provider's key, the OpenAI organisation and project; the base URLs are the server's.
KEYS = {"OPENAI_API_KEY": "sk-driver-only-7731", "ANTHROPIC_API_KEY": "sk-ant-driver-only-5512",
        "TOGETHER_API_KEY": "tg-driver-only-9904"}
DRIVER_ONLY = (*KEYS, "OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL",
               "TOGETHER_BASE_URL", "OPENAI_COMPATIBLE_API_KEY")
SEEN_HEADERS = ("authorization", "openai-organization", "openai-project")
# Ray marks a lost node dead after this many missed health checks of this period (default 5 of 3 s); a check fails
# at once on a dead node's closed port, and only after its timeout (10 s, kept) on a slow one.
HEALTH_CHECKS = {"RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "3"}


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory):
    """Two nodes with 1 CPU and 1 GPU each and Ray's temp folder of their own; the worker sees neither `unshared`
    nor the checkout's generation/."""
    folder = tmp_path_factory.mktemp("cluster")
    unshared = folder / "unshared"
    unshared.mkdir()
    ray_tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths
    env = {**{name: value for name, value in os.environ.items() if name not in DRIVER_ONLY}, **RAY_TOKEN,
           **NODE_OWN, **HEALTH_CHECKS, "RAY_TMPDIR": ray_tmp}
    nodes = TwoNodeRay(str(folder), hidden=(str(unshared), GENERATION), gpus=1, env=env).start()
    yield nodes, str(unshared)
    nodes.stop()
    shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.fixture
def cluster(two_nodes):
    """The module's two nodes, both alive (a test that lost the worker leaves it to the next one to start again)."""
    two_nodes[0].ensure_worker()
    return two_nodes


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_benchmarks(str(tmp_path_factory.mktemp("cluster_bench")), ("math", "mmlu_pro"))


def one_error(proc) -> str:
    """The single error line of a refused run (exit 2, no traceback)."""
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error")]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and len(errors) == 1, proc.stderr[-3000:]
    return errors[0]


def test_what_a_node_lacks_is_refused_in_one_run_before_any_work(cluster, data_dir):
    """The worker does not see the output folder or a CA bundle the driver names, and the nodes set a contract
    variable the driver does not: one error and a line for each other problem, nothing asked, nothing written."""
    nodes, unshared = cluster
    out, bundle = os.path.join(unshared, "math.hf"), os.path.join(unshared, "ca.pem")
    shutil.copy(__import__("certifi").where(), bundle)
    with LoopbackServer(seeded_reply()) as server:
        proc = run_script("generate_reasoning_samples.py", *step1_args(server.url, data_dir, out),
                          "--num_shards", "2", "--ray_address", nodes.address,
                          env={**RAY_TOKEN, "HF_INFERENCE_ENDPOINT": "", "SSL_CERT_FILE": bundle}, timeout=300)
        assert not server.requests
    error = one_error(proc)
    lines = [error, *(line for line in proc.stderr.splitlines() if line.startswith("preflight: "))]
    assert len(lines) == 4, proc.stderr[-3000:]  # the worker: folder, file, variable; the head: the variable
    assert any("does not see the output folder" in line and unshared in line and "(" in line for line in lines)
    assert sum("sets HF_INFERENCE_ENDPOINT but the driver does not" in line for line in lines) == 2
    assert any(f"has no SSL_CERT_FILE={bundle}" in line for line in lines)
    assert sorted(os.listdir(unshared)) == ["ca.pem"] or all(
        name.endswith(".lock") for name in os.listdir(unshared) if name != "ca.pem")


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


def judge_reply(path: str, request: dict, count: int) -> Reply:
    """A judge whose verdict depends on the prompt only, in the format of the path (Anthropic's messages or chat
    completions)."""
    prompt = json.dumps(request["messages"])
    text = "Checked.\n" + ("True" if hashlib.sha256(prompt.encode()).digest()[0] % 2 else "False")
    if path.endswith("/messages"):
        return Reply(body=anthropic_body(request, text))
    return Reply(body=openai_body(request, [text] * int(request.get("n") or 1)))


def test_with_the_drivers_environment_the_shards_send_the_single_runs_requests_to_its_servers(
        cluster, tmp_path, monkeypatch):
    """Step 3 with an OpenAI, an Anthropic and a Together judge, none given --base_url: each SDK finds its server,
    key, organisation and project in the driver's environment only, Anthropic and Together through an HTTP proxy
    (all_proxy) that NO_PROXY bypasses for the OpenAI server. The sharded run sends the single run's requests, by
    the same routes with the same credentials, and writes no key anywhere, Ray's temp folder included."""
    nodes, _ = cluster
    rows = [{"instruction": f"Compute {i} * 3.", "samples": [f"The answer is: {3 * i}", f"The answer is: {i + 100}"]}
            for i in range(6)]
    data = str(tmp_path / "scored_in.hf")
    datasets.DatasetDict({"data": datasets.Dataset.from_list(rows)}).save_to_disk(data)
    judges = ("O=openai:gpt-4o-mini,A=anthropic:claude-3-5-haiku-20241022,"
              "T=together:meta-llama/Llama-3.3-70B-Instruct-Turbo")
    single, sharded = str(tmp_path / "single.hf"), str(tmp_path / "sharded.hf")
    args = ["--dataset_path", data, "--reward_models", "", "--lm_judges", judges, "--max_concurrency", "2"]
    started = time.time()
    with LoopbackServer(judge_reply) as server:  # the OpenAI server, and the proxy to the other two
        contract = {**KEYS, "OPENAI_ORG_ID": "org-driver", "OPENAI_PROJECT_ID": "proj-x",
                    "OPENAI_BASE_URL": server.url, "ANTHROPIC_BASE_URL": "http://anthropic.invalid",
                    "TOGETHER_BASE_URL": "http://together.invalid", "all_proxy": server.root, "NO_PROXY": "127.0.0.1"}
        for name, value in contract.items():
            monkeypatch.setenv(name, value)
        assert step3([*args, "--output_path", single]) == 0
        asked = len(server.requests)
        proc = run_script("unified_RMs_and_LM_Judges.py", *args, "--output_path", sharded, "--num_shards", "2",
                          "--ray_address", nodes.address, env={**DRIVER, **contract}, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert "cluster preflight: 2 node(s) ready" in proc.stdout
    seen = [(r["path"], json.dumps(r["json"], sort_keys=True),
             tuple({k.lower(): v for k, v in r["headers"].items()}.get(h) for h in SEEN_HEADERS))
            for r in server.requests]
    assert asked == 36 and len(seen) == 72 and sorted(seen[asked:]) == sorted(seen[:asked])
    routes = {(path, headers) for path, _, headers in seen}
    assert routes == {("/v1/chat/completions", ("Bearer sk-driver-only-7731", "org-driver", "proj-x")),
                      ("http://anthropic.invalid/v1/messages", ("Bearer sk-ant-driver-only-5512", None, None)),
                      ("http://together.invalid/v1/chat/completions", ("Bearer tg-driver-only-9904", None, None))}
    assert load_output(sharded).to_list() == load_output(single).to_list()
    ray_logs = os.path.join(nodes.env["RAY_TMPDIR"], "ray", "session_latest", "logs")
    assert any(name.startswith("runtime_env_agent") for name in os.listdir(ray_logs))
    found = leaks(str(tmp_path), proc.stdout + proc.stderr, since=started, secrets=tuple(KEYS.values()))
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
