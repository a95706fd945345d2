"""Merges take only the parts of one run: same step and settings, row ranges that tile one range; the merged
provenance keeps the whole-run fields (Step 2's summary; Step 3's are checked in tests/verifiers)."""
import json
import os
import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_sharding import seeded_reply, step1_args

from generation import merge_shards
from generation.common.cli import UserError, run_main
from generation.data.merging import PER_PART, check_parts
from generation.generate_reasoning_samples import main as step1
from generation.unified_evaluation import main as step2

from fixtures_benchmarks import load_output, write_benchmarks
from loopback import LoopbackServer

ROW_KEYS = {"start_row", "end_row", "max_rows"}  # they move the part's rows: covered by the row-range rule


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """Step 1 parts of the 6-row math fixture made by the loopback server: the run's two halves, the whole run,
    and parts of other runs or other row ranges."""
    folder = tmp_path_factory.mktemp("parts")
    data_dir = write_benchmarks(str(folder), ("math",))
    made = {}
    variants = {"a": ([], 0, 3), "b": ([], 3, 6), "whole": ([], 0, 6), "model": (["--model", "other"], 3, 6),
                "temperature": (["--temperature", "1.0"], 3, 6), "overlap": ([], 2, 6), "gap": ([], 4, 6)}
    with LoopbackServer(seeded_reply()) as server:
        for name, (extra, start, end) in variants.items():
            made[name] = str(folder / f"{name}.hf")
            argv = step1_args(server.url, data_dir, made[name]) + ["--temperature", "0.7", *extra,
                                                                   "--start_row", str(start), "--end_row", str(end)]
            assert step1(argv) == 0
    return made


def refused(capsys, argv: list[str]) -> str:
    """Run merge_shards as the CLI does; assert exit 2 with one error line; return it."""
    with pytest.raises(SystemExit) as stop:
        run_main(merge_shards.main, argv)
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert stop.value.code == 2 and len(errors) == 1 and errors[0].startswith("error: "), errors
    return errors[0]


@pytest.mark.parametrize("other, why", [("model", "--model 'loop' vs 'other'"),
                                        ("temperature", "--temperature 0.7 vs 1.0"),
                                        ("overlap", "rows 2-3 are in both"),
                                        ("gap", "rows 3-4 are in no part")])
def test_parts_of_other_runs_or_rows_are_refused_and_nothing_is_written(parts, other, why, tmp_path, capsys):
    out = str(tmp_path / "merged.hf")
    assert why in refused(capsys, ["--shards", parts["a"], parts[other], "--output_path", out])
    assert not os.path.exists(out) and not os.path.exists(os.path.join(out, "provenance.json"))


def test_allow_gaps_merges_and_records_the_gap(parts, tmp_path):
    out = str(tmp_path / "gappy.hf")
    assert merge_shards.main(["--shards", parts["gap"], parts["a"], "--output_path", out, "--allow_gaps"]) == 0
    prov = json.load(open(os.path.join(out, "provenance.json")))
    assert prov["gaps"] == [[3, 4]] and prov["row_range"] == [0, 6] and prov["rows"] == 5
    assert load_output(out)["answer"] == ["2", "4", "6", "10", "12"]  # in row order, whatever the order given


def test_the_halves_merge_into_the_whole_run_in_row_order(parts, tmp_path):
    out = str(tmp_path / "merged.hf")
    assert merge_shards.main(["--shards", parts["b"], parts["a"], "--output_path", out]) == 0
    assert load_output(out).to_list() == load_output(parts["whole"]).to_list()


def test_every_setting_of_a_part_is_checked(parts, tmp_path):
    """Metamorphic, over every argument Step 1 records: changing it in one part makes the merge refuse, unless it
    only says where the part ran or how fast (PER_PART)."""
    record = json.load(open(os.path.join(parts["b"], "provenance.json")))
    keys = sorted(set(record["arguments"]) - ROW_KEYS)
    assert len(keys) > 20
    for key in keys:
        changed = str(tmp_path / f"b_{key}.hf")
        shutil.copytree(parts["b"], changed)
        value = record["arguments"][key]
        edited = {**record, "arguments": {**record["arguments"], key: other_value(value)}}
        json.dump(edited, open(os.path.join(changed, "provenance.json"), "w"))
        argv = ["--shards", parts["a"], changed, "--output_path", str(tmp_path / f"m_{key}.hf")]
        if key in PER_PART:
            assert merge_shards.main(argv) == 0, key
        else:
            with pytest.raises(UserError, match=f"comes from another run .*--{key} "):
                merge_shards.main(argv)


def other_value(value):
    """A different value of the same kind."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, list):
        return value + ["x"]
    return f"{value}x" if isinstance(value, str) else "x"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.integers(1, 6)), min_size=1, max_size=5), st.booleans())
def test_row_ranges_must_tile_one_range(spans, allow_gaps):
    """Any parts: refused when two share a row, or (without allow_gaps) a row between them is in none."""
    records = [{"step": "s", "arguments": {"model": "m", "start_row": start}} for start, _ in spans]
    rows = [set(range(start, start + size)) for start, size in spans]
    covered = set().union(*rows)
    overlap = sum(map(len, rows)) > len(covered)
    gaps = set(range(min(covered), max(covered) + 1)) - covered
    try:
        found = check_parts([f"p{i}" for i in range(len(spans))], records, [size for _, size in spans], allow_gaps)
    except UserError as err:
        assert overlap or (gaps and not allow_gaps), str(err)
        assert ("are in both" in str(err)) == overlap
        return
    assert not overlap and (allow_gaps or not gaps)
    assert {row for a, b in found for row in range(a, b)} == gaps


def test_merged_step2_provenance_keeps_the_summary_over_all_rows(parts, tmp_path):
    graded = {}
    for name in ("a", "b", "whole"):
        graded[name] = str(tmp_path / f"graded_{name}.hf")
        assert step2(["-i", parts[name], "-o", graded[name], "-t", "math", "-p", "1", "--llm_fallback", "never"]) == 0
    out = str(tmp_path / "graded.hf")
    assert merge_shards.main(["--shards", graded["a"], graded["b"], "--output_path", out]) == 0
    merged, whole = (json.load(open(os.path.join(path, "provenance.json"))) for path in (out, graded["whole"]))
    assert merged["summary"] == whole["summary"] and merged["summary"]["problems"] == 6
    assert merged["row_range"] == [0, 6]
    with pytest.raises(UserError, match="rows 0-3 are in both"):  # parts of parts: rows count in the Step 1 run
        merge_shards.main(["--shards", graded["a"], graded["whole"], "--output_path", str(tmp_path / "x.hf")])
