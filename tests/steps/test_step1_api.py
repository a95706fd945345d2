"""Step 1 through the API path against loopback servers: n per row, holes and refills, resume, kill and resume."""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest

from generation.common.cli import UserError
from generation.generate_reasoning_samples import main

from conftest import GENERATION, OFFLINE_ENV, ROOT, run_script
from fixtures_benchmarks import load_output, mmlu_pro_rows, write_benchmark, write_benchmarks
from loopback import LoopbackServer, Reply, openai_body

N = 3


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_benchmarks(str(tmp_path_factory.mktemp("api_bench")), ("math", "mmlu_pro"))


def unique_responder():
    """Replies whose texts are unique across the whole server, so duplicates would show."""
    counter = Counter()
    lock = threading.Lock()

    def respond(path, request, count):
        with lock:
            counter["n"] += 1
            serial = counter["n"]
        n = int(request.get("n") or 1)
        return Reply(body=openai_body(request, [f"reply {serial}.{j}\nThe answer is: B" for j in range(n)]))
    return respond


def prompt_of(request: dict) -> str:
    """The user turn of a recorded chat request."""
    return request["json"]["messages"][-1]["content"]


def test_api_run_one_request_per_row_with_n(data_dir, tmp_path):
    out = str(tmp_path / "math_api")
    with LoopbackServer(unique_responder()) as server:
        code = main(["--model", "loop", "--base_url", server.url, "--dataset", "math", "--dataset_path",
                     os.path.join(data_dir, "math.jsonl"), "--output_path", out, "--samples_per_instruction", str(N),
                     "--max_rows", "4", "--temperature", "0.5", "--seed", "7"])
        requests = list(server.requests)
    assert code == 0
    assert len(requests) == 4 and all(r["json"]["n"] == N for r in requests)
    assert all(r["json"]["temperature"] == 0.5 and "top_p" not in r["json"] for r in requests)
    data = load_output(out)
    assert data["instruction"] == data["problem"] and data["answer"] == ["2", "4", "6", "8"]
    assert all(len(s) == N for s in data["samples"])
    assert len({t for s in data["samples"] for t in s}) == 4 * N
    prov = json.load(open(os.path.join(out, "provenance.json")))
    assert prov["backend"] == "api" and prov["provider"] == "openai_compatible"
    assert prov["counts"]["generated_this_run"] == 4 * N and prov["counts"]["failed_samples"] == 0
    assert prov["token_usage"]["completion_tokens"] > 0
    with LoopbackServer(unique_responder()) as server:  # the same command again asks for nothing
        assert main(["--model", "loop", "--base_url", server.url, "--dataset", "math", "--dataset_path",
                     os.path.join(data_dir, "math.jsonl"), "--output_path", out, "--samples_per_instruction",
                     str(N), "--max_rows", "4", "--temperature", "0.5", "--seed", "7"]) == 0
        assert server.requests == []
    assert load_output(out)["samples"] == data["samples"]
    again = json.load(open(os.path.join(out, "provenance.json")))
    assert again["token_usage"] == {"prompt_tokens": 0, "completion_tokens": 0}
    assert again["token_usage_all_runs"] == prov["token_usage"] and again["counts"]["reused_from_checkpoint"] == 4 * N


def test_failed_samples_are_holes_and_a_rerun_fills_only_them(data_dir, tmp_path, capsys):
    out = str(tmp_path / "holes")
    args = ["--model", "loop", "--dataset", "math", "--dataset_path", os.path.join(data_dir, "math.jsonl"),
            "--output_path", out, "--samples_per_instruction", str(N)]
    bad = "Compute $2 + 2$"

    def flaky(path, request, count):
        if bad in prompt_of({"json": request}):
            return Reply(status=500, body={"error": {"message": "boom"}}, headers={"retry-after-ms": "1"})
        return unique_responder()(path, request, count)

    with LoopbackServer(flaky) as server:
        assert main(args + ["--base_url", server.url]) == 1
    summary = capsys.readouterr().out
    assert "FAILED: 3 samples in 1 rows (row 1) are still missing" in summary
    data = load_output(out)
    holes = [i for i, s in enumerate(data["samples"]) if s == [None] * N]
    assert holes == [1] and all(None not in s for i, s in enumerate(data["samples"]) if i != 1)
    assert [row.count("stop") for row in data["sample_finish_reasons"]] == [N, 0] + [N] * (len(data) - 2)
    prov = json.load(open(os.path.join(out, "provenance.json")))
    assert prov["counts"]["failed_samples"] == N and prov["counts"]["rows_with_failures"] == 1
    with LoopbackServer(unique_responder()) as server:
        assert main(args + ["--base_url", server.url]) == 0
        assert [bad in prompt_of(r) for r in server.requests] == [True] and server.requests[0]["json"]["n"] == N
    assert "HTTP 500" in json.dumps(prov["errors"])
    refilled = load_output(out)
    assert all(len(s) == N and None not in s for s in refilled["samples"])
    assert refilled["sample_finish_reasons"] == [["stop"] * N] * len(refilled)  # kept through the checkpoint
    assert [s for i, s in enumerate(refilled["samples"]) if i != 1] == [s for i, s in enumerate(data["samples"])
                                                                          if i != 1]


def test_more_samples_later_extends_rows_and_other_settings_are_refused(data_dir, tmp_path):
    out = str(tmp_path / "extend")
    base = ["--model", "loop", "--dataset", "mmlu_pro", "--dataset_path", os.path.join(data_dir, "mmlu_pro.jsonl"),
            "--output_path", out, "--max_rows", "3"]
    with LoopbackServer(unique_responder()) as server:
        assert main(base + ["--base_url", server.url, "--samples_per_instruction", "2"]) == 0
        first = load_output(out)["samples"]
        assert main(base + ["--base_url", server.url, "--samples_per_instruction", "5"]) == 0
        assert [r["json"]["n"] for r in server.requests[3:]] == [3, 3, 3]
        assert [s[:2] for s in load_output(out)["samples"]] == first
        with pytest.raises(UserError, match=r"other settings \(temperature: 0.7 -> 0.2\).*--overwrite"):
            main(base + ["--base_url", server.url, "--temperature", "0.2"])
        other_file = write_benchmark("mmlu_pro", str(tmp_path / "other"), rows=mmlu_pro_rows()[::-1])
        with pytest.raises(UserError, match=r"holds samples for other prompts at 3 rows \(first: row 0\)"):
            main(base[:5] + [other_file] + base[6:] + ["--base_url", server.url, "--samples_per_instruction", "5"])
        before = len(server.requests)
        assert main(base + ["--base_url", server.url, "--temperature", "0.2", "--overwrite"]) == 0
        assert len(server.requests) == before + 3


def test_s1_prompt_format_for_api_models(data_dir, tmp_path):
    with LoopbackServer(unique_responder()) as server:
        assert main(["--model", "simplescaling/s1-32B", "--base_url", server.url, "--dataset", "math",
                     "--dataset_path", os.path.join(data_dir, "math.jsonl"), "--output_path",
                     str(tmp_path / "s1"), "--max_rows", "1"]) == 0
        assert main(["--model", "acme/models1-chat", "--base_url", server.url, "--dataset", "math",
                     "--dataset_path", os.path.join(data_dir, "math.jsonl"), "--output_path",
                     str(tmp_path / "not_s1"), "--max_rows", "1"]) == 0
        s1, plain = (r["json"]["messages"] for r in server.requests)
    assert s1[0]["role"] == "system" and "Qwen" in s1[0]["content"]
    assert s1[1]["content"].endswith('with the format "The answer is: <answer here>"')
    assert [m["role"] for m in plain] == ["user"]


@pytest.mark.slow
def test_kill_and_resume_never_repeats_a_finished_sample(data_dir, tmp_path):
    out = str(tmp_path / "killed")
    checkpoint = out + ".checkpoint/samples.jsonl"
    responder = unique_responder()

    def slow(path, request, count):
        reply = responder(path, request, count)
        reply.delay = 0.25
        return reply

    with LoopbackServer(slow) as server:
        cmd = [sys.executable, os.path.join(GENERATION, "generate_reasoning_samples.py"), "--model", "loop",
               "--base_url", server.url, "--dataset", "mmlu_pro", "--dataset_path",
               os.path.join(data_dir, "mmlu_pro.jsonl"), "--output_path", out, "--samples_per_instruction", str(N),
               "--max_concurrency", "2"]
        env = {**os.environ, **OFFLINE_ENV}
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline and (not os.path.exists(checkpoint)
                                          or open(checkpoint).read().count('"s/') < 4):
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        done_before = {json.loads(line)["k"].split("/")[1] for line in open(checkpoint) if '"s/' in line}
        assert 4 <= len(done_before) < 12 and not os.path.exists(out)
        asked_before = len(server.requests)
        finished = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert finished.returncode == 0, finished.stderr[-2000:]
        per_prompt = Counter(prompt_of(r) for r in server.requests)
        resumed = [prompt_of(r) for r in server.requests[asked_before:]]
    data = load_output(out)
    assert len(data) == 12 and all(len(s) == N and None not in s for s in data["samples"])
    # the loopback bills 10 prompt + 5 tokens per completion
    prov = json.load(open(os.path.join(out, "provenance.json")))
    assert prov["token_usage_all_runs"] == {"prompt_tokens": 12 * 10, "completion_tokens": 12 * N * 5}
    assert prov["token_usage"]["completion_tokens"] == (12 - len(done_before)) * N * 5
    texts = [t for s in data["samples"] for t in s]
    assert len(set(texts)) == len(texts)  # nothing duplicated
    records = [json.loads(line)["k"] for line in open(checkpoint) if '"s/' in line]
    assert len(records) == len(set(records)) == 12
    keys = sorted(records, key=lambda k: int(k.split("/")[1].split("-")[0]))
    for index, key in enumerate(keys):
        prompt = data[index]["instruction"]
        if key.split("/")[1] in done_before:
            assert per_prompt[prompt] == 1 and prompt not in resumed  # finished before the kill: never asked again
        else:
            assert resumed.count(prompt) == 1


@pytest.mark.slow
def test_both_invocation_styles(data_dir, tmp_path):
    with LoopbackServer(unique_responder()) as server:
        common = ["--model", "loop", "--base_url", server.url, "--dataset", "math", "--dataset_path",
                  os.path.join(data_dir, "math.jsonl"), "--max_rows", "2"]
        from_root = subprocess.run([sys.executable, "generation/generate_reasoning_samples.py", *common,
                                    "--output_path", str(tmp_path / "root")], cwd=ROOT, capture_output=True,
                                   text=True, env={**os.environ, **OFFLINE_ENV}, timeout=120)
        from_generation = subprocess.run([sys.executable, "generate_reasoning_samples.py", *common,
                                          "--output_path", str(tmp_path / "gen")], cwd=GENERATION,
                                         capture_output=True, text=True, env={**os.environ, **OFFLINE_ENV},
                                         timeout=120)
    assert from_root.returncode == 0, from_root.stderr[-2000:]
    assert from_generation.returncode == 0, from_generation.stderr[-2000:]
    assert "Step 1 done: 2 rows x 1 samples (api)" in from_root.stdout
    assert load_output(str(tmp_path / "gen")).num_rows == 2


@pytest.mark.slow
def test_bad_input_one_line_error_and_nothing_written(data_dir, tmp_path):
    math_file = os.path.join(data_dir, "math.jsonl")
    out = tmp_path / "out"
    existing_file = tmp_path / "file.txt"
    existing_file.write_text("x")
    cases = {
        "unknown --dataset 'aime'": ["--model", "gpt-4o-mini", "--dataset", "aime"],
        "OPENAI_API_KEY is not set": ["--model", "gpt-4o-mini", "--dataset", "math", "--dataset_path", math_file],
        "cannot reach --base_url": ["--model", "loop", "--base_url", "http://127.0.0.1:9/v1", "--dataset", "math",
                                    "--dataset_path", math_file],
        "does not exist": ["--model", "loop", "--base_url", "{url}", "--dataset", "math", "--dataset_path",
                           str(tmp_path / "missing.jsonl")],
        "lacks columns required for --dataset mmlu_pro: question, options, answer_index, category":
            ["--model", "loop", "--base_url", "{url}", "--dataset", "mmlu_pro", "--dataset_path", math_file],
        "is not a known API model, and its tokenizer cannot be loaded":
            ["--model", "no-such-org/no-such-model", "--dataset", "math", "--dataset_path", math_file,
             "--backend", "transformers"],
        "expected an integer >= 1, got 0": ["--model", "loop", "--base_url", "{url}", "--dataset", "math",
                                            "--dataset_path", math_file, "--samples_per_instruction", "0"],
    }
    with LoopbackServer() as server:
        for message, args in cases.items():
            args = [a.replace("{url}", server.url) for a in args]
            result = run_script("generate_reasoning_samples.py", *args, "--output_path", str(out), timeout=120)
            assert result.returncode == 2, (message, result.stderr[-2000:])
            assert message in result.stderr.strip().splitlines()[-1], (message, result.stderr[-2000:])
            assert "Traceback" not in result.stderr
            assert not os.path.exists(out) and not os.path.exists(str(out) + ".checkpoint")
        result = run_script("generate_reasoning_samples.py", "--model", "loop", "--base_url", server.url,
                            "--dataset", "math", "--dataset_path", math_file, "--output_path", str(existing_file))
        assert result.returncode == 2 and "is an existing file" in result.stderr
        folder = tmp_path / "results"
        folder.mkdir()
        (folder / "notes.txt").write_text("keep me")
        result = run_script("generate_reasoning_samples.py", "--model", "loop", "--base_url", server.url,
                            "--dataset", "math", "--dataset_path", math_file, "--output_path", str(folder))
        assert result.returncode == 2 and "not a saved dataset" in result.stderr
        assert os.listdir(folder) == ["notes.txt"]
        assert server.requests == []


def test_anthropic_provider_one_call_per_sample(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key-not-secret")
    out = str(tmp_path / "claude")
    with LoopbackServer() as server:
        assert main(["--model", "claude-3-5-haiku-latest", "--base_url", server.root, "--dataset", "math",
                     "--dataset_path", os.path.join(data_dir, "math.jsonl"), "--output_path", out, "--max_rows", "2",
                     "--samples_per_instruction", "2"]) == 0
        paths = [r["path"] for r in server.requests]
    assert paths == ["/v1/messages"] * 4
    assert [len(s) for s in load_output(out)["samples"]] == [2, 2]
    prov = open(os.path.join(out, "provenance.json")).read()
    assert '"provider": "anthropic"' in prov and "test-key-not-secret" not in prov


def test_output_without_its_checkpoint_keeps_its_samples(data_dir, tmp_path, capsys):
    out = str(tmp_path / "no_checkpoint")
    base = ["--model", "loop", "--dataset", "math", "--dataset_path", os.path.join(data_dir, "math.jsonl"),
            "--output_path", out]
    with LoopbackServer(unique_responder()) as server:
        assert main(base + ["--base_url", server.url, "--max_rows", "3", "--samples_per_instruction", "2"]) == 0
        first = load_output(out)["samples"]
        shutil.rmtree(out + ".checkpoint")
        asked = len(server.requests)
        assert main(base + ["--base_url", server.url, "--max_rows", "4", "--samples_per_instruction", "3"]) == 0
        assert sorted(r["json"].get("n", 1) for r in server.requests[asked:]) == [1, 1, 1, 3]
        assert "its 6 samples are kept" in capsys.readouterr().out
        data = load_output(out)
        assert [s[:2] for s in data["samples"][:3]] == first and all(len(s) == 3 for s in data["samples"])
        assert data["sample_finish_reasons"] == [["stop"] * 3] * 4  # adopted from the output with its samples
        shutil.rmtree(out + ".checkpoint")
        for extra, message in ((["--max_rows", "2"], "holds 4 rows"), (["--temperature", "0.1"], "settings")):
            with pytest.raises(UserError, match=message + ".*--overwrite"):
                main(base + ["--base_url", server.url, "--samples_per_instruction", "3", *extra])
            assert not os.path.exists(out + ".checkpoint")
        asked = len(server.requests)
        assert main(base + ["--base_url", server.url, "--max_rows", "2", "--overwrite"]) == 0
        assert len(server.requests) == asked + 2 and load_output(out).num_rows == 2


def test_a_step1_output_is_a_valid_dataset_path(data_dir, tmp_path):
    first, second = str(tmp_path / "first"), str(tmp_path / "second")
    common = ["--model", "loop", "--dataset", "math", "--max_rows", "2"]
    with LoopbackServer(unique_responder()) as server:
        assert main(common + ["--base_url", server.url, "--dataset_path", os.path.join(data_dir, "math.jsonl"),
                              "--output_path", first]) == 0
        assert main(common + ["--base_url", server.url, "--dataset_path", first, "--output_path", second]) == 0
        prompts = [prompt_of(r) for r in server.requests]
    # the same two prompts (requests run concurrently, so in any order), not wrapped twice
    assert sorted(prompts[:2]) == sorted(prompts[2:]) and all(p.startswith("Problem: Compute") for p in prompts)
    old, new = load_output(first), load_output(second)
    assert new["instruction"] == old["instruction"] and new["original_problem"] == old["original_problem"]
    assert new["answer"] == old["answer"] and new["samples"] != old["samples"]


def test_a_checkpoint_from_before_usage_was_recorded_is_read(tmp_path):
    from generation.steps.generate import SampleCheckpoint

    out, fingerprint = str(tmp_path / "old"), {"model": "m"}
    os.makedirs(out + ".checkpoint")
    with open(out + ".checkpoint/samples.jsonl", "w") as log:
        for key, value in (("fingerprint", fingerprint), ("s/0-abc/0", ["a", "b"])):
            log.write(json.dumps({"k": key, "v": value}) + "\n")
    checkpoint = SampleCheckpoint(out, fingerprint, ["0-abc"], ["q"], overwrite=False)
    checkpoint.add("0-abc", ["c"], {"completion_tokens": 3}, ["length"])
    checkpoint.close()
    again = SampleCheckpoint(out, fingerprint, ["0-abc"], ["q"], overwrite=False)
    assert again.samples("0-abc", 4) == ["a", "b", "c", None] and again.usage == {"completion_tokens": 3}
    assert again.finish_reasons("0-abc", 4) == [None, None, "length", None]  # unknown before they were recorded
    again.close()


def test_an_api_model_name_with_a_local_backend_is_named_as_such(data_dir, tmp_path, capsys):
    out = tmp_path / "out.hf"
    with pytest.raises(UserError, match="is an API model \\(openai\\), not a local model"):
        main(["--model", "gpt-4o-mini", "--backend", "transformers", "--dataset", "math",
              "--dataset_path", os.path.join(data_dir, "math.jsonl"), "--output_path", str(out)])
    assert not out.exists()


@pytest.mark.parametrize("flag,value", [("--temperature", "-0.5"), ("--top_p", "0"), ("--top_p", "1.2"),
                                        ("--gpu_memory_utilization", "1.5"), ("--temperature", "hot")])
def test_out_of_range_sampling_flags_are_usage_errors(flag, value, capsys):
    from generation.generate_reasoning_samples import build_parser

    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["--model", "m", "--dataset", "math", "--output_path", "o", flag, value])
    assert info.value.code == 2 and f"argument {flag}: expected a number" in capsys.readouterr().err
