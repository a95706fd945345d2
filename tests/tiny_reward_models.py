"""Tiny reward models of every loader kind, built in the test session (random weights, local tokenizer)."""
from __future__ import annotations

import contextlib
import json
import os
import shutil

from tiny_models import build_chat_model, build_tokenizer, llama_config

STEP_TOKEN = "<extra_0>"
REWARD_TOKEN = "<|reward|>"
REMOTE_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tiny_remote_rm.py")
INTERNLM2_CONFIG_FILE = os.path.join(os.path.dirname(REMOTE_FILE), "tiny_internlm2_config.py")
SLOW_TOKENIZER_FILE = os.path.join(os.path.dirname(REMOTE_FILE), "tiny_slow_tokenizer.py")

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
    """A tiny Llama/Gemma2 ForSequenceClassification (num_labels=1); llama-nopad has no pad token; sizes override."""
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


@contextlib.contextmanager
def legacy_docstring():
    """Let this process import the legacy stand-in to build it, leaving no shim behind for the code under test."""
    from transformers.models.llama import modeling_llama

    added = not hasattr(modeling_llama, "LLAMA_INPUTS_DOCSTRING")
    if added:
        modeling_llama.LLAMA_INPUTS_DOCSTRING = ""
    try:
        yield
    finally:
        if added:
            del modeling_llama.LLAMA_INPUTS_DOCSTRING


def legacy_class(name: str):
    """A class of the legacy stand-in module (tiny_remote_rm.py), imported as this process's builder code."""
    import importlib

    with legacy_docstring():
        return getattr(importlib.import_module("tiny_remote_rm"), name)


def _remote(path: str, cls: str, auto: str, seed: int = 0, **config_fields) -> str:
    """Save a model whose legacy class lives in a modeling file in its folder (loaded with trust_remote_code)."""
    import torch

    torch.manual_seed(seed)
    tok = build_tokenizer(chat_template=SYSTEM_TEMPLATE)
    config = llama_config(len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                          pad_token_id=tok.pad_token_id, use_cache=True, **config_fields)
    model = legacy_class(cls)(config)
    model.config.auto_map = {auto: f"modeling_tiny_rm.{cls}"}
    _save(model, tok, path)
    shutil.copy(REMOTE_FILE, os.path.join(path, "modeling_tiny_rm.py"))
    return path


def build_multi_objective(path: str, **config_fields) -> str:
    """ArmoRM-like gated head (legacy remote code): `score` differs from `logits`."""
    return _remote(path, "TinyGatedRM", "AutoModelForSequenceClassification", **config_fields)


def build_quantile(path: str) -> str:
    """QRM-like gated head whose class overrides from_pretrained (dropping our keywords) and edits its config."""
    return _remote(path, "TinyQuantileRM", "AutoModelForSequenceClassification")


def build_remote_classifier(path: str) -> str:
    """URM-like remote-code sequence classifier with two outputs per sequence (num_labels=2 in its config)."""
    return _remote(path, "TinyTwoOutputRM", "AutoModelForSequenceClassification", num_labels=2)


def _save_tensors(path: str, tensors: dict, config: dict, tok) -> str:
    """Write a checkpoint as the hub stores it: safetensors with an index, config.json, tokenizer files."""
    from safetensors.torch import save_file

    os.makedirs(path, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(path, "model-00001-of-00001.safetensors"),
              metadata={"format": "pt"})
    index = {"metadata": {}, "weight_map": {k: "model-00001-of-00001.safetensors" for k in tensors}}
    with open(os.path.join(path, "model.safetensors.index.json"), "w", encoding="utf-8") as handle:
        json.dump(index, handle)
    with open(os.path.join(path, "config.json"), "w", encoding="utf-8") as handle:
        json.dump(config, handle)
    tok.save_pretrained(path)
    return path


def build_qwen2_rm(path: str, labels: int, seed: int = 0, head: bool = True) -> str:
    """A Qwen2.5-Math-RM (labels=1) / -PRM (labels=2) checkpoint: Qwen2 trunk (model.*) plus score.0/score.2."""
    import torch
    from transformers import Qwen2Config, Qwen2Model

    torch.manual_seed(seed)
    tok = build_tokenizer(extra_special=[STEP_TOKEN], chat_template=SYSTEM_TEMPLATE)
    config = Qwen2Config(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=4096,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                         use_cache=True, tie_word_embeddings=False)
    trunk = Qwen2Model(config)
    for name, param in trunk.named_parameters():  # random norms and biases too, so a wrong mapping shows
        if name.endswith(("norm.weight", "layernorm.weight", ".bias")):
            param.data.normal_(1.0 if name.endswith("weight") else 0.0, 0.2)
    tensors = {f"model.{k}": v for k, v in trunk.state_dict().items()}
    if head:
        tensors.update({"score.0.weight": torch.randn(64, 64) / 8, "score.0.bias": torch.randn(64) / 4,
                        "score.2.weight": torch.randn(labels, 64) / 4, "score.2.bias": torch.randn(labels)})
    arch = "Qwen2ForProcessRewardModel" if labels == 2 else "Qwen2ForRewardModel"
    fields = {**config.to_dict(), "architectures": [arch], "num_labels": labels,
              "auto_map": {"AutoConfig": "configuration_qwen2_rm.Qwen2RMConfig",
                           "AutoModel": f"modeling_qwen2_rm.{arch}"}}
    return _save_tensors(path, tensors, fields, tok)


INTERNLM2_SHAPE = dict(hidden_size=128, intermediate_size=192, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, rms_norm_eps=1e-6, rope_theta=1000000.0)


def build_internlm2(path: str, seed: int = 0) -> str:
    """An InternLM2 reward checkpoint with the hub's names: tok_embeddings, fused grouped wqkv, wo, w1/w2/w3, v_head."""
    import torch

    torch.manual_seed(seed)
    tok = build_tokenizer(extra_special=[REWARD_TOKEN], chat_template=SYSTEM_TEMPLATE)
    s = INTERNLM2_SHAPE
    hidden, inter = s["hidden_size"], s["intermediate_size"]
    head_dim = hidden // s["num_attention_heads"]
    qkv_rows = (s["num_attention_heads"] + 2 * s["num_key_value_heads"]) * head_dim
    rand = lambda *shape: torch.randn(*shape) / shape[-1] ** 0.5
    tensors = {"model.tok_embeddings.weight": torch.randn(len(tok), hidden), "v_head.weight": rand(1, hidden),
               "model.norm.weight": 1 + torch.randn(hidden) / 5}
    for layer in range(s["num_hidden_layers"]):
        prefix = f"model.layers.{layer}."
        tensors.update({prefix + "attention.wqkv.weight": rand(qkv_rows, hidden),
                        prefix + "attention.wo.weight": rand(hidden, hidden),
                        prefix + "feed_forward.w1.weight": rand(inter, hidden),
                        prefix + "feed_forward.w3.weight": rand(inter, hidden),
                        prefix + "feed_forward.w2.weight": rand(hidden, inter),
                        prefix + "attention_norm.weight": 1 + torch.randn(hidden) / 5,
                        prefix + "ffn_norm.weight": 1 + torch.randn(hidden) / 5})
    config = {**s, "architectures": ["InternLM2ForRewardModel"], "model_type": "internlm2", "vocab_size": len(tok),
              "auto_map": {"AutoConfig": "configuration_internlm2.InternLM2Config",
                           "AutoModel": "modeling_internlm2.InternLM2ForRewardModel"},
              "bias": False, "hidden_act": "silu", "max_position_embeddings": 4096, "rope_scaling": None,
              "use_cache": True, "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id,
              "pad_token_id": tok.pad_token_id, "reward_token_id": tok.convert_tokens_to_ids(REWARD_TOKEN),
              "tie_word_embeddings": False}
    _save_tensors(path, tensors, config, tok)
    shutil.copy(INTERNLM2_CONFIG_FILE, os.path.join(path, "configuration_internlm2.py"))  # the hub's config class
    return path


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


def build_slow_tokenizer(path: str, chat_template: str, specials: list[str], added: tuple[str, ...] = (),
                         missing_import: bool = False) -> str:
    """Save a slow remote-code tokenizer (tiny_slow_tokenizer.py as tokenization_tiny.py) into path: the corpus'
    words and every printable character, specials, added (non-special) tokens; missing_import makes its code import
    a module that does not exist."""
    import string

    from tiny_models import CORPUS
    from tiny_slow_tokenizer import TinySlowTokenizer

    os.makedirs(path, exist_ok=True)
    words = sorted({w for line in CORPUS for w in line.split() if w.isalnum()} | set(string.printable))
    vocab_file = os.path.join(path, "vocab.json")
    with open(vocab_file, "w", encoding="utf-8") as handle:
        json.dump({token: index for index, token in enumerate(["<unk>", *words])}, handle)
    tok = TinySlowTokenizer(vocab_file, unk_token="<unk>", bos_token=specials[0], eos_token=specials[-1],
                            additional_special_tokens=specials[1:-1])
    tok.add_tokens(list(added))
    tok.chat_template = chat_template
    tok.save_pretrained(path)
    with open(os.path.join(path, "tokenizer_config.json"), encoding="utf-8") as handle:
        fields = json.load(handle)
    fields["auto_map"] = {"AutoTokenizer": ["tokenization_tiny.TinySlowTokenizer", None]}
    with open(os.path.join(path, "tokenizer_config.json"), "w", encoding="utf-8") as handle:
        json.dump(fields, handle)
    with open(SLOW_TOKENIZER_FILE, encoding="utf-8") as handle:
        code = handle.read()
    with open(os.path.join(path, "tokenization_tiny.py"), "w", encoding="utf-8") as handle:
        handle.write(("import missing_tokenizer_dependency  # noqa: F401\n" if missing_import else "") + code)
    return path
