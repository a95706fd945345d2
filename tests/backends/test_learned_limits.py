"""Limits learned from the server: a 400 naming a parameter's maximum (OpenAI's and Anthropic's real bodies) lowers
that parameter for the rest of the run, says so once, records it in provenance and asks again; it never aborts."""
import json
import os

import pytest

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
