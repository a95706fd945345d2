"""Truncation of reward-model inputs when the chat template rewrites the reply (Qwen3 splits it on </think>) and
when the tokenizer has no offsets (slow tokenizers): the cut falls in the texts, never in the template."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generation.reward_models.inputs import ChatEncoder, ScoreOptions
from generation.reward_models.registry import RewardModelSpec

import tiny_reward_models as tiny
from tiny_models import build_tokenizer

# Qwen3-like: a reply's "<think>...</think>" is split off and re-wrapped (the last reply always gets a think block)
QWEN3_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message.role == 'assistant' %}"
    "{%- set content = message.content %}{%- set reasoning = '' %}"
    "{%- if '</think>' in content %}"
    "{%- set reasoning = content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}"
    "{%- set content = content.split('</think>')[-1].lstrip('\\n') %}"
    "{%- endif %}"
    "{%- if loop.last %}"
    "{{- '<|im_start|>assistant\\n<think>\\n' + reasoning.strip('\\n') + '\\n</think>\\n\\n' + content.lstrip('\\n') }}"
    "{%- else %}{{- '<|im_start|>assistant\\n' + content }}{%- endif %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
THINK = ("<think>", "</think>")
QUESTION = "Question: " + "the of and to in is " * 12 + "Which one? A) 3 B) 4 C) 5 D) 6"
REPLY = "<think>\n" + "Step 1: add the numbers. Step 2: check the result. " * 30 + "\n</think>The answer is: B"


def _fast(path: str) -> str:
    """A fast tokenizer with Qwen's specials and non-special <think>/</think> tokens."""
    tok = build_tokenizer(extra_special=SPECIALS[1:], chat_template=QWEN3_TEMPLATE)
    tok.add_tokens(list(THINK))
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory) -> dict[str, str]:
    """Qwen3-like tokenizer folders: fast (offsets) and slow remote code (no offsets)."""
    root = tmp_path_factory.mktemp("qwen3")
    return {"fast": _fast(str(root / "fast")),
            "slow": tiny.build_slow_tokenizer(str(root / "slow"), QWEN3_TEMPLATE, SPECIALS, THINK)}


@pytest.mark.parametrize("budget", [60, 120, 200])
@pytest.mark.parametrize("kind", ["fast", "slow"])
def test_qwen3_think_reply_is_cut_inside_its_texts(tokenizers, kind, budget):
    """The rewritten reply is cut in its middle: the template (headers, think markers) and the final answer stay,
    the kept ids are the full input's ids in order, and the input has exactly the budget."""
    spec = RewardModelSpec("qwen3", tokenizers[kind], "sequence_classifier", trust_remote_code=kind == "slow")
    encoder = ChatEncoder(spec, ScoreOptions(max_input_length=budget))
    assert encoder.tokenizer.is_fast == (kind == "fast")
    full = encoder.encode_text(encoder.render(encoder.messages(QUESTION, REPLY)))
    enc = encoder.encode(QUESTION, REPLY)
    text = encoder.tokenizer.decode(enc.ids, skip_special_tokens=False)
    assert enc.truncated and len(enc.ids) == budget and len(full) > budget
    position = 0
    for token in enc.ids:  # a subsequence of the full input
        position = full.index(token, position) + 1
    assert text.startswith("<|im_start|>user\nQ") and text.endswith("The answer is: B<|im_end|>\n")
    assert "<|im_end|>\n<|im_start|>assistant\n<think>\n" in text and "</think>" in text
    assert "D) 6<|im_end|>" in text  # the user text loses its middle too, never its end


@pytest.fixture(scope="module")
def encoders(tokenizers) -> dict[str, ChatEncoder]:
    """One encoder per tokenizer; each example sets its own budget."""
    return {kind: ChatEncoder(RewardModelSpec(kind, path, "sequence_classifier", trust_remote_code=kind == "slow"),
                              ScoreOptions()) for kind, path in tokenizers.items()}


@settings(max_examples=120, deadline=None)
@given(kind=st.sampled_from(["fast", "slow"]), steps=st.integers(0, 40), words=st.integers(0, 30),
       budget=st.integers(60, 400), letter=st.sampled_from("ABCD"))
def test_cut_keeps_template_markers_and_answer(encoders, kind, steps, words, budget, letter):
    """Over replies and prompts of any length and any budget: an input that fits is untouched; one that does not
    keeps exactly the budget, every special and added token (headers, think markers), and the final answer, and is
    the full input with a middle taken out of the texts."""
    encoder = encoders[kind]
    encoder.options = ScoreOptions(max_input_length=budget)
    question = "Question: " + "the of and to " * words + "Which one?"
    reply = "<think>\n" + "Step 1: add the numbers. " * steps + "\n</think>The answer is: " + letter
    full = encoder.encode_text(encoder.render(encoder.messages(question, reply)))
    enc = encoder.encode(question, reply)  # the template (~30 tokens) plus a quarter of the budget always fits
    if len(full) <= budget:
        assert enc.ids == full and not enc.truncated
        return
    assert enc.truncated and len(enc.ids) == budget
    protected = [token for token in full if token in encoder.never_cut]
    assert [token for token in enc.ids if token in encoder.never_cut] == protected
    tail = encoder.encode_text(f"The answer is: {letter}<|im_end|>\n")
    assert enc.ids[-len(tail):] == full[-len(tail):]
    position = 0
    for token in enc.ids:
        position = full.index(token, position) + 1


def test_slow_tokenizer_offsets_follow_the_text(tokenizers):
    """Offsets computed for a slow tokenizer cover the text in order, as a fast tokenizer's would."""
    from generation.reward_models.truncation import token_offsets

    spec = RewardModelSpec("slow", tokenizers["slow"], "sequence_classifier", trust_remote_code=True)
    tokenizer = ChatEncoder(spec, ScoreOptions()).tokenizer
    text = tokenizer.apply_chat_template([{"role": "user", "content": QUESTION},
                                          {"role": "assistant", "content": REPLY}], tokenize=False)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    offsets = token_offsets(tokenizer, text, ids)
    assert len(offsets) == len(ids) and all(start < end for start, end in offsets)
    assert "".join(text[start:end] for start, end in offsets) == text
