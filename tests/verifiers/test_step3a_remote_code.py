"""Remote-code reward models written for transformers 4 (legacy stand-ins in tiny_remote_rm.py): they load, score
exactly what their class computes when built directly on the CPU, and the default list passes preflight offline."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModelForSequenceClassification

from generation.reward_models.inputs import ScoreOptions
from generation.reward_models.loaders import add_remote_code_shims
from generation.reward_models.native import float_buffers, restore_buffers
from generation.reward_models.registry import RewardModelSpec
from generation.reward_models.scoring import Scorer, score_items

import tiny_reward_models as tiny
from conftest import OFFLINE_ENV, ROOT

ITEMS = [("What is 2 + 2?", "Step 1: add the numbers.\n\nThe answer is: B"),
         ("Compute 1/2 + 1/4.", "The answer is \\boxed{\\frac{3}{4}}"),
         ("Question: A B C D", "0 1 2 3\n\n4 5 6 " * 6 + "\n\nThe answer is: D")]
# remote-code stand-ins: (loader kind, builder, class, field read from the class's own output)
REMOTE_MODELS = {
    "multi_objective": ("multi_objective", tiny.build_multi_objective, "TinyGatedRM", lambda out: out.score[:, 0]),
    "decision_tree": ("decision_tree", tiny.build_multi_objective, "TinyGatedRM", lambda out: out.rewards[:, 1]),
    "sequence_classifier": ("sequence_classifier", tiny.build_remote_classifier, "TinyTwoOutputRM",
                            lambda out: out.logits[:, 0]),
    "qrm": ("multi_objective", tiny.build_quantile, "TinyQuantileRM", lambda out: out.score[:, 0]),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REMOTE_MODELS))
def test_remote_model_scores_what_its_class_computes(tmp_path, name):
    """Scores equal the class built directly (CPU, float32, buffers computed in __init__) on the same ids; the
    URM-like classifier keeps its own 2-output head and gets the attention mask it pools with; a QRM-like class
    whose from_pretrained drops our keywords (dtype, attention, loading info) loads as we ask."""
    kind, build, cls, read = REMOTE_MODELS[name]
    path = build(str(tmp_path / name))
    spec = RewardModelSpec(kind, path, kind, trust_remote_code=True)
    options = ScoreOptions(batch_size=2, max_input_length=4096)
    run = score_items(spec, ITEMS, options)
    assert not run.errors, run.errors
    assert run.attn == "sdpa"  # our choice on the CPU, not the class's own (QRM's asks for flash_attention_2)
    scorer = Scorer(spec, options)
    try:
        encoded = [scorer.encode(q, a).ids for q, a in ITEMS]
    finally:
        scorer.close()
    direct = tiny.legacy_class(cls)(AutoConfig.from_pretrained(path))
    direct.load_state_dict(load_file(os.path.join(path, "model.safetensors")), strict=False)
    direct.eval()
    with torch.no_grad():
        expected = [float(read(direct(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids)),
                                      use_cache=False))[0]) for ids in encoded]
    assert run.results == pytest.approx(expected, abs=1e-5)


def test_uninitialised_buffers_are_restored_and_bad_ones_refused(tmp_path):
    """transformers 5 leaves legacy rotary buffers uninitialised; they are rebuilt; a non-finite one is an error."""
    add_remote_code_shims()
    path = tiny.build_multi_objective(str(tmp_path / "gated"))
    model = AutoModelForSequenceClassification.from_pretrained(path, trust_remote_code=True)
    config = AutoConfig.from_pretrained(path, trust_remote_code=True)
    fresh = float_buffers(tiny.legacy_class("TinyGatedRM")(config))
    loaded = float_buffers(model)
    assert loaded.keys() == fresh.keys() and "model.rotary_emb.inv_freq" in loaded
    restored = restore_buffers(model, "gated")
    assert restored and set(restored) <= loaded.keys()  # named: the buffers that came back wrong from from_pretrained
    assert all(torch.equal(float_buffers(model)[k], v) for k, v in fresh.items())
    assert restore_buffers(model, "gated") == []
    bad = tiny.build_multi_objective(str(tmp_path / "nan"), rope_parameters={"rope_theta": -1.0,
                                                                            "rope_type": "default"})
    with pytest.raises(RuntimeError, match=r"^badrope .*non-persistent buffer model\.rotary_emb\.\w+ cannot be "
                                           r"rebuilt as a finite tensor"):
        Scorer(RewardModelSpec("badrope", bad, "multi_objective", trust_remote_code=True), ScoreOptions())


def test_buffer_check_leaves_the_config_alone(tmp_path):
    """A QRM-like __init__ edits the config it is given: the rebuild for the buffer check runs on a copy."""
    spec = RewardModelSpec("qrm", tiny.build_quantile(str(tmp_path / "qrm")), "multi_objective",
                           trust_remote_code=True)
    scorer = Scorer(spec, ScoreOptions())
    try:
        scorer.model.config.dtype = torch.float32
        before = scorer.model.config.to_dict()
        assert restore_buffers(scorer.model, "qrm") == []
        assert scorer.model.config.to_dict() == before
    finally:
        scorer.close()


def _cache_entry(cache: str, hub_id: str, folder: str) -> None:
    """Put a stand-in folder into a hub cache as hub_id's main snapshot."""
    repo = os.path.join(cache, "models--" + hub_id.replace("/", "--"))
    shutil.copytree(folder, os.path.join(repo, "snapshots", "0" * 40))
    os.makedirs(os.path.join(repo, "refs"), exist_ok=True)
    with open(os.path.join(repo, "refs", "main"), "w", encoding="utf-8") as handle:
        handle.write("0" * 40)


@pytest.mark.slow
def test_default_reward_models_pass_preflight_offline(tmp_path):
    """The default --reward_models list, with stand-ins of each kind in an offline hub cache, passes preflight in a
    fresh process (the shims must be installed before any remote code is imported)."""
    from generation.reward_models.registry import resolve
    from generation.steps.verify import DEFAULT_REWARD_MODELS

    stand_ins = {"sequence_classifier": tiny.build_sequence_classifier(str(tmp_path / "seq")),
                 "multi_objective": tiny.build_multi_objective(str(tmp_path / "gated")),
                 "qrm": tiny.build_quantile(str(tmp_path / "qrm")),  # QRM's own from_pretrained override
                 "remote_classifier": tiny.build_remote_classifier(str(tmp_path / "urm")),
                 "step_prm": tiny.build_qwen2_rm(str(tmp_path / "prm"), 2),
                 "internlm2": tiny.build_internlm2(str(tmp_path / "intern")),
                 "causal_lm": tiny.build_chat_model(str(tmp_path / "chat"))}
    stand_ins.update(decision_tree=stand_ins["multi_objective"], gpm=stand_ins["causal_lm"],
                     implicit_prm=stand_ins["causal_lm"])
    cache = str(tmp_path / "hub")
    for spec in resolve(DEFAULT_REWARD_MODELS):
        key = "remote_classifier" if spec.kind == "sequence_classifier" and spec.trust_remote_code else spec.kind
        key = "qrm" if spec.name == "QRM" else key
        _cache_entry(cache, spec.hf_id, stand_ins[key])
        if spec.reference_model and not os.path.isdir(os.path.join(cache, "models--" +
                                                                   spec.reference_model.replace("/", "--"))):
            _cache_entry(cache, spec.reference_model, stand_ins["causal_lm"])
    code = ("from generation.steps.verify import DEFAULT_REWARD_MODELS, preflight\n"
            "from generation.reward_models.registry import resolve\n"
            "preflight(resolve(DEFAULT_REWARD_MODELS)); print('preflight ok')")
    env = {**os.environ, **OFFLINE_ENV, "HF_HUB_CACHE": cache, "HF_MODULES_CACHE": str(tmp_path / "modules"),
           "PYTHONPATH": ROOT}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert proc.returncode == 0 and "preflight ok" in proc.stdout, proc.stderr[-2000:]
