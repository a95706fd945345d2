"""API list prices (USD per million tokens), the --prices override, and the dollar cost of recorded token usage."""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass

PRICES_TAKEN = "2025-06"  # when the table below was taken (see docs/costs.md, "Prices": source and caveats)
BATCH_DISCOUNT = 0.5  # OpenAI Batch and Anthropic Message Batches bill half the live price


@dataclass(frozen=True)
class Price:
    """One model's list price in USD per million tokens, and the share billed in a provider batch."""

    input: float
    output: float
    batch_discount: float | None = None  # 0.5: a batch costs half; None: no batch API


def _batched(input_price: float, output_price: float) -> Price:
    """A price on a provider with a half-price batch API (OpenAI, Anthropic)."""
    return Price(input_price, output_price, BATCH_DISCOUNT)


# One row per API model of the judge registry and the common Step 1 API models (exact names as sent).
PRICES: dict[str, Price] = {
    "gpt-4o": _batched(2.50, 10.00),
    "gpt-4o-mini": _batched(0.15, 0.60),
    "gpt-4-turbo": _batched(10.00, 30.00),
    "o1-2024-12-17": _batched(15.00, 60.00),
    "o3-mini-2025-01-31": _batched(1.10, 4.40),
    "o3-mini": _batched(1.10, 4.40),
    "claude-3-7-sonnet-latest": _batched(3.00, 15.00),
    "claude-3-5-sonnet-latest": _batched(3.00, 15.00),
    "claude-3-5-haiku-latest": _batched(0.80, 4.00),
    "deepseek-ai/DeepSeek-R1": Price(3.00, 7.00),
    "meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo": Price(0.18, 0.18),
    "meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo": Price(0.88, 0.88),
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


def _parse_entry(path: str, model: str, entry: object) -> Price:
    """One --prices row, or an argparse error naming the model and what is wrong."""
    if not isinstance(entry, dict) or set(entry) - {"input", "output", "batch_discount"}:
        raise argparse.ArgumentTypeError(f"{path}: {model!r} must be {{\"input\": $/Mtok, \"output\": $/Mtok}} "
                                         "with optional \"batch_discount\"")
    values = {}
    for name in ("input", "output", "batch_discount"):
        value = entry.get(name)
        if name == "batch_discount" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or \
                (name == "batch_discount" and value > 1):
            bound = "between 0 and 1" if name == "batch_discount" else "a number >= 0"
            raise argparse.ArgumentTypeError(f"{path}: {model!r} {name} must be {bound}, got {value!r}")
        values[name] = float(value)
    return Price(**values)


def price_of(model: str, prices: dict[str, Price] | None) -> Price | None:
    """The model's price from the table (built-in unless --prices was given), or None when unknown."""
    return (PRICES if prices is None else prices).get(model)


def usage_cost(price: Price | None, prompt_tokens: float, completion_tokens: float, batch: bool = False
               ) -> float | None:
    """Dollars for the given token counts; None without a price (never a guess)."""
    if price is None:
        return None
    share = price.batch_discount if batch and price.batch_discount is not None else 1.0
    return round((prompt_tokens * price.input + completion_tokens * price.output) * share / 1e6, 6)


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
                       help='JSON {model: {"input": $/Mtok, "output": $/Mtok, "batch_discount": 0.5}} adding to or '
                            f"replacing the built-in list prices (taken {PRICES_TAKEN})")
    group.add_argument("--max_cost", metavar="USD", type=_non_negative, default=None,
                       help="stop sending API requests once spent plus in-flight estimated cost would pass USD; "
                            "exit 1 (raise it and rerun: the checkpoint resumes)")
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
