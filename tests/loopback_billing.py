"""A loopback provider that bills like the real ones: reply lengths drawn from a seeded generator (within the cap
sent, or the model's own maximum), a reasoning model's hidden tokens billed as output, the prompt billed once per
request, batches at half price, and a bill kept on the server side whatever the reply reports (`omit_usage`: a
gateway that drops `usage` from its replies, as OpenAI-compatible servers and proxies may)."""
from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

from generation.costs.pricing import Price, usage_cost

from loopback import OPENAI, Persona, Reply, _prompt_text, _refusal, anthropic_body, openai_body

DEFAULT_MAXIMUM = 16_384  # the server's own maximum output where the model has none (no cap sent)


@dataclass
class BillingProvider:
    """Answers chat requests as `persona` would and keeps the bill; call it as a LoopbackServer responder (live) or
    through .batch (a BatchService's responder: billed at the batch price)."""

    price: Price
    persona: Persona = OPENAI
    low: int = 10  # completion tokens per choice, drawn uniformly from low..high (hidden reasoning included)
    high: int = 2_000
    maximum: int = DEFAULT_MAXIMUM
    reasoning_share: float = 0.0  # the part of each completion that is hidden reasoning (reasoning models)
    omit_usage: bool = False
    seed: int = 0
    bill: float = 0.0
    requests: int = 0
    lengths: list[int] = field(default_factory=list)  # completion tokens of every choice billed
    lock: threading.Lock = field(default_factory=threading.Lock)

    accepts_headers = True

    def __call__(self, path: str, request: dict, count: int, headers: dict | None = None) -> Reply:
        return self.respond(path, request, headers or {}, batch=False)

    def batch(self, path: str, request: dict, count: int) -> Reply:
        """A batch line's answer, billed at the batch price."""
        return self.respond(path, request, {}, batch=True)

    def respond(self, path: str, request: dict, headers: dict, batch: bool) -> Reply:
        """One request: the persona's refusal (not billed), else n choices of drawn lengths, billed."""
        refusal = _refusal(self.persona, path, request, headers)
        if refusal:
            return refusal
        cap = request.get("max_completion_tokens", request.get("max_tokens")) or self.maximum
        n = int(request.get("n") or 1)
        prompt = prompt_tokens(request)
        with self.lock:
            rng = random.Random(f"{self.seed}-{self.requests}")
            self.requests += 1
            lengths = [min(rng.randint(self.low, self.high), cap) for _ in range(n)]
            self.lengths += lengths
            self.bill += usage_cost(self.price, prompt, sum(lengths), batch=batch)
        visible = [max(1, round(length * (1 - self.reasoning_share))) for length in lengths]
        texts = [" ".join(["w"] * (words - 1) + ["The answer is 4"]) for words in visible]
        cut = ["length" if length == cap else "stop" for length in lengths]
        if path.split("?")[0].endswith("/messages"):
            body = anthropic_body(request, texts[0], stop_reason="max_tokens" if cut[0] == "length" else "end_turn")
            body["usage"] = {"input_tokens": prompt, "output_tokens": lengths[0]}
        else:
            body = openai_body(request, texts, finish_reason="stop")
            for choice, reason in zip(body["choices"], cut):
                choice["finish_reason"] = reason
            body["usage"] = {"prompt_tokens": prompt, "completion_tokens": sum(lengths),
                             "total_tokens": prompt + sum(lengths)}
        if self.omit_usage:
            body.pop("usage")
        return Reply(body=body)


def prompt_tokens(request: dict) -> int:
    """The server's count of a request's input tokens: a BPE-like 4 characters per token plus 3 per turn (always
    below the client's bound, the UTF-8 bytes plus its overheads)."""
    turns = len(request.get("messages", [])) + bool(request.get("system"))
    return -(-len(_prompt_text(request)) // 4) + 3 * turns
