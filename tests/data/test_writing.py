"""The one writer (common/writing.py) at every entry point: locks that say what they cannot promise, nested output
paths refused, and an output never seen without its own provenance, whatever point a kill lands on."""
from __future__ import annotations

import errno
import json
import os
import signal

import datasets
import pytest

from generation import generate_reasoning_samples, merge_shards, unified_evaluation, verifier_report
from generation import unified_RMs_and_LM_Judges as step3
from generation.common import writing
from generation.common.cli import run_main
from generation.common.writing import output_lock, provenance_path

ROWS = [{"instruction": "Question: capital of France?\n\nChoices:\nA) London\nB) Paris\nC) Rome\nD) Berlin",
         "answer": "B", "options": ["London", "Paris", "Rome", "Berlin"],
         "samples": ["The answer is: B", "Answer: C"], "answer_correct": [True, False],
         "extracted_answers": ["B", "C"], "R_scores": [0.9, 0.1]}] * 3
FOREIGN = {"pid": 4242, "host": "node-elsewhere-17", "started": "2026-01-01T00:00:00"}


def save_rows(path, rows=ROWS) -> str:
    """A Step-2/3-style DatasetDict({'data': ...}) folder."""
    datasets.DatasetDict({"data": datasets.Dataset.from_list(rows)}).save_to_disk(str(path))
    return str(path)


def cli(main, argv, capsys) -> tuple[int, str]:
    """Run a script's main as its __main__ does; (exit code, stderr)."""
    with pytest.raises(SystemExit) as exited:
        run_main(main, argv)
    return exited.value.code, capsys.readouterr().err


def error_line(code: int, err: str) -> str:
    """The single 'error:' line of a failed run (no traceback)."""
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and "Traceback" not in err and len(lines) == 1, err
    return lines[0]


def parts(source: str, folder: str, bounds=((0, 1), (1, 3))) -> list[str]:
    """Step 2 outputs of row ranges of source (made once): parts of one run that merge_shards accepts."""
    paths = []
    for start, end in bounds:
        paths.append(os.path.join(folder, f"part{start}.hf"))
        if not os.path.exists(paths[-1]):
            assert unified_evaluation.main(["-i", source, "-o", paths[-1], "-t", "mmlu", "--llm_fallback", "never",
                                            "--start_row", str(start), "--end_row", str(end)]) == 0
    return paths


# Every entry point that writes, with the output its lock guards: (main, argv builder, output name).
ENTRY_POINTS = {
    "step1": (generate_reasoning_samples.main,
              lambda src, out: ["--model", "loop", "--base_url", "http://127.0.0.1:9/v1", "--dataset", "mmlu",
                                "--output_path", out]),  # the lock is taken before anything is read or asked
    "step2": (unified_evaluation.main,
              lambda src, out: ["-i", src, "-o", out, "-t", "mmlu", "--llm_fallback", "never"]),
    "step3": (step3.main, lambda src, out: ["--dataset_path", src, "--output_path", out, "--reward_models", ""]),
    "merge_shards": (merge_shards.main,
                     lambda src, out: ["--shards", *parts(src, os.path.dirname(out)), "--output_path", out]),
    "report": (verifier_report.main, lambda src, out: ["--dataset_path", src, "--output_dir", out]),
}


@pytest.mark.parametrize("code", [errno.ENOLCK, errno.EOPNOTSUPP])
@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_file_system_without_flock_is_one_line_naming_lock_none(tmp_path, capsys, monkeypatch, entry, code):
    main, argv = ENTRY_POINTS[entry]
    source, out = save_rows(tmp_path / "in.hf"), str(tmp_path / "out")
    command = argv(source, out)

    def refuse(*_):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(writing.fcntl, "flock", refuse)
    line = error_line(*cli(main, command, capsys))
    assert "--lock none" in line and errno.errorcode[code] in line
    assert not os.path.exists(out) and not os.path.exists(out + ".lock")
    if entry == "step1":
        return  # a whole run needs a server; the lock was the point
    writing._WARNED.clear()
    status, err = cli(main, command + ["--lock", "none"], capsys)
    assert status == 0 and err.count("warning: --lock none") == 1, err
    assert os.path.exists(provenance_path(out)) and not os.path.exists(out + ".lock")


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_lock_left_by_another_host_is_refused_unless_takeover(tmp_path, capsys, entry):
    main, argv = ENTRY_POINTS[entry]
    source, out = save_rows(tmp_path / "in.hf"), str(tmp_path / "out")
    command = argv(source, out)
    with open(out + ".lock", "w") as handle:
        json.dump(FOREIGN, handle)
    line = error_line(*cli(main, command, capsys))
    assert "node-elsewhere-17" in line and "pid 4242" in line and "--lock takeover" in line
    assert json.load(open(out + ".lock")) == FOREIGN and not os.path.exists(out)
    if entry == "step1":
        return
    status, err = cli(main, command + ["--lock", "takeover"], capsys)
    assert status == 0 and "taking over the lock" in err and "node-elsewhere-17" in err
    assert not os.path.exists(out + ".lock") and os.path.exists(provenance_path(out))


def test_concurrent_merge_is_refused_by_the_lock(tmp_path, capsys):
    source, out = save_rows(tmp_path / "in.hf"), str(tmp_path / "m.hf")
    with output_lock(out):  # another merge, holding the output
        line = error_line(*cli(merge_shards.main, ["--shards", source, source, "--output_path", out], capsys))
    assert "in use" in line and f"pid {os.getpid()}" in line and not os.path.exists(out)


NESTED = [  # (entry point, argv builder from (input, tmp folder)): one output inside another or inside the input
    (verifier_report.main, lambda src, t: ["--dataset_path", src, "--output_dir", f"{t}/w/report",
                                           "--export_weaver", f"{t}/w"]),
    (verifier_report.main, lambda src, t: ["--dataset_path", src, "--output_dir", f"{t}/r",
                                           "--export_weaver", f"{t}/r/weaver"]),
    (unified_evaluation.main, lambda src, t: ["-i", src, "-o", f"{src}/graded", "-t", "mmlu"]),
    (step3.main, lambda src, t: ["--dataset_path", src, "--output_path", f"{src}/data/x", "--reward_models", ""]),
    (merge_shards.main, lambda src, t: ["--shards", src, "--output_path", f"{src}/merged"]),
    (step3.main, lambda src, t: ["--dataset_path", f"{t}/in.hf/data", "--output_path", f"{t}/in.hf",
                                 "--reward_models", ""]),
]


@pytest.mark.parametrize("index", range(len(NESTED)))
def test_nested_output_paths_are_refused_in_one_line(tmp_path, capsys, index):
    main, argv = NESTED[index]
    source = save_rows(tmp_path / "in.hf")
    before = sorted(os.listdir(tmp_path)), sorted(os.listdir(source))
    line = error_line(*cli(main, argv(source, str(tmp_path)), capsys))
    assert "nested" in line or "overlap" in line
    assert (sorted(os.listdir(tmp_path)), sorted(os.listdir(source))) == before


# ---- a kill at every point of a step's save --------------------------------------------------------------------
MUTATIONS = (("os", "rename"), ("os", "replace"), ("os", "unlink"), ("os", "fsync"), ("shutil", "rmtree"),
             ("os", "makedirs"))


def run_killed_at(point: int, argv: list[str]) -> int:
    """Run Step 2 in a forked child that SIGKILLs itself just before its point-th file-system mutation; returns
    how many mutations it made (when it was not killed) or -1."""
    import shutil

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: count mutations, die at the chosen one
        os.close(read)
        count = [0]
        modules = {"os": os, "shutil": shutil}
        for module, name in MUTATIONS:
            original = getattr(modules[module], name)

            def counted(*args, _original=original, **kwargs):
                count[0] += 1
                if count[0] == point:
                    os.kill(os.getpid(), signal.SIGKILL)
                return _original(*args, **kwargs)

            setattr(modules[module], name, counted)
        try:
            unified_evaluation.main(argv)
        finally:
            os.write(write, str(count[0]).encode())
            os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    text = os.read(read, 64).decode()
    os.close(read)
    return -1 if os.WIFSIGNALED(status) else int(text)


def assert_output_matches_provenance(out: str) -> None:
    """An output, when present, holds the provenance of exactly its own rows and arguments."""
    if not os.path.exists(out):
        return
    rows = datasets.load_from_disk(out)["data"].num_rows
    with open(provenance_path(out)) as handle:
        record = json.load(handle)
    assert record["rows"] == rows and record["arguments"]["max_rows"] == rows


def test_a_kill_at_any_point_of_a_save_never_leaves_output_without_its_provenance(tmp_path):
    source, out = save_rows(tmp_path / "in.hf"), str(tmp_path / "out.hf")
    argv = ["-i", source, "-o", out, "-t", "mmlu", "--llm_fallback", "never", "-p", "1"]
    assert unified_evaluation.main(argv + ["-r", "1"]) == 0
    points = run_killed_at(0, argv + ["-r", "2"])  # a clean run: how many mutations a rerun makes
    assert points > 3
    for point in range(1, points + 1):
        assert unified_evaluation.main(argv + ["-r", "1"]) == 0  # the previous unit: 1 row
        assert run_killed_at(point, argv + ["-r", "2"]) == -1
        assert_output_matches_provenance(out)  # as a reader sees it right after the kill
        with output_lock(out):  # the next run's recovery
            pass
        assert os.path.exists(out)
        assert_output_matches_provenance(out)
        assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p or ".old-" in p], point


@pytest.mark.slow
def test_merge_shards_killed_ten_times_then_rerun_gives_the_same_output_and_no_debris(tmp_path):
    import random
    import subprocess
    import sys
    import time

    from conftest import OFFLINE_ENV, script_path

    source = save_rows(tmp_path / "in.hf", ROWS * 2)
    shards = parts(source, str(tmp_path), ((0, 2), (2, 4), (4, 6)))
    reference, out = str(tmp_path / "reference.hf"), str(tmp_path / "m.hf")
    command = [sys.executable, script_path("merge_shards.py"), "--shards", *shards, "--output_path"]
    env = {**os.environ, **OFFLINE_ENV, writing.SAVE_PAUSE_ENV: "0.3"}  # a wider window between the renames
    started = time.time()
    subprocess.run(command + [reference], env=env, check=True, capture_output=True)
    duration = time.time() - started
    chance, debris = random.Random(19), 0
    for kill in range(10):
        proc = subprocess.Popen(command + [out], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if kill % 2:  # any moment of the run
            time.sleep(chance.uniform(0, duration))
        else:  # a moment of its write: from when its temporary folder appears, through the renames
            deadline = time.time() + 2 * duration
            while not any(".tmp-" in name for name in os.listdir(tmp_path)) and time.time() < deadline:
                time.sleep(0.005)
            time.sleep(chance.uniform(0, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        debris += any(".tmp-" in name or ".old-" in name for name in os.listdir(tmp_path))
        assert_output_matches_merge(out, reference, must_exist=False)
    assert debris  # some kills landed inside a write, which the rerun must clean up
    subprocess.run(command + [out], env=env, check=True, capture_output=True)
    assert_output_matches_merge(out, reference, must_exist=True)
    assert not [name for name in os.listdir(tmp_path) if ".tmp-" in name or ".old-" in name or name.endswith(".lock")]


def assert_output_matches_merge(out: str, reference: str, must_exist: bool) -> None:
    """The merged output (when present, or when it must be) equals the reference merge, with its own provenance."""
    if not must_exist and not os.path.exists(out):
        return
    assert datasets.load_from_disk(out)["data"].to_list() == datasets.load_from_disk(reference)["data"].to_list()
    with open(provenance_path(out)) as handle, open(provenance_path(reference)) as expected:
        record, wanted = json.load(handle), json.load(expected)
    assert record["rows"] == wanted["rows"] and record["shard_rows"] == wanted["shard_rows"]
