"""Tiny models for tests only (remote code, Llama-3-Instruct-like EOS); the tiny chat model, its tokenizer and
templates live in scripts/example_models.py, shared with the example."""
from __future__ import annotations

import os

from example_models import CORPUS, LLAMA3_SPECIALS, LLAMA3_TEMPLATE, build_chat_model, build_tokenizer, llama_config

__all__ = ["CORPUS", "LLAMA3_SPECIALS", "LLAMA3_TEMPLATE", "NO_SYSTEM_TEMPLATE", "build_chat_model",
           "build_eot_model", "build_remote_chat_model", "build_tokenizer", "llama_config"]

# A Gemma-like template that rejects the system role, as Gemma and Mistral templates do.
NO_SYSTEM_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)


def build_remote_chat_model(path: str) -> str:
    """A tiny chat model whose config and class live in a modeling file in its folder (needs trust_remote_code)."""
    import shutil

    import torch

    from tiny_remote_lm import TinyRemoteConfig, TinyRemoteForCausalLM

    torch.manual_seed(0)
    tok = build_tokenizer()
    config = TinyRemoteConfig(**llama_config(len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                             pad_token_id=tok.pad_token_id).to_diff_dict())
    config.auto_map = {"AutoConfig": "modeling_tiny_lm.TinyRemoteConfig",
                       "AutoModelForCausalLM": "modeling_tiny_lm.TinyRemoteForCausalLM"}
    TinyRemoteForCausalLM(config).save_pretrained(path)
    tok.save_pretrained(path)
    shutil.copy(os.path.join(os.path.dirname(os.path.abspath(__file__)), "tiny_remote_lm.py"),
                os.path.join(path, "modeling_tiny_lm.py"))
    return path


def build_eot_model(path: str) -> str:
    """A Llama-3-Instruct-like model: tokenizer EOS <|end_of_text|>, generation_config EOS [<|end_of_text|>,
    <|eot_id|>], and weights that always emit <|eot_id|> (so only the generation_config list stops it)."""
    import torch
    from transformers import GenerationConfig, LlamaForCausalLM

    tok = build_tokenizer()
    tok.eos_token = "<|end_of_text|>"
    end, eot = tok.convert_tokens_to_ids(["<|end_of_text|>", "<|eot_id|>"])
    model = LlamaForCausalLM(llama_config(len(tok), bos_token_id=tok.bos_token_id, eos_token_id=[end, eot],
                                          pad_token_id=tok.pad_token_id))
    with torch.no_grad():  # the residual stream is the embedding; its first dimension is a large constant
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.embed_tokens.weight[:, 0] = 100.0
        model.model.norm.weight.zero_()
        model.model.norm.weight[0] = 1.0
        model.lm_head.weight.zero_()
        model.lm_head.weight[eot, 0] = 10.0
    os.makedirs(path, exist_ok=True)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    GenerationConfig(bos_token_id=tok.bos_token_id, eos_token_id=[end, eot],
                     pad_token_id=tok.pad_token_id).save_pretrained(path)
    return path
