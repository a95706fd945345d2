"""Resume by rows, not by shards: every paid or computed unit of Steps 2 and 3 (an LLM-fallback reply, a judge
verdict, a reward-model score) is kept under a content key and found by any later run, whatever its shard layout."""
import ast
import hashlib
import json
import os
import tempfile

import datasets
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_step3b_parsing import judge_args

from generation.common.records import read_log
from generation.common.writing import provenance_path
from generation.data.dataset_io import checkpoint_dir
from generation.data.sharding import fold_layouts, run_keys, run_logs, run_store, shard_path, split
from generation.judges import judging

import tiny_reward_models as tiny
from conftest import GENERATION, run_script
from fixtures_benchmarks import load_output
from loopback import LoopbackServer, Reply, openai_body

LOG = "cache.jsonl"
# the one log that keeps its own records and copies other layouts' rows in itself (Step 1's sample log)
OPENED_DIRECTLY = {os.path.join("common", "records.py"), os.path.join("data", "sharding.py"),
                   os.path.join("steps", "sample_checkpoint.py")}


def log_of(out: str, rows: range | None) -> str:
    """The cache log of the whole output (rows None) or of the shard of a row range."""
    return os.path.join(checkpoint_dir(out if rows is None else shard_path(out, rows)), LOG)


layouts = st.lists(st.one_of(st.none(), st.integers(1, 6)), min_size=1, max_size=4)  # None: unsharded


@settings(max_examples=40, deadline=None)
@given(layouts=layouts, rows=st.integers(1, 9), reader=st.one_of(st.none(), st.integers(1, 6)))
def test_a_unit_stored_by_any_layout_is_found_by_every_other(layouts, rows, reader):
    """Runs with any shard layouts store units keyed by content; a store opened for any shard (or the whole output)
    finds every unit, prefers its own record, writes only its own log, notes only the units it can ask for; own_only
    and a dry run's run_keys too; folding the layouts after a merge keeps every unit in one log."""
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "out.hf")
        written: dict[str, str] = {}
        for run, shards in enumerate(layouts):
            for part in [None] if shards is None else split(range(rows), shards):
                asks = part or range(rows)
                with run_store(log_of(out, part), {f"row {row}" for row in asks}, sync_every=100) as store:
                    for row in asks:
                        if f"row {row}" not in store:  # what a step does: ask only for what no log holds
                            written[f"row {row}"] = store.put(f"row {row}", f"by run {run}")
        assert set(written) == {f"row {row}" for row in range(rows)}
        assert run_keys(log_of(out, None), {*written, "row never written"}) == set(written)
        assert run_keys(log_of(out, None), {"row 0"}) == {"row 0"}  # only the keys asked about are collected
        for part in [None] if reader is None else split(range(rows), reader):
            path = log_of(out, part)
            own = set(read_log(path))
            with run_store(path, written) as store:
                assert all(store.get(key) == value for key, value in written.items())
                assert set(store.records) == own  # the others' records are read, never copied in
            with run_store(path, written, own_only=True) as store:
                assert {key for key in written if key in store} == own
            mine = {key for key in written if int(key.split()[1]) % 2} if part is None else \
                {f"row {row}" for row in part}
            with run_store(path, mine) as store:  # only what this run can ask for is noted
                assert set(store.elsewhere) <= mine and all(store.get(key) == written[key] for key in mine)
        on_disk = sum(os.path.getsize(log) for log in run_logs(out, LOG))
        fold_layouts(out)  # after a merge: one log of the run's records, no shard folder
        assert run_logs(out, LOG) == [log_of(out, None)] and read_log(log_of(out, None)) == written
        assert os.path.getsize(log_of(out, None)) <= on_disk and not os.path.exists(checkpoint_dir(out) + "/shards")


def judge_dataset(rows: range) -> datasets.Dataset:
    """Step 1-style rows with two samples each (one missing in every third row)."""
    return datasets.Dataset.from_list([{"instruction": f"Compute {i} + {i}.", "answer": str(2 * i),
                                        "samples": [f"The answer is: {2 * i}", None if i % 3 else "It is 7."]}
                                       for i in rows])


@pytest.mark.parametrize("others", [0, 30, 200])
def test_a_judge_shard_notes_nothing_for_the_rows_other_shards_own(tmp_path, monkeypatch, others):
    """An API judge's cache in a shard of 6 rows, after another layout judged those rows and `others` more: it finds
    its own rows' answers (no request) and notes only those, however many other rows the other logs hold."""
    out, mine = str(tmp_path / "out.hf"), range(3, 9)
    with LoopbackServer(judge_reply) as server:
        options = judge_args("--base_url", server.url)
        spec = judging.resolve_judges(["Loop=openai_compatible:judge"], options)[0]
        rows = range(3 + others + 6)  # the earlier unsharded run: the shard's rows among the others
        whole, _ = judging.run_judge(spec, judge_dataset(rows), options, checkpoint_dir(out))
        asked = len(server.requests)
        opened = []
        monkeypatch.setattr(judging, "run_store", lambda *a, **k: opened.append(run_store(*a, **k)) or opened[-1])
        columns, stats = judging.run_judge(spec, judge_dataset(mine), options, checkpoint_dir(shard_path(out, mine)))
        present = sum(s is not None for row in judge_dataset(mine)["samples"] for s in row)
        assert len(server.requests) == asked and stats["cached"] == present == 8
    assert all(values == whole[name][3:9] for name, values in columns.items())
    assert [(len(store.elsewhere), len(store.records)) for store in opened] == [(stats["cached"], 0)]


LEDGER_LINES = '{"open": "run-1"}\n{"w": "run-1/123", "run": "run-1", "spent": 0.25, "held": 0.0, "upper": 0.3}\n'


@pytest.mark.parametrize("shard_has_one", [False, True])
def test_folding_never_rewrites_a_file_that_is_no_checkpoint_log(tmp_path, shard_has_one):
    """A cost ledger beside the checkpoint logs (the output's, or a shard's own) stays byte for byte; a shard folder
    holding one stays too."""
    out = str(tmp_path / "out.hf")
    ledger = os.path.join(checkpoint_dir(out), "budget_ledger.jsonl")
    for part in (range(0, 2), range(2, 4)):
        with run_store(log_of(out, part), set()) as store:
            for row in part:
                store.put(f"row {row}", row)
    os.makedirs(checkpoint_dir(out), exist_ok=True)
    with open(ledger, "w") as handle:
        handle.write(LEDGER_LINES)
    if shard_has_one:
        with open(os.path.join(checkpoint_dir(shard_path(out, range(0, 2))), "budget_ledger.jsonl"), "w") as handle:
            handle.write(LEDGER_LINES)
    fold_layouts(out)
    assert open(ledger).read() == LEDGER_LINES and read_log(log_of(out, None)) == {f"row {i}": i for i in range(4)}
    assert os.path.exists(os.path.join(checkpoint_dir(out), "shards")) == shard_has_one


def test_every_cache_log_is_opened_through_run_store():
    """The one choke point: no module of the pipeline opens a RecordStore itself (it would miss other layouts)."""
    offenders = []
    for folder, _, files in os.walk(GENERATION):
        for name in files:
            path = os.path.join(folder, name)
            if not name.endswith(".py") or os.path.relpath(path, GENERATION) in OPENED_DIRECTLY:
                continue
            tree = ast.parse(open(path, encoding="utf-8").read())
            offenders += [f"{os.path.relpath(path, GENERATION)}:{node.lineno}" for node in ast.walk(tree)
                          if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "RecordStore"]
    assert not offenders, f"RecordStore opened outside data.sharding.run_store: {offenders}"


def judge_reply(path: str, request: dict, count: int) -> Reply:
    """An LLM that answers from the prompt alone: Step 2's JSON grade, or a Step 3 verdict."""
    prompt = request["messages"][-1]["content"]
    if "Reference answer" in prompt:
        text = json.dumps({"extracted_answer": "5", "is_correct": "five" in prompt})
    else:
        text = "Checked.\n" + ("True" if hashlib.sha256(prompt.encode()).digest()[0] % 2 else "False")
    return Reply(body=openai_body(request, [text] * int(request.get("n") or 1)))


def layouts_run(script: str, args: list[str], out: str, ray_address: str, asked) -> list:
    """Complete `out` with 2 shards, then run again with 3 and unsharded; each rerun must ask nothing
    (asked(): requests so far); returns the provenance of each run."""
    records = []
    for extra in (["--num_shards", "2"], ["--num_shards", "3"], []):
        before = asked()
        proc = run_script(script, *args, "--output_path", out, *extra,
                          *(["--ray_address", ray_address] if extra else []))
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert records == [] or asked() == before, f"{extra or 'unsharded'}: {asked() - before} requests re-sent"
        records.append(json.load(open(provenance_path(out))))
    return records


@pytest.fixture
def step1_output(tmp_path):
    """Five math rows, each with a sample only the LLM fallback can grade."""
    rows = [{"instruction": f"Compute {i} + 5 - {i}.", "answer": "5",
             "samples": ["The answer is: 5", "The answer is: five apples or so", "The answer is: 4"]}
            for i in range(5)]
    path = str(tmp_path / "step1.hf")
    datasets.DatasetDict({"data": datasets.Dataset.from_list(rows)}).save_to_disk(path)
    return path


def test_step2_llm_fallback_replies_are_reused_by_any_shard_layout(ray_address, step1_output, tmp_path):
    args = ["-i", step1_output, "-t", "math", "-p", "1", "--llm_fallback", "auto", "--provider",
            "openai_compatible", "--max_concurrency", "1"]
    single, out = str(tmp_path / "single.hf"), str(tmp_path / "out.hf")
    with LoopbackServer(judge_reply) as server:
        args += ["--base_url", server.url]
        proc = run_script("unified_evaluation.py", *args, "--output_path", single)
        assert proc.returncode == 0 and len(server.requests) == 5, proc.stderr[-3000:]
        records = layouts_run("unified_evaluation.py", args, out, ray_address, lambda: len(server.requests))
        assert len(server.requests) == 10  # the single run's 5 and the 2-shard run's 5, none since
    assert [r["llm_fallback"]["calls"] for r in records] == [5, 0, 0]
    assert [r["llm_fallback"]["cached"] for r in records] == [0, 5, 5]
    want = load_output(single).to_list()
    assert [row["answer_extraction_method"][1] for row in want] == ["llm"] * 5
    assert load_output(out).to_list() == want


def test_step3_scores_and_verdicts_are_reused_by_any_shard_layout(ray_address, step1_output, tmp_path):
    rm = f"TinySeq={tiny.build_sequence_classifier(str(tmp_path / 'seq'))}:sequence_classifier"
    single, out = str(tmp_path / "single.hf"), str(tmp_path / "out.hf")
    with LoopbackServer(judge_reply) as server:
        args = ["--dataset_path", step1_output, "--reward_models", rm, "--lm_judges", "Loop=openai_compatible:judge",
                "--base_url", server.url, "--max_concurrency", "1"]
        proc = run_script("unified_RMs_and_LM_Judges.py", *args, "--output_path", single)
        assert proc.returncode == 0 and len(server.requests) == 15, proc.stderr[-3000:]
        records = layouts_run("unified_RMs_and_LM_Judges.py", args, out, ray_address, lambda: len(server.requests))
        assert len(server.requests) == 30
    scored = [(r["verifiers"]["TinySeq"]["scored"], r["verifiers"]["TinySeq"]["resumed"]) for r in records]
    assert scored == [(15, 0), (0, 15), (0, 15)]  # reward-model items scored, reused
    assert [r["verifiers"]["Loop"]["cached"] for r in records] == [0, 15, 15]
    want, got = load_output(single), load_output(out)
    assert got.column_names == want.column_names
    assert got.remove_columns("TinySeq_scores").to_list() == want.remove_columns("TinySeq_scores").to_list()
    for a, b in zip(got["TinySeq_scores"], want["TinySeq_scores"], strict=True):
        assert a == pytest.approx(b, abs=1e-5) and None not in a
