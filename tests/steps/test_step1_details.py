"""Step 1 details: the reference's s1 string, remote-code models, stop tokens, reported max_new_tokens caps."""
import json
import os

import pytest

from generation.common.cli import UserError
from generation.generate_reasoning_samples import main

from fixtures_benchmarks import load_output, write_benchmark, write_benchmarks


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_benchmarks(str(tmp_path_factory.mktemp("details_bench")), ("math",))


def test_s1_prompt_is_the_reference_string_char_by_char():
    from generation.backends.local_generation import prompt_text
    from generation.steps.generate import chat_messages

    expected = (
        "<|im_start|>system\n"
        "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.\n"
        "<|im_end|>\n"
        "<|im_start|>user\n"
        "Problem: 1 + 1?\n\nPlease answer.\n"
        "At the end of your response, add your answer on a newline with the format \"The answer is: <answer here>\"\n"
        "<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    got = prompt_text(None, chat_messages("Problem: 1 + 1?\n\nPlease answer.", True), True)
    assert list(got) == list(expected)


def run_math(model: str, out: str, data_dir: str, *extra: str) -> int:
    """Step 1 with the transformers backend on the MATH fixture."""
    return main(["--model", model, "--backend", "transformers", "--dataset", "math", "--dataset_path",
                 os.path.join(data_dir, "math.jsonl"), "--output_path", out, "--max_rows", "2",
                 "--max_new_tokens", "4", *extra])


@pytest.mark.slow
def test_trust_remote_code_is_off_by_default_and_passed_on(data_dir, tmp_path, monkeypatch):
    from tiny_models import build_remote_chat_model

    model = build_remote_chat_model(str(tmp_path / "remote-chat"))
    with pytest.raises(UserError, match="--trust_remote_code"):
        run_math(model, str(tmp_path / "refused"), data_dir)
    assert not os.path.exists(tmp_path / "refused")
    assert run_math(model, str(tmp_path / "trusted"), data_dir, "--trust_remote_code") == 0
    assert all(len(s) == 1 and isinstance(s[0], str) for s in load_output(str(tmp_path / "trusted"))["samples"])
    prov = json.load(open(os.path.join(str(tmp_path / "trusted"), "provenance.json")))
    assert prov["arguments"]["trust_remote_code"] is True and prov["trust_remote_code"] is True

    from generation.backends import local_generation

    seen = {}

    def engine_spy(**kwargs):
        seen.update(kwargs)
        raise RuntimeError("engine not started in this test")

    monkeypatch.setattr(local_generation, "start_engine", engine_spy)
    settings = local_generation.SamplingSettings(0.7, 0.9, 4, 64)
    for trust in (False, True):
        with pytest.raises(RuntimeError, match="not started"):
            local_generation.VllmBackend(model, settings, [4], 0, 1, 0.5, trust_remote_code=trust)
        assert seen["trust_remote_code"] is trust


def test_transformers_stops_at_the_generation_config_eos_list(data_dir, tmp_path):
    from tiny_models import build_eot_model

    model = build_eot_model(str(tmp_path / "eot-model"))  # always emits <|eot_id|>, which only generation_config lists
    out = str(tmp_path / "eot")
    assert run_math(model, out, data_dir, "--samples_per_instruction", "3", "--max_new_tokens", "8") == 0
    data = load_output(out)
    assert all(s == ["", "", ""] for s in data["samples"])
    prov = json.load(open(os.path.join(out, "provenance.json")))
    assert prov["token_usage"]["completion_tokens"] == 2 * 3  # one token (the stop) per sample, not 8


@pytest.mark.slow
def test_lowered_max_new_tokens_is_said_once_and_recorded(tiny_chat_model, tmp_path, capsys):
    from transformers import AutoTokenizer

    from generation.data.benchmarks import math_prompt

    problems = ["Compute $1 + 1$.", "Compute " + " + ".join(str(i) for i in range(12)) + ".", "Compute $2 + 2$."]
    rows = [{"problem": p, "solution": "x", "answer": "2", "subject": "Algebra", "level": 1, "unique_id": str(i)}
            for i, p in enumerate(problems)]
    path = write_benchmark("math", str(tmp_path / "data"), rows=rows)
    tokenizer = AutoTokenizer.from_pretrained(tiny_chat_model)
    lengths = [len(tokenizer.apply_chat_template([{"role": "user", "content": math_prompt(p)}], tokenize=True,
                                                 add_generation_prompt=True, return_dict=True)["input_ids"])
               for p in problems]
    room = 6
    max_length = lengths[1] + room  # the long prompt has room for 6 tokens, the short ones for all they ask
    max_new = max_length - lengths[0]
    assert lengths[0] == lengths[2] and max_new > room + 4
    out = str(tmp_path / "capped")
    assert main(["--model", tiny_chat_model, "--backend", "transformers", "--dataset", "math", "--dataset_path",
                 path, "--output_path", out, "--max_new_tokens", str(max_new), "--max_length", str(max_length),
                 "--batch_size", "3", "--temperature", "0"]) == 0
    said = [line for line in capsys.readouterr().out.splitlines() if "--max_new_tokens" in line]
    assert said == [f"--max_new_tokens {max_new} lowered to fit --max_length {max_length}: 1 of 3 prompts get "
                    f"{room} to {room} new tokens"]
    prov = json.load(open(os.path.join(out, "provenance.json")))
    assert prov["max_new_tokens_lowered"] == {"prompts": 1, "of": 3, "lowest": room, "highest": room}
    records = [json.loads(line) for line in open(out + ".checkpoint/samples.jsonl")][1:]
    tokens = {r["k"].split("/")[1].split("-")[0]: r["v"]["usage"]["completion_tokens"] for r in records}
    assert tokens["1"] <= room < tokens["0"]  # the long prompt's cap does not cut the short ones in its batch


@pytest.mark.slow
def test_every_benchmark_output_is_read_back_and_resumed(tmp_path):
    from generation.data.benchmarks import BENCHMARKS

    from loopback import LoopbackServer, Reply, openai_body

    failing = {"prompt": None}

    def respond(path, request, count):
        if request["messages"][-1]["content"] == failing["prompt"]:  # one row fails in the first read-back run
            return Reply(status=500, body={"error": {"message": "boom"}}, headers={"retry-after-ms": "1"})
        return Reply(body=openai_body(request, [f"sample {count}.{j}" for j in range(int(request["n"]))]))

    folder = write_benchmarks(str(tmp_path / "data"), tuple(BENCHMARKS))
    for name in BENCHMARKS:
        first, again = str(tmp_path / f"{name}_1"), str(tmp_path / f"{name}_2")
        common = ["--model", "loop", "--dataset", name, "--max_rows", "5", "--samples_per_instruction", "2"]
        with LoopbackServer(respond) as server:
            failing["prompt"] = None
            assert main(common + ["--base_url", server.url, "--dataset_path", os.path.join(folder, f"{name}.jsonl"),
                                  "--output_path", first]) == 0
            failing["prompt"] = load_output(first)["instruction"][1]
            assert main(common + ["--base_url", server.url, "--dataset_path", first, "--output_path", again]) == 1
            failing["prompt"] = None
            asked = len(server.requests)
            assert main(common + ["--base_url", server.url, "--dataset_path", first, "--output_path", again]) == 0
            resumed = server.requests[asked:]
        original, read_back = load_output(first), load_output(again)
        assert read_back["instruction"] == original["instruction"], name
        assert sorted(read_back.column_names) == sorted(original.column_names), name
        assert read_back.remove_columns(["samples"]).to_list() == original.remove_columns(["samples"]).to_list()
        assert [r["json"]["messages"][-1]["content"] for r in resumed] == [original["instruction"][1]], name
        assert all(len(s) == 2 and None not in s for s in read_back["samples"]), name


def test_max_rows_counts_from_start_row(data_dir, tmp_path):
    """--max_rows N keeps N rows from --start_row (as in Steps 2 and 3), not the first N of the benchmark."""
    from loopback import LoopbackServer

    out = str(tmp_path / "window.hf")
    with LoopbackServer() as server:
        assert main(["--model", "loop", "--base_url", server.url, "--dataset", "math", "--dataset_path",
                     os.path.join(data_dir, "math.jsonl"), "--output_path", out, "--samples_per_instruction", "1",
                     "--start_row", "2", "--max_rows", "3"]) == 0
    assert load_output(out)["answer"] == ["6", "8", "10"]
