"""Tiny Llama chat models built on the spot: random weights, a byte-level BPE tokenizer trained on a small corpus, a
Llama-3 chat template. The example's models start from these (scripts/example_training.py); tests build them too."""
from __future__ import annotations

import os

CORPUS = [
    "Question: What is 2 + 2? Choices: A) 3 B) 4 C) 5 D) 6",
    "Please solve this step by step, then output your answer on a new line as 'The answer is: X'",
    "Step 1: add the numbers. Step 2: check the result. The answer is: B",
    "Problem: Compute \\frac{1}{2} + \\frac{1}{4}. The answer is \\boxed{\\frac{3}{4}}",
    "You are a rigorous evaluator. True False Analyze the reasoning and solution.",
    "0 1 2 3 4 5 6 7 8 9 A B C D E F G H I J + - * / = ( ) [ ] { } < > . , : ; ' \" ? ! \\",
    "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ the of and to in is that for it as",
]

LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                   "<|eot_id|>", "<|pad|>"]

LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)


def build_tokenizer(extra_special: list[str] | None = None, chat_template: str = LLAMA3_TEMPLATE,
                    vocab_size: int = 400, corpus: list[str] | None = None):
    """Train a byte-level BPE tokenizer on a small corpus (CORPUS plus corpus) and wrap it as a fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = LLAMA3_SPECIALS + list(extra_special or [])
    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    raw.train_from_iterator((CORPUS + list(corpus or [])) * 4, trainer=trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>",
                                  pad_token="<|pad|>", additional_special_tokens=list(extra_special or []))
    tok.chat_template = chat_template
    return tok


def llama_config(vocab_size: int, **overrides):
    """A tiny Llama config with head_dim 32 (vLLM CPU needs head_dim >= 32)."""
    from transformers import LlamaConfig

    fields = dict(vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=4096,
                  tie_word_embeddings=False)
    fields.update(overrides)
    return LlamaConfig(**fields)


def build_chat_model(path: str, seed: int = 0, chat_template: str = LLAMA3_TEMPLATE, corpus: list[str] | None = None,
                     vocab_size: int = 400) -> str:
    """Save a tiny random LlamaForCausalLM chat model with its tokenizer (build_tokenizer's corpus) to path."""
    import torch
    from transformers import GenerationConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    tok = build_tokenizer(chat_template=chat_template, vocab_size=vocab_size, corpus=corpus)
    config = llama_config(len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                          pad_token_id=tok.pad_token_id)
    model = LlamaForCausalLM(config)
    os.makedirs(path, exist_ok=True)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    GenerationConfig(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                     pad_token_id=tok.pad_token_id).save_pretrained(path)
    return path
