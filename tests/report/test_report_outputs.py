"""Step 4's outputs: overlapping paths refused, and a Weaver export that Weaver's loader reads (names, --rename)."""
from __future__ import annotations

import json
import os

import datasets
import matplotlib.figure
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_report import save

from generation import verifier_report
from generation.common.cli import UserError
from generation.report.weaver_export import ADDITIONS

pytestmark = pytest.mark.filterwarnings("error")  # no warning reaches the console
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "weaver_constants.json")) as _handle:
    WEAVER = json.load(_handle)


def weaver_load(path: str, additions: bool = False) -> list[str]:
    """What weaver/dataset.py does with a local path: discover *_scores/*_verdicts, map their names, look each up
    in VERIFIER_DESCRIPTIONS (KeyError otherwise), stack each to (problems, samples); returns the names. additions:
    with the export's lines for weaver/constants.py added first."""
    described = {name: {} for name in WEAVER["described"]}
    if additions:
        with open(os.path.join(path, ADDITIONS)) as handle:
            exec(handle.read(), {"VERIFIER_DESCRIPTIONS": described})  # noqa: S102 (the lines, as in constants.py)
    frame = pd.DataFrame(datasets.load_from_disk(path))
    found = [c for c in frame.columns if c.endswith(("_scores", "_verdicts"))]
    names = [WEAVER["name_map"].get(c, c) for c in found]
    missing = [n for n in names if n not in described]
    if missing:
        raise KeyError(missing)
    matrices = [np.stack(frame[c].values, axis=0).squeeze() for c in found]
    np.stack(matrices, axis=-1)  # weaver stacks every verifier: fails with none ("need at least one array to stack")
    return names


def step4(tmp_path, columns: dict, *extra: str) -> str:
    """Step 4 with a Weaver export of columns; returns the export's path."""
    source = save(columns, tmp_path / "in.hf")
    export = str(tmp_path / "weaver")
    assert verifier_report.main(["--dataset_path", source, "--output_dir", str(tmp_path / "rep"),
                                 "--export_weaver", export, *extra]) == 0
    return export


def graded(verifier_columns: list[str], rows: int = 2, samples: int = 3) -> dict:
    """A graded dataset with the named verifier columns (judges with K=2 verdicts)."""
    rng = np.random.default_rng(0)
    columns = {"instruction": ["q"] * rows, "answer_correct": (rng.random((rows, samples)) < 0.5).tolist()}
    for column in verifier_columns:
        values = rng.random((rows, samples, 2) if column.endswith("_verdicts") else (rows, samples)).round()
        columns[column] = values.tolist()
    return columns


def test_every_column_weaver_maps_is_exported_and_loads(tmp_path):
    mapped = [c for c, name in WEAVER["name_map"].items() if name in WEAVER["described"]]
    export = step4(tmp_path, graded(mapped))
    kept = [c for c in datasets.load_from_disk(export).column_names if c.endswith(("_scores", "_verdicts"))]
    assert sorted(kept) == sorted(mapped)
    assert len(weaver_load(export)) == len(mapped)
    assert not os.path.exists(os.path.join(export, ADDITIONS))  # nothing to add


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ours=st.lists(st.sampled_from(["TinyRM_scores", "QwQ-32B_verdicts", "SkyworkV2-Qwen3-0.6B_scores",
                                      "Gemma-3-4B_verdicts", "judge_gemma-2-27b-it_verdicts", "My RM_scores"]),
                     min_size=1, max_size=4, unique=True),
       mapped=st.lists(st.sampled_from(["GRM_scores", "GPT-4o_verdicts", "QwQ-32B-Preview_verdicts"]), max_size=2,
                       unique=True))
def test_verifiers_without_a_weaver_name_keep_their_own_with_lines_for_weavers_constants(
        tmp_path_factory, monkeypatch, ours, mapped):
    """Any mix of verifiers Weaver names and verifiers it does not: the latter are exported under their own names
    (never another model's), Weaver's loader refuses them until the export's lines are added to its constants, then
    reads every one."""
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda fig, path, *a, **k: open(path, "wb").close())
    export = step4(tmp_path_factory.mktemp("own"), graded(ours + mapped))
    kept = [c for c in datasets.load_from_disk(export).column_names if c.endswith(("_scores", "_verdicts"))]
    assert sorted(kept) == sorted(ours + mapped)
    with pytest.raises(KeyError):
        weaver_load(export)
    assert sorted(weaver_load(export, additions=True)) == sorted(WEAVER["name_map"].get(c, c) for c in ours + mapped)


def test_rename_exports_a_verifier_under_a_weaver_name(tmp_path):
    columns = graded(["TinyRM_scores", "TinyJudge_verdicts", "Other_scores"])
    export = step4(tmp_path, columns, "--rename", "TinyRM=URM_scores", "--rename", "TinyJudge_verdicts=GPT-4o_verdicts")
    assert sorted(weaver_load(export, additions=True)) == ["GPT-4o", "Other_scores", "URM (8B)"]
    frame = pd.DataFrame(datasets.load_from_disk(export))
    assert np.stack(frame["URM_scores"].values).tolist() == columns["TinyRM_scores"]


@pytest.mark.parametrize("rename,words", [
    ("Nope=URM_scores", ["Nope=URM_scores", "TinyRM"]),  # no such verifier
    ("TinyRM=MyName_scores", ["MyName_scores", "Weaver"]),  # no name Weaver maps
    ("TinyRM=GPT-4o_verdicts", ["GPT-4o_verdicts", "reward model"]),  # a reward model exported as a judge
    ("TinyRM", ["OLD=NEW"]),
])
def test_bad_rename_is_refused_in_one_line(tmp_path, rename, words):
    source = save(graded(["TinyRM_scores", "URM_scores"]), tmp_path / "in.hf")
    with pytest.raises(UserError) as err:
        verifier_report.main(["--dataset_path", source, "--output_dir", str(tmp_path / "rep"),
                              "--export_weaver", str(tmp_path / "weaver"), "--rename", rename])
    assert all(word in str(err.value) for word in words) and "\n" not in str(err.value), str(err.value)
    assert sorted(os.listdir(tmp_path)) == ["in.hf"]


def test_rename_onto_a_kept_column_is_refused(tmp_path):
    source = save(graded(["TinyRM_scores", "URM_scores"]), tmp_path / "in.hf")
    with pytest.raises(UserError, match="both be named 'URM_scores'"):
        verifier_report.main(["--dataset_path", source, "--output_dir", str(tmp_path / "rep"),
                              "--export_weaver", str(tmp_path / "weaver"), "--rename", "TinyRM=URM_scores"])


# How the second path is written from the first: the same folder or one inside the other, spelled in several ways
# (trailing slash, "." and ".." segments, a symlink to the folder).
RELATIONS = {"same": "{base}", "same/": "{base}/", "inside": "{base}/b", "deeper": "{base}/b/c",
             "dotdot": "{base}/b/../b", "dot": "{base}/./b", "link": "{alias}", "link-inside": "{alias}/b",
             "contains": "{parent}"}


def tree(root) -> list[str]:
    """Every path under root."""
    return sorted(os.path.join(folder, name) for folder, dirs, files in os.walk(root) for name in dirs + files)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(relation=st.sampled_from(sorted(RELATIONS)),
       flags=st.permutations(["--output_dir", "--export_weaver", "--dataset_path"]), base_exists=st.booleans())
def test_overlapping_paths_are_refused_in_one_line(tmp_path_factory, relation, flags, base_exists):
    """Any two of --dataset_path, --output_dir and --export_weaver that are one folder or nested: one line, before
    anything is written; inputs untouched."""
    root = tmp_path_factory.mktemp("paths")
    base = root / "x" / "a"
    os.symlink(base, root / "alias")
    paths = {"--output_dir": str(root / "rep"), "--export_weaver": str(root / "weaver"),
             "--dataset_path": str(root / "in.hf")}
    paths[flags[0]] = str(base)
    paths[flags[1]] = RELATIONS[relation].format(base=base, alias=root / "alias", parent=base.parent)
    save(graded(["URM_scores"]), os.path.realpath(paths["--dataset_path"]))
    if base_exists:
        base.mkdir(parents=True, exist_ok=True)
    before = tree(root)
    with pytest.raises(UserError) as err:
        verifier_report.main([item for flag, path in paths.items() for item in (flag, path)])
    assert "\n" not in str(err.value)  # "overlap", "nested", or (an input inside an output) "not an earlier report"
    assert tree(root) == before
