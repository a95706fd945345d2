"""--dry_run: the calls, tokens and dollars a step would spend, from its real inputs and checkpoint; nothing is called.

Calls follow the seed README's formulas. Input tokens: the model's tokenizer for local models, tiktoken for OpenAI
models, token_counts.CHARS_PER_TOKEN otherwise. Output tokens: the completion cap as the upper bound. Cost range:
input only (every reply empty) to input plus every reply at the cap.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from generation.costs.pricing import format_cost, price_of, usage_cost
from generation.costs.token_counts import chat_tokens, counter_for

UNCAPPED_NOTE = "no cap (reasoning model): output unbounded, upper cost unknown"


@dataclass
class Estimate:
    """What one model would be asked: completions, requests, tokens and the dollar range."""

    model: str
    completions: int = 0
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int | None = 0  # upper bound; None: no cap
    counted_with: str = ""
    cost: tuple[float | None, float | None] | None = None  # None: a local model (no API bill)
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        """One summary line."""
        output = "unbounded" if self.output_tokens is None else f"<= {self.output_tokens:,}"
        text = (f"  {self.model}: {self.completions:,} completions in {self.requests:,} requests; input ~"
                f"{self.input_tokens:,} tokens ({self.counted_with}), output {output} tokens")
        if self.cost is not None:
            low, high = self.cost
            upper = format_cost(high) if self.output_tokens is not None else "?"
            text += f"; estimated cost {format_cost(low)} to {upper}"
        return text + "".join(f"; {note}" for note in self.notes)


def api_estimate(config: Any, asks: list[tuple[list[dict], int]], max_tokens: int | None,
                 n_limit: int | None) -> Estimate:
    """Estimate for an API model asked (messages, n completions) per job, split at its `n` limit (None: no limit)."""
    count, how = counter_for(config.model, config.provider)
    est = Estimate(config.model, counted_with=how)
    for messages, n in asks:
        requests = -(-n // (n_limit or n)) if n else 0
        est.completions += n
        est.requests += requests
        est.input_tokens += chat_tokens(count, messages) * requests
    est.output_tokens = None if max_tokens is None else est.completions * max_tokens
    price = price_of(config.model, config.prices)
    if price is None:
        est.notes.append("no price known: add it with --prices FILE")
        est.cost = (None, None)
    else:
        batch = getattr(config, "api_mode", "live") == "batch" and price.batch_discount is not None
        est.cost = (usage_cost(price, est.input_tokens, 0, batch),
                    usage_cost(price, est.input_tokens, est.output_tokens or 0, batch))
        if batch:
            est.notes.append(f"batch price: {price.batch_discount:.0%} of live (--api_mode batch)")
    if max_tokens is None:
        est.notes.append(UNCAPPED_NOTE)
    return est


def local_estimate(model: str, prompt_tokens: list[tuple[int, int]], max_tokens: int) -> Estimate:
    """Estimate for a local model: (prompt tokens, n) per prompt, counted with its own tokenizer."""
    est = Estimate(model, counted_with="the model's tokenizer", cost=None, notes=["local: no API cost"])
    for tokens, n in prompt_tokens:
        est.completions += n
        est.requests += bool(n)
        est.input_tokens += tokens if n else 0
    est.output_tokens = est.completions * max_tokens
    return est


def report(step: str, lines: list[str], estimates: list[Estimate]) -> dict:
    """Print the dry run and return it (for tests and callers)."""
    print(f"dry run of {step} (nothing was called):")
    for line in lines:
        print(f"  {line}")
    for est in estimates:
        print(est.line())
    costs = [est.cost for est in estimates if est.cost is not None]
    if costs:
        low = None if any(c[0] is None for c in costs) else sum(c[0] for c in costs)
        high = None if any(c[1] is None for c in costs) or any(e.output_tokens is None for e in estimates) \
            else sum(c[1] for c in costs)
        print(f"  total estimated API cost: {format_cost(low)} to {format_cost(high) if high is not None else '?'}")
    return {"estimates": estimates}
