"""--max_cost: a process-wide dollar budget that API runs reserve from before each request and settle after."""
from __future__ import annotations

import argparse
import threading

from common.cli import UserError
from costs.pricing import Price, format_cost, usage_cost
from costs.token_counts import chat_tokens, counter_for

UNCAPPED_OUTPUT_TOKENS = 16384  # the output bound assumed for a request sent without a completion cap


class BudgetExceeded(UserError):
    """The run stopped sending requests at --max_cost; finished work is checkpointed (exit 1)."""

    exit_code = 1


class Budget:
    """Dollars spent by this process's API runs, and estimates reserved by requests in flight."""

    def __init__(self, cap: float) -> None:
        self.cap = cap
        self.spent = 0.0
        self.in_flight = 0.0
        self.stopped = 0  # jobs not sent because of the cap
        self.lock = threading.Lock()

    def reserve(self, estimate: float) -> bool:
        """Hold `estimate` dollars for a request about to start; False (and counted) when it would pass the cap."""
        with self.lock:
            if self.stopped or self.spent + self.in_flight + estimate > self.cap:
                self.stopped += 1
                return False
            self.in_flight += estimate
            return True

    def settle(self, estimate: float, cost: float) -> None:
        """Replace a finished request's reservation by what it cost."""
        with self.lock:
            self.in_flight -= estimate
            self.spent += cost

    def error(self) -> BudgetExceeded:
        """The one-line stop message: what was spent and how to continue."""
        return BudgetExceeded(f"--max_cost {format_cost(self.cap)} reached: spent {format_cost(self.spent)} in this "
                              f"run and did not send {self.stopped} more request(s); finished work is checkpointed: raise "
                              "--max_cost and run the same command again to resume")


def budget_for(args: argparse.Namespace, model: str, price: Price | None) -> Budget | None:
    """The run's shared Budget for --max_cost (None without one); UserError for a model without a price."""
    cap = getattr(args, "max_cost", None)
    if cap is None:
        return None
    if price is None:
        raise UserError(f"--max_cost needs a price for {model!r}: add it with --prices FILE "
                        '({"MODEL": {"input": $/Mtok, "output": $/Mtok}})')
    if getattr(args, "_budget", None) is None:
        args._budget = Budget(cap)
    return args._budget


def request_estimate(price: Price, model: str, provider: str | None, messages: list[dict], n: int,
                     max_tokens: int | None) -> float:
    """Upper-bound dollars of one job: its input once per completion asked (n) plus n full-length outputs."""
    count, _ = counter_for(model, provider)
    prompt = chat_tokens(count, messages)
    output = max_tokens if max_tokens is not None else UNCAPPED_OUTPUT_TOKENS
    return usage_cost(price, prompt * n, output * n) or 0.0
