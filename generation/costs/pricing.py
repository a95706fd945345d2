"""API list prices (USD per million tokens), the --prices override, and the dollar cost of recorded token usage."""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Any

PRICES_TAKEN = "2025-06"  # when the first rows were taken (docs/costs.md, "Prices"); each row carries its own date
BATCH_DISCOUNT = 0.5  # OpenAI Batch and Anthropic Message Batches bill half the live price


@dataclass(frozen=True)
class Price:
    """One model's list price in USD per million tokens, the share billed in a provider batch, the price of cached
    input tokens (None: billed as input), and when the row was taken from the provider's price page."""

    input: float
    output: float
    batch_discount: float | None = None  # 0.5: a batch costs half; None: no batch API
    cached_input: float | None = None
    taken: str | None = None


def _batched(input_price: float, output_price: float, cached: float | None = None, taken: str = PRICES_TAKEN
             ) -> Price:
    """A price on a provider with a half-price batch API (OpenAI, Anthropic)."""
    return Price(input_price, output_price, BATCH_DISCOUNT, cached, taken)


def _aliases(names: tuple[str, ...], value: Any) -> dict[str, Any]:
    """The same row under a model's alias and dated names."""
    return dict.fromkeys(names, value)


# One row per API model of the judge registry and the common Step 1 API models (exact names as sent), each dated with
# the month it was read. OpenAI: its model and pricing pages (developers.openai.com/api/docs/models, .../pricing;
# cached input where it lists one); Anthropic: its pricing page (platform.claude.com/docs/en/about-claude/pricing;
# "cache hits" as cached input); Together: its pricing page. Rows read 2026-12: OpenAI's gpt-5.1 model page, its
# models overview (gpt-5.4, gpt-5.4-mini, gpt-5.5); gpt-5.2, o3-pro and
# o1-pro as OpenAI's page is quoted by GitHub's docs and OpenRouter (o3-pro and o1-pro answer the Responses API
# only, which this pipeline does not call). Together's Batch API (up to 50% off, on the models Together lists) is not
# driven here, so its rows have no batch discount.
PRICES: dict[str, Price] = {
    "gpt-4o": _batched(2.50, 10.00, 1.25),
    "gpt-4o-mini": _batched(0.15, 0.60, 0.075),
    "gpt-4-turbo": _batched(10.00, 30.00),
    "o1-2024-12-17": _batched(15.00, 60.00, 7.50),
    **_aliases(("o3-mini-2025-01-31", "o3-mini"), _batched(1.10, 4.40, 0.55)),
    **_aliases(("gpt-4.1", "gpt-4.1-2025-04-14"), _batched(2.00, 8.00, 0.50, "2025-11")),
    **_aliases(("gpt-4.1-mini", "gpt-4.1-mini-2025-04-14"), _batched(0.40, 1.60, 0.10, "2025-11")),
    **_aliases(("gpt-4.1-nano", "gpt-4.1-nano-2025-04-14"), _batched(0.10, 0.40, 0.025, "2025-11")),
    **_aliases(("o3", "o3-2025-04-16"), _batched(2.00, 8.00, 0.50, "2025-11")),
    **_aliases(("o4-mini", "o4-mini-2025-04-16"), _batched(1.10, 4.40, 0.275, "2025-11")),
    **_aliases(("gpt-5", "gpt-5-2025-08-07"), _batched(1.25, 10.00, 0.125, "2025-11")),
    **_aliases(("gpt-5-mini", "gpt-5-mini-2025-08-07"), _batched(0.25, 2.00, 0.025, "2025-11")),
    **_aliases(("gpt-5-nano", "gpt-5-nano-2025-08-07"), _batched(0.05, 0.40, 0.005, "2025-11")),
    **_aliases(("gpt-5.1", "gpt-5.1-2025-11-13"), _batched(1.25, 10.00, 0.125, "2026-12")),
    **_aliases(("gpt-5.2", "gpt-5.2-2025-12-11"), _batched(1.75, 14.00, 0.175, "2026-12")),
    "gpt-5.4": _batched(2.50, 15.00, 0.25, "2026-12"),
    "gpt-5.4-mini": _batched(0.75, 4.50, 0.075, "2026-12"),
    "gpt-5.5": _batched(5.00, 30.00, 0.50, "2026-12"),
    "o3-pro": _batched(20.00, 80.00, taken="2026-12"),
    "o1-pro": _batched(150.00, 600.00, taken="2026-12"),
    "claude-3-7-sonnet-latest": _batched(3.00, 15.00, 0.30),
    "claude-3-5-sonnet-latest": _batched(3.00, 15.00, 0.30),
    "claude-3-5-haiku-latest": _batched(0.80, 4.00, 0.08),
    **_aliases(("claude-opus-4-1", "claude-opus-4-1-20250805", "claude-opus-4-0", "claude-opus-4-20250514"),
               _batched(15.00, 75.00, 1.50, "2025-11")),
    **_aliases(("claude-opus-4-5", "claude-opus-4-5-20251101"), _batched(5.00, 25.00, 0.50, "2025-11")),
    **_aliases(("claude-sonnet-4-5", "claude-sonnet-4-5-20250929", "claude-sonnet-4-0", "claude-sonnet-4-20250514"),
               _batched(3.00, 15.00, 0.30, "2025-11")),
    **_aliases(("claude-haiku-4-5", "claude-haiku-4-5-20251001"), _batched(1.00, 5.00, 0.10, "2025-11")),
    "deepseek-ai/DeepSeek-R1": Price(3.00, 7.00, taken=PRICES_TAKEN),
    "meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo": Price(0.18, 0.18, taken=PRICES_TAKEN),
    "meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo": Price(0.88, 0.88, taken=PRICES_TAKEN),
}

# The most output tokens one completion can hold (the providers' model pages), the worst case --max_cost reserves
# when no cap is sent (reasoning models). Reasoning tokens count inside it.
MAX_OUTPUT_TOKENS: dict[str, int] = {
    **dict.fromkeys(("gpt-4o", "gpt-4o-mini"), 16_384),
    "gpt-4-turbo": 4_096,
    **dict.fromkeys(("o1-2024-12-17", "o3-mini", "o3-mini-2025-01-31", "o3", "o3-2025-04-16", "o4-mini",
                     "o4-mini-2025-04-16"), 100_000),
    **dict.fromkeys(("gpt-4.1", "gpt-4.1-2025-04-14", "gpt-4.1-mini", "gpt-4.1-mini-2025-04-14", "gpt-4.1-nano",
                     "gpt-4.1-nano-2025-04-14"), 32_768),
    **dict.fromkeys(("gpt-5", "gpt-5-2025-08-07", "gpt-5-mini", "gpt-5-mini-2025-08-07", "gpt-5-nano",
                     "gpt-5-nano-2025-08-07", "gpt-5.1", "gpt-5.1-2025-11-13", "gpt-5.2", "gpt-5.2-2025-12-11",
                     "gpt-5.4", "gpt-5.4-mini", "gpt-5.5"), 128_000),
    **dict.fromkeys(("o3-pro", "o1-pro"), 100_000),
    **dict.fromkeys(("claude-3-5-sonnet-latest", "claude-3-5-haiku-latest"), 8_192),
    "claude-3-7-sonnet-latest": 64_000,
    **dict.fromkeys(("claude-opus-4-1", "claude-opus-4-1-20250805", "claude-opus-4-0", "claude-opus-4-20250514"),
                    32_000),
    **dict.fromkeys(("claude-opus-4-5", "claude-opus-4-5-20251101", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929",
                     "claude-sonnet-4-0", "claude-sonnet-4-20250514", "claude-haiku-4-5", "claude-haiku-4-5-20251001"),
                    64_000),
}


def load_prices(path: str) -> dict[str, Price]:
    """argparse type for --prices FILE: the built-in table with the file's models added or replaced."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as err:
        raise argparse.ArgumentTypeError(f"cannot read {path} as JSON ({err})") from None
    if not isinstance(data, dict):
        raise argparse.ArgumentTypeError(f"{path} must hold a JSON object {{model: {{\"input\": $/Mtok, "
                                         "\"output\": $/Mtok, \"batch_discount\": 0.5}}}")
    table = dict(PRICES)
    for model, entry in data.items():
        table[model] = _parse_entry(path, model, entry)
    return table


OPTIONAL_FIELDS = ("batch_discount", "cached_input")


def _parse_entry(path: str, model: str, entry: object) -> Price:
    """One --prices row, or an argparse error naming the model and what is wrong."""
    if not isinstance(entry, dict) or set(entry) - {"input", "output", *OPTIONAL_FIELDS}:
        raise argparse.ArgumentTypeError(f"{path}: {model!r} must be {{\"input\": $/Mtok, \"output\": $/Mtok}} "
                                         "with optional \"batch_discount\" and \"cached_input\"")
    values = {}
    for name in ("input", "output", *OPTIONAL_FIELDS):
        value = entry.get(name)
        if name in OPTIONAL_FIELDS and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or \
                (name == "batch_discount" and value > 1):
            bound = "between 0 and 1" if name == "batch_discount" else "a number >= 0"
            raise argparse.ArgumentTypeError(f"{path}: {model!r} {name} must be {bound}, got {value!r}")
        values[name] = float(value)
    return Price(**values, taken=f"--prices {path}")


def price_of(model: str, prices: dict[str, Price] | None) -> Price | None:
    """The model's price from the table (built-in unless --prices was given), or None when unknown."""
    return (PRICES if prices is None else prices).get(model)


def max_output_of(model: str) -> int | None:
    """The most output tokens one completion of the model can hold (None: not documented here)."""
    return MAX_OUTPUT_TOKENS.get(model)


def usage_cost(price: Price | None, prompt_tokens: float, completion_tokens: float, batch: bool = False,
               cached_tokens: float = 0) -> float | None:
    """Dollars for the given token counts (cached_tokens: the part of prompt_tokens read from the provider's prompt
    cache, at its cached price where one is listed); None without a price (never a guess)."""
    if price is None:
        return None
    share = price.batch_discount if batch and price.batch_discount is not None else 1.0
    cached = min(cached_tokens, prompt_tokens) if price.cached_input is not None else 0
    dollars = (prompt_tokens - cached) * price.input + cached * (price.cached_input or 0.0) \
        + completion_tokens * price.output
    return round(dollars * share / 1e6, 6)


# Usage fields of requests whose reply reported no usage: how many, and their worst case in tokens (the prompt
# counted as an upper bound, every completion at its cap or the model's maximum); `unbounded_requests` had neither.
UNREPORTED_FIELDS = ("unreported_requests", "unreported_prompt_tokens", "unreported_completion_tokens",
                     "unbounded_requests")


def record_cost(price: Price | None, usage: dict, batch: bool = False) -> tuple[float | None, float]:
    """(dollars of a usage record, the part of them that is an upper bound): reported tokens at the price, plus
    the requests that reported no usage at their worst case; (None, 0) without a price or a bound."""
    if price is None or usage.get("unbounded_requests"):
        return None, 0.0
    known = usage_cost(price, usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0), batch,
                       usage.get("cached_tokens", 0)) or 0.0
    upper = usage_cost(price, usage.get("unreported_prompt_tokens", 0), usage.get("unreported_completion_tokens", 0),
                       batch) or 0.0
    return round(known + upper, 6), upper


def unreported_note(usage: dict, upper: float) -> str:
    """' (an upper bound: ...)' for a summary line when some replies reported no usage, else ''."""
    count = usage.get("unreported_requests", usage.get("requests", 0))
    if not count:
        return ""
    return (f" (an upper bound: {count} request(s) reported no usage and count at their worst case, "
            f"{format_cost(upper)})")


def cost_text(cost: float | None, record: dict) -> str:
    """A summary line's cost: the dollars, and when some replies reported no usage (record's usage_unreported),
    that they are an upper bound."""
    unreported = record.get("usage_unreported") or {}
    return format_cost(cost) + unreported_note(unreported, unreported.get("cost_usd_at_most", 0.0))


def no_price_notice(model: str) -> str:
    """The one-line notice for a model without a price."""
    return f"no price known for {model!r}: its cost is null; add it with --prices FILE (docs/costs.md)"


def format_cost(cost: float | None) -> str:
    """Dollars for a summary line ('unknown' without a price)."""
    if cost is None:
        return "unknown (no price)"
    if cost >= 10:
        return f"${cost:,.2f}"
    return "$" + (f"{cost:.6f}".rstrip("0").rstrip(".") or "0")


def add_cost_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --prices, --max_cost and --dry_run."""
    group = parser.add_argument_group("costs")
    group.add_argument("--prices", metavar="FILE", type=load_prices, default=None,
                       help='JSON {model: {"input": $/Mtok, "output": $/Mtok, "batch_discount": 0.5, "cached_input": '
                            '$/Mtok}} adding to or replacing the built-in list prices (each row dated; first taken '
                            f"{PRICES_TAKEN}) (default: the built-in prices alone)")
    group.add_argument("--max_cost", metavar="USD", type=_non_negative, default=None,
                       help="a cap on the API dollars of the output: every run and shard on it spends from one "
                            "ledger in its checkpoint folder; each request reserves its worst case (the cap sent, "
                            "else the model's documented maximum output) and settles what it cost (its worst case "
                            "when the reply reports no usage); requests stop when the next one no longer fits, so "
                            "the output's spend stays under USD; exit 1 (raise it and rerun: the checkpoint resumes; "
                            "--overwrite starts a new ledger) (default: no limit)")
    group.add_argument("--dry_run", action="store_true",
                       help="check the inputs, print the calls, tokens and estimated cost, call nothing; exit 0")


def _non_negative(text: str) -> float:
    """argparse type: dollars >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected dollars >= 0, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected dollars >= 0, got {text!r}")
    return value
