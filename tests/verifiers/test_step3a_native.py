"""Native loaders (Qwen2.5-Math PRM/RM, InternLM2 reward) against a reference forward written here from the papers'
and model code's formulas, on checkpoints with the hub's parameter names; bad checkpoints give one-line errors."""
from __future__ import annotations

import json
import math
import os

import pytest
import torch
from safetensors.torch import load_file

from generation.reward_models.inputs import ScoreOptions
from generation.reward_models.registry import RewardModelSpec
from generation.reward_models.scoring import Scorer, score_items

import tiny_reward_models as tiny

ITEMS = [("What is 2 + 2?", "Step 1: add the numbers.\n\nStep 2: check the result.\n\nThe answer is: B"),
         ("Compute 1/2 + 1/4.", "The answer is \\boxed{\\frac{3}{4}}"),
         ("Question: A B C D", "0 1 2 3\n\n4 5 6\n\nThe answer is: D")]


def rms_norm(x, weight, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def rotate(x, theta):
    """Rotary position embedding (rotate-half form) of x [heads, T, d]."""
    d = x.shape[-1]
    freq = 1.0 / theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
    angle = torch.arange(x.shape[1], dtype=torch.float64)[:, None] * freq[None]
    angle = torch.cat([angle, angle], -1)
    rotated = torch.cat([-x[..., d // 2:], x[..., :d // 2]], -1)
    return x * angle.cos().float() + rotated * angle.sin().float()


def reference_hidden(t: dict, cfg: dict, ids: list[int], internlm2: bool):
    """Final hidden states of one sequence through a GQA decoder read straight from the checkpoint tensors."""
    heads, kv, hidden = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["hidden_size"]
    d, eps = hidden // heads, cfg["rms_norm_eps"]
    theta = cfg.get("rope_theta") or cfg["rope_parameters"]["rope_theta"]
    names = ({"emb": "tok_embeddings", "in": "attention_norm", "post": "ffn_norm", "o": "attention.wo",
              "gate": "feed_forward.w1", "up": "feed_forward.w3", "down": "feed_forward.w2"} if internlm2 else
             {"emb": "embed_tokens", "in": "input_layernorm", "post": "post_attention_layernorm",
              "o": "self_attn.o_proj", "gate": "mlp.gate_proj", "up": "mlp.up_proj", "down": "mlp.down_proj"})
    h = t[f"model.{names['emb']}.weight"][torch.tensor(ids)]
    steps = len(ids)
    causal = torch.full((steps, steps), float("-inf")).triu(1)
    for layer in range(cfg["num_hidden_layers"]):
        w = lambda name: t[f"model.layers.{layer}.{name}"]
        x = rms_norm(h, w(f"{names['in']}.weight"), eps)
        if internlm2:  # per key/value head: its query group, then its key, then its value (the remote code's rearrange)
            fused = (x @ w("attention.wqkv.weight").T).view(steps, kv, heads // kv + 2, d)
            q, k, v = fused[:, :, :-2].reshape(steps, heads, d), fused[:, :, -2], fused[:, :, -1]
        else:
            q, k, v = ((x @ w(f"self_attn.{p}_proj.weight").T + w(f"self_attn.{p}_proj.bias")).view(steps, -1, d)
                       for p in "qkv")
        q, k, v = (y.transpose(0, 1) for y in (q, k, v))
        q, k = rotate(q, theta), rotate(k, theta)
        k, v = k.repeat_interleave(heads // kv, 0), v.repeat_interleave(heads // kv, 0)
        attention = ((q @ k.transpose(-1, -2)) / math.sqrt(d) + causal).softmax(-1) @ v
        h = h + attention.transpose(0, 1).reshape(steps, hidden) @ w(f"{names['o']}.weight").T
        x = rms_norm(h, w(f"{names['post']}.weight"), eps)
        gate = torch.nn.functional.silu(x @ w(f"{names['gate']}.weight").T)
        h = h + (gate * (x @ w(f"{names['up']}.weight").T)) @ w(f"{names['down']}.weight").T
    return rms_norm(h, t["model.norm.weight"], eps)


def score_head(t, h):
    return torch.relu(h @ t["score.0.weight"].T + t["score.0.bias"]) @ t["score.2.weight"].T + t["score.2.bias"]


def checkpoint(path: str) -> tuple[dict, dict]:
    with open(os.path.join(path, "config.json"), encoding="utf-8") as handle:
        return load_file(os.path.join(path, "model-00001-of-00001.safetensors")), json.load(handle)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("native"))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["step_prm", "scalar_head", "internlm2"])
def test_native_loader_matches_reference_forward(root, kind):
    """Batched scores of the native loader equal the reference decoder plus the card's read-out (1e-4)."""
    path = f"{root}/{kind}"
    if kind == "internlm2":
        tiny.build_internlm2(path)
    else:
        tiny.build_qwen2_rm(path, 2 if kind == "step_prm" else 1)
    system = "Please reason step by step." if kind != "internlm2" else None
    spec = RewardModelSpec(kind, path, kind, system_prompt=system)
    options = ScoreOptions(batch_size=3, max_input_length=4096)
    run = score_items(spec, ITEMS, options)
    assert not run.errors
    tensors, cfg = checkpoint(path)
    scorer = Scorer(spec, options)
    try:
        encoded = [scorer.encode(q, a).ids for q, a in ITEMS]
        step_id = scorer.encoder.step_id
    finally:
        scorer.close()
    for ids, got in zip(encoded, run.results):
        with torch.no_grad():
            h = reference_hidden(tensors, cfg, ids, internlm2=kind == "internlm2")
            if kind == "internlm2":
                assert ids[-1] == cfg["reward_token_id"]
                expected = float(h[-1] @ tensors["v_head.weight"][0])
            elif kind == "scalar_head":
                expected = float(score_head(tensors, h)[-1, 0])
            else:
                probs = score_head(tensors, h).softmax(-1)[:, 1]
                expected = [float(p) for p, token in zip(probs, ids) if token == step_id]
        assert got == pytest.approx(expected, abs=1e-4)


def test_bad_native_checkpoints_are_one_line_errors(root, tmp_path):
    """Head weights missing, a folder that is no model, a wrong model type: one-line errors naming the model."""
    no_head = tiny.build_qwen2_rm(str(tmp_path / "nohead"), 2, head=False)
    with pytest.raises(RuntimeError, match="no tensors named score"):
        Scorer(RewardModelSpec("nohead", no_head, "step_prm"), ScoreOptions())
    wrong_labels = tiny.build_qwen2_rm(str(tmp_path / "rm"), 1)
    with pytest.raises(RuntimeError, match=r"expected input 64 and 2 output"):
        Scorer(RewardModelSpec("rm", wrong_labels, "step_prm"), ScoreOptions())
    with pytest.raises(RuntimeError, match="is it an InternLM2 reward model"):
        Scorer(RewardModelSpec("x", wrong_labels, "internlm2"), ScoreOptions())


def card_implicit_prm(policy, reference, tok, question: str, steps: list[str], beta: float) -> list[float]:
    """The EurusPRM card's read-out, written out step by step from the card (one sample, no batching)."""
    def chat(content: str) -> str:
        turns = [{"role": "user", "content": question}, {"role": "assistant", "content": content}]
        return tok.apply_chat_template(turns, tokenize=False, add_generation_prompt=False)

    input_ids = tok(chat("\n\n".join(steps)), add_special_tokens=False, return_tensors="pt")["input_ids"]
    step_last_tokens = []
    for k in range(len(steps) + 1):
        conv = chat("\n\n".join(steps[:k])).strip()
        if k != 0 and k != len(steps):
            conv += "\n\n"
        step_last_tokens.append(len(tok.encode(conv, add_special_tokens=False)) - 2)
    label_mask = torch.tensor([[0] * step_last_tokens[0] + [1] * (input_ids.shape[-1] - step_last_tokens[0])])

    def get_logps(model):
        logits = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids)).logits[:, :-1, :]
        return torch.gather(logits.log_softmax(-1), dim=2, index=input_ids[:, 1:].unsqueeze(2)).squeeze(2)

    with torch.no_grad():
        reward = beta * (get_logps(policy) - get_logps(reference)) * label_mask[:, 1:]
    return reward.cumsum(-1).gather(-1, torch.tensor([step_last_tokens[1:]]))[0].tolist()


@pytest.mark.slow
def test_eurus_reads_the_card_positions(root):
    """Implicit PRM step scores equal the card's computation (last prompt token on, through each separator and the
    next token, the end-of-turn token for the last step), batched with other lengths."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    policy, reference = tiny.build_implicit_pair(f"{root}/eurus")
    spec = RewardModelSpec("eurus", policy, "implicit_prm", reference_model=reference, beta=0.5)
    run = score_items(spec, ITEMS, ScoreOptions(batch_size=3, max_input_length=4096))
    assert not run.errors
    tok = AutoTokenizer.from_pretrained(policy)
    models = [AutoModelForCausalLM.from_pretrained(p).eval() for p in (policy, reference)]
    for (question, sample), got in zip(ITEMS, run.results):
        steps = [s.strip() for s in sample.split("\n\n")]
        assert got == pytest.approx(card_implicit_prm(*models, tok, question, steps, 0.5), abs=1e-5)
