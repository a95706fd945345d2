"""Remote-code reward heads for tests: copied into tiny model folders and loaded with trust_remote_code."""
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn
from transformers import LlamaModel, LlamaPreTrainedModel
from transformers.utils import ModelOutput


@dataclass
class GatedOutput(ModelOutput):
    """Like ArmoRM/QRM outputs: logits, per-objective rewards and the gated score."""

    logits: Optional[torch.Tensor] = None
    rewards: Optional[torch.Tensor] = None
    score: Optional[torch.Tensor] = None


class _Base(LlamaPreTrainedModel):
    """A Llama trunk whose hidden state at the last attended token feeds a head."""

    def __init__(self, config, head_dim: int) -> None:
        super().__init__(config)
        self.model = LlamaModel(config)
        self.head = nn.Linear(config.hidden_size, head_dim, bias=False)
        self.post_init()

    def hidden(self, input_ids, attention_mask):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        states = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        last = attention_mask.long().cumsum(dim=1).argmax(dim=1)
        return states, states[torch.arange(states.shape[0]), last]


class TinyGatedRM(_Base):
    """Multi-objective head: `score` is a gated mix of 5 rewards; `logits` deliberately differ from it."""

    attributes = ["helpfulness", "correctness", "coherence", "complexity", "verbosity"]

    def __init__(self, config) -> None:
        super().__init__(config, 10)

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        _, pooled = self.hidden(input_ids, attention_mask)
        out = self.head(pooled)
        rewards, gate = out[:, :5], out[:, 5:].softmax(-1)
        score = (rewards * gate).sum(-1, keepdim=True)
        return GatedOutput(logits=rewards[:, 4:5] + 100.0, rewards=rewards, score=score)


class TinyTwoOutputRM(_Base):
    """URM-like remote sequence classifier: its head has config.num_labels outputs; logits[:, 0] is the reward."""

    def __init__(self, config) -> None:
        super().__init__(config, config.num_labels)

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        if attention_mask is None:
            raise ValueError("this head pools with the attention mask")
        _, pooled = self.hidden(input_ids, attention_mask)
        return GatedOutput(logits=self.head(pooled))


class TinyScalarRM(_Base):
    """Qwen2.5-Math-RM-like: returns a tuple whose first element is one scalar per sequence."""

    def __init__(self, config) -> None:
        super().__init__(config, 1)

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        _, pooled = self.hidden(input_ids, attention_mask)
        return (self.head(pooled),)


class TinyInternLM2RM(_Base):
    """InternLM2-reward-like: reads the hidden state at the appended reward token; has the card's get_score."""

    def __init__(self, config) -> None:
        super().__init__(config, 1)
        self.reward_token_id = config.reward_token_id

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        _, pooled = self.hidden(input_ids, attention_mask)
        return (self.head(pooled),)

    @torch.no_grad()
    def get_score(self, tokenizer, conversation):
        text = tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=False)
        ids = tokenizer.encode(text, return_tensors="pt", add_special_tokens=False)
        ids = torch.cat([ids, torch.tensor([[self.reward_token_id]])], dim=1)
        return self.forward(input_ids=ids, attention_mask=torch.ones_like(ids))[0].item()


class TinyPRM(_Base):
    """Qwen2.5-Math-PRM-like: per-token 2-class logits."""

    def __init__(self, config) -> None:
        super().__init__(config, 2)

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        states, _ = self.hidden(input_ids, attention_mask)
        return (self.head(states),)
