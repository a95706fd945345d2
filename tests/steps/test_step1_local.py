"""Step 1 with local models: transformers in-process, one vLLM engine run in a subprocess, prompt formatting."""
import json
import os

import pytest

from generation.generate_reasoning_samples import main
from generation.steps.generate import is_s1

from conftest import ENGINE_IN_PROCESS, run_script
from fixtures_benchmarks import load_output, write_benchmarks


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_benchmarks(str(tmp_path_factory.mktemp("local_bench")), ("math", "gpqa"))


def test_s1_is_a_whole_token_of_the_model_name():
    assert is_s1("simplescaling/s1-32B", None) and is_s1("simplescaling/s1.1-7B", None)
    assert is_s1("/models/s1", None) and is_s1("meta-llama/Llama-3.1-8B-Instruct", "s1")
    assert not is_s1("acme/models1", None) and not is_s1("/data/runs1/ckpt", None)
    assert not is_s1("Qwen/Qwen2.5-7B-Instruct", None)


@pytest.mark.slow
def test_transformers_more_samples_than_batch_size_reproducible(tiny_chat_model, data_dir, tmp_path):
    def run(name, *extra):
        out = str(tmp_path / name)
        code = main(["--model", tiny_chat_model, "--backend", "transformers", "--dataset", "math", "--dataset_path",
                     os.path.join(data_dir, "math.jsonl"), "--output_path", out, "--max_rows", "3",
                     "--samples_per_instruction", "5", "--batch_size", "2", "--max_new_tokens", "8", *extra])
        assert code == 0
        return load_output(out)

    first = run("a")
    assert [len(s) for s in first["samples"]] == [5, 5, 5]
    assert all(isinstance(t, str) for s in first["samples"] for t in s)
    assert len({t for s in first["samples"] for t in s}) > 3  # sampled, not one text copied
    assert run("b")["samples"] == first["samples"]  # same seed, same samples
    assert run("c", "--seed", "1")["samples"] != first["samples"]
    prov = json.load(open(os.path.join(str(tmp_path / "a"), "provenance.json")))
    assert prov["backend"] == "transformers" and prov["counts"]["samples"] == 15
    assert 0 < prov["token_usage"]["completion_tokens"] <= 15 * 8
    assert 0 < prov["truncated_samples"] <= 15  # random weights rarely stop within 8 tokens: cut samples are counted
    finishes = [f for row in first["sample_finish_reasons"] for f in row]  # EOS -> stop, the token cap -> length
    assert set(finishes) <= {"stop", "length"} and finishes.count("length") == prov["truncated_samples"]
    assert prov["first_prompt"].startswith("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n")
    assert prov["first_prompt"].endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")


def test_transformers_prompt_longer_than_max_length_fails_early(tiny_chat_model, data_dir, tmp_path):
    from generation.common.cli import UserError

    with pytest.raises(UserError, match="raise --max_length"):
        main(["--model", tiny_chat_model, "--backend", "transformers", "--dataset", "math", "--dataset_path",
              os.path.join(data_dir, "math.jsonl"), "--output_path", str(tmp_path / "o"), "--max_length", "16"])
    assert not os.path.exists(tmp_path / "o.checkpoint")


@pytest.mark.slow
def test_vllm_engine_n_samples_chat_template_max_length(tiny_chat_model, data_dir, tmp_path):
    out = str(tmp_path / "gpqa_vllm")
    result = run_script("generate_reasoning_samples.py", "--model", tiny_chat_model, "--backend", "vllm",
                        "--dataset", "gpqa", "--dataset_path", os.path.join(data_dir, "gpqa.jsonl"),
                        "--output_path", out, "--samples_per_instruction", "5", "--batch_size", "2",
                        "--max_new_tokens", "48", "--max_length", "200", timeout=400,  # prompt + 48 > 200
                        env=ENGINE_IN_PROCESS)  # what the engine computes; Ray shards run Step 1's multiprocess engine
    assert result.returncode == 0, result.stderr[-3000:]
    data = load_output(out)
    assert len(data) == 8 and all(len(s) == 5 and None not in s for s in data["samples"])
    assert len({t for s in data["samples"] for t in s}) > 8
    prov = json.load(open(os.path.join(out, "provenance.json")))
    assert prov["backend"] == "vllm" and prov["counts"]["generated_this_run"] == 40
    instruction = data[0]["instruction"]
    assert instruction.startswith("Question: Which particle is number 0?") and "<|" not in instruction
    assert prov["first_prompt"] == ("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n" + instruction
                                    + "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_chat_model)
    rooms = [200 - len(tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=True,
                                                      add_generation_prompt=True, return_dict=True)["input_ids"])
             for text in data["instruction"]]
    assert all(0 < room < 48 for room in rooms)  # prompt + --max_new_tokens exceeds --max_length: outputs cut to fit
    assert 0 < prov["token_usage"]["completion_tokens"] <= 5 * sum(rooms)
    assert 0 < prov["truncated_samples"] <= 40  # vLLM's finish_reason "length" is counted
    finishes = [f for row in data["sample_finish_reasons"] for f in row]  # CompletionOutput.finish_reason
    assert set(finishes) <= {"stop", "length"} and finishes.count("length") == prov["truncated_samples"]
    records = [json.loads(line) for line in open(out + ".checkpoint/samples.jsonl")]
    assert records[0]["k"] == "fingerprint" and records[0]["v"]["backend"] == "vllm"
    assert sorted(len(r["v"]["texts"]) for r in records[1:]) == [5] * 8  # one record of n samples per prompt
    assert sum(r["v"]["usage"]["completion_tokens"] for r in records[1:]) == prov["token_usage_all_runs"][
        "completion_tokens"] == prov["token_usage"]["completion_tokens"]


@pytest.mark.slow
def test_vllm_greedy_sampling_sends_one_request_per_sample(monkeypatch):
    """vLLM's SamplingParams refuses n > 1 at temperature 0: each greedy sample goes as a request of its own."""
    from types import SimpleNamespace

    from generation.backends import local_generation as lg

    backend = lg.VllmBackend.__new__(lg.VllmBackend)  # no engine: the stream is consumed below
    backend.llm, backend.stop_ids, backend.per_request_seeds = None, [0], False
    sent = []

    def consume(llm, stream, finished, window):
        for index, (_, params) in enumerate(stream):  # builds the real SamplingParams, which validates them
            sent.append(params.n)
            done = SimpleNamespace(text=f"t{index}", token_ids=[1, 2], finish_reason="stop")
            finished(index, SimpleNamespace(outputs=[done] * params.n))

    monkeypatch.setattr(lg, "generate_streaming", consume)
    monkeypatch.setattr(lg, "sequences_in_flight", lambda llm, wanted: 8)
    for temperature, expected in ((0.0, [1, 1, 1, 1]), (0.7, [3, 1])):
        backend.settings = lg.SamplingSettings(temperature, 1.0, 8, 64)
        sent.clear()
        got: dict[str, list[str]] = {}
        backend.run([lg.LocalRequest("a", [5, 6], 3, 0), lg.LocalRequest("b", [7], 1, 1)],
                    lambda key, texts, tokens, cut: got.setdefault(key, []).extend(texts))
        assert sent == expected and len(got["a"]) == 3 and len(got["b"]) == 1
