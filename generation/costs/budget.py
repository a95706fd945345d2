"""--max_cost: a cap on the API dollars every run on an output spends, kept in the output's ledger (ledger.py).

Each request reserves its worst case (its prompt, counted as an upper bound, plus every completion at the cap sent
or at the model's documented maximum output) before it is sent and settles what its reply's usage cost when it
lands (a reply without usage settles at its reservation, an upper bound). Requests keep going while the cap less
what the output's ledger holds covers the next reservation; a refused one waits for in-flight ones to settle, and
the run stops only when nothing is in flight and the next request still does not fit. So the output's spend ends
between (cap - one request's worst case) and the cap, over all its runs and shards.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from dataclasses import dataclass

from generation.common.cli import UserError
from generation.common.writing import check_lockable
from generation.costs.ledger import BATCH_WRITER, Ledger, Totals
from generation.costs.pricing import Price, format_cost, max_output_of, usage_cost
from generation.costs.token_counts import prompt_token_bound
from generation.data.dataset_io import checkpoint_dir

LEDGER_FILE = "budget_ledger.jsonl"  # in the output's checkpoint folder: every run's and every shard's spend
WAIT_S = 0.5  # a refused request re-checks the ledger at least this often (other shards settle too)
EPSILON = 1e-12
_SAID: set[str] = set()  # ledger lines printed by this process


class BudgetExceeded(UserError):
    """The run stopped sending requests at --max_cost; finished work is checkpointed (exit 1)."""

    exit_code = 1


class Budget:
    """A cap (None: no cap, the ledger only counts) on what the output's ledger holds; one per run, shared by its
    models and (pickled) by its shards."""

    def __init__(self, cap: float | None, ledger: Ledger | None = None, where: str = "this output") -> None:
        self.cap = cap
        self.ledger = ledger or Ledger(None)  # None: in memory, this process only
        self.where = where
        self.not_sent = 0  # jobs this process did not send because of the cap
        self.halted = False
        self.said = False  # the near-the-cap notice was printed (once per run)
        self.worst_refused = 0.0

    def reserve(self, worst: float) -> bool:
        """Hold `worst` dollars for a request about to start; False when the ledger plus `worst` would pass the cap."""
        def change(total: Totals, mine: Totals) -> bool:
            if self.cap is not None and total.spent + total.held + worst > self.cap + EPSILON:
                return False
            mine.held += worst
            return True
        return self.ledger.update(change)

    def settle(self, worst: float, cost: float, upper: float = 0.0) -> None:
        """Replace a finished request's reservation by what it cost (`upper` of it settled at a worst case)."""
        def change(_: Totals, mine: Totals) -> None:
            mine.held = max(0.0, mine.held - worst)
            mine.spent += cost
            mine.upper += upper
        self.ledger.update(change)

    def idle(self) -> bool:
        """Whether nothing of this run is in flight in any of its processes (then a refusal is final)."""
        return self.ledger.update(lambda *_: self.ledger.totals(run_only=True).held <= EPSILON)

    def hand_over(self, batch_id: str, amount: float) -> None:
        """Move a reservation of this process to a submitted provider batch (held until the batch ends)."""
        def take(_: Totals, batch: Totals) -> None:
            batch.held += amount
        self.ledger.update(take, BATCH_WRITER + batch_id)
        self.settle(amount, 0.0)

    def settle_batch(self, batch_id: str, cost: float, upper: float) -> None:
        """A provider batch ended: its reservation becomes what its answered requests cost (the failed and expired
        ones are not billed)."""
        def change(_: Totals, batch: Totals) -> None:
            batch.held, batch.spent, batch.upper = 0.0, batch.spent + cost, batch.upper + upper
        self.ledger.update(change, BATCH_WRITER + batch_id)

    @property
    def spent(self) -> float:
        """Dollars settled on this output by every run and shard."""
        return self.ledger.update(lambda total, _: total.spent)

    def error(self) -> BudgetExceeded:
        """The one-line stop message: what was spent, why the next request did not fit, how to continue."""
        total = self.ledger.update(lambda total, _: total)
        run = self.ledger.totals(run_only=True)
        upper = f", {format_cost(total.upper)} of it upper bounds" if total.upper > EPSILON else ""
        return BudgetExceeded(f"--max_cost {format_cost(self.cap)} reached for {self.where}: every run on it spent "
                              f"{format_cost(total.spent)} ({format_cost(run.spent)} in this run{upper}) and "
                              f"{self.not_sent} more request(s) were not sent (the next one's worst case is "
                              f"{format_cost(self.worst_refused)}); finished work is checkpointed. --max_cost is the "
                              "total for this output: to spend more, raise it (or lower the worst case: "
                              "--max_new_tokens, --judge_max_tokens) and run the same command again")


def ledger_line(cap: float | None, spent: Totals, where: str) -> str | None:
    """What earlier runs on an output spent and what --max_cost leaves (None when nothing was spent)."""
    if spent.spent <= EPSILON and spent.held <= EPSILON:
        return None
    upper = f" ({format_cost(spent.upper)} of it upper bounds)" if spent.upper > EPSILON else ""
    line = f"earlier runs on {where} spent {format_cost(spent.spent)}{upper}"
    if cap is None:
        return line
    return line + (f"; --max_cost {format_cost(cap)} is the total for it: "
                   f"{format_cost(max(0.0, cap - spent.spent))} left")


class Gate:
    """One run's asyncio side of the ledger: a request waits here while in-flight ones settle."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.changed = asyncio.Event()

    async def enter(self, worst: float) -> bool:
        """Reserve `worst` once the ledger has room (True); False, counted, when the run must stop."""
        budget = self.budget
        while not budget.halted:
            changed = self.changed
            if budget.reserve(worst):
                return True
            if budget.idle():
                budget.halted, budget.worst_refused = True, worst
                break
            if not budget.said:
                budget.said = True
                print(f"notice: --max_cost {format_cost(budget.cap)}: near the cap, requests (worst case "
                      f"{format_cost(worst)} each) wait for those in flight to settle", file=sys.stderr)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(changed.wait(), WAIT_S)
        budget.not_sent += 1
        return False

    def leave(self, worst: float, cost: float, upper: float = 0.0) -> None:
        """Settle a finished request and wake the waiting ones."""
        self.budget.settle(worst, cost, upper)
        self.changed.set()
        self.changed = asyncio.Event()


@dataclass
class RunBudget:
    """One run's spending on its output's ledger (under --max_cost `cap`, or none: the ledger only counts): the
    Budget made for the run's first model with a price, shared by every model of the run and, pickled, by its
    shards."""

    cap: float | None
    output_path: str | None  # whose checkpoint folder holds the ledger; None: a ledger in memory
    fresh: bool = False  # --overwrite: this run starts a new ledger
    shared: bool = False  # --num_shards: shards in other processes write to it too
    writes: bool = True  # False: a dry run without a pilot, which writes nothing
    budget: Budget | None = None

    def for_model(self, model: str, price: Price | None) -> Budget | None:
        """The run's Budget for a model's requests (None for a model without a price, or a run that writes
        nothing); UserError under --max_cost for a model without a price. Said once: what earlier runs on the
        output spent."""
        if price is None and self.cap is not None:
            raise UserError(f"--max_cost needs a price for {model!r}: add it with --prices FILE "
                            '({"MODEL": {"input": $/Mtok, "output": $/Mtok}})')
        if price is None or self.budget is not None:
            return self.budget if price is not None else None
        output = self.output_path
        ledger = Ledger(output and os.path.join(checkpoint_dir(output), LEDGER_FILE), fresh=self.fresh,
                        shared=self.shared)
        line = ledger_line(self.cap, ledger.peek(), output) if output else None
        if line and line not in _SAID:
            _SAID.add(line)
            print(f"notice: {line}", file=sys.stderr)
        if not self.writes:
            return None  # a dry run writes nothing
        if ledger.shared:
            check_lockable(ledger.path, ledger.lock_error)
        self.budget = Budget(self.cap, ledger, output or "this run")
        return self.budget


def output_limit(model: str, max_tokens: int | None) -> int | None:
    """The most tokens one completion can hold: the cap sent, lowered to the model's documented maximum output
    (requests are clamped to it before they are sent), else that maximum; None without either."""
    documented = max_output_of(model)
    if max_tokens is None or documented is None:
        return max_tokens if documented is None else documented
    return min(max_tokens, documented)


def output_bound(model: str, max_tokens: int | None) -> int:
    """output_limit, or a UserError under --max_cost without one (checked before a step writes anything, and at
    every reservation)."""
    output = output_limit(model, max_tokens)
    if output is None:
        raise UserError(f"--max_cost needs a bound on what {model!r} can write: no maximum output is documented "
                        "for it and no cap is sent; pass --max_new_tokens N (Step 3: --judge_max_tokens)")
    return output


def worst_case(price: Price, model: str, provider: str | None, messages: list[dict], requests: int, n: int,
               max_tokens: int | None, batch: bool = False) -> float:
    """Dollars a job can cost at most (at the batch price with `batch`): its prompt once per request (as OpenAI,
    Together and Anthropic bill it) plus n completions at output_limit; UserError without one."""
    output = output_bound(model, max_tokens)
    prompt = prompt_token_bound(model, provider, messages)
    return usage_cost(price, prompt * requests, output * n, batch) or 0.0


def unreported_usage(model: str, provider: str | None, messages: list[dict], n: int, max_tokens: int | None
                     ) -> dict[str, int]:
    """The usage record of one request whose reply reported no usage: its worst case in tokens (pricing.
    UNREPORTED_FIELDS), so that its cost is settled as an upper bound, never as 0."""
    usage = {"unreported_requests": 1, "unreported_prompt_tokens": prompt_token_bound(model, provider, messages)}
    output = output_limit(model, max_tokens)
    if output is None:
        return {**usage, "unbounded_requests": 1}
    return {**usage, "unreported_completion_tokens": n * output}
