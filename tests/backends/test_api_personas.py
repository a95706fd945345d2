"""Step 1 and API judges against loopback provider personas (tests/loopback.py): each behaviour, table-driven."""
import json
import os

import pytest
from datasets import Dataset
from test_step3b_parsing import judge_args

from generation.backends.calls import api_config_for
from generation.backends.rules import check_ready
from generation.common.cli import UserError
from generation.generate_reasoning_samples import main
from generation.judges.judging import resolve_judges, run_judge

from fixtures_benchmarks import load_output, math_rows, write_benchmark
from loopback import (
    ANTHROPIC,
    OLLAMA,
    OPENAI,
    OPENAI_REASONING,
    TOGETHER,
    VLLM,
    LoopbackServer,
    Persona,
    persona_responder,
)

BAD = "FLAGGED " + "x" * 2500  # OpenAI flags it; vLLM and Anthropic personas with a 2000-token context refuse it
# persona -> (Step 1 model flags, judge name)
ROUTES = {
    "openai": (["--model", "gpt-4o-mini", "--provider", "openai"], "J=openai:gpt-4o-mini"),
    "openai-reasoning": (["--model", "o3-mini", "--provider", "openai"], "J=openai:o3-mini"),
    "anthropic": (["--model", "claude-x", "--provider", "anthropic"], "J=anthropic:claude-x"),
    "together": (["--model", "deepseek-ai/DeepSeek-R1", "--provider", "together"],
                 "J=together:deepseek-ai/DeepSeek-R1"),
    "vllm": (["--model", "served"], "J=openai_compatible:served"),
    "ollama": (["--model", "llama3"], "J=openai_compatible:llama3"),
}


@pytest.fixture(autouse=True)
def keys(monkeypatch):
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "TOGETHER_API_KEY"):
        monkeypatch.setenv(name, "sk-test")
    monkeypatch.delenv("OPENAI_COMPATIBLE_API_KEY", raising=False)
    monkeypatch.setattr("generation.backends.rules._NOTICES", set())  # notices are once per process: once per test here


def step1(persona: Persona, tmp_path, n: int, *extra: str, bad_row: int | None = None, rows: int = 4,
          url=None) -> tuple[int, list, dict, list, str]:
    """Run Step 1 against the persona; -> exit code, samples, provenance, requests, printed text."""
    data = math_rows()[:rows]
    if bad_row is not None:
        data[bad_row]["problem"] = BAD
    path = write_benchmark("math", str(tmp_path / "in"), rows=data)
    out = str(tmp_path / f"out-{persona.name}")
    with LoopbackServer(persona_responder(persona)) as server:
        code = main(ROUTES[persona.name.split("+")[0]][0] + [
            "--base_url", url(server) if url else server.url, "--dataset", "math", "--dataset_path", path,
            "--output_path", out, "--samples_per_instruction", str(n), *extra])
        requests = list(server.requests)
    with open(os.path.join(out, "provenance.json")) as handle:
        provenance = json.load(handle)
    return code, load_output(out)["samples"], provenance, requests, out


def judge(persona: Persona, tmp_path, samples: list[str], *extra: str, url=None) -> tuple[list, dict, list]:
    """Judge one row of samples with the persona as an API judge; -> verdicts per sample, stats, requests."""
    data = Dataset.from_dict({"instruction": ["Problem"], "samples": [samples]})
    with LoopbackServer(persona_responder(persona)) as server:
        options = judge_args("--base_url", url(server) if url else server.url, *extra)
        spec = resolve_judges([ROUTES[persona.name.split("+")[0]][1]], options)[0]
        columns, stats = run_judge(spec, data, options, str(tmp_path / f"judge-{persona.name}"))
        requests = list(server.requests)
    return columns["J_verdicts"][0], stats, requests


@pytest.mark.slow
@pytest.mark.parametrize("persona", [OPENAI, VLLM, ANTHROPIC], ids=lambda p: p.name)
def test_a_prompt_error_fails_only_its_row(persona, tmp_path, capsys):
    code, samples, provenance, _, _ = step1(persona, tmp_path, 2, bad_row=1)
    printed = capsys.readouterr().out
    assert code == 1 and samples[1] == [None, None]
    assert all(None not in row for i, row in enumerate(samples) if i != 1)
    assert "(row 1)" in printed and "about this prompt" in printed
    assert provenance["counts"]["failed_rows"] == [1]
    verdicts, stats, _ = judge(persona, tmp_path, ["fine", BAD, "also fine"])
    assert verdicts == [[1.0], [None], [1.0]] and stats["failures"] == 1 and stats["failed_rows"] == [0]
    assert "failed judgments in rows 0" in capsys.readouterr().out


@pytest.mark.parametrize("persona,limit,extra", [(OPENAI, 128, ()), (TOGETHER, 128, ()),
                                                 (VLLM, 50, ("--max_n_per_request", "50"))],
                         ids=["openai", "together", "override"])
def test_n_is_split_at_the_provider_limit(persona, limit, extra, tmp_path):
    code, samples, _, requests, _ = step1(persona, tmp_path, 300, *extra, rows=1)
    assert code == 0 and len(samples[0]) == 300 and len(set(samples[0])) == 300  # split parts use other seeds
    assert max(r["json"].get("n", 1) for r in requests) == limit and len(requests) == -(-300 // limit)
    verdicts, stats, requests = judge(persona, tmp_path, ["one"], "--verdicts_per_sample", "130", *extra)
    assert verdicts == [[1.0] * 130] and stats["failures"] == 0
    assert max(r["json"].get("n", 1) for r in requests) <= limit


def test_servers_ignoring_n_are_asked_again(tmp_path):
    code, samples, provenance, requests, _ = step1(OLLAMA, tmp_path, 3)
    assert code == 0 and all(len(set(row)) == 3 and None not in row for row in samples)
    assert provenance["counts"]["failed_samples"] == 0
    verdicts, stats, _ = judge(OLLAMA, tmp_path, ["a", "b"], "--verdicts_per_sample", "3")
    assert verdicts == [[1.0] * 3, [1.0] * 3] and stats["failures"] == 0


def test_reasoning_models_get_no_cap_and_reasoning_effort(tmp_path, capsys):
    code, samples, provenance, requests, _ = step1(OPENAI_REASONING, tmp_path, 2)
    assert code == 0 and all(t for row in samples for t in row)
    sent = requests[0]["json"]
    assert sent["reasoning_effort"] == "high" and "max_completion_tokens" not in sent and "temperature" not in sent
    assert provenance["sampling"]["reasoning_effort"] == "high" and provenance["sampling"]["max_new_tokens"] is None
    # an explicit cap is sent; the hidden reasoning eats it, and empty cut replies are failures, not ''
    code, samples, provenance, requests, _ = step1(OPENAI_REASONING, tmp_path / "capped", 2, "--max_new_tokens",
                                                   "600", "--reasoning_effort", "low")
    assert requests[0]["json"]["max_completion_tokens"] == 600 and requests[0]["json"]["reasoning_effort"] == "low"
    assert code == 1 and all(t is None for row in samples for t in row)
    assert provenance["truncated_samples"] == 8 and provenance["counts"]["failed_samples"] == 8
    assert "cut at max_tokens" in capsys.readouterr().out
    verdicts, stats, requests = judge(OPENAI_REASONING, tmp_path, ["a"])
    assert verdicts == [[1.0]] and "max_completion_tokens" not in requests[0]["json"]
    assert requests[0]["json"]["reasoning_effort"] == "high" and stats["max_tokens"] is None


@pytest.mark.parametrize("persona", [OPENAI, ANTHROPIC, TOGETHER, VLLM, OLLAMA], ids=lambda p: p.name)
def test_samples_that_ended_normally_are_recorded_as_stop(persona, tmp_path):
    """OpenAI-style finish_reason "stop" and Anthropic's stop_reason "end_turn" are both `stop` in Step 1's column."""
    code, samples, _, _, out = step1(persona, tmp_path, 2)
    assert code == 0 and load_output(out)["sample_finish_reasons"] == [["stop"] * 2] * 4


@pytest.mark.parametrize("persona", [OPENAI, ANTHROPIC, VLLM], ids=lambda p: p.name)
def test_truncated_samples_are_counted_and_kept(persona, tmp_path, capsys):
    code, samples, provenance, _, out = step1(persona, tmp_path, 2, "--max_new_tokens", "10")
    printed = capsys.readouterr().out
    assert code == 0 and all(t and len(t.split()) == 10 for row in samples for t in row)  # cut text is kept
    assert load_output(out)["sample_finish_reasons"] == [["length"] * 2] * 4  # finish_reason / stop_reason
    assert provenance["truncated_samples"] == 8 and "(8 cut at max_new_tokens)" in printed
    verdicts, stats, _ = judge(persona, tmp_path, ["a", "b"], "--judge_max_tokens", "10")
    assert verdicts == [[None], [None]] and stats["truncated_samples"] == 2
    assert "2 of 2 judgments were cut" in capsys.readouterr().err


def test_anthropic_sampling_parameters_are_reported_honestly(tmp_path, capsys):
    code, _, provenance, requests, _ = step1(ANTHROPIC, tmp_path, 1, "--temperature", "0.7")
    assert code == 0 and "temperature" not in requests[0]["json"]
    assert provenance["api_parameters"]["not_sent"] == ["temperature", "seed"]  # the Messages API has no seed
    assert "temperature, seed not sent" in capsys.readouterr().err
    _, stats, requests = judge(ANTHROPIC, tmp_path, ["a"], "--verdicts_per_sample", "2")
    assert "temperature" not in requests[0]["json"] and stats["api_parameters"]["not_sent"] == ["temperature", "seed"]




@pytest.mark.parametrize("persona,url", [
    (Persona("vllm+basic", basic_auth="alice:s3cretpw"), lambda s: s.url.replace("://", "://alice:s3cretpw@")),
    (Persona("vllm+query", query_token="tok3n"), lambda s: s.url + "?token=tok3n")], ids=["basic", "query"])
@pytest.mark.slow
def test_base_url_credentials_work_and_are_redacted(persona, url, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("sys.argv", ["generate_reasoning_samples.py", "--base_url", url(LoopbackServer())])
    code, samples, _, requests, out = step1(persona, tmp_path, 1, url=url)
    assert code == 0 and None not in samples[0]
    with open(os.path.join(out, "provenance.json")) as handle:
        text = handle.read()
    assert "***" in text and "s3cretpw" not in text and "tok3n" not in text
    printed = capsys.readouterr()
    assert "s3cretpw" not in printed.out + printed.err and "tok3n" not in printed.out + printed.err
    verdicts, _, _ = judge(persona, tmp_path, ["a"], url=url)
    assert verdicts == [[1.0]]
    gone = url(LoopbackServer()).replace(":" + url(LoopbackServer()).split(":")[-1].split("/")[0], ":9")
    with pytest.raises(UserError) as info:
        check_ready(api_config_for(judge_args("--base_url", gone).api, "served"))
    assert "cannot reach" in str(info.value) and "s3cretpw" not in str(info.value) and "tok3n" not in str(info.value)


def test_openai_compatible_servers_get_their_own_key(tmp_path, monkeypatch, capsys):
    for own, expected in (("sk-own", "Bearer sk-own"), (None, "Bearer sk-test")):  # then OPENAI_API_KEY, with a notice
        if own:
            monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", own)
        else:
            monkeypatch.delenv("OPENAI_COMPATIBLE_API_KEY")
        _, _, _, requests, _ = step1(VLLM, tmp_path / str(own), 1, rows=1)
        assert {k.lower(): v for k, v in requests[0]["headers"].items()}["authorization"] == expected
    assert "OPENAI_COMPATIBLE_API_KEY is not set: sending OPENAI_API_KEY" in capsys.readouterr().err


@pytest.mark.slow
def test_request_timeout_and_long_429_spells(tmp_path, capsys):
    from generation.backends.calls import run_chat_jobs
    from generation.backends.rules import ChatJob

    from loopback import Reply, default_responder

    def slow_then_limited(path, request, count):
        if count == 1:
            return Reply(delay=1.5, body={})  # longer than --request_timeout: the SDK retries it
        if count <= 6:  # more 429s than the SDK retries: waited out (Retry-After), not holes
            return Reply(status=429, body={"error": {"message": "slow down"}}, headers={"retry-after-ms": "50"})
        return default_responder(path, request, count)

    options = judge_args("--request_timeout", "0.5")
    with LoopbackServer(slow_then_limited) as server:
        config = api_config_for(judge_args("--base_url", server.url, "--request_timeout", "0.5").api, "served")
        config.max_retries = 1
        assert config.timeout == 0.5 and options.api.request_timeout == 0.5
        done = []
        stats = run_chat_jobs(config, [ChatJob(key="k", messages=[{"role": "user", "content": "q"}])],
                              lambda job, c: done.append(c))
    assert done[0].texts[0] and stats["rate_limit_wait_s"] > 0 and stats["failed_samples"] == 0
    assert "rate limited (HTTP 429): waiting" in capsys.readouterr().err
    with LoopbackServer(lambda *a: Reply(status=429, body={}, headers={"retry-after-ms": "50"})) as server:
        config = api_config_for(judge_args("--base_url", server.url).api, "served")
        config.max_retries, config.rate_limit_wait_s = 0, 0.3  # the bound: then the job is a failure, not a hang
        stats = run_chat_jobs(config, [ChatJob(key="k", messages=[{"role": "user", "content": "q"}])],
                              lambda job, c: done.append(c))
    assert done[-1].texts == [None] and "429" in done[-1].error and stats["rate_limit_wait_s"] <= 0.3


def test_retired_claude_judges_are_named_in_the_list(capsys):
    from generation.unified_RMs_and_LM_Judges import main as step3

    assert step3(["--list"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if "claude-3-" in line]
    assert len(rows) == 3 and all("RETIRED" in row and "NAME=anthropic:" in row for row in rows)


def test_judge_prompts_file_is_sent_and_hashed(tmp_path):
    study = {"standard": {"system": "Study system {{verbatim}}.",
                          "user": "Q: {instruction}\nA: {sample}\nReply True or False."}}
    path = tmp_path / "prompts.json"
    path.write_text(json.dumps(study))
    _, stats, requests = judge(OPENAI, tmp_path, ["the sample"], "--judge_prompts", str(path))
    sent = requests[0]["json"]["messages"]
    assert sent == [{"role": "system", "content": "Study system {verbatim}."},
                    {"role": "user", "content": "Q: Problem\nA: the sample\nReply True or False."}]
    _, ours, _ = judge(OPENAI, tmp_path / "ours", ["the sample"])
    assert len(stats["prompts_hash"]) == 16 and stats["prompts_hash"] != ours["prompts_hash"]
    for bad, why in (({"standard": {"system": "s", "user": "no placeholders"}}, "lacks {instruction}, {sample}"),
                     ({"standard": {"system": "s", "user": "{instruction} {sample} {other}"}}, "may use only"),
                     ({"judge": {}}, "expected an object")):
        path.write_text(json.dumps(bad))
        with pytest.raises(UserError, match=why):
            resolve_judges(["GPT-4o-mini"], judge_args("--judge_prompts", str(path)))
