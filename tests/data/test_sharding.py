"""--num_shards on a local Ray (2 CPUs, one per module): Steps 1-3 equal single runs; killed runs resume."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import datasets
import psutil
import pytest

from generation.data.sharding import RowSettings, row_range, split
from generation.generate_reasoning_samples import main as step1

import tiny_reward_models as tiny
from conftest import ENGINE_IN_PROCESS, GENERATION, OFFLINE_ENV, ROOT, run_script
from fixtures_benchmarks import load_output, write_benchmarks
from loopback import LoopbackServer, Reply, openai_body

N = 2


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_benchmarks(str(tmp_path_factory.mktemp("shard_bench")), ("math", "mmlu_pro"))


def seeded_reply(delay: float = 0.0):
    """Texts that depend only on the prompt and the request's seed (like a seeded sampler), after `delay` s."""
    def respond(path, request, count):
        digest = hashlib.sha256(json.dumps([request["messages"], request.get("seed")]).encode()).hexdigest()[:10]
        n = int(request.get("n") or 1)
        return Reply(body=openai_body(request, [f"sample {digest}.{j}\nThe answer is: B" for j in range(n)]),
                     delay=delay)
    return respond


def step1_args(url: str, data_dir: str, out: str, dataset: str = "math") -> list[str]:
    return ["--model", "loop", "--base_url", url, "--dataset", dataset, "--dataset_path",
            os.path.join(data_dir, f"{dataset}.jsonl"), "--output_path", out, "--samples_per_instruction", str(N),
            "--max_concurrency", "1"]


def shard_logs(out: str) -> list[str]:
    """The sample logs of every shard of an output."""
    folder = os.path.join(out + ".checkpoint", "shards")
    return [os.path.join(folder, name, "samples.jsonl") for name in sorted(os.listdir(folder))
            if name.endswith(".hf.checkpoint")] if os.path.isdir(folder) else []


def finished_rows(out: str) -> set[str]:
    """Row keys with samples in the shard logs."""
    return {json.loads(line)["k"].split("/")[1] for log in shard_logs(out) if os.path.exists(log)
            for line in open(log) if '"s/' in line}


def shard_workers() -> list[psutil.Process]:
    """Ray worker processes of this session's cluster (descendants of this process) running a shard task (Ray names
    them after the task); shards of other runs on the machine (another pytest worker's, another user's) are not."""
    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if "ray::run_shard" in " ".join(proc.cmdline()):
                found.append(proc)
        except psutil.Error:  # ended meanwhile
            continue
    return found


def test_split_and_row_range():
    assert split(range(0, 5), 2) == [range(0, 2), range(2, 5)]
    assert split(range(3, 5), 4) == [range(3, 4), range(4, 5)]  # more shards than rows: empty shards left out
    rows = RowSettings(start_row=2, end_row=None, max_rows=3)
    assert row_range(10, rows, "x") == range(2, 5)
    with pytest.raises(Exception, match="select no rows"):
        row_range(2, rows, "x")


def test_step1_two_shards_equal_the_single_run(ray_address, data_dir, tmp_path):
    single, sharded = str(tmp_path / "single.hf"), str(tmp_path / "sharded.hf")
    with LoopbackServer(seeded_reply()) as server:
        assert step1(step1_args(server.url, data_dir, single)) == 0
        proc = run_script("generate_reasoning_samples.py", *step1_args(server.url, data_dir, sharded),
                          "--num_shards", "2", "--ray_address", ray_address)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert len(server.requests) == 2 * 6  # each row asked once per run
        again = run_script("generate_reasoning_samples.py", *step1_args(server.url, data_dir, sharded),
                           "--num_shards", "2", "--ray_address", ray_address)  # from the folded checkpoint
        assert again.returncode == 0 and "folded the shards' checkpoints" in again.stdout, again.stderr[-3000:]
        assert len(server.requests) == 2 * 6 and os.listdir(sharded + ".checkpoint") == ["samples.jsonl"]
    want, got = load_output(single), load_output(sharded)
    assert got.column_names == want.column_names and got.to_list() == want.to_list()
    prov = json.load(open(os.path.join(sharded, "provenance.json")))
    assert [s["rows"] for s in prov["shards"]] == [[0, 3], [3, 6]] and prov["rows"] == 6
    # what the shards share
    assert prov["sampling"] == json.load(open(os.path.join(single, "provenance.json")))["sampling"]
    assert "counts" not in prov and [p["counts"]["samples"] for p in prov["shard_provenance"]] == [6, 6]


def test_rows_finished_under_any_shard_layout_are_not_asked_again(ray_address, data_dir, tmp_path):
    """An output completed with 2 shards, run again with 3 and unsharded: 0 requests re-sent, the same output."""
    out = str(tmp_path / "layouts.hf")
    with LoopbackServer(seeded_reply()) as server:
        for shards in ("2", "3"):
            proc = run_script("generate_reasoning_samples.py", *step1_args(server.url, data_dir, out),
                              "--num_shards", shards, "--ray_address", ray_address)
            assert proc.returncode == 0 and len(server.requests) == 6, (shards, proc.stderr[-3000:])
        first = load_output(out).to_list()
        assert step1(step1_args(server.url, data_dir, out)) == 0
        assert len(server.requests) == 6
    assert load_output(out).to_list() == first


def test_more_shards_than_rows_and_start_end_rows(ray_address, data_dir, tmp_path):
    out = str(tmp_path / "few.hf")
    with LoopbackServer(seeded_reply()) as server:
        proc = run_script("generate_reasoning_samples.py", *step1_args(server.url, data_dir, out), "--start_row", "1",
                          "--end_row", "4", "--num_shards", "5", "--ray_address", ray_address)
        assert proc.returncode == 0, proc.stderr[-3000:]
        single = str(tmp_path / "single.hf")
        assert step1(step1_args(server.url, data_dir, single) + ["--start_row", "1", "--end_row", "4"]) == 0
    assert load_output(out).to_list() == load_output(single).to_list()
    assert load_output(out)["answer"] == ["4", "6", "8"]
    assert len(json.load(open(os.path.join(out, "provenance.json")))["shards"]) == 3


@pytest.mark.slow
def test_bad_shard_flags_are_one_line_errors_and_nothing_is_written(data_dir, tmp_path):
    out = str(tmp_path / "bad.hf")
    zero = run_script("generate_reasoning_samples.py", *step1_args("http://127.0.0.1:9/v1", data_dir, out),
                      "--num_shards", "0")
    assert zero.returncode == 2 and "--num_shards: expected an integer >= 1, got 0" in zero.stderr
    with LoopbackServer(seeded_reply()) as server:
        far = run_script("generate_reasoning_samples.py", *step1_args(server.url, data_dir, out),
                         "--num_shards", "2", "--ray_address", "127.0.0.1:9")
    errors = [line for line in far.stderr.splitlines() if line.startswith("error")]
    assert far.returncode == 2 and "Traceback" not in far.stderr and len(errors) == 1, far.stderr
    assert "--ray_address 127.0.0.1:9 is unreachable" in errors[0]
    assert not os.path.exists(out) and not os.path.exists(out + ".checkpoint")


def test_step2_and_step3_two_shards_equal_the_single_run(ray_address, tmp_path):
    rows = [{"instruction": f"Compute {i} + {i}.", "answer": str(2 * i),
             "samples": [f"The answer is: {2 * i}", f"Step 1.\n\nThe answer is: {i}", "no answer"]}
            for i in range(5)]
    step1_out = str(tmp_path / "step1.hf")
    datasets.DatasetDict({"data": datasets.Dataset.from_list(rows)}).save_to_disk(step1_out)
    outs = {}
    for name, extra in (("single", []), ("sharded", ["--num_shards", "2"])):  # no --ray_address: a local Ray
        outs[name] = str(tmp_path / f"step2_{name}.hf")
        proc = run_script("unified_evaluation.py", "-i", step1_out, "-o", outs[name], "-t", "math", "-p", "1",
                          "--llm_fallback", "never", *extra)
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert load_output(outs["sharded"]).to_list() == load_output(outs["single"]).to_list()
    assert "Started a local Ray instance" in proc.stderr
    rm = f"TinySeq={tiny.build_sequence_classifier(str(tmp_path / 'seq'))}:sequence_classifier"
    scored = {}
    for name, extra in (("single", []), ("sharded", ["--num_shards", "2", "--ray_address", ray_address])):
        scored[name] = str(tmp_path / f"step3_{name}.hf")
        proc = run_script("unified_RMs_and_LM_Judges.py", "--dataset_path", outs["single"], "--output_path",
                          scored[name], "--reward_models", rm, *extra)
        assert proc.returncode == 0, proc.stderr[-3000:]
    want, got = load_output(scored["single"]), load_output(scored["sharded"])
    assert got.column_names == want.column_names
    assert got.remove_columns("TinySeq_scores").to_list() == want.remove_columns("TinySeq_scores").to_list()
    for a, b in zip(got["TinySeq_scores"], want["TinySeq_scores"], strict=True):
        assert a == pytest.approx(b, abs=1e-5) and None not in a


def test_step2_shards_grade_like_the_single_run_from_cold_workers(ray_address, tmp_path):
    """Fresh Ray workers import math-verify cold; the import must not count against --math_timeout (it used to turn
    \\frac{4}{2} vs 2 into `undecided` under load). Repeated: every run equals the single run, all decided."""
    rows = [{"instruction": f"Compute {2 * i} / 2.", "answer": str(i),
             "samples": [f"The answer is: \\frac{{{2 * i}}}{{2}}", f"The answer is: \\dfrac{{{4 * i}}}{{4}}"]}
            for i in range(1, 5)]
    step1_out = str(tmp_path / "step1.hf")
    datasets.DatasetDict({"data": datasets.Dataset.from_list(rows)}).save_to_disk(step1_out)
    common = ["-i", step1_out, "-t", "math", "-p", "2", "--llm_fallback", "never", "--math_timeout", "0.5"]
    single = str(tmp_path / "single.hf")
    assert run_script("unified_evaluation.py", *common, "-o", single).returncode == 0
    assert load_output(single)["answer_correct"] == [[True, True]] * 4
    for attempt in range(3):
        out = str(tmp_path / f"sharded_{attempt}.hf")
        proc = run_script("unified_evaluation.py", *common, "-o", out, "--num_shards", "2", "--ray_address",
                          ray_address)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert load_output(out).to_list() == load_output(single).to_list(), attempt


def kill_and_resume(data_dir: str, tmp_path, kill) -> None:
    """Run 2 shards of 12 slow rows, `kill(driver)` once 2+ rows are saved, run the command again: nothing lost,
    nothing saved before the kill asked again (a row in flight at the kill may be asked once more)."""
    out = str(tmp_path / "killed.hf")
    with LoopbackServer(seeded_reply(delay=0.4)) as server:
        cmd = [sys.executable, os.path.join(GENERATION, "generate_reasoning_samples.py"),
               *step1_args(server.url, data_dir, out, "mmlu_pro"), "--num_shards", "2", "--ray_address",
               kill.address]
        env = {**os.environ, **OFFLINE_ENV}
        driver = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while time.time() < deadline and len(finished_rows(out)) < 2:
            time.sleep(0.05)
        before, asked_before = finished_rows(out), len(server.requests)
        kill(driver)
        finished = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert finished.returncode == 0, finished.stderr[-3000:]
        resumed = [r["json"]["messages"][-1]["content"] for r in server.requests[asked_before:]]
    data = load_output(out)
    assert len(data) == 12 and all(len(s) == N and None not in s for s in data["samples"])
    folded = os.path.join(out + ".checkpoint", "samples.jsonl")  # the shards' logs, folded after the merge
    keys = sorted({json.loads(line)["k"].split("/")[1] for line in open(folded) if '"s/' in line},
                  key=lambda k: int(k.split("-")[0]))
    assert len(keys) == 12 and 2 <= len(before) < 12
    for key, prompt in zip(keys, data["instruction"]):
        assert resumed.count(prompt) <= (0 if key in before else 2)  # finished rows are never asked again


def test_a_killed_shard_task_is_retried_and_resumes(ray_address, data_dir, tmp_path):
    def kill_one_worker(driver):
        workers = shard_workers()
        assert workers, "no shard task is running"
        workers[0].kill()
        assert driver.wait(timeout=300) == 0  # Ray re-runs the task; the driver finishes on its own

    kill_one_worker.address = ray_address
    kill_and_resume(data_dir, tmp_path, kill_one_worker)


def test_a_sigkilled_driver_resumes(ray_address, data_dir, tmp_path):
    def kill_driver(driver):
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        deadline = time.time() + 60  # Ray ends the tasks of a dead driver
        while shard_workers() and time.time() < deadline:
            time.sleep(0.1)
        assert not shard_workers()

    kill_driver.address = ray_address
    kill_and_resume(data_dir, tmp_path, kill_driver)


@pytest.mark.slow
def test_a_sigkilled_driver_takes_its_local_ray_with_it_at_once(data_dir, tmp_path):
    """Without --ray_address the command's own Ray (shards, raylet, Ray's agents) dies with it: no request is sent
    after the kill (Ray's agents used to live on for a minute, its shards to send for seconds)."""
    out = str(tmp_path / "local.hf")
    with LoopbackServer(seeded_reply(delay=0.2)) as server:
        driver = subprocess.Popen([sys.executable, os.path.join(GENERATION, "generate_reasoning_samples.py"),
                                   *step1_args(server.url, data_dir, out, "mmlu_pro"), "--num_shards", "2"],
                                  env={**os.environ, **OFFLINE_ENV}, cwd=ROOT, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        deadline = time.time() + 240
        while time.time() < deadline and len(finished_rows(out)) < 2:
            time.sleep(0.05)
        ray_processes = psutil.Process(driver.pid).children(recursive=True)
        assert any("run_shard" in " ".join(p.cmdline()) for p in ray_processes)
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        time.sleep(1.0)  # a request already on the wire may still land
        sent = len(server.requests)
        time.sleep(3.0)
        assert len(server.requests) == sent
    alive = [p for p in ray_processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, [" ".join(p.cmdline())[:80] for p in alive]


def test_step1_vllm_two_shards_equal_the_single_run(ray_address, tiny_chat_model, data_dir, tmp_path):
    common = ["--model", tiny_chat_model, "--backend", "vllm", "--dataset", "math", "--dataset_path",
              os.path.join(data_dir, "math.jsonl"), "--samples_per_instruction", "2", "--max_new_tokens", "8",
              "--max_length", "256", "--per_request_seeds"]  # seeded per request: the same samples in any batch
    outs = {name: str(tmp_path / f"{name}.hf") for name in ("single", "sharded")}
    single = run_script("generate_reasoning_samples.py", *common, "--output_path", outs["single"],
                        env=ENGINE_IN_PROCESS)  # the shards' engines run as users' do (EngineCore, worker)
    assert single.returncode == 0, single.stderr[-3000:]
    sharded = run_script("generate_reasoning_samples.py", *common, "--output_path", outs["sharded"],
                         "--num_shards", "2", "--ray_address", ray_address)
    assert sharded.returncode == 0, sharded.stderr[-3000:]
    assert load_output(outs["sharded"]).to_list() == load_output(outs["single"]).to_list()


def test_a_shard_held_by_a_running_task_is_not_written_twice(data_dir, tmp_path):
    """A task of a killed driver that still runs holds its shard: the rerun's task stops ('in use'), writes nothing."""
    from generation.common.cli import settings_from
    from generation.common.writing import output_lock
    from generation.data.environment import driver_environment
    from generation.data.sharding import run_shard, shard_settings
    from generation.generate_reasoning_samples import build_parser
    from generation.steps.settings import GenerateSettings

    args = build_parser().parse_args(step1_args("http://127.0.0.1:9/v1", data_dir, str(tmp_path / "out")))
    shard = shard_settings(settings_from(GenerateSettings, vars(args)), range(0, 2))
    with output_lock(shard.output_path):  # the old task, still running
        result = run_shard("generation.steps.generate.generate", shard, os.getcwd(), driver_environment())
    assert result["code"] == 2 and "in use" in result["error"]
    assert not os.path.exists(shard.output_path) and not os.path.exists(shard.output_path + ".done.json")
