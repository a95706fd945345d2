"""Preflight before any Step 3 work: each entry's tokenizer (remote code included), every weight shard its index
names, the reference model of an implicit PRM; every failing entry is reported in one list (exit 2)."""
from __future__ import annotations

import os
import shutil

import datasets
import pytest

import tiny_reward_models as tiny
from conftest import OFFLINE_ENV, run_script
from tiny_models import LLAMA3_SPECIALS, LLAMA3_TEMPLATE

SCRIPT = "unified_RMs_and_LM_Judges.py"


def _cache_entry(cache: str, hub_id: str, folder: str, drop: tuple[str, ...] = ()) -> None:
    """Put a stand-in folder into a hub cache as hub_id's main snapshot, without the files named in drop."""
    repo = os.path.join(cache, "models--" + hub_id.replace("/", "--"))
    snapshot = os.path.join(repo, "snapshots", "0" * 40)
    shutil.copytree(folder, snapshot, ignore=shutil.ignore_patterns(*drop))
    os.makedirs(os.path.join(repo, "refs"), exist_ok=True)
    with open(os.path.join(repo, "refs", "main"), "w", encoding="utf-8") as handle:
        handle.write("0" * 40)


@pytest.mark.slow
def test_preflight_reports_every_unloadable_entry(tmp_path):
    """A remote tokenizer that cannot be imported, a cache without shards or tokenizer files, and an implicit PRM
    whose reference model is not cached are all named in one error; the loadable entry is not; nothing is written."""
    good = tiny.build_sequence_classifier(str(tmp_path / "good"))
    intern = tiny.build_internlm2(str(tmp_path / "intern"))  # its remote tokenizer imports a missing module
    tiny.build_slow_tokenizer(intern, LLAMA3_TEMPLATE, LLAMA3_SPECIALS + ["<|reward|>"], missing_import=True)
    cache = str(tmp_path / "hub")
    _cache_entry(cache, "org/no-shards", tiny.build_qwen2_rm(str(tmp_path / "prm"), 2),
                 drop=("model-00001-of-00001.safetensors",))
    _cache_entry(cache, "org/no-tokenizer", good, drop=("tokenizer*", "special_tokens_map.json", "chat_template*"))
    _cache_entry(cache, "org/policy", tiny.build_chat_model(str(tmp_path / "policy")))
    data = str(tmp_path / "in.hf")
    rows = datasets.Dataset.from_list([{"instruction": "q", "samples": ["a"]}])
    datasets.DatasetDict({"data": rows}).save_to_disk(data)
    entries = [f"Good={good}:sequence_classifier", f"Intern={intern}:internlm2", "NoShards=org/no-shards:step_prm",
               "NoTokenizer=org/no-tokenizer:sequence_classifier",
               "Eurus=org/policy:implicit_prm:reference_model=org/not-cached"]
    out = str(tmp_path / "out.hf")
    proc = run_script(SCRIPT, "--dataset_path", data, "--output_path", out, "--reward_models", ",".join(entries),
                      env={**OFFLINE_ENV, "HF_HUB_CACHE": cache, "HF_MODULES_CACHE": str(tmp_path / "modules")})
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "4 of 5 reward models cannot be loaded" in proc.stderr
    for name, reason in (("Intern", "missing_tokenizer_dependency"), ("NoShards", "model-00001-of-00001"),
                         ("NoTokenizer", ""), ("Eurus", "org/not-cached")):
        line = next((line for line in proc.stderr.splitlines() if f"reward model {name} cannot" in line), "")
        assert line and reason in line, proc.stderr[-3000:]
    assert "reward model Good" not in proc.stderr and not os.path.exists(out)
