"""--dry_run: the calls, tokens and dollars a step would spend, from its real inputs and checkpoint; nothing is called.

Calls follow the seed README's formulas. Input tokens: the model's tokenizer for local models, tiktoken for OpenAI
models, token_counts.CHARS_PER_TOKEN otherwise. Output tokens: the completion cap as the upper bound (no cap sent: the
model's documented maximum output). Cost range: input only (every reply empty) to input plus every reply at that
bound. A pilot (Step 1's --pilot) adds the expected cost, from the reply lengths its real requests measured.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from generation.costs.budget import output_limit
from generation.costs.pricing import format_cost, price_of, usage_cost
from generation.costs.token_counts import chat_tokens, counter_for

UNCAPPED_NOTE = "no cap (reasoning model) and no documented maximum output: output unbounded, upper cost unknown"


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
    expected: float | None = None  # from a pilot's measured replies
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
        if self.expected is not None:
            text += f", expected ~{format_cost(self.expected)} (from the pilot's replies)"
        return text + "".join(f"; {note}" for note in self.notes)


@dataclass
class Pilot:
    """What a pilot's real requests measured: their completions, the input tokens the estimate counted for them,
    and the usage and dollars the provider reported."""

    rows: int
    completions: int
    estimated_input: int
    prompt_tokens: int
    completion_tokens: int
    cost: float | None
    unreported: int = 0  # requests whose reply reported no usage (nothing measured)

    def line(self, cap: int | None) -> str:
        """What the pilot sent, spent and measured."""
        text = (f"pilot: {self.rows} row(s) sent for real ({self.completions:,} completions; cost "
                f"{format_cost(self.cost)}, in the output's ledger; the samples are kept in the checkpoint)")
        if not self.measured:
            return text + ": nothing measured (the replies reported no usage)"
        share = f", {self.completion_tokens / self.completions / cap:.0%} of the upper bound" if cap else ""
        return (text + f": replies averaged {self.completion_tokens / self.completions:,.0f} tokens{share}; input "
                       f"{self.prompt_tokens / max(1, self.estimated_input):.2f}x the estimate")

    @property
    def measured(self) -> bool:
        """Whether the provider reported the pilot's usage (no reply without it)."""
        return self.completions > 0 and not self.unreported

    def expect(self, est: Estimate, price: Any, batch: bool) -> None:
        """The estimate's expected cost: its input at the pilot's measured ratio to the estimate, every completion
        at the pilot's mean length."""
        if self.measured and price is not None:
            est.expected = usage_cost(price, est.input_tokens * self.prompt_tokens / max(1, self.estimated_input),
                                      est.completions * self.completion_tokens / self.completions, batch)


def api_estimate(config: Any, asks: list[tuple[list[dict], int]], max_tokens: int | None,
                 n_limit: int | None, pilot: Pilot | None = None) -> Estimate:
    """Estimate for an API model asked (messages, n completions) per job, split at its `n` limit (None: no limit);
    with a pilot's measurements, its expected cost too."""
    count, how = counter_for(config.model, config.provider)
    est = Estimate(config.model, counted_with=how)
    for messages, n in asks:
        requests = -(-n // (n_limit or n)) if n else 0
        est.completions += n
        est.requests += requests
        est.input_tokens += chat_tokens(count, messages) * requests
    per_completion = output_limit(config.model, max_tokens)
    est.output_tokens = None if per_completion is None else est.completions * per_completion
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
        if pilot is not None:
            pilot.expect(est, price, batch)
    if max_tokens is None:
        est.notes.append(UNCAPPED_NOTE if per_completion is None else
                         f"no cap sent (reasoning model): the upper figure has every completion at the model's "
                         f"documented maximum output, {per_completion:,} tokens")
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


def report(step: str, lines: list[str], estimates: list[Estimate], pilot: Pilot | None = None) -> dict:
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
        expected = "" if any(e.expected is None for e in estimates if e.cost is not None) else \
            f"; expected ~{format_cost(sum(e.expected for e in estimates if e.cost is not None))}"
        spent = f" (plus the pilot's {format_cost(pilot.cost)}, spent)" if pilot is not None else ""
        print(f"  total estimated API cost: {format_cost(low)} to {format_cost(high) if high is not None else '?'}"
              f"{expected}{spent}")
    return {"estimates": estimates, "pilot": pilot}
