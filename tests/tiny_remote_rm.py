"""Remote-code reward heads for tests, written like pre-transformers-5 hub code (copied into tiny model folders).

They carry the legacy patterns of the registry's remote code: the old docstring-constant import, a rotary embedding
whose inv_freq and cos/sin caches are non-persistent buffers computed in __init__, `DynamicCache.from_legacy_cache`
when `use_cache` is on (the config says true), and an `_init_weights` that only touches Linear and Embedding.
"""
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn
from transformers import LlamaModel, LlamaPreTrainedModel
from transformers.cache_utils import Cache, DynamicCache
from transformers.models.llama.modeling_llama import LLAMA_INPUTS_DOCSTRING  # noqa: F401 - as ArmoRM/QRM import it
from transformers.utils import ModelOutput


@dataclass
class GatedOutput(ModelOutput):
    """Like ArmoRM/QRM outputs: logits, per-objective rewards and the gated score."""

    logits: Optional[torch.Tensor] = None
    rewards: Optional[torch.Tensor] = None
    score: Optional[torch.Tensor] = None


def rope_theta(config) -> float:
    """The rotary base of a config (older configs hold rope_theta, transformers 5 a rope_parameters dict)."""
    theta = getattr(config, "rope_theta", None)
    return float(theta if theta is not None else config.rope_parameters["rope_theta"])


class LlamaRotaryEmbedding(nn.Module):
    """The pre-4.45 rotary embedding: every value is a non-persistent buffer computed once in __init__."""

    def __init__(self, dim: int, max_position_embeddings: int, base: float) -> None:
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        positions = torch.arange(max_position_embeddings, dtype=torch.float32)
        angles = torch.cat([torch.outer(positions, inv_freq)] * 2, dim=-1)
        self.register_buffer("cos_cached", angles.cos().to(torch.get_default_dtype()), persistent=False)
        self.register_buffer("sin_cached", angles.sin().to(torch.get_default_dtype()), persistent=False)

    def forward(self, x, position_ids):
        return self.cos_cached[position_ids].to(x.dtype), self.sin_cached[position_ids].to(x.dtype)


class _Base(LlamaPreTrainedModel):
    """A Llama trunk with the legacy rotary module whose hidden state at the last attended token feeds a head."""

    def __init__(self, config, head_dim: int) -> None:
        super().__init__(config)
        self.model = LlamaModel(config)
        attention_dim = config.hidden_size // config.num_attention_heads
        self.model.rotary_emb = LlamaRotaryEmbedding(attention_dim, config.max_position_embeddings,
                                                     rope_theta(config))
        self.head = nn.Linear(config.hidden_size, head_dim, bias=False)
        self.post_init()

    def _init_weights(self, module):
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            module.weight.data.normal_(mean=0.0, std=std)
            if module.bias is not None:
                module.bias.data.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.data.normal_(mean=0.0, std=std)

    def hidden(self, input_ids, attention_mask, use_cache=None, past_key_values=None):
        use_cache = use_cache if use_cache is not None else self.config.use_cache
        if use_cache and not isinstance(past_key_values, Cache):  # pre-4.47 code; gone in transformers 5
            past_key_values = DynamicCache.from_legacy_cache(past_key_values)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        states = self.model(input_ids=input_ids, attention_mask=attention_mask, past_key_values=past_key_values,
                            use_cache=use_cache).last_hidden_state
        last = attention_mask.long().cumsum(dim=1).argmax(dim=1)
        return states, states[torch.arange(states.shape[0]), last]


class TinyGatedRM(_Base):
    """Multi-objective head: `score` is a gated mix of 5 rewards; `logits` deliberately differ from it."""

    attributes = ["helpfulness", "correctness", "coherence", "complexity", "verbosity"]

    def __init__(self, config) -> None:
        super().__init__(config, 10)

    def forward(self, input_ids=None, attention_mask=None, use_cache=None, **kwargs):
        _, pooled = self.hidden(input_ids, attention_mask, use_cache)
        out = self.head(pooled)
        rewards, gate = out[:, :5], out[:, 5:].softmax(-1)
        score = (rewards * gate).sum(-1, keepdim=True)
        return GatedOutput(logits=rewards[:, 4:5] + 100.0, rewards=rewards, score=score)


class TinyTwoOutputRM(_Base):
    """URM-like remote sequence classifier: its head has config.num_labels outputs; logits[:, 0] is the reward."""

    def __init__(self, config) -> None:
        super().__init__(config, config.num_labels)

    def forward(self, input_ids=None, attention_mask=None, use_cache=None, **kwargs):
        if attention_mask is None:
            raise ValueError("this head pools with the attention mask")
        _, pooled = self.hidden(input_ids, attention_mask, use_cache)
        return GatedOutput(logits=self.head(pooled))


class TinyQuantileRM(TinyGatedRM):
    """QRM-like (the hub's LlamaForRewardModelWithGating31): __init__ edits the config it is given, and
    from_pretrained drops every keyword but trust_remote_code and flash_attention_2."""

    def __init__(self, config) -> None:
        config.torch_dtype = torch.bfloat16
        super().__init__(config)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        return super().from_pretrained(pretrained_model_name_or_path, trust_remote_code=True,
                                       attn_implementation="flash_attention_2")
