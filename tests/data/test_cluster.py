"""--num_shards on a two-node Ray (a worker node in its own mount namespace): the cluster preflight refuses an
output folder the worker does not share and shards no node can hold, with one line before any work; with the
output shared, the driver's code shipped (the worker's checkout is hidden) and its key forwarded (the nodes were
started without it), the sharded run equals the single run."""
import os
import uuid

import pytest
from ray_nodes import TwoNodeRay
from test_sharding import seeded_reply, step1_args

from generation.generate_reasoning_samples import main as step1

from conftest import GENERATION, run_script
from fixtures_benchmarks import load_output, write_benchmarks
from loopback import LoopbackServer

pytestmark = pytest.mark.slow
KEY = "OPENAI_COMPATIBLE_API_KEY"  # what a --base_url server's key is read from
RAY_TOKEN = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": uuid.uuid4().hex * 2}  # this cluster's own token


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two nodes with 1 CPU and 1 GPU each; the worker sees neither `unshared` nor the checkout's generation/."""
    folder = tmp_path_factory.mktemp("cluster")
    unshared = folder / "unshared"
    unshared.mkdir()
    env = {**{name: value for name, value in os.environ.items() if name != KEY}, **RAY_TOKEN}
    nodes = TwoNodeRay(str(folder), hidden=(str(unshared), GENERATION), gpus=1, env=env).start()
    yield nodes.address, str(unshared)
    nodes.stop()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_benchmarks(str(tmp_path_factory.mktemp("cluster_bench")), ("math",))


def one_error(proc) -> str:
    """The single error line of a refused run (exit 2, no traceback)."""
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error")]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and len(errors) == 1, proc.stderr[-3000:]
    return errors[0]


def test_an_output_folder_the_worker_does_not_share_is_refused_before_any_work(cluster, data_dir):
    address, unshared = cluster
    out = os.path.join(unshared, "math.hf")
    with LoopbackServer(seeded_reply()) as server:
        proc = run_script("generate_reasoning_samples.py", *step1_args(server.url, data_dir, out),
                          "--num_shards", "2", "--ray_address", address, env=RAY_TOKEN, timeout=300)
        assert not server.requests
    error = one_error(proc)
    assert "does not see the output folder" in error and unshared in error and "(" in error  # names the node
    assert os.listdir(unshared) == [] or all(name.endswith(".lock") for name in os.listdir(unshared))


def test_shards_no_node_can_hold_are_refused_naming_the_largest_node(cluster, data_dir, tiny_chat_model, tmp_path):
    address, _ = cluster
    out = str(tmp_path / "tp2.hf")
    proc = run_script("generate_reasoning_samples.py", "--model", tiny_chat_model, "--backend", "vllm", "--dataset",
                      "math", "--dataset_path", os.path.join(data_dir, "math.jsonl"), "--output_path", out,
                      "--max_new_tokens", "8", "--max_length", "256", "--tensor_parallel_size", "2",
                      "--num_shards", "2", "--ray_address", address, env=RAY_TOKEN, timeout=300)  # today: waits forever
    error = one_error(proc)
    assert "each shard needs 1 CPU, 2 GPU but the largest Ray node" in error and "has 1 CPU, 1 GPU" in error
    assert not os.path.exists(out) and not os.path.exists(out + ".checkpoint")


def test_with_a_shared_folder_the_code_and_key_reach_the_worker_and_shards_equal_the_single_run(
        cluster, data_dir, tmp_path):
    address, _ = cluster
    single, sharded = str(tmp_path / "single.hf"), str(tmp_path / "sharded.hf")
    with LoopbackServer(seeded_reply()) as server:
        assert step1(step1_args(server.url, data_dir, single)) == 0
        proc = run_script("generate_reasoning_samples.py", *step1_args(server.url, data_dir, sharded),
                          "--num_shards", "2", "--ray_address", address, env={KEY: "sk-driver-only", **RAY_TOKEN}, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        sent = [{k.lower(): v for k, v in r["headers"].items()}.get("authorization") for r in server.requests[6:]]
    assert "cluster preflight: 2 node(s) ready" in proc.stdout
    assert sent == ["Bearer sk-driver-only"] * 6  # forwarded to both nodes, which were started without it
    assert "sk-driver-only" not in proc.stdout + proc.stderr + open(os.path.join(sharded, "provenance.json")).read()
    assert load_output(sharded).to_list() == load_output(single).to_list()


def test_a_driver_without_the_cluster_token_gets_one_line_naming_it(cluster, data_dir, tmp_path):
    address, _ = cluster
    with LoopbackServer(seeded_reply()) as server:
        proc = run_script("generate_reasoning_samples.py", *step1_args(server.url, data_dir, str(tmp_path / "x.hf")),
                          "--num_shards", "2", "--ray_address", address, env={"RAY_AUTH_MODE": "disabled"},
                          timeout=300)
        assert not server.requests
    assert "export RAY_AUTH_MODE=token and the cluster's token" in one_error(proc)  # redaction keeps it
