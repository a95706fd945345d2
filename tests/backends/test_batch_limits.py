"""Batch mode never buys twice silently: a batch failing as a whole stops the step with the provider's errors (no
live request unless --batch_fallback live), and chunks stay within the enqueued-token limit (OpenAI's batch queue)."""
import json
import os

import pytest
from test_batch_mode import data_dir, fast_polls  # noqa: F401 - shared fixtures (fast polls, keys; math rows)

from generation.common.cli import run_main
from generation.generate_reasoning_samples import main

from fixtures_benchmarks import load_output
from loopback import OPENAI, LoopbackServer, persona_responder
from loopback_batches import BatchService

N = 3
CHAT = "/v1/chat/completions"
INVALID = [{"code": "invalid_request", "message": "The model `gpt-4o-mini` does not exist or you do not have access.",
            "param": "body.model", "line": 1}, {"code": "invalid_request", "message": "same", "param": None,
                                                "line": 2}]


def step1(data_dir, url, out, *extra):
    return ["--model", "gpt-4o-mini", "--provider", "openai", "--base_url", url, "--dataset", "math",
            "--dataset_path", os.path.join(data_dir, "math.jsonl"), "--output_path", out,
            "--samples_per_instruction", str(N), "--temperature", "0.7", "--seed", "3", "--api_mode", "batch", *extra]


def live_calls(server) -> int:
    return sum(r["path"].startswith(CHAT) for r in server.requests)


@pytest.mark.parametrize("service", [
    BatchService(persona_responder(OPENAI), fail_whole=INVALID),
    BatchService(persona_responder(OPENAI), enqueued_limit=10),  # the server's queue is smaller than the client's
], ids=["invalid", "token_limit_exceeded"])
def test_a_batch_failing_as_a_whole_stops_without_buying_live(data_dir, tmp_path, capsys, service):
    out = str(tmp_path / "out")
    with LoopbackServer(persona_responder(OPENAI), batches=service) as server:
        with pytest.raises(SystemExit) as exc:
            run_main(main, step1(data_dir, server.url, out, "--max_rows", "2"))
        assert live_calls(server) == 0 and exc.value.code == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("batch batch_1: ")]
    if service.fail_whole:
        assert lines == [("batch batch_1: invalid_request: The model `gpt-4o-mini` does not exist or you do not have "
                          "access. (input line 1)"), "batch batch_1: invalid_request: same (input line 2)"]
    else:
        assert "Enqueued token limit reached" in lines[0] and "lower --batch_max_enqueued_tokens" in lines[1]
    assert "nothing was sent live" in err and "--batch_fallback live" in err
    with open(out + ".checkpoint/samples.jsonl") as handle:
        records = [json.loads(line) for line in handle if '"batch/' in line]
    assert [r["v"]["state"] for r in records if r.get("k") == "batch/batch_1"][-1:] == ["failed"]
    with LoopbackServer(persona_responder(OPENAI), batches=service) as server:  # opted in: sent live, completes
        assert main(step1(data_dir, server.url, out, "--max_rows", "2", "--batch_fallback", "live")) == 0
        assert live_calls(server) == 2
    assert all(len(row) == N and None not in row for row in load_output(out)["samples"])


def test_chunks_are_submitted_as_earlier_ones_end_within_the_enqueued_limit(data_dir, tmp_path):
    out = str(tmp_path / "out")
    limit = 120  # the client's bound on one request's input (UTF-8 bytes) is about 90-100 here: one per batch
    service = BatchService(persona_responder(OPENAI), enqueued_limit=limit)
    with LoopbackServer(persona_responder(OPENAI), batches=service) as server:
        assert main(step1(data_dir, server.url, out, "--batch_max_enqueued_tokens", str(limit))) == 0
        assert live_calls(server) == 0
    assert service.creations == 6 and not service.failing and 0 < service.peak_enqueued <= limit
    assert all(len(row) == N and None not in row for row in load_output(out)["samples"])
    with open(os.path.join(out, "provenance.json")) as handle:
        assert json.load(handle)["cost_usd"]["gpt-4o-mini"] > 0


def test_anthropic_progress_counts_the_requests_no_longer_processing(monkeypatch):
    from generation.backends import batch_api as batch
    from generation.backends.rules import ApiConfig, ChatJob

    from loopback import ANTHROPIC

    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    service = BatchService(persona_responder(ANTHROPIC))
    service.hold.set()
    with LoopbackServer(persona_responder(ANTHROPIC), batches=service) as server:
        config = ApiConfig("claude-haiku-4-5", "anthropic", base_url=server.root)
        provider = batch._Provider(config)
        jobs = [ChatJob(str(i), [{"role": "user", "content": f"q{i}"}], max_tokens=10) for i in range(4)]
        batch_id = provider.submit(batch.build_parts(config, jobs))
        states = [provider.status(batch_id, len(jobs)) for _ in range(3)]
    assert [(s.ended, s.done) for s in states] == [(False, 1), (False, 2), (False, 3)]
