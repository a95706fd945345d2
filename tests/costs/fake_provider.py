"""A fake OpenAI SDK client for budget runs: chat.completions.create answers like the API (n choices, reasoning
models' output inside max_completion_tokens, usage with the prompt billed once per request) after a few event-loop
turns, with reply lengths drawn from a seeded RNG, and keeps the bill the provider would send (also when it leaves
`usage` out of its replies, as a gateway may)."""
from __future__ import annotations

import asyncio
import random
from typing import Any

from openai.types.chat import ChatCompletion

from generation.costs.pricing import max_output_of, usage_cost
from generation.costs.token_counts import chat_tokens, counter_for


class FakeChatClient:
    """Stands in for openai.AsyncOpenAI; `bill` is the dollars its usage reports add up to."""

    def __init__(self, price: Any, rng: random.Random, low: int, high: int, omit_usage: bool = False) -> None:
        self.price, self.rng, self.low, self.high, self.omit_usage = price, rng, low, high, omit_usage
        self.bill = 0.0
        self.requests = 0
        self.in_flight = self.most_in_flight = 0
        self.chat = self
        self.completions = self

    def __call__(self, **options: Any) -> FakeChatClient:
        return self  # the runner constructs its client with the SDK's options

    async def create(self, **params: Any) -> ChatCompletion:
        """One chat.completions.create: each choice writes low..high tokens, never past the cap or the model's max."""
        self.requests += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        for _ in range(self.rng.randint(0, 3)):
            await asyncio.sleep(0)
        self.in_flight -= 1
        cap = params.get("max_completion_tokens", params.get("max_tokens")) or max_output_of(params["model"])
        lengths = [min(self.rng.randint(self.low, self.high), cap) for _ in range(params.get("n", 1))]
        prompt = chat_tokens(counter_for(params["model"], "openai")[0], params["messages"])
        self.bill += usage_cost(self.price, prompt, sum(lengths))
        body = {"id": f"chatcmpl-{self.requests}", "object": "chat.completion", "created": 0, "model": params["model"],
                "choices": [{"index": i, "message": {"role": "assistant", "content": "x"},
                             "finish_reason": "length" if length == cap else "stop"}
                            for i, length in enumerate(lengths)]}
        if not self.omit_usage:  # a gateway may drop it; the provider bills all the same
            body["usage"] = {"prompt_tokens": prompt, "completion_tokens": sum(lengths),
                             "total_tokens": prompt + sum(lengths)}
        return ChatCompletion.model_validate(body)

    async def close(self) -> None:
        return None
