"""Step 3a registry: every VERIFIERS reward model is registered, VERIFIERS.md matches the registries."""
from __future__ import annotations

import json
import os

import pytest

from generation import verifiers_doc
from generation.common.cli import UserError
from generation.reward_models.registry import BY_NAME, KINDS, REGISTRY, load_registry_file, parse_path_spec, resolve

from conftest import ROOT

VERIFIERS_RMS = ("GRM ArmorRM URM QRM GPM GRMLlama32 OffsetBias GRMGemma Skyworks SkyworksGemma QRMGemma "
                 "LDLRewardGemma QwenPRM Qwen72B Qwen72BPRM EurusPRMStage1 EurusPRMStage2 InternLM2RewardModel "
                 "InternLM2Reward7B DecisionTreeReward8B DecisionTreeReward27B INFORM").split()


def test_every_verifiers_reward_model_is_registered():
    """All 22 reward models of the seed's VERIFIERS list, plus the small Skywork-Reward-V2 series."""
    assert set(VERIFIERS_RMS) <= set(BY_NAME)
    assert "Skywork/Skywork-Reward-V2-Qwen3-0.6B" in {s.hf_id for s in REGISTRY}
    assert len({s.hf_id for s in REGISTRY}) == len(REGISTRY)
    for spec in REGISTRY:
        assert spec.kind in KINDS and spec.memory_gb > 0 and spec.dtype in ("float32", "bfloat16", "float16")
    assert BY_NAME["QwenPRM"].columns() == ["QwenPRM_min_scores", "QwenPRM_max_scores", "QwenPRM_avg_scores",
                                            "QwenPRM_step_scores"]
    assert BY_NAME["Qwen72BPRM"].is_prm and BY_NAME["EurusPRMStage1"].reference_model
    assert BY_NAME["GRM"].columns() == ["GRM_scores"]
    # the card's own class (base model + .pt heads), not a sequence classifier with a random `score` head
    assert BY_NAME["LDLRewardGemma"].kind == "ldl" and not BY_NAME["LDLRewardGemma"].trust_remote_code


def test_every_loader_kind_has_one_loader_row():
    """Adding a kind is adding a row: KINDS (registry: native / remote code / vLLM) and LOADERS (code) share keys."""
    from generation.reward_models.inputs import FORMATS
    from generation.reward_models.loaders import LOADERS

    assert LOADERS.keys() == KINDS.keys() and set(FORMATS) <= set(KINDS)
    assert {k for k, kind in KINDS.items() if kind.loading == "remote code"} == {"multi_objective", "decision_tree"}
    assert BY_NAME["URM"].loading == "remote code" and BY_NAME["GRM"].loading == "native"
    assert all(BY_NAME[n].loading == "native" for n in ("QwenPRM", "Qwen72B", "Qwen72BPRM", "InternLM2Reward7B"))


def test_verifiers_md_matches_the_registries():
    """VERIFIERS.md is what verifiers_doc.py generates (run `python generation/verifiers_doc.py --write`)."""
    text = verifiers_doc.render()
    with open(verifiers_doc.VERIFIERS_PATH, encoding="utf-8") as handle:
        assert handle.read() == text, "VERIFIERS.md is stale: run python generation/verifiers_doc.py --write"
    for spec in REGISTRY:
        assert f"| {spec.name} | `{spec.hf_id}`" in text
    assert "## LM judges" in text and "\n|" in text.split("## LM judges")[1]


def test_registration_by_path_and_file(tmp_path):
    """NAME=PATH:KIND and --rm_registry entries resolve; bad ones name what is wrong."""
    spec = parse_path_spec(f"Mine={tmp_path}:step_prm")
    assert spec.hf_id == str(tmp_path) and not spec.trust_remote_code and spec.is_prm  # loaded natively
    assert parse_path_spec(f"Gated={tmp_path}:multi_objective").trust_remote_code
    assert not parse_path_spec(f"Plain={tmp_path}:sequence_classifier").trust_remote_code
    path = tmp_path / "reg.json"
    path.write_text(json.dumps([{"name": "Eu", "hf_id": "a/b", "kind": "implicit_prm", "reference_model": "c/d"}]))
    extra = load_registry_file(str(path))
    assert [s.name for s in resolve("Eu,GRM", extra)] == ["Eu", "GRM"]
    path.write_text(json.dumps([{"name": "Eu", "hf_id": "a/b", "kind": "nope"}]))
    with pytest.raises(UserError, match="bad entry"):
        load_registry_file(str(path))
    with pytest.raises(UserError, match="listed twice"):
        resolve("GRM,GRM")


def test_path_spec_options(tmp_path):
    """NAME=PATH:KIND[:key=value,...] sets trust_remote_code and an implicit PRM's reference model; what it cannot
    say is refused with a pointer to --rm_registry."""
    urm = parse_path_spec(f"Urm={tmp_path}:sequence_classifier:trust_remote_code=true")
    assert urm.trust_remote_code and urm.remote_model and urm.hf_id == str(tmp_path)
    eurus, grm = resolve(f"Eu=org/policy:implicit_prm:reference_model={tmp_path},trust_remote_code=false,GRM")
    assert (eurus.reference_model, eurus.trust_remote_code, grm.name) == (str(tmp_path), False, "GRM")
    refused = {
        "Eu=org/policy:implicit_prm": "needs its reference model: NAME=PATH:implicit_prm:reference_model=",
        "X=org/x:sequence_classifier:beta=0.1": r"options are trust_remote_code, reference_model, not beta; "
                                                r".*--rm_registry",
        "X=org/x:multi_objective:trust_remote_code=false": "true for multi_objective",
        "X=org/x:sequence_classifier:trust_remote_code=maybe": "must be true or false",
        "X=org/x:gpm:reference_model=org/r": "implicit_prm entries only",
    }
    for text, message in refused.items():
        with pytest.raises(UserError, match=message):
            resolve(text)
    path = tmp_path / "reg.json"
    path.write_text(json.dumps([{"name": "Eu", "hf_id": "a/b", "kind": "implicit_prm"}]))
    with pytest.raises(UserError, match="bad entry .*needs reference_model"):
        load_registry_file(str(path))


def test_rm_backend_help_names_what_vllm_scores():
    """--rm_backend's help, Step 3's docs page and VERIFIERS.md name the same vLLM classes, from the kinds table."""
    from generation.steps.verify import build_parser

    help_text = " ".join(build_parser().format_help().split())
    with open(os.path.join(ROOT, "docs", "step3-verifiers.md"), encoding="utf-8") as handle:
        readme = handle.read()
    with open(os.path.join(ROOT, "VERIFIERS.md"), encoding="utf-8") as handle:
        verifiers = handle.read()
    for kind, spec in KINDS.items():
        if spec.vllm:
            assert f"{kind}: {spec.vllm}" in help_text, help_text
            assert spec.vllm in readme or spec.vllm.startswith("its own"), spec.vllm
            assert f"| {kind} |" in verifiers and spec.vllm in verifiers
