"""The two rules at every entry point (Steps 1-4, merge_shards.py): read-only inputs are read and left exactly as
they were; when every external call fails, every step exits non-zero with one line saying so, and so does a push to
the hub that fails; a dry run writes nothing at all, not even the parent folder of its output; a full disk
mid-checkpoint is one line naming the file."""
from __future__ import annotations

import hashlib
import os

import datasets
import pytest
from test_reliability import cli, read_only, tmpfs

from generation import generate_reasoning_samples, merge_shards, unified_evaluation, verifier_report
from generation import unified_RMs_and_LM_Judges as step3
from generation.common.cli import run_main
from generation.common.records import RecordStore

from conftest import run_script
from fixtures_benchmarks import write_benchmarks
from loopback import LoopbackServer, Reply

ROWS = [{"instruction": f"Question {i}: which is it?", "answer": "B", "choices": ["w", "x", "y", "z"],
         "samples": ["The answer is: B", "The answer is: C", "no idea"]} for i in range(4)]


def snapshot(folder: str) -> dict[str, str]:
    """Every file and folder under folder with the hash of its content (folders: '')."""
    found = {}
    for root, dirs, files in os.walk(folder):
        found.update({os.path.relpath(os.path.join(root, d), folder): "" for d in dirs})
        for name in files:
            with open(os.path.join(root, name), "rb") as handle:
                found[os.path.relpath(os.path.join(root, name), folder)] = hashlib.sha256(handle.read()).hexdigest()
    return found


def scored_rows() -> list[dict]:
    """Step 3-style rows: graded samples and a reward model's scores under a name Weaver maps."""
    return [{**row, "answer_correct": [True, False, False], "extracted_answers": ["B", "C", None],
             "URM_scores": [0.9, 0.2 + i / 10, 0.1]} for i, row in enumerate(ROWS)]


def save(path: str, rows: list[dict]) -> str:
    datasets.DatasetDict({"data": datasets.Dataset.from_list(rows)}).save_to_disk(path)
    return path


def every_entry_point(inputs: str, out: str, url: str) -> dict[str, tuple]:
    """(main, argv) of each script reading from `inputs` and writing under `out`."""
    bench, graded, scored = (os.path.join(inputs, name) for name in ("bench", "graded.hf", "scored.hf"))
    parts = [os.path.join(inputs, f"part{i}.hf") for i in (0, 1)]
    return {
        "step1": (generate_reasoning_samples.main, ["--model", "loop", "--base_url", url, "--dataset", "mmlu",
                                                    "--dataset_path", os.path.join(bench, "mmlu.jsonl"), "--max_rows",
                                                    "3", "--output_path", os.path.join(out, "s1")]),
        "step2": (unified_evaluation.main, ["-i", graded, "-o", os.path.join(out, "s2"), "-t", "mmlu", "-r", "3",
                                            "-m", "2", "--llm_fallback", "never"]),
        "step3": (step3.main, ["--dataset_path", graded, "--output_path", os.path.join(out, "s3"), "--reward_models",
                               "", "--lm_judges", "Loop=openai_compatible:judge", "--base_url", url, "--max_rows",
                               "3", "--max_samples", "2"]),
        "step4": (verifier_report.main, ["--dataset_path", scored, "--output_dir", os.path.join(out, "report"),
                                         "--export_weaver", os.path.join(out, "weaver")]),
        "merge": (merge_shards.main, ["--shards", *parts, "--output_path", os.path.join(out, "merged")]),
    }


def make_inputs(folder: str) -> None:
    """Each entry point's input under folder: a benchmark file, saved datasets, two parts of one Step 2 run."""
    write_benchmarks(os.path.join(folder, "bench"), ("mmlu",))
    graded = save(os.path.join(folder, "graded.hf"), ROWS)
    save(os.path.join(folder, "scored.hf"), scored_rows())
    for i, rows in enumerate(((0, 2), (2, 4))):
        assert unified_evaluation.main(["-i", graded, "-o", os.path.join(folder, f"part{i}.hf"), "-t", "mmlu",
                                        "--start_row", str(rows[0]), "--end_row", str(rows[1]),
                                        "--llm_fallback", "never"]) == 0
    for name in os.listdir(folder):  # only the inputs themselves (the parts' locks and checkpoints are not inputs)
        if name.endswith((".lock", ".checkpoint")):
            os.rename(os.path.join(folder, name), os.path.join(folder, "..", name + ".aside"))


@pytest.mark.parametrize("mount", ["read-only", "writable"])
def test_every_entry_point_reads_its_inputs_and_leaves_them_exactly_as_they_were(tmp_path, capsys, mount):
    with tmpfs(tmp_path / "inputs", size="64m") as inputs:
        make_inputs(inputs)
        before = snapshot(inputs)
        if mount == "read-only":
            read_only(inputs)
        with LoopbackServer() as server:
            for name, (main, argv) in every_entry_point(inputs, str(tmp_path / "out"), server.url).items():
                code, err = cli(main, argv, capsys)
                assert code == 0, (name, err[-2000:])
        assert snapshot(inputs) == before  # not a byte changed, no cache file, no lock
    assert datasets.load_from_disk(str(tmp_path / "out" / "weaver"))["URM_scores"][0] == [0.9, 0.2, 0.1]


def failing(path: str, request: dict, count: int) -> Reply:
    """Every call fails (a server error that retrying does not cure)."""
    return Reply(status=400, body={"error": {"message": "this server refuses every request",
                                             "type": "invalid_request_error"}})


def refusing_hub(path: str, request: dict, count: int) -> Reply:
    """A hub (HF_ENDPOINT) that refuses every call, reads included, as for a token it does not accept."""
    return Reply(status=401, body={"error": "Invalid credentials in Authorization header"})


refusing_hub.answers_get = True
HUB_ONLINE = {"HF_HUB_OFFLINE": "0", "HF_DATASETS_OFFLINE": "0", "HF_TOKEN": "hf_loopback_only"}


@pytest.mark.slow
def test_a_hub_push_that_fails_exits_non_zero_with_one_line(tmp_path):
    """Steps 1 and 3 with --push_to_hub, the hub (HF_ENDPOINT, on loopback) refusing every call and nothing else
    failing: the output is saved, the push went to that hub, and the step exits 1 with one line."""
    make_inputs(str(tmp_path / "in"))
    with LoopbackServer() as server, LoopbackServer(refusing_hub) as hub:
        runs = every_entry_point(str(tmp_path / "in"), str(tmp_path / "out"), server.url)
        for name, script in (("step1", "generate_reasoning_samples.py"), ("step3", "unified_RMs_and_LM_Judges.py")):
            # a subprocess: the hub libraries read HF_ENDPOINT when they are imported
            proc = run_script(script, *runs[name][1], "--push_to_hub", "me/out",
                              env={**HUB_ONLINE, "HF_ENDPOINT": hub.root})
            told = [line for line in proc.stderr.splitlines() if line.startswith(("error:", "FAILED:"))]
            assert proc.returncode == 1 and len(told) == 1 and "Traceback" not in proc.stderr, (name, proc.stderr)
            assert told[0].startswith("FAILED: push to me/out failed (") and "401" in told[0], told
            assert datasets.load_from_disk(runs[name][1][runs[name][1].index("--output_path") + 1])["data"]
        assert hub.requests and all("/me/out" in request["path"] for request in hub.requests)


def test_when_every_external_call_fails_every_step_exits_non_zero_with_one_line(tmp_path, capsys):
    make_inputs(str(tmp_path / "in"))
    with LoopbackServer(failing) as server:
        runs = every_entry_point(str(tmp_path / "in"), str(tmp_path / "out"), server.url)
        runs["step2"] = (unified_evaluation.main, ["-i", str(tmp_path / "in" / "graded.hf"), "-o",
                                                   str(tmp_path / "out" / "s2"), "-t", "mmlu", "--llm_fallback",
                                                   "always", "--judge_model", "judge", "--base_url", server.url])
        runs["step4"] = (verifier_report.main, ["--dataset_path", "nobody/no-such-dataset", "--output_dir",
                                                str(tmp_path / "out" / "report")])  # the hub, offline
        for name in ("step1", "step2", "step3", "step4"):
            main, argv = runs[name]
            with pytest.raises(SystemExit) as exited:
                run_main(main, argv)
            printed = "".join(capsys.readouterr())
            told = [line for line in printed.splitlines() if line.startswith(("error:", "FAILED:"))]
            assert exited.value.code not in (0, None) and len(told) == 1 and "Traceback" not in printed, \
                (name, printed)


def test_a_dry_run_writes_nothing_not_even_the_parent_of_its_output(tmp_path, capsys):
    make_inputs(str(tmp_path / "in"))
    before = snapshot(str(tmp_path))
    with LoopbackServer() as server:
        runs = every_entry_point(str(tmp_path / "in"), str(tmp_path / "new" / "deeper"), server.url)
        for name in ("step1", "step2", "step3"):
            main, argv = runs[name]
            code, err = cli(main, [*argv, "--dry_run"], capsys)
            assert code == 0, (name, err[-2000:])
            assert snapshot(str(tmp_path)) == before, name


def test_a_full_disk_while_checkpointing_is_one_line_naming_the_file_and_the_fix(tmp_path, capsys):
    with tmpfs(tmp_path / "small", size="64k") as mount:
        log = os.path.join(mount, "out.checkpoint", "samples.jsonl")

        def checkpointing(argv):
            with RecordStore(log) as store:
                for i in range(1000):
                    store.put(f"s/{i}", "x" * 4096)

        code, err = cli(checkpointing, [], capsys)
    line = err.strip().splitlines()[-1]
    assert code == 1 and line.startswith(f"error: cannot write {log}: No space left on device"), err[-2000:]
    assert f"free some space on the file system of {os.path.dirname(log)}" in line
