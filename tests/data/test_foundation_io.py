"""Foundation: reading every dataset layout, atomic saving, per-sample alignment, the checkpoint log, provenance."""
import json
import os

import pytest
from datasets import Dataset, DatasetDict, load_dataset, load_from_disk

from generation.common.cli import Provenance, UserError
from generation.common.records import RecordStore
from generation.common.writing import write_json_atomic
from generation.data.dataset_io import (
    check_output_path,
    limit_samples,
    load_any,
    per_sample_columns,
    push_to_hub,
    save_atomic,
)

ROWS = {"instruction": ["q1", "q2"], "samples": [["a", "b", "c"], ["d", None, "f"]], "answer": ["A", "B"],
        "options": [["x", "y", "z"], ["u", "v", "w"]], "answer_correct": [[True, False, True], [False, False, True]],
        "GRM_scores": [[0.1, 0.2, 0.3], [0.4, None, 0.6]], "J_verdicts": [[[1.0], [0.0], [None]], [[1.0]] * 3]}


@pytest.fixture
def dataset():
    return Dataset.from_dict(ROWS)


@pytest.mark.parametrize("layout", ["datasetdict", "dataset", "parquet", "jsonl", "json", "csv", "parquet_dir"])
def test_load_any_reads_every_layout(tmp_path, dataset, layout):
    flat = dataset.select_columns(["instruction", "answer"])
    path = tmp_path / "in"
    if layout == "datasetdict":
        DatasetDict({"data": dataset}).save_to_disk(path)
    elif layout == "dataset":
        dataset.save_to_disk(path)
    elif layout == "parquet_dir":
        os.makedirs(path)
        dataset.to_parquet(str(path / "data.parquet"))
    else:
        path = tmp_path / f"in.{layout}"
        {"parquet": dataset.to_parquet, "jsonl": dataset.to_json, "json": dataset.to_json,
         "csv": flat.to_csv}[layout](str(path))
    loaded = load_any(str(path))
    assert loaded["instruction"] == ["q1", "q2"]
    assert loaded["answer"] == ["A", "B"]


def test_load_any_reads_the_split_asked_for_and_refuses_to_guess(tmp_path, dataset):
    DatasetDict({"train": dataset.select([0]), "data": dataset}).save_to_disk(tmp_path / "dd")
    assert len(load_any(str(tmp_path / "dd"), "data")) == 2
    with pytest.raises(UserError, match="pass --split"):
        load_any(str(tmp_path / "dd"))


@pytest.mark.parametrize("bad", ["missing_dir/nothing/here", "./nope", "/definitely/not/here"])
def test_load_any_missing_path_is_user_error(bad):
    with pytest.raises(UserError):
        load_any(bad)


def test_load_any_empty_file_is_user_error(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    with pytest.raises(UserError, match="no rows|cannot read"):
        load_any(str(path))
    Dataset.from_dict({"instruction": []}).to_parquet(str(tmp_path / "empty.parquet"))
    with pytest.raises(UserError, match="no rows|no data"):
        load_any(str(tmp_path / "empty.parquet"))


def test_load_any_unsupported_file(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("hello")
    with pytest.raises(UserError, match="unsupported file type"):
        load_any(str(path))


def test_save_atomic_loads_both_ways_and_replaces(tmp_path, dataset):
    out = str(tmp_path / "out.hf")
    save_atomic(dataset.select([0]), out)
    save_atomic(dataset, out)
    assert len(load_from_disk(out)["data"]) == 2
    assert load_dataset(out)["data"]["instruction"] == ["q1", "q2"]
    assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p or ".old-" in p]


def test_save_atomic_failure_keeps_previous_output(tmp_path, dataset, monkeypatch):
    out = str(tmp_path / "out.hf")
    save_atomic(dataset, out)

    def boom(self, *a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(DatasetDict, "save_to_disk", boom)
    with pytest.raises(RuntimeError):
        save_atomic(dataset.select([0]), out)
    monkeypatch.undo()
    assert len(load_from_disk(out)["data"]) == 2
    assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p]


def test_save_atomic_over_its_own_input(tmp_path, dataset):
    out = str(tmp_path / "same.hf")
    save_atomic(dataset, out)
    loaded = load_any(out)
    save_atomic(loaded.add_column("extra", ["e1", "e2"]), out)
    assert load_any(out)["extra"] == ["e1", "e2"]


def test_output_path_that_is_a_file(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(UserError, match="existing file"):
        check_output_path(str(target))


def test_limit_samples_cuts_every_per_sample_column_alike(dataset):
    cut = limit_samples(dataset, 2)
    assert per_sample_columns(dataset) == ["samples", "answer_correct", "GRM_scores", "J_verdicts"]
    for column in ("samples", "answer_correct", "GRM_scores", "J_verdicts"):
        assert all(len(v) == 2 for v in cut[column])
    assert cut["options"] == ROWS["options"]  # a 3-long list that is not per-sample stays whole
    assert cut["GRM_scores"][1] == [0.4, None]


def test_record_store_survives_torn_tail(tmp_path):
    path = str(tmp_path / "log.jsonl")
    with RecordStore(path) as store:
        store.put("a", [1, 2])
        store.put("b", {"texts": ["x", None]})
    with open(path, "a") as handle:
        handle.write('{"k": "c", "v": [3')  # a write cut by SIGKILL
    store = RecordStore(path)
    assert store.get("a") == [1, 2] and store.get("b") == {"texts": ["x", None]} and "c" not in store
    store.put("c", 3)
    store.close()
    assert RecordStore(path).records == {"a": [1, 2], "b": {"texts": ["x", None]}, "c": 3}


def test_provenance_never_records_secrets(tmp_path, monkeypatch):
    monkeypatch.setattr("sys.argv", ["script.py", "--model", "m", "--api_key=sk-secret", "--max_new_tokens=8"])
    prov = Provenance("step", {"model": "m", "api_key": "sk-secret", "hf_token": "hf_x", "batch_size": 4,
                               "max_new_tokens": 8, "judge_max_tokens": 16, "ANTHROPIC_API_KEY": "sk-ant"})
    prov.update(counts={"rows": 2})
    path = str(tmp_path / "p.json")
    write_json_atomic(path, prov.snapshot())
    text = open(path).read()
    assert "sk-secret" not in text and "hf_x" not in text and "sk-ant" not in text
    record = json.loads(text)
    assert record["arguments"] == {"model": "m", "batch_size": 4, "max_new_tokens": 8, "judge_max_tokens": 16}
    assert record["command"] == ["script.py", "--model", "m", "--api_key=***", "--max_new_tokens=8"]  # counts kept
    assert record["counts"] == {"rows": 2} and "wall_time_s" in record and "datasets" in record["packages"]


def test_write_json_atomic_creates_parent(tmp_path):
    path = tmp_path / "a" / "b.json"
    write_json_atomic(str(path), {"x": 1})
    assert json.loads(path.read_text()) == {"x": 1}


def test_output_path_that_is_a_folder_of_other_files_is_refused(tmp_path, dataset):
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="not a saved dataset"):
        save_atomic(dataset, str(folder))
    assert (folder / "notes.txt").read_text() == "keep me"
    (tmp_path / "empty").mkdir()
    save_atomic(dataset, str(tmp_path / "empty"))  # an empty folder, like an existing output, may be (re)written
    assert len(load_any(str(tmp_path / "empty"))) == 2


def test_push_to_hub_sends_split_data_privately_and_reports_failure(dataset, monkeypatch, capsys):
    calls = []

    def fake_push(self, repo, private=None, **kwargs):
        calls.append((list(self), repo, private, len(self["data"])))

    monkeypatch.setattr(DatasetDict, "push_to_hub", fake_push)
    assert push_to_hub(dataset, "me/repo") is None
    assert calls == [(["data"], "me/repo", True, 2)]

    def refuse(self, repo, **kwargs):
        raise PermissionError("403 Forbidden: no write access\nmore detail")

    monkeypatch.setattr(DatasetDict, "push_to_hub", refuse)
    assert push_to_hub(dataset, "me/repo") == "PermissionError: 403 Forbidden: no write access"
    assert "the local output is saved" in capsys.readouterr().err
