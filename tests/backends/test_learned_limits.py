"""Limits learned from the server: a 400 naming a parameter's maximum (OpenAI's and Anthropic's real bodies) lowers
that parameter for the rest of the run, and one refusing a parameter the model does not take leaves it out (or sends
its other name); each is said once, recorded in provenance, and the request asked again. A parameter that cannot be
left out is one line naming the flag; a cap above a known model's maximum is clamped before sending."""
import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generation.generate_reasoning_samples import main

from fixtures_benchmarks import load_output, write_benchmarks
from loopback import OPENAI, LoopbackServer, Reply, openai_body, persona_responder

SAMPLES = 300


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_benchmarks(str(tmp_path_factory.mktemp("limits_bench")), ("math",))


def step1(data_dir, url, out, *extra):
    return ["--model", "loop", "--provider", "openai_compatible", "--base_url", url, "--dataset", "math",
            "--dataset_path", os.path.join(data_dir, "math.jsonl"), "--output_path", out, "--max_rows", "2",
            "--temperature", "0.7", "--seed", "1", *extra]


def test_n_limit_of_a_gateway_is_learned_and_every_sample_completes(data_dir, tmp_path, capsys):
    out = str(tmp_path / "out")
    with LoopbackServer(persona_responder(OPENAI)) as server:  # OpenAI's n <= 128 and its real 400 body
        assert main(step1(data_dir, server.url, out, "--samples_per_instruction", str(SAMPLES))) == 0
        sizes = sorted(r["json"].get("n", 1) for r in server.requests)
    assert all(len(row) == SAMPLES and None not in row for row in load_output(out)["samples"])
    assert [s for s in sizes if s <= 128] == [44, 44, 128, 128, 128, 128]  # 300 = 128 + 128 + 44 per row
    assert set(sizes) - {44, 128} == {SAMPLES}  # the first asks, refused before the limit was known
    with open(os.path.join(out, "provenance.json")) as handle:
        assert json.load(handle)["learned_limits"] == {"n": 128}
    assert capsys.readouterr().err.count("the server allows n <= 128") == 1


@pytest.mark.parametrize("message", [
    "max_tokens is too large: 4096. This model supports at most 1000 completion tokens, whereas you provided 4096.",
    "max_tokens: 4096 > 1000, which is the maximum allowed number of output tokens for claude-x",
])
def test_a_cap_above_the_models_maximum_is_lowered(data_dir, tmp_path, message):
    def respond(path: str, request: dict, count: int) -> Reply:
        if request.get("max_tokens", 0) > 1000:
            return Reply(400, {"error": {"message": message, "type": "invalid_request_error", "param": "max_tokens",
                                         "code": None}})
        return Reply(body=openai_body(request, ["The answer is 4"] * request.get("n", 1)))

    out = str(tmp_path / "out")
    with LoopbackServer(respond) as server:
        assert main(step1(data_dir, server.url, out, "--samples_per_instruction", "2", "--max_new_tokens",
                          "4096")) == 0
        caps = [r["json"]["max_tokens"] for r in server.requests]
    assert caps.count(1000) == 2 and set(caps) == {4096, 1000}
    with open(os.path.join(out, "provenance.json")) as handle:
        assert json.load(handle)["learned_limits"] == {"max_tokens": 1000}


# OpenAI's real bodies for a reasoning model served under another name (an Azure deployment, a LiteLLM alias).
UNSUPPORTED = {
    "unsupported_parameter": "Unsupported parameter: '{name}' is not supported with this model.",
    "unsupported_value": "Unsupported value: '{name}' does not support {value} with this model. Only the default (1) "
                         "value is supported.",
}
MAX_TOKENS = ("Unsupported parameter: 'max_tokens' is not supported with this model. "
              "Use 'max_completion_tokens' instead.")


def refusing(refused: dict[str, str]):
    """A gateway in front of a reasoning model: a 400 for each refused parameter (by the code given), as OpenAI
    words it; max_tokens refused in favour of max_completion_tokens."""
    def respond(path: str, request: dict, count: int) -> Reply:
        for name, code in refused.items():
            if name in request:
                message = MAX_TOKENS if name == "max_tokens" else UNSUPPORTED[code].format(name=name,
                                                                                          value=request[name])
                return Reply(400, {"error": {"message": message, "type": "invalid_request_error", "param": name,
                                             "code": "unsupported_parameter" if name == "max_tokens" else code}})
        return Reply(body=openai_body(request, ["The answer is 4"] * request.get("n", 1)))
    return respond


@settings(max_examples=20, deadline=None)
@given(refused=st.dictionaries(st.sampled_from(["temperature", "top_p", "seed", "max_tokens"]),
                               st.sampled_from(sorted(UNSUPPORTED)), max_size=4))
def test_parameters_the_server_refuses_are_learned_and_every_job_completes(refused):
    from generation.backends.calls import run_chat_jobs
    from generation.backends.rules import ApiConfig, ChatJob

    jobs = [ChatJob(str(i), [{"role": "user", "content": f"q{i}"}], n=2, temperature=0.7, top_p=0.9, seed=i,
                    max_tokens=300) for i in range(6)]
    with LoopbackServer(refusing(refused)) as server:
        stats = run_chat_jobs(ApiConfig("my-o3", "openai_compatible", base_url=server.url, max_concurrency=1), jobs,
                              lambda job, completion: None)
        bodies = [r["json"] for r in server.requests]
    assert stats["failed_samples"] == 0 and len(bodies) == 6 + len(refused)  # each refusal met once, then learned
    assert set(stats["learned_limits"]) == set(refused)
    assert all(name not in body for body in bodies[len(refused):] for name in refused)
    if "max_tokens" in refused:
        assert stats["learned_limits"]["max_tokens"] == "sent as max_completion_tokens"
        assert all(body["max_completion_tokens"] == 300 for body in bodies[len(refused):])


def test_real_bodies_for_temperature_and_max_tokens_complete_step1(data_dir, tmp_path, capsys):
    from loopback import OPENAI_REASONING

    out = str(tmp_path / "out")
    with LoopbackServer(persona_responder(OPENAI_REASONING)) as server:  # o-series rules behind an alias
        assert main(step1(data_dir, server.url, out, "--samples_per_instruction", "2", "--max_new_tokens",
                          "2000")) == 0
    assert all(None not in row for row in load_output(out)["samples"])
    with open(os.path.join(out, "provenance.json")) as handle:
        assert json.load(handle)["learned_limits"] == {"temperature": "not sent: the server refuses it",
                                                        "max_tokens": "sent as max_completion_tokens"}
    err = capsys.readouterr().err
    assert err.count("the server refuses temperature for this model") == 1
    assert err.count("the server takes max_completion_tokens instead of max_tokens") == 1


@pytest.mark.parametrize("name, flag", [("n", "--max_n_per_request 1"), ("logit_bias", "please report it")])
def test_an_unsupported_parameter_it_cannot_leave_out_is_one_line_naming_the_flag(name, flag):
    from generation.backends.calls import run_chat_jobs
    from generation.backends.rules import ApiConfig, ChatJob, FatalApiError

    def respond(path: str, request: dict, count: int) -> Reply:
        return Reply(400, {"error": {"message": f"Unsupported parameter: '{name}' is not supported with this model.",
                                     "type": "invalid_request_error", "param": name, "code": "unsupported_parameter"}})

    with LoopbackServer(respond) as server:
        with pytest.raises(FatalApiError) as err:
            run_chat_jobs(ApiConfig("my-o3", "openai_compatible", base_url=server.url), [ChatJob("a", [
                {"role": "user", "content": "q"}], n=2)], lambda job, completion: None)
    assert "\n" not in str(err.value) and f"refuses the parameter '{name}'" in str(err.value) and flag in str(err.value)


def test_a_cap_above_the_models_documented_maximum_is_clamped_before_sending(monkeypatch, capsys):
    from generation.backends.calls import run_chat_jobs
    from generation.backends.rules import ApiConfig, ChatJob
    from generation.costs.budget import worst_case
    from generation.costs.pricing import PRICES

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with LoopbackServer(persona_responder(OPENAI)) as server:
        run_chat_jobs(ApiConfig("gpt-4o", "openai", base_url=server.url),
                      [ChatJob(str(i), [{"role": "user", "content": "q"}], max_tokens=100_000) for i in range(3)],
                      lambda job, completion: None)
        assert [r["json"]["max_tokens"] for r in server.requests] == [16_384] * 3  # no refused request first
    assert capsys.readouterr().err.count("above the model's documented maximum output (16,384)") == 1
    messages = [{"role": "user", "content": "q"}]
    assert worst_case(PRICES["gpt-4o"], "gpt-4o", "openai", messages, 1, 1, 100_000) == \
        worst_case(PRICES["gpt-4o"], "gpt-4o", "openai", messages, 1, 1, 16_384)
