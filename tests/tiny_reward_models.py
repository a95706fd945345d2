"""Tiny reward models of every loader kind, built in the test session (random weights, local tokenizer)."""
from __future__ import annotations

import json
import os
import shutil

from tiny_models import build_chat_model, build_tokenizer, llama_config

STEP_TOKEN = "<extra_0>"
REWARD_TOKEN = "<|reward|>"
REMOTE_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tiny_remote_rm.py")

# A template with an optional system turn, like Qwen's; BOS first like Llama-3.
SYSTEM_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)


def _save(model, tok, path: str) -> str:
    """Save model and tokenizer to path."""
    os.makedirs(path, exist_ok=True)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def build_sequence_classifier(path: str, arch: str = "llama", seed: int = 0, **sizes) -> str:
    """A tiny Llama/Gemma2 ForSequenceClassification (num_labels=1); arch llama-nopad has no pad token; sizes override."""
    import torch
    from transformers import Gemma2Config, Gemma2ForSequenceClassification, LlamaForSequenceClassification

    torch.manual_seed(seed)
    tok = build_tokenizer()
    ids = dict(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    if arch == "llama-nopad":  # like Llama-3 RMs: no pad token anywhere, EOS (<|eot_id|>) ends every chat
        tok.pad_token = None
        ids["pad_token_id"] = None
    if arch == "gemma2":
        config = Gemma2Config(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                              num_attention_heads=2, num_key_value_heads=2, head_dim=32, num_labels=1, **ids)
        model = Gemma2ForSequenceClassification(config)
    else:
        model = LlamaForSequenceClassification(llama_config(len(tok), num_labels=1, **ids, **sizes))
    return _save(model, tok, path)


def _remote(path: str, cls: str, auto: str, extra_special: list[str] | None = None, seed: int = 0,
            template: str = SYSTEM_TEMPLATE, **config_fields) -> str:
    """Save a model whose class lives in a modeling file in its folder (loaded with trust_remote_code)."""
    import importlib

    import torch

    torch.manual_seed(seed)
    tok = build_tokenizer(extra_special=extra_special, chat_template=template)
    fields = dict(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    fields.update({k: (tok.convert_tokens_to_ids(v) if k.endswith("token_id") else v) for k, v in config_fields.items()})
    config = llama_config(len(tok), **fields)
    module = importlib.import_module("tiny_remote_rm")
    model = getattr(module, cls)(config)
    model.config.auto_map = {auto: f"modeling_tiny_rm.{cls}"}
    _save(model, tok, path)
    shutil.copy(REMOTE_FILE, os.path.join(path, "modeling_tiny_rm.py"))
    return path


def build_multi_objective(path: str) -> str:
    """ArmoRM-like gated head: `score` differs from `logits`."""
    return _remote(path, "TinyGatedRM", "AutoModelForSequenceClassification")


def build_remote_classifier(path: str) -> str:
    """URM-like remote-code sequence classifier with two outputs per sequence (num_labels=2 in its config)."""
    return _remote(path, "TinyTwoOutputRM", "AutoModelForSequenceClassification", num_labels=2)


def build_scalar_head(path: str) -> str:
    """Qwen2.5-Math-RM-like AutoModel returning (scores,)."""
    return _remote(path, "TinyScalarRM", "AutoModel")


def build_internlm2(path: str) -> str:
    """InternLM2-reward-like model with a reward token and get_score."""
    return _remote(path, "TinyInternLM2RM", "AutoModel", extra_special=[REWARD_TOKEN], reward_token_id=REWARD_TOKEN)


def build_step_prm(path: str) -> str:
    """Qwen2.5-Math-PRM-like model with an <extra_0> step token and per-token 2-class logits."""
    return _remote(path, "TinyPRM", "AutoModel", extra_special=[STEP_TOKEN])


def build_implicit_pair(folder: str) -> tuple[str, str]:
    """Policy and reference causal LMs sharing one tokenizer (Eurus-style implicit PRM)."""
    return (build_chat_model(os.path.join(folder, "policy"), seed=1),
            build_chat_model(os.path.join(folder, "reference"), seed=2))


def build_custom_head(path: str, kind: str, seed: int = 0) -> str:
    """A causal-LM-style checkpoint (model.* weights) plus GPM value/prompt heads or an INF-ORM score MLP."""
    import torch
    from safetensors.torch import save_file
    from transformers import LlamaModel

    torch.manual_seed(seed)
    tok = build_tokenizer()
    config = llama_config(len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                          pad_token_id=tok.pad_token_id)
    config.architectures = ["LlamaForCausalLM"]
    base = LlamaModel(config)
    tensors = {f"model.{k}": v.contiguous() for k, v in base.state_dict().items()}
    hidden = config.hidden_size
    if kind == "gpm":
        tensors["value_head.weight"] = torch.randn(6, hidden)
        tensors["prompt_head.weight"] = torch.randn(3, hidden)
    else:
        tensors.update({"score.0.weight": torch.randn(hidden, hidden) / 8, "score.0.bias": torch.randn(hidden),
                        "score.2.weight": torch.randn(1, hidden) / 8, "score.2.bias": torch.randn(1)})
    os.makedirs(path, exist_ok=True)
    save_file(tensors, os.path.join(path, "model.safetensors"), metadata={"format": "pt"})
    config.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def build_ldl(path: str, seed: int = 0, objectives: int = 4) -> str:
    """An LDL-Reward-like checkpoint: a base model saved alone plus regression_layer.pt and gating_layer.pt."""
    import torch
    from transformers import LlamaModel

    torch.manual_seed(seed)
    tok = build_tokenizer()
    config = llama_config(len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                          pad_token_id=tok.pad_token_id)
    hidden = config.hidden_size
    _save(LlamaModel(config), tok, path)
    with open(os.path.join(path, "config.json"), encoding="utf-8") as handle:
        fields = json.load(handle)
    fields.update(softmax=True, temperature=0.5)  # the card class's gating options, read from config.json
    with open(os.path.join(path, "config.json"), "w", encoding="utf-8") as handle:
        json.dump(fields, handle)
    regression = torch.nn.Sequential(torch.nn.Linear(hidden, 16), torch.nn.LeakyReLU(), torch.nn.Linear(16, 16),
                                     torch.nn.LeakyReLU(), torch.nn.Linear(16, objectives * 10))
    gating = torch.nn.Sequential(torch.nn.Linear(hidden, 8), torch.nn.LeakyReLU(), torch.nn.Dropout(0.0),
                                 torch.nn.Linear(8, 8), torch.nn.LeakyReLU(), torch.nn.Dropout(0.0),
                                 torch.nn.Linear(8, objectives))
    for name, module in (("regression", regression), ("gating", gating)):
        torch.save({f"network.{k}": v for k, v in module.state_dict().items()}, os.path.join(path, f"{name}_layer.pt"))
    return path


def write_registry(path: str, entries: list[dict]) -> str:
    """Write a --rm_registry JSON file."""
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(entries, handle)
    return path
