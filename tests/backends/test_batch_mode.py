"""--api_mode batch (OpenAI Batch, Anthropic Message Batches) against the loopback batch endpoints: same output as
live calls, partial failures and expiry sent live, resume by batch id after SIGKILL, half-price cost, bad provider."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from test_step3b_api import dataset
from test_step3b_parsing import judge_args

from generation.common.cli import UserError
from generation.generate_reasoning_samples import main
from generation.judges.judging import resolve_judges, run_judge

from conftest import GENERATION, OFFLINE_ENV, run_script
from fixtures_benchmarks import load_output, write_benchmarks
from loopback import ANTHROPIC, OPENAI, LoopbackServer, persona_responder
from loopback_batches import BatchService

N = 3
CHAT = "/v1/chat/completions"


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch):
    monkeypatch.setenv("WEAVER_BATCH_POLL_S", "0.01")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_benchmarks(str(tmp_path_factory.mktemp("batch_bench")), ("math",))


def step1(data_dir, url, out, *extra):
    """Step 1 argv for gpt-4o-mini (OpenAI) on four math rows."""
    return ["--model", "gpt-4o-mini", "--provider", "openai", "--base_url", url, "--dataset", "math",
            "--dataset_path", os.path.join(data_dir, "math.jsonl"), "--output_path", out,
            "--samples_per_instruction", str(N), "--max_rows", "4", "--temperature", "0.7", "--seed", "3", *extra]


def chat_calls(server):
    """Live chat requests the server got."""
    return [r for r in server.requests if r["path"].startswith(CHAT)]


def live_run(data_dir, tmp_path):
    """Samples and provenance of a live Step 1 run (the reference the batch runs must equal)."""
    out = str(tmp_path / "live")
    with LoopbackServer(persona_responder(OPENAI)) as server:
        assert main(step1(data_dir, server.url, out)) == 0
    return load_output(out), json.load(open(os.path.join(out, "provenance.json")))


@pytest.mark.parametrize("service", [
    BatchService(persona_responder(OPENAI)),
    BatchService(persona_responder(OPENAI), fails=lambda i: i == 1),  # one request errors: sent live
    BatchService(persona_responder(OPENAI), expire_after=2),  # the batch expires after two: the rest live
], ids=["complete", "partial_failure", "expired"])
def test_step1_batch_equals_live(data_dir, tmp_path, service):
    live, live_prov = live_run(data_dir, tmp_path)
    out = str(tmp_path / "batch")
    with LoopbackServer(persona_responder(OPENAI), batches=service) as server:  # what a batch leaves: sent live
        assert main(step1(data_dir, server.url, out, "--api_mode", "batch", "--batch_fallback", "live")) == 0
        sent_live = chat_calls(server)
    data = load_output(out)
    assert data.column_names == live.column_names and data["samples"] == live["samples"]
    assert data["sample_finish_reasons"] == live["sample_finish_reasons"] == [["stop"] * N] * len(data)
    assert service.creations == 1
    expected_live = {"complete": 0, "partial_failure": 1, "expired": 2}[
        "expired" if service.expire_after else "partial_failure" if service.fails(1) else "complete"]
    assert len(sent_live) == expected_live
    assert all(line["body"]["n"] == N and line["body"]["seed"] for line in service.inputs["batch_1"])
    prov = json.load(open(os.path.join(out, "provenance.json")))
    assert prov["token_usage"] == live_prov["token_usage"]
    assert prov["batch"]["batches"] == ["batch_1"] and prov["batch"]["live_fallback_requests"] == expected_live
    assert prov["batch"]["answered"] == 4 - expected_live and sum(prov["batch"]["reasons"].values()) == expected_live
    live_cost, cost = live_prov["cost_usd"]["gpt-4o-mini"], prov["cost_usd"]["gpt-4o-mini"]
    share = (4 - expected_live) / 4  # the batched rows bill half, the live fallback full price
    assert cost == pytest.approx(live_cost * (share * 0.5 + (1 - share)), abs=1e-6)  # each part rounded to 1e-6
    with LoopbackServer(persona_responder(OPENAI), batches=service) as server:  # rerun: nothing asked
        assert main(step1(data_dir, server.url, out, "--api_mode", "batch")) == 0
        assert server.requests == [] and service.creations == 1


def test_anthropic_judge_batch_equals_live(tmp_path):
    columns, costs = {}, {}
    for mode in ("live", "batch"):
        service = BatchService(persona_responder(ANTHROPIC), fails=lambda i: i == 0)
        with LoopbackServer(persona_responder(ANTHROPIC), batches=service) as server:
            options = judge_args("--base_url", server.root, "--verdicts_per_sample", "2", "--api_mode", mode,
                                 "--batch_fallback", "live")
            spec = resolve_judges(["Claude-3-5-Haiku"], options)[0]
            columns[mode], stats = run_judge(spec, dataset(1, 3), options, str(tmp_path / mode))
            costs[mode] = stats["cost_usd"]
            live_calls = [r for r in server.requests if r["path"].endswith("/v1/messages")]
        if mode == "batch":
            assert service.creations == 1 and len(service.inputs["msgbatch_1"]) == 6  # n=1 per request
            assert len(live_calls) == 1  # the errored request, sent live
    assert columns["batch"] == columns["live"] and costs["batch"] < costs["live"]
    assert columns["live"]["Claude-3-5-Haiku_verdicts"] == [[[1.0, 1.0]] * 3]


@pytest.mark.slow
def test_killed_driver_resumes_the_same_batch(data_dir, tmp_path):
    out = str(tmp_path / "killed")
    checkpoint = out + ".checkpoint/samples.jsonl"
    service = BatchService(persona_responder(OPENAI))
    service.hold.set()  # the batch stays in progress until the driver is killed
    with LoopbackServer(persona_responder(OPENAI), batches=service) as server:
        cmd = [sys.executable, os.path.join(GENERATION, "generate_reasoning_samples.py"),
               *step1(data_dir, server.url, out, "--api_mode", "batch")]
        env = {**os.environ, **OFFLINE_ENV}
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while time.time() < deadline and not (os.path.exists(checkpoint) and '"batch/' in open(checkpoint).read()):
            time.sleep(0.05)
        time.sleep(0.3)  # a few polls of the in-progress batch
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert service.creations == 1 and service.batches["batch_1"]["status"] == "in_progress"
        service.hold.clear()
        assert main(step1(data_dir, server.url, out, "--api_mode", "batch")) == 0
        assert chat_calls(server) == []
    assert service.creations == 1  # the rerun picked up batch_1 instead of submitting again
    assert all(len(samples) == N and None not in samples for samples in load_output(out)["samples"])


def test_batch_mode_for_a_provider_without_batch_api_is_one_line_error(data_dir, tmp_path):
    with LoopbackServer(persona_responder(OPENAI)) as server:
        result = run_script("generate_reasoning_samples.py", "--model", "loop", "--base_url", server.url,
                            "--dataset", "math", "--dataset_path", os.path.join(data_dir, "math.jsonl"),
                            "--output_path", str(tmp_path / "x"), "--api_mode", "batch")
        assert server.requests == []
    err = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(err) == 1, result.stderr
    assert "openai_compatible" in err[0] and "no batch API" in err[0] and "--api_mode live" in err[0]
    assert not os.path.exists(str(tmp_path / "x"))
    with pytest.raises(UserError, match="provider 'together' .* has no batch API"):
        resolve_judges(["Together=together:meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo"],
                       judge_args("--api_mode", "batch"))


def test_batches_split_at_the_provider_limits(data_dir, tmp_path, monkeypatch):
    from generation.backends import batch_api

    assert batch_api.LIMITS == {"openai": (50_000, 200_000_000), "anthropic": (100_000, 256_000_000)}
    monkeypatch.setitem(batch_api.LIMITS, "openai", (3, 200_000_000))  # 4 requests: two batches
    service = BatchService(persona_responder(OPENAI))
    out = str(tmp_path / "split")
    with LoopbackServer(persona_responder(OPENAI), batches=service) as server:
        assert main(step1(data_dir, server.url, out, "--api_mode", "batch")) == 0
    assert service.creations == 2 and [len(service.inputs[b]) for b in ("batch_1", "batch_2")] == [3, 1]
    line = len(json.dumps(batch_api.request_line("openai", batch_api.Part(None, 0, 1, None, {"x": "y" * 50}, "r1"))))
    parts = [batch_api.Part(None, 0, 1, None, {"x": "y" * 50}, f"r{i}") for i in range(5)]
    monkeypatch.setitem(batch_api.LIMITS, "openai", (100, 2 * (line + 1)))  # bytes: two lines per batch
    assert [len(chunk) for chunk in batch_api.chunks("openai", parts)] == [2, 2, 1]
    assert all(len(load_output(out)["samples"][i]) == N for i in range(4))


def test_step2_llm_fallback_in_batch_mode(tmp_path):
    from test_step2_cli import MC_ROWS, graded, judge_responder, save

    from generation import unified_evaluation

    source = save(MC_ROWS, str(tmp_path / "in"), as_dict=False)
    outputs = {}
    for mode in ("live", "batch"):
        service = BatchService(judge_responder)
        out = str(tmp_path / mode)
        with LoopbackServer(judge_responder, batches=service) as server:
            assert unified_evaluation.main(["-i", source, "-o", out, "-t", "gpqa", "--provider", "openai",
                                            "--judge_model", "gpt-4o-mini", "--base_url", server.url,
                                            "--api_mode", mode]) == 0
            assert len(chat_calls(server)) == (mode == "live") and service.creations == (mode == "batch")
        outputs[mode] = graded(out)
    assert outputs["batch"] == outputs["live"] and outputs["batch"][0]["answer_extraction_method"][2] == "llm"
