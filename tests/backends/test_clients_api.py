"""model_clients against scripted loopback servers: formats, faults, retries, limits, usage and caching."""
from __future__ import annotations

import threading
import time

import pytest

from generation.backends import runner
from generation.backends.calls import run_cached, run_chat_jobs
from generation.backends.rules import ApiConfig, ChatJob, Completion, FatalApiError, request_key
from generation.common.records import RecordStore

from loopback import LoopbackServer, Reply, default_responder, openai_body

FAST = {"retry-after-ms": "20"}  # keeps the SDKs' backoff short in tests


def scripted(*first: Reply, then=default_responder):
    """A responder sending the given replies to the first requests (in arrival order), then `then`."""
    def respond(path: str, request: dict, count: int) -> Reply:
        return first[count - 1] if count <= len(first) else then(path, request, count)
    return respond


def jobs(count: int, n: int = 1, system: str | None = None, **sampling) -> list[ChatJob]:
    """`count` distinct jobs asking for n completions each."""
    head = [{"role": "system", "content": system}] if system else []
    return [ChatJob(key=f"job-{i}", messages=head + [{"role": "user", "content": f"question {i}"}], n=n, **sampling)
            for i in range(count)]


def run(config: ApiConfig, batch: list[ChatJob]) -> tuple[dict[str, Completion], dict]:
    """Run jobs; return completions by key and the stats."""
    results: dict[str, Completion] = {}
    stats = run_chat_jobs(config, batch, lambda job, c: results.__setitem__(job.key, c), desc="test")
    return results, stats


def header(request: dict, name: str) -> str | None:
    """A recorded request header, looked up case-insensitively."""
    return next((v for k, v in request["headers"].items() if k.lower() == name), None)


def config(server: LoopbackServer, **kw) -> ApiConfig:
    """An OpenAI-compatible config pointed at the loopback server with short timeouts."""
    base = {"model": "loop", "provider": "openai_compatible", "base_url": server.url, "timeout": 5.0,
            "max_retries": 3}
    return ApiConfig(**{**base, **kw})


def test_429_retry_after_is_honoured_and_nothing_lost():
    seen: list[float] = []

    def respond(path, request, count):
        seen.append(time.monotonic())
        if count == 1:
            return Reply(status=429, body={"error": {"message": "slow down"}}, headers={"Retry-After": "1"})
        return default_responder(path, request, count)

    with LoopbackServer(respond) as server:
        results, stats = run(config(server, max_concurrency=1), jobs(3, n=2))
    assert all(len(c.texts) == 2 and None not in c.texts and c.error is None for c in results.values())
    assert len(results) == 3 and stats["failed_samples"] == 0 and stats["retries"] == 1
    assert 0.9 <= seen[1] - seen[0] < 3.0  # the SDK's own backoff would be <= 0.5 s


def test_500_then_success():
    with LoopbackServer(scripted(Reply(status=500, body={"error": {"message": "boom"}}, headers=FAST))) as server:
        results, stats = run(config(server), jobs(1))
    assert results["job-0"].texts[0].startswith("Reasoning") and stats["retries"] == 1
    assert stats["http_attempts"] == 2 and stats["requests"] == 1


def test_request_timeout_then_success():
    slow = Reply(delay=2.0, body=openai_body({}, ["late"]))
    with LoopbackServer(scripted(slow)) as server:
        start = time.monotonic()
        results, stats = run(config(server, timeout=0.4), jobs(1))
    assert results["job-0"].texts[0].startswith("Reasoning") and results["job-0"].error is None
    assert stats["retries"] == 1 and time.monotonic() - start < 1.9


def test_malformed_bodies_then_success():
    replies = (Reply(body="{not json"), Reply(body={"id": "no-choices"}))
    with LoopbackServer(scripted(*replies)) as server:
        results, stats = run(config(server), jobs(1))
    assert results["job-0"].texts[0].startswith("Reasoning") and stats["requests"] == 3 and stats["retries"] == 2


def test_permanently_malformed_is_a_bounded_failure():
    with LoopbackServer(lambda path, request, count: Reply(body={"choices": []})) as server:
        results, stats = run(config(server), jobs(1, n=2))
    assert results["job-0"].texts == [None, None] and "malformed" in results["job-0"].error
    assert len(server.requests) == 3 and stats["failed_samples"] == 2


def test_permanent_503_gives_none_after_bounded_attempts():
    def respond(path, request, count):
        return Reply(status=503, body={"error": {"message": "overloaded"}}, headers=FAST)

    with LoopbackServer(respond) as server:
        results, stats = run(config(server, max_retries=2), jobs(2, n=3))
    assert all(c.texts == [None] * 3 and "503" in c.error for c in results.values())
    assert len(server.requests) == 2 * 3  # 1 try + 2 retries per job
    assert stats["failed_jobs"] == 2 and stats["failed_samples"] == 6 and stats["errors"]


@pytest.mark.parametrize("status,message", [(401, "Incorrect API key provided: sk-secret-123"),
                                            (403, "Project lacks access"), (400, "max_tokens is too large"),
                                            (404, "The model `loop` does not exist")])
def test_fatal_errors_stop_the_run(monkeypatch, status, message):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-123")
    bad = Reply(status=status, body={"error": {"message": message, "type": "invalid_request_error"}}, delay=0.05)
    finished = []
    with LoopbackServer(lambda path, request, count: bad) as server:
        with pytest.raises(FatalApiError) as info:
            run_chat_jobs(config(server, max_concurrency=2), jobs(20), lambda job, c: finished.append(job))
        time.sleep(0.2)
        sent = len(server.requests)
    text = str(info.value)
    assert f"HTTP {status}" in text and message.split(":")[0] in text
    assert "sk-secret-123" not in text and "\n" not in text
    assert not finished and sent <= 3  # stopped at once: no retries, pending jobs cancelled


def test_exhausted_quota_429_is_fatal():
    error = {"message": "You exceeded your current quota", "code": "insufficient_quota"}
    quota = Reply(status=429, body={"error": error}, headers=FAST)
    with LoopbackServer(lambda path, request, count: quota) as server:
        with pytest.raises(FatalApiError, match="HTTP 429.*exceeded your current quota"):
            run(config(server, max_retries=1, max_concurrency=1), jobs(5))
    assert len(server.requests) == 2  # the SDK's retry, then the run stops


def test_an_error_in_on_result_stops_the_run():
    def explode(job, completion):
        raise OSError("disk full")

    with LoopbackServer(lambda path, request, count: Reply(delay=0.05, body=openai_body(request, ["x"]))) as server:
        with pytest.raises(OSError, match="disk full"):
            run_chat_jobs(config(server, max_concurrency=2), jobs(40), explode)
        time.sleep(0.2)
    assert len(server.requests) <= 3


def test_concurrency_bound_is_respected():
    lock = threading.Lock()
    state = {"now": 0, "max": 0}

    def respond(path, request, count):
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.1)
        with lock:
            state["now"] -= 1
        return default_responder(path, request, count)

    with LoopbackServer(respond) as server:
        results, _ = run(config(server, max_concurrency=4), jobs(24))
    assert len(results) == 24 and 3 <= state["max"] <= 4


def test_requests_per_minute_spaces_requests(monkeypatch):
    """300 a minute: the k-th request starts no earlier than k x 0.2 s after the first asked, and none reaches the
    server before it started (all on the monotonic clock, so a loaded machine's delays cannot fail it)."""
    asked: list[float] = []
    started: list[float] = []
    arrivals: list[float] = []
    wait = runner.RateLimiter.wait

    async def recorded(limiter):
        asked.append(time.monotonic())
        await wait(limiter)
        started.append(time.monotonic())

    def respond(path, request, count):
        arrivals.append(time.monotonic())
        return default_responder(path, request, count)

    monkeypatch.setattr(runner.RateLimiter, "wait", recorded)
    with LoopbackServer(respond) as server:
        run(config(server, max_concurrency=8, requests_per_minute=300), jobs(6))
    assert len(asked) == len(started) == len(arrivals) == 6
    assert all(start >= min(asked) + 0.2 * k - 1e-6 for k, start in enumerate(sorted(started)))
    assert all(arrival >= start for arrival, start in zip(sorted(arrivals), sorted(started)))


def test_openai_format_n_and_usage():
    with LoopbackServer() as server:
        results, stats = run(config(server), jobs(4, n=3, temperature=0.7, top_p=0.9, seed=5, max_tokens=64))
    sent = server.requests[0]["json"]
    assert (sent["n"], sent["temperature"], sent["top_p"], sent["seed"], sent["max_tokens"]) == (3, 0.7, 0.9, 5, 64)
    assert len(server.requests) == 4 and all(len(c.texts) == 3 for c in results.values())
    assert results["job-0"].usage == {"prompt_tokens": 10, "completion_tokens": 15}
    assert (stats["prompt_tokens"], stats["completion_tokens"], stats["samples"]) == (40, 60, 12)
    assert header(server.requests[0], "authorization") == "Bearer EMPTY"


def test_anthropic_format_system_and_n_calls(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    with LoopbackServer() as server:
        cfg = ApiConfig(model="claude-3-5-haiku-latest", provider="anthropic", base_url=server.root, timeout=5.0)
        results, stats = run(cfg, jobs(2, n=3, system="Be brief.", temperature=0.7))
    assert len(server.requests) == 6 and all(r["path"] == "/v1/messages" for r in server.requests)
    sent = server.requests[0]["json"]
    assert sent["system"] == "Be brief." and [m["role"] for m in sent["messages"]] == ["user"]
    assert "n" not in sent and "temperature" not in sent and sent["max_tokens"] == 512
    assert header(server.requests[0], "authorization") == "Bearer sk-ant-test"
    assert all(len(c.texts) == 3 and None not in c.texts for c in results.values())
    assert results["job-0"].usage == {"prompt_tokens": 30, "completion_tokens": 15}
    assert stats["requests"] == 6 and stats["completion_tokens"] == 30


def test_anthropic_partial_failure_keeps_the_other_samples(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    down = Reply(status=529, body={"type": "error", "error": {"type": "overloaded_error", "message": "busy"}},
                 headers=FAST)
    with LoopbackServer(scripted(down, down)) as server:
        cfg = ApiConfig(model="claude-x", provider="anthropic", base_url=server.root, max_retries=1, max_concurrency=1)
        results, stats = run(cfg, jobs(1, n=3))
    texts = results["job-0"].texts
    assert texts[0] is None and None not in texts[1:] and "529" in results["job-0"].error
    assert stats["failed_samples"] == 1


def test_together_path(monkeypatch):
    monkeypatch.setenv("TOGETHER_API_KEY", "tg-test")
    with LoopbackServer() as server:
        cfg = ApiConfig(model="deepseek-ai/DeepSeek-R1", provider="together", base_url=server.url, timeout=5.0)
        results, stats = run(cfg, jobs(2, n=2, temperature=0.6, seed=3))
    request = server.requests[0]
    assert request["path"] == "/v1/chat/completions" and header(request, "authorization") == "Bearer tg-test"
    assert "Together" in header(request, "user-agent")
    sent = request["json"]
    assert (sent["model"], sent["n"], sent["seed"]) == ("deepseek-ai/DeepSeek-R1", 2, 3)
    assert all(len(c.texts) == 2 and None not in c.texts for c in results.values()) and stats["prompt_tokens"] == 20


def test_openai_reasoning_model_parameter_rules(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    batch = jobs(1, system="You are careful.", temperature=0.7, top_p=0.9, max_tokens=300)
    with LoopbackServer() as server:
        for model in ("o3-mini-2025-01-31", "o1-mini", "gpt-4o-mini"):
            run(ApiConfig(model=model, provider="openai", base_url=server.url, reasoning_effort="high"), batch)
    o3, o1_mini, gpt = (r["json"] for r in server.requests)
    for sent in (o3, o1_mini):
        assert "temperature" not in sent and "top_p" not in sent and "max_tokens" not in sent
        assert sent["max_completion_tokens"] == 300
    assert o3["reasoning_effort"] == "high"
    assert [m["role"] for m in o3["messages"]] == ["developer", "user"]
    assert o1_mini["messages"] == [{"role": "user", "content": "You are careful.\n\nquestion 0"}]
    assert (gpt["temperature"], gpt["top_p"], gpt["max_tokens"]) == (0.7, 0.9, 300) and "reasoning_effort" not in gpt
    assert [m["role"] for m in gpt["messages"]] == ["system", "user"]


def test_results_arrive_in_the_calling_thread_as_they_finish():
    threads = set()
    with LoopbackServer() as server:
        run_chat_jobs(config(server), jobs(5), lambda job, c: threads.add(threading.get_ident()))
    assert threads == {threading.get_ident()}
    assert run_chat_jobs(config(server), [], lambda job, c: None)["jobs"] == 0  # nothing to do, nothing sent


def test_run_cached_skips_stored_keys_and_retries_failures(tmp_path):
    def respond(path, request, count):
        if request["messages"][-1]["content"] == "question 2":
            return Reply(status=500, body={"error": {"message": "flaky"}}, headers=FAST)
        return default_responder(path, request, count)

    path = str(tmp_path / "cache.jsonl")
    with LoopbackServer(respond) as server:
        cfg = config(server, max_retries=1)
        batch = [ChatJob(key=request_key(cfg, j), messages=j.messages, n=2, seed=7) for j in jobs(3, n=2)]
        with RecordStore(path) as store:
            first = run_cached(cfg, batch + batch[:1], store, desc="cached")
        assert len(server.requests) == 3 + 1  # duplicate key asked once; the failing job retried once
        with RecordStore(path) as store:
            assert len(store) == 2
            stats: dict = {}
            second = run_cached(cfg, batch, store, desc="cached", stats=stats)
        asked = [r["json"]["messages"][-1]["content"] for r in server.requests[4:]]
    assert asked == ["question 2", "question 2"]  # only the hole is asked again
    assert second[batch[0].key].texts == first[batch[0].key].texts and second[batch[0].key].usage == {}
    assert second[batch[2].key].texts == [None, None] and stats["cached"] == 2 and stats["jobs"] == 1
