"""--max_cost: a dollar ledger for the run's API requests (shared by its shards through a locked file).

Each request reserves its worst case (its prompt, counted as an upper bound, plus every completion at the cap sent
or at the model's documented maximum output) before it is sent and settles what its reply's usage cost when it
lands. Requests keep going while the ledger's remaining budget covers the next reservation; a refused one waits for
in-flight ones to settle, and the run stops only when nothing is in flight and the next request still does not
fit. So a run ends between (cap - one request's worst case) and the cap.
"""
from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import sys
import threading
import uuid
from typing import Callable, TypeVar

from generation.common.cli import UserError
from generation.common.writing import check_lockable, unlockable, write_json_atomic
from generation.costs.pricing import Price, format_cost, max_output_of, usage_cost
from generation.costs.token_counts import prompt_token_bound
from generation.data.dataset_io import checkpoint_dir

LEDGER_FILE = "budget_ledger.json"  # in the output's checkpoint folder: the sharded run's shared ledger
WAIT_S = 0.5  # a refused request re-checks the ledger at least this often (other shards settle too)
T = TypeVar("T")


class BudgetExceeded(UserError):
    """The run stopped sending requests at --max_cost; finished work is checkpointed (exit 1)."""

    exit_code = 1


class Budget:
    """The run's ledger: dollars spent and held by requests in flight, in memory or in a file under an flock.

    It pickles without its lock (a sharded run's ledger travels to its Ray tasks); a file ledger is shared by every
    copy.
    """

    def __init__(self, cap: float, path: str | None = None) -> None:
        self.cap = cap
        self.path = path
        self.run = uuid.uuid4().hex  # a file left by an earlier run starts this run's ledger afresh
        self.state = {"run": self.run, "spent": 0.0, "held": 0.0}
        self.not_sent = 0  # jobs this process did not send because of the cap
        self.halted = False
        self.said = False  # the near-the-cap notice was printed (once per run)
        self.worst_refused = 0.0
        self.lock = threading.Lock()
        if path is not None:
            check_lockable(path, self._lock_error)

    def _lock_error(self, err: OSError) -> OSError:
        """The one-line error when the ledger's file system refuses flock."""
        return unlockable(err, f"the --max_cost ledger {self.path} that the shards share",
                          "run without --num_shards, or write the output to a file system with flock")

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "lock"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, lock=threading.Lock())

    def _update(self, change: Callable[[dict], T]) -> T:
        """Apply change(state) atomically (across processes for a file ledger); its result."""
        with self.lock:
            if self.path is None:
                return change(self.state)
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            with open(self.path + ".lock", "a") as guard:
                try:
                    fcntl.flock(guard, fcntl.LOCK_EX)
                except OSError as err:
                    raise self._lock_error(err)
                state = {}
                with contextlib.suppress(OSError, ValueError), open(self.path, encoding="utf-8") as handle:
                    state = json.load(handle)
                if state.get("run") != self.run:
                    state = {"run": self.run, "spent": 0.0, "held": 0.0}
                result = change(state)
                write_json_atomic(self.path, state)
                self.state = state
                return result

    def reserve(self, worst: float) -> bool:
        """Hold `worst` dollars for a request about to start; False when spent + held + worst would pass the cap."""
        def change(state: dict) -> bool:
            if state["spent"] + state["held"] + worst > self.cap + 1e-12:
                return False
            state["held"] += worst
            return True
        return self._update(change)

    def settle(self, worst: float, cost: float) -> None:
        """Replace a finished request's reservation by what it cost."""
        def change(state: dict) -> None:
            state["held"] = max(0.0, state["held"] - worst)
            state["spent"] += cost
        self._update(change)

    def idle(self) -> bool:
        """Whether nothing is in flight anywhere in the run (then a refusal is final)."""
        return self._update(lambda state: state["held"] <= 1e-12)

    @property
    def spent(self) -> float:
        """Dollars settled in this run (all shards of a file ledger)."""
        return self._update(lambda state: state["spent"])

    def error(self) -> BudgetExceeded:
        """The one-line stop message: what was spent, why the next request did not fit, how to continue."""
        return BudgetExceeded(f"--max_cost {format_cost(self.cap)} reached: spent {format_cost(self.spent)} in this "
                              f"run and did not send {self.not_sent} more request(s) (the next one's worst case is "
                              f"{format_cost(self.worst_refused)}); finished work is checkpointed: raise --max_cost "
                              "(or lower the cap: --max_new_tokens, --judge_max_tokens) and run the same command "
                              "again to resume")


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

    def leave(self, worst: float, cost: float) -> None:
        """Settle a finished request and wake the waiting ones."""
        self.budget.settle(worst, cost)
        self.changed.set()
        self.changed = asyncio.Event()


def run_budget(cap: float | None, shared_by: str | None = None) -> Budget | None:
    """The run's --max_cost ledger (None without a cap): in memory, or, for the output shared_by of a sharded run, a
    file in its checkpoint folder that every shard's copy shares."""
    if cap is None:
        return None
    return Budget(cap, os.path.join(checkpoint_dir(shared_by), LEDGER_FILE) if shared_by is not None else None)


def budget_for(cap: float | None, model: str, price: Price | None, ledger: Budget | None = None) -> Budget | None:
    """The ledger `model`'s requests go through under --max_cost cap (None without one): the run's `ledger`, else
    a new one in memory; UserError for a model without a price."""
    if cap is None:
        return None
    if price is None:
        raise UserError(f"--max_cost needs a price for {model!r}: add it with --prices FILE "
                        '({"MODEL": {"input": $/Mtok, "output": $/Mtok}})')
    return ledger if ledger is not None else Budget(cap)


def output_bound(model: str, max_tokens: int | None) -> int:
    """The most tokens one completion can cost under --max_cost: the cap sent, else the model's documented maximum
    output; UserError without either (checked before a step writes anything, and at every reservation)."""
    output = max_tokens if max_tokens is not None else max_output_of(model)
    if output is None:
        raise UserError(f"--max_cost needs a bound on what {model!r} can write: no maximum output is documented "
                        "for it and no cap is sent; pass --max_new_tokens N (Step 3: --judge_max_tokens)")
    return output


def worst_case(price: Price, model: str, provider: str | None, messages: list[dict], requests: int, n: int,
               max_tokens: int | None) -> float:
    """Dollars a job can cost at most: its prompt once per request (as OpenAI, Together and Anthropic bill it)
    plus n completions at the cap sent, else at the model's documented maximum output; UserError without either."""
    output = output_bound(model, max_tokens)
    prompt = prompt_token_bound(model, provider, messages)
    return usage_cost(price, prompt * requests, output * n) or 0.0
