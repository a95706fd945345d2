"""Reliability: inputs never written, any model text stored, one-line errors, output locks, crash-safe saves."""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import datasets
import pytest

from generation import generate_reasoning_samples, unified_evaluation
from generation import unified_RMs_and_LM_Judges as step3
from generation.common.cli import UserError, run_main
from generation.common.records import RecordStore
from generation.common.writing import SAVE_PAUSE_ENV, output_lock, provenance_path
from generation.data.dataset_io import save_atomic

from conftest import OFFLINE_ENV, ROOT, script_path
from fixtures_benchmarks import load_output, write_benchmarks
from loopback import LoopbackServer, Reply, openai_body

MC_ROWS = [{"instruction": "Question: capital of France?\n\nChoices:\nA) London\nB) Paris\nC) Rome\nD) Berlin",
            "answer": "B", "options": ["London", "Paris", "Rome", "Berlin"],
            "samples": ["The answer is: B", "The answer is A and C.", "Answer: C"]}] * 3
BROKEN = "caf\ud800e"  # a lone surrogate, as a model's broken UTF-16 produces
FIXED = "caf\ufffde"


def save_rows(path, rows=MC_ROWS) -> str:
    """A Step-1-style DatasetDict({'data': ...}) folder."""
    datasets.DatasetDict({"data": datasets.Dataset.from_list(rows)}).save_to_disk(str(path))
    return str(path)


def tree(folder) -> dict[str, int]:
    """Every file under folder with its size."""
    return {os.path.join(d, f): os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(folder) for f in files}


@contextlib.contextmanager
def tmpfs(path, size: str = "4m"):
    """A fresh tmpfs at path (root only); the test is skipped, saying why, where mounting is impossible."""
    os.makedirs(path, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if proc.returncode:
        pytest.skip(f"needs a tmpfs mount (root): mount failed: {proc.stderr.strip()}")
    try:
        yield str(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def read_only(path) -> None:
    """Remount a tmpfs read-only."""
    subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)


def cli(main, argv, capsys) -> tuple[int, str]:
    """Run a script's main as its __main__ does; (exit code, stderr)."""
    with pytest.raises(SystemExit) as exited:
        run_main(main, argv)
    return exited.value.code, capsys.readouterr().err


def assert_one_line_error(code: int, err: str, *words: str) -> None:
    """Non-zero exit, no traceback, exactly one 'error:' line naming the given words."""
    assert code not in (0, None), err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert all(word in lines[0] for word in words), lines[0]


def step2_args(source, out):
    return ["-i", source, "-o", out, "-t", "mmlu", "--llm_fallback", "never"]


def step3_args(source, out, *extra):
    return ["--dataset_path", source, "--output_path", out, "--reward_models", "", *extra]


# ---- 1. inputs are never written -------------------------------------------------------------------------------
def test_read_only_input_is_processed_and_writable_input_gains_no_files(tmp_path):
    with tmpfs(tmp_path / "ro") as mount:
        source = save_rows(os.path.join(mount, "in.hf"))
        read_only(mount)
        # --max_rows/--max_samples select and cut rows: the transforms that used to write cache files
        assert unified_evaluation.main(step2_args(source, str(tmp_path / "graded")) + ["-r", "2", "-m", "2"]) == 0
        assert step3.main(step3_args(source, str(tmp_path / "scored"), "--max_samples", "2", "--max_rows", "2")) == 0
    assert len(datasets.load_from_disk(str(tmp_path / "scored"))["data"]) == 2

    source = save_rows(tmp_path / "writable.hf")
    before = tree(source)
    assert unified_evaluation.main(step2_args(source, str(tmp_path / "g2")) + ["-r", "2", "-m", "2"]) == 0
    assert step3.main(step3_args(str(tmp_path / "g2"), str(tmp_path / "s2"), "--max_samples", "1")) == 0
    assert step3.main(step3_args(source, str(tmp_path / "s3"), "--max_rows", "1")) == 0
    assert tree(source) == before


# ---- 2. any text a model returns is stored -----------------------------------------------------------------------
def test_record_store_replaces_lone_surrogates_and_counts_them(tmp_path):
    path = str(tmp_path / "log.jsonl")
    with RecordStore(path) as store:
        assert store.put("a", {"texts": [BROKEN, "ok"]}) == {"texts": [FIXED, "ok"]}
        store.put("b", {"texts": ["fine"]})
        assert store.clean([BROKEN + "\udfff", None]) == [FIXED + "\ufffd", None]
        assert store.replaced_code_points == 3
    with RecordStore(path) as store:
        assert store.get("a") == {"texts": [FIXED, "ok"]} and store.replaced_code_points == 1


def surrogate_responder(path: str, request: dict, count: int) -> Reply:
    """An OpenAI-compatible server whose every reply holds a lone surrogate (a \\ud800 escape in the JSON)."""
    return Reply(body=openai_body(request, [f"{BROKEN} The answer is: C"] * int(request.get("n") or 1)))


def test_step1_stores_replies_with_lone_surrogates(tmp_path):
    data = write_benchmarks(str(tmp_path / "bench"), ("mmlu_pro",))
    out = str(tmp_path / "s1")
    with LoopbackServer(surrogate_responder) as server:
        code = generate_reasoning_samples.main(["--model", "loop", "--base_url", server.url, "--dataset", "mmlu_pro",
                                                "--dataset_path", os.path.join(data, "mmlu_pro.jsonl"),
                                                "--output_path", out, "--samples_per_instruction", "2",
                                                "--max_rows", "2"])
    assert code == 0
    assert load_output(out)["samples"] == [[f"{FIXED} The answer is: C"] * 2] * 2
    with open(provenance_path(out)) as handle:
        assert json.load(handle)["replaced_code_points"] == 4


def test_step2_fallback_stores_replies_with_lone_surrogates(tmp_path):
    source = save_rows(tmp_path / "in.hf")
    out = str(tmp_path / "graded")
    with LoopbackServer(surrogate_responder) as server:
        unified_evaluation.main(["-i", source, "-o", out, "-t", "mmlu", "--provider", "openai_compatible",
                                 "--base_url", server.url, "--judge_model", "judge", "--hedges", "undecided"])
        assert server.requests  # the undecided sample (a hedge, sent on by --hedges undecided) went to the judge
    assert datasets.load_from_disk(out)["data"]["extracted_answers"][0][0] == "B"
    with open(provenance_path(out)) as handle:
        assert json.load(handle)["llm_fallback"]["replaced_code_points"] >= 1


def test_step3_judge_stores_replies_with_lone_surrogates(tmp_path):
    source = save_rows(tmp_path / "in.hf")
    out = str(tmp_path / "judged")
    with LoopbackServer(surrogate_responder) as server:
        code = step3.main(step3_args(source, out, "--lm_judges", "Loop=openai_compatible:judge",
                                     "--base_url", server.url))
    assert code == 0
    judgments = datasets.load_from_disk(out)["data"]["Loop_judgments"]
    assert judgments[0][0] == [f"{FIXED} The answer is: C"]
    with open(provenance_path(out)) as handle:
        # the 3 distinct prompts, each asked once
        assert json.load(handle)["verifiers"]["Loop"]["replaced_code_points"] == 3


# ---- 3. one-line errors, nothing half-written --------------------------------------------------------------------
BAD_FILES = {  # file -> (content, what the error line must say)
    "not_utf8.jsonl": (b'{"instruction": "q", "samples": ["a"]}\n\xff\xfe\n', "line 2 is not UTF-8"),
    "surrogate.jsonl": (b'{"instruction": "q\\ud800", "samples": ["a"], "answer": "A"}\n', "surrogate escape"),
    "empty.jsonl": (b"", "holds no data"), "blank.json": (b"\n\n", "holds no data"),
    "empty.hf": (None, "holds no data")}  # a save_to_disk folder of zero rows


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_input_files_are_one_line_errors_in_every_step(tmp_path, capsys, name):
    source = tmp_path / name
    content, reason = BAD_FILES[name]
    if content is None:
        save_rows(source, [])
    else:
        source.write_bytes(content)
    runs = {"s2": (unified_evaluation.main, step2_args(str(source), str(tmp_path / "s2"))),
            "s3": (step3.main, step3_args(str(source), str(tmp_path / "s3"))),
            "s1": (generate_reasoning_samples.main, ["--model", "loop", "--dataset", "math", "--dataset_path",
                                                     str(source), "--output_path", str(tmp_path / "s1"),
                                                     "--base_url", "http://127.0.0.1:9/v1"])}
    for out, (main, argv) in runs.items():
        with LoopbackServer() as server:
            code, err = cli(main, [a.replace("http://127.0.0.1:9/v1", server.url) for a in argv], capsys)
        assert_one_line_error(code, err, str(source), reason)
        assert sorted(os.listdir(tmp_path)) == [name], out  # no output, checkpoint, lock or temp folder


def test_read_only_output_is_one_line_error(tmp_path, capsys):
    source = save_rows(tmp_path / "in.hf")
    with tmpfs(tmp_path / "ro") as mount:
        read_only(mount)
        for main, argv in ((unified_evaluation.main, step2_args(source, os.path.join(mount, "out"))),
                           (step3.main, step3_args(source, os.path.join(mount, "out")))):
            code, err = cli(main, argv, capsys)
            assert_one_line_error(code, err, os.path.join(mount, "out"), "writable")


def test_disk_full_is_one_line_error_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    rows = [{**row, "samples": [f"{i} {'x' * 2000} The answer is: B" for i in range(100)]} for row in MC_ROWS * 4]
    source = save_rows(tmp_path / "big.hf", rows)
    with tmpfs(tmp_path / "small", size="256k") as mount:
        out = os.path.join(mount, "out")
        code, err = cli(unified_evaluation.main, step2_args(source, out), capsys)  # free space checked first
        assert_one_line_error(code, err, out, "MB free")
        assert os.listdir(mount) == []
        # where the free space is misreported, the write itself fails with ENOSPC: one line, no temp folder left
        monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(1 << 40, 0, 1 << 40))
        with pytest.raises(UserError, match="No space left"):
            save_atomic(datasets.load_from_disk(source)["data"], out)
        assert os.listdir(mount) == []


def test_storage_errors_mid_run_are_one_line(capsys):
    def fills_disk(argv):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/out.checkpoint/samples.jsonl")

    code, err = cli(fills_disk, [], capsys)
    assert_one_line_error(code, err, "/data/out.checkpoint/samples.jsonl", "No space left", "checkpointed")


@pytest.fixture(scope="module")
def corrupt_model(tiny_chat_model, tmp_path_factory) -> str:
    """A copy of the tiny chat model whose safetensors file is cut short."""
    folder = str(tmp_path_factory.mktemp("corrupt") / "model")
    shutil.copytree(tiny_chat_model, folder)
    weights = os.path.join(folder, "model.safetensors")
    with open(weights, "r+b") as handle:
        handle.truncate(os.path.getsize(weights) // 2)
    return folder


@pytest.mark.parametrize("backend", ["transformers", "vllm"])
def test_corrupt_weights_are_one_line_error_before_any_checkpoint(corrupt_model, tmp_path, capsys, backend):
    data = write_benchmarks(str(tmp_path / "bench"), ("math",))
    out = str(tmp_path / "out")
    code, err = cli(generate_reasoning_samples.main,
                    ["--model", corrupt_model, "--backend", backend, "--dataset", "math", "--dataset_path",
                     os.path.join(data, "math.jsonl"), "--output_path", out, "--max_rows", "1"], capsys)
    assert_one_line_error(code, err, corrupt_model, "model.safetensors")
    assert sorted(os.listdir(tmp_path)) == ["bench"]  # no checkpoint folder, no lock


# ---- 5. one output, one run --------------------------------------------------------------------------------------
HOLDER = ("import sys, time; sys.path.insert(0, {g!r}); from generation.common.writing import output_lock\n"
          "with output_lock({o!r}):\n    print('held', flush=True); time.sleep(120)\n")


def test_second_run_on_an_output_is_refused_and_a_dead_owner_is_taken_over(tmp_path, capsys):
    source = save_rows(tmp_path / "in.hf")
    out = str(tmp_path / "out")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER.format(g=ROOT, o=out)], stdout=subprocess.PIPE,
                              text=True, env={**os.environ, **OFFLINE_ENV})
    try:
        assert holder.stdout.readline().strip() == "held"
        code, err = cli(unified_evaluation.main, step2_args(source, out), capsys)
        assert_one_line_error(code, err, out, "in use", f"pid {holder.pid} on ")
        assert not os.path.exists(out)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with open(out + ".lock") as handle:
        assert json.load(handle)["pid"] == holder.pid  # the killed owner's lock file is still there
    code, err = cli(unified_evaluation.main, step2_args(source, out), capsys)
    assert code == 0 and f"taking over the lock {out}.lock" in err and str(holder.pid) in err
    assert not os.path.exists(out + ".lock") and len(datasets.load_from_disk(out)["data"]) == 3


def test_lock_is_released_for_the_next_run_in_the_same_process(tmp_path):
    out = str(tmp_path / "out")
    with output_lock(out):
        assert os.path.exists(out + ".lock")
    with output_lock(out):
        pass
    assert not os.path.exists(out + ".lock")


# ---- 6. saves survive a kill at any moment -----------------------------------------------------------------------
@pytest.mark.slow
def test_kill_between_the_renames_of_an_in_place_save_recovers(tmp_path):
    data = save_rows(tmp_path / "data.hf")
    for stale in ("data.hf.tmp-deadbeef", "data.hf.old-cafecafe"):  # leftovers of earlier killed saves
        os.makedirs(tmp_path / stale / "data")
    command = [sys.executable, script_path("unified_RMs_and_LM_Judges.py"), *step3_args(data, data)]
    proc = subprocess.Popen(command, env={**os.environ, **OFFLINE_ENV, SAVE_PAUSE_ENV: "120"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while os.path.exists(data) and time.time() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert not os.path.exists(data), "the save never reached the window between its renames"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert [p for p in os.listdir(tmp_path) if ".old-" in p and p != "data.hf.old-cafecafe"]  # data only there now
    assert step3.main(step3_args(data, data)) == 0
    assert datasets.load_from_disk(data)["data"].to_list() == MC_ROWS
    assert not [p for p in os.listdir(tmp_path) if ".old-" in p or ".tmp-" in p or p.endswith(".lock")]


# ---- 7. symlinks -------------------------------------------------------------------------------------------------
def test_symlink_to_the_output_is_the_same_path(tmp_path):
    target = save_rows(tmp_path / "target.hf")
    before = tree(target)
    os.symlink(target, tmp_path / "link.hf")
    with pytest.raises(UserError, match="equals --input_path"):
        unified_evaluation.main(step2_args(str(tmp_path / "link.hf"), target))
    with pytest.raises(UserError, match="equals --input_path"):
        unified_evaluation.main(step2_args(target, str(tmp_path / "link.hf")))
    assert tree(target) == before
