"""--api_mode batch: jobs through a provider's batch API (batch_api.py), resumable by the batch ids kept in the run's
checkpoint, under the output's --max_cost ledger. Chunks are submitted as earlier ones end, within the enqueued-token
limit and the cap: each chunk reserves its worst case at the batch price before it is submitted, and the batch holds
that reservation until it ends, when it is settled at what its answered requests cost (the provider bills neither
failed nor expired requests). What a batch leaves unanswered (failed or expired one by one, or a whole batch failed
or cancelled) is bought again live, at full price and within the cap, only with --batch_fallback live; otherwise it
stays a failure a rerun submits again, and a batch that failed as a whole stops the step with the provider's errors.
"""
from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from tqdm import tqdm

from generation.backends import batch_api as api
from generation.backends.rules import ChatJob, Completion, notice_once
from generation.backends.runner import _new_stats, _record, run_live
from generation.common.cli import UserError
from generation.costs import pricing
from generation.costs.budget import BudgetExceeded, output_bound, output_limit, unreported_usage, worst_case

REASON_LINES = 5  # distinct provider reasons printed (all are in provenance)


class BatchFailed(UserError):
    """A batch failed or was cancelled as a whole and --batch_fallback is none: the step stops (exit 1)."""

    exit_code = 1


@dataclass
class Outcome:
    """What the run's batches did."""

    batches: dict[str, list[str]] = field(default_factory=dict)  # batch id -> custom ids
    resumed: int = 0
    answers: dict[str, tuple] = field(default_factory=dict)  # custom id -> (texts, usage, finish reasons)
    reasons: dict[str, tuple[str, str]] = field(default_factory=dict)  # custom id -> (kind, provider's line)
    failures: dict[str, list[str]] = field(default_factory=dict)  # batch id -> its errors (failed as a whole)
    open: set[str] = field(default_factory=set)  # custom ids of batches left open (stopped at a failure)
    not_submitted: list[str] = field(default_factory=list)  # custom ids the cap kept from being submitted


class _Money:
    """The batch side of the ledger: each part's worst case at the batch price, reserved before its chunk is
    submitted, handed to the batch, settled when the batch ends."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.budget = config.budget
        self.price = pricing.price_of(config.model, config.prices)

    def worst(self, part: api.Part, batch: bool = True) -> float | None:
        """A part's worst case (at the batch price with `batch`); None without a price or a bound on its output."""
        job = part.job
        if self.price is None or output_limit(self.config.model, job.max_tokens) is None:
            return None
        return worst_case(self.price, self.config.model, self.config.provider, job.messages, 1, part.n,
                          job.max_tokens, batch)

    def fit(self, chunk: list[api.Part]) -> tuple[list[api.Part], float]:
        """The longest head of the chunk whose reservations fit the cap (reserved), and their dollars."""
        if self.budget is None:
            return chunk, 0.0
        held = 0.0
        for i, part in enumerate(chunk):
            worst = self.worst(part) or 0.0
            if not self.budget.reserve(worst):
                self.budget.worst_refused = worst
                return chunk[:i], held
            held += worst
        return chunk, held

    def settle(self, batch_id: str, answers: dict[str, tuple], keys: list[str]) -> None:
        """The batch ended: its reservation becomes what its answered requests cost at the batch price."""
        if self.budget is not None:
            cost, upper = batch_cost(self.price, [answers[key][1] for key in keys if key in answers])
            self.budget.settle_batch(batch_id, cost or 0.0, upper)


def batch_cost(price: Any, usages: list[dict]) -> tuple[float | None, float]:
    """(dollars, of which upper bounds) of batch answers' usage at the batch price."""
    total: dict[str, int] = {}
    for usage in usages:
        for name, value in usage.items():
            total[name] = total.get(name, 0) + value
    return pricing.record_cost(price, total, batch=True)


def run_batch_jobs(config: Any, jobs: list, on_result: Callable, desc: str, store: Any,
                   stats: dict[str, Any]) -> dict[str, Any]:
    """Jobs through the provider's batch API: resume the checkpoint's open batches covering them, submit the rest
    as the enqueued-token limit and the cap allow, poll, collect each batch as it ends, send what they left
    unanswered live with --batch_fallback live, then on_result once per job; -> run_chat_jobs' stats (with
    `batch`: the counts and the provider's reasons). BatchFailed (a batch failed as a whole, no live fallback) or
    BudgetExceeded after on_result."""
    if store is None:
        raise UserError("--api_mode batch needs a checkpoint to keep its batch ids in")
    started = time.perf_counter()
    provider = api._Provider(config)
    parts = {part.custom_id: part for part in api.build_parts(config, jobs)}
    stop = config.batch_fallback == "none"
    money = _Money(config)
    if config.budget is not None and config.budget.cap is not None:
        output_bound(config.model, jobs[0].max_tokens)  # a model without a bound stops here, before any batch
    with tqdm(total=len(parts), desc=f"{desc} (batch)", unit="request") as bar:
        outcome = _run_batches(provider, parts, store, bar, api.enqueued_limit(config), stop, money)
    unanswered = [part for key, part in parts.items() if key not in outcome.answers and key not in outcome.open
                  and key not in outcome.not_submitted]
    for part in unanswered:
        outcome.reasons.setdefault(part.custom_id, ("failed", "no result for this request"))
    live_stats, stopped = _fallback(config, money, outcome, unanswered, stop)
    for job in jobs:
        _deliver(job, parts, outcome, live_stats, stats, on_result, stop)
    store.flush()
    counts = _counts(outcome, parts, live_stats, stop)
    _say(counts)
    price = money.price
    cost, upper = batch_cost(price, [outcome.answers[key][1] for key in parts
                                     if key in outcome.answers and key not in live_stats["keys"]])
    stats.update(requests=len(parts) - len(outcome.not_submitted) + live_stats["requests"], batch=counts,
                 wall_time_s=round(time.perf_counter() - started, 3),
                 cost_usd=None if price is None or cost is None or live_stats["cost_usd"] is None
                 else round(cost + live_stats["cost_usd"], 6), cost_upper_usd=round(upper + live_stats["upper"], 6))
    for name in pricing.UNREPORTED_FIELDS:
        if name in live_stats:
            stats[name] = stats.get(name, 0) + live_stats[name]
    if price is None:
        notice_once(pricing.no_price_notice(config.model))
    if outcome.failures and stop:
        raise _failed(outcome)
    if stopped or config.budget is not None and config.budget.not_sent:
        raise config.budget.error()
    return stats


def _fallback(config: Any, money: _Money, outcome: Outcome, unanswered: list[api.Part], stop: bool
              ) -> tuple[dict[str, Any], bool]:
    """Send the requests the batches left unanswered live (--batch_fallback live) or say they were not; -> (live
    stats, whether the cap stopped them)."""
    if not unanswered:
        return _live_stats(), False
    worst = [money.worst(part, batch=False) for part in unanswered]
    price = "full price" + (f", up to {pricing.format_cost(sum(worst))}" if None not in worst else "")
    kinds = _kinds(outcome.reasons[part.custom_id][0] for part in unanswered)
    if stop:
        print(f"{len(unanswered)} request(s) the batches left unanswered ({kinds}) were not sent live "
              f"(--batch_fallback none; live they would cost {price}): run the same command again to submit them "
              "in a new batch, or add --batch_fallback live", file=sys.stderr)
        return _live_stats(), False
    _print_failures(outcome)
    print(f"{len(unanswered)} request(s) the batches left unanswered ({kinds}): sending them live at {price} "
          "(--batch_fallback live)", file=sys.stderr, flush=True)
    live = _live_stats()
    try:
        _send_live(config, unanswered, outcome.answers, live)
    except BudgetExceeded:
        return live, True
    return live, False


def _kinds(kinds: Any) -> str:
    """'2 expired, 1 failed' from a list of kinds."""
    counts: dict[str, int] = {}
    for kind in kinds:
        counts[kind] = counts.get(kind, 0) + 1
    return ", ".join(f"{count} {kind}" for kind, count in sorted(counts.items()))


def _counts(outcome: Outcome, parts: dict[str, api.Part], live_stats: dict, stop: bool) -> dict[str, Any]:
    """The provenance record of the run's batches: counts, and each provider reason with how many it covered."""
    mine = {key: kind for key, (kind, _) in outcome.reasons.items() if key in parts}
    reasons: dict[str, int] = {}
    for key, (_, line) in outcome.reasons.items():
        if key in parts:
            reasons[line] = reasons.get(line, 0) + 1
    left = [key for key in mine if key not in live_stats["keys"]]
    return {"batches": sorted(outcome.batches), "resumed": outcome.resumed, "batch_requests": len(parts),
            "answered": sum(key in outcome.answers and key not in live_stats["keys"] for key in parts),
            **{kind: sum(k == kind for k in mine.values()) for kind in ("expired", "failed", "canceled")},
            "live_fallback_requests": len(live_stats["keys"]), "not_sent_live": 0 if not stop else len(left),
            "not_submitted": len(outcome.not_submitted), "left_open": len(outcome.open),
            "reasons": dict(sorted(reasons.items(), key=lambda item: -item[1])),
            "failed_as_a_whole": dict(outcome.failures)}


def _say(counts: dict[str, Any]) -> None:
    """Print the batches' outcome once, with the provider's reasons."""
    print(f"batches: {len(counts['batches'])} ({counts['resumed']} resumed), {counts['batch_requests']} requests: "
          f"{counts['answered']} answered, {counts['expired']} expired, {counts['failed']} failed, "
          f"{counts['canceled']} canceled; {counts['live_fallback_requests']} sent live, "
          f"{counts['not_submitted']} not submitted (--max_cost)", file=sys.stderr)
    for line, count in list(counts["reasons"].items())[:REASON_LINES]:
        print(f"  batch request x{count}: {line}", file=sys.stderr)


def _deliver(job: Any, parts: dict[str, api.Part], outcome: Outcome, live_stats: dict, stats: dict,
             on_result: Callable, stop: bool) -> None:
    """Assemble a job's completion from its parts' answers (None where one has none) and hand it on."""
    own = sorted((p for p in parts.values() if p.job is job), key=lambda p: p.offset)
    texts, usage, finishes, error = [], {"prompt_tokens": 0, "completion_tokens": 0}, [], None
    for part in own:
        got, used, reasons = outcome.answers.get(part.custom_id, ([None] * part.n, {}, [None] * part.n))
        texts += list(got) + [None] * (part.n - len(got))
        finishes += list(reasons) + [None] * (part.n - len(reasons))
        for name, value in used.items():
            usage[name] = usage.get(name, 0) + value
        if part.custom_id in outcome.not_submitted:
            error = error or "not submitted: --max_cost reached"
        elif part.custom_id in outcome.reasons and part.custom_id not in outcome.answers:
            kind = outcome.reasons[part.custom_id][0]
            error = error or (f"{kind} in the batch; not sent live (--batch_fallback none)" if stop
                              else f"{kind} in the batch; not answered live either")
    error = live_stats["errors_by_job"].get(job.key) or error or (
        "reply had no text content" if any(t is None for t in texts) else None)
    completion = Completion(texts=texts, usage=usage, error=error, finishes=finishes)
    _record(stats, completion)
    on_result(job, completion)


def _print_failures(outcome: Outcome) -> None:
    """Each batch that failed as a whole, with the provider's errors, one line each."""
    for batch_id, lines in outcome.failures.items():
        for line in lines:
            print(f"batch {batch_id}: {line}", file=sys.stderr)


def _failed(outcome: Outcome) -> BatchFailed:
    """Print each failed batch's errors on its own line; the one-line stop message."""
    _print_failures(outcome)
    lost = sum(key not in outcome.answers for batch_id in outcome.failures for key in outcome.batches[batch_id])
    return BatchFailed(f"{len(outcome.failures)} batch(es) failed or were cancelled as a whole ({lost} request(s) "
                       "unanswered; errors above); nothing was sent live and the answered requests are "
                       "checkpointed: fix the cause and run the same command again, or add --batch_fallback live "
                       "to send such requests live at full price")


def _run_batches(provider: api._Provider, parts: dict[str, api.Part], store: Any, bar: tqdm, limit: int | None,
                 stop: bool, money: _Money) -> Outcome:
    """Resume the checkpoint's open batches holding these parts, submit the others in chunks while the input tokens
    enqueued stay within `limit` and the cap covers their worst case, collect each batch as it ends, until every
    batch has ended (`stop`: or one failed as a whole)."""
    outcome = Outcome()
    tokens = _resumed(provider, parts, store, outcome)
    pending = dict(outcome.batches)
    covered = {key for ids in outcome.batches.values() for key in ids}
    queue = api.chunks(provider.config.provider, [p for key, p in parts.items() if key not in covered], limit)
    finished: dict[str, int] = {}
    while queue or pending:
        if outcome.failures and stop:
            break  # the open batches stay in the checkpoint: a rerun picks them up
        while queue and (not pending or limit is None
                         or sum(tokens[b] for b in pending) + sum(p.tokens for p in queue[0]) <= limit):
            chunk, held = money.fit(queue[0])
            if not chunk:
                if not pending:  # nothing in flight will free the cap: what is left is not submitted
                    outcome.not_submitted = [part.custom_id for chunk in queue for part in chunk]
                    money.budget.not_sent += len(outcome.not_submitted)
                    queue = []
                break
            queue[0] = queue[0][len(chunk):]
            if not queue[0]:
                queue.pop(0)
            batch_id = _submit(provider, chunk, store)
            if money.budget is not None:
                money.budget.hand_over(batch_id, held)
            outcome.batches[batch_id] = pending[batch_id] = [part.custom_id for part in chunk]
            tokens[batch_id] = sum(part.tokens for part in chunk)
        states = []
        for batch_id in list(pending):
            state = provider.status(batch_id, len(outcome.batches[batch_id]))
            finished[batch_id] = len(outcome.batches[batch_id]) if state.ended else state.done
            states.append(state.status)
            if state.ended:
                del pending[batch_id]
                _collect(provider, batch_id, state, parts, store, outcome, money)
        bar.n = sum(finished.values())
        bar.set_postfix_str(f"{len(outcome.batches) - len(pending)}/{len(outcome.batches) + len(queue)} batches "
                            f"ended; {', '.join(sorted(set(states)))}")
        bar.refresh()
        if pending and not (outcome.failures and stop):
            time.sleep(api.poll_seconds())
    outcome.open = {key for batch_id in pending for key in outcome.batches[batch_id]}
    return outcome


def _collect(provider: api._Provider, batch_id: str, state: api.BatchState, parts: dict[str, api.Part], store: Any,
             outcome: Outcome, money: _Money) -> None:
    """An ended batch: its answers and the provider's reasons, its reservation settled (once, in whichever run sees
    it end), its state in the checkpoint."""
    answers, reasons = provider.results(batch_id)
    keys = outcome.batches[batch_id]
    record = store.get(api.RECORD_PREFIX + batch_id)
    config = money.config
    for key, (texts, usage, finishes) in answers.items():
        if key in parts:
            job = parts[key].job  # a reply without usage was billed all the same: at its worst case
            outcome.answers[key] = (texts, usage if usage is not None else unreported_usage(
                config.model, config.provider, job.messages, parts[key].n, job.max_tokens), finishes)
    if not record.get("settled"):
        money.settle(batch_id, outcome.answers, keys)
    if state.failure:
        outcome.failures[batch_id] = state.failure
        reasons = {**{key: ("failed", f"the batch was {state.status}") for key in keys}, **reasons}
    outcome.reasons.update({key: value for key, value in reasons.items() if key not in outcome.answers})
    store.put(api.RECORD_PREFIX + batch_id, {**record, "settled": True,
                                             "state": "failed" if state.failure else "done"})
    store.flush()


def _resumed(provider: api._Provider, parts: dict[str, api.Part], store: Any, outcome: Outcome) -> dict[str, int]:
    """The checkpoint's open batches holding any of these parts go into outcome.batches; batch id -> tokens."""
    tokens: dict[str, int] = {}
    for key, record in list(store.records.items()):
        if key.startswith(api.RECORD_PREFIX) and isinstance(record, dict) and record.get("state") == "open" \
                and record.get("model") == provider.config.model and parts.keys() & set(record["parts"]):
            outcome.batches[key[len(api.RECORD_PREFIX):]] = record["parts"]
            tokens[key[len(api.RECORD_PREFIX):]] = record.get("tokens", 0)
    outcome.resumed = len(outcome.batches)
    if outcome.batches:
        print(f"resuming {len(outcome.batches)} batch(es) from the checkpoint: {', '.join(sorted(outcome.batches))}",
              flush=True)
    return tokens


def _submit(provider: api._Provider, chunk: list[api.Part], store: Any) -> str:
    """Create one batch; its id is in the checkpoint, fsynced, right after the provider accepted it."""
    batch_id = provider.submit(chunk)
    store.put(api.RECORD_PREFIX + batch_id, {"parts": [part.custom_id for part in chunk], "state": "open",
                                             "model": provider.config.model, "provider": provider.config.provider,
                                             "tokens": sum(part.tokens for part in chunk)})
    store.flush()
    print(f"submitted batch {batch_id} ({len(chunk)} requests)", flush=True)
    return batch_id


def _live_stats() -> dict[str, Any]:
    """The live fallback's statistics before any request."""
    return {"keys": set(), "errors_by_job": {}, "requests": 0, "cost_usd": 0.0, "upper": 0.0}


def _send_live(config: Any, missing: list[api.Part], answers: dict[str, tuple], out: dict[str, Any]) -> None:
    """Send the parts the batches left unanswered as live requests (full price, under the cap); their answers go in
    `answers`, their statistics in `out` (also when the cap stops them: BudgetExceeded)."""
    by_key = {}
    for part in missing:
        job = part.job
        by_key[part.custom_id] = (part, ChatJob(key=part.custom_id, messages=job.messages, n=part.n,
                                                temperature=job.temperature, max_tokens=job.max_tokens,
                                                top_p=job.top_p, seed=part.seed))

    def keep(sub: Any, completion: Any) -> None:
        part = by_key[sub.key][0]
        answers[sub.key] = (completion.texts, completion.usage, completion.finishes or [None] * part.n)
        out["keys"].add(sub.key)
        if completion.error:
            out["errors_by_job"][part.job.key] = completion.error

    stats = _new_stats()
    try:
        run_live(dataclasses.replace(config, api_mode="live"), [sub for _, sub in by_key.values()], keep,
                 "live fallback", stats)
    finally:
        out.update({name: stats[name] for name in pricing.UNREPORTED_FIELDS if name in stats},
                   requests=stats["requests"], cost_usd=stats["cost_usd"], upper=stats.get("cost_upper_usd", 0.0))
