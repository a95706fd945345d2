"""--api_mode batch: OpenAI Batch (files + batches) and Anthropic Message Batches, resumable by the batch ids kept
in the run's checkpoint. Chunks are submitted as earlier ones end, within the enqueued-token limit. What a batch
leaves failed or expired request by request is then sent live (counted), so results match live calls; a batch that
fails or is cancelled as a whole stops the step with the provider's errors (nothing bought twice) unless
--batch_fallback live."""
from __future__ import annotations

import dataclasses
import importlib
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

from tqdm import tqdm

from generation.backends.replies import _anthropic_texts, _openai_texts
from generation.backends.rules import (
    ChatJob,
    Completion,
    MalformedResponse,
    _api_key,
    _max_n,
    _split,
    notice_once,
    request_params,
)
from generation.backends.runner import _new_stats, _record, _Runner, client_options, run_live
from generation.common.cli import UserError
from generation.common.records import stable_hash
from generation.costs import pricing
from generation.costs.token_counts import prompt_token_bound

# Per batch: (requests, bytes). OpenAI: an input file holds at most 50,000 requests and 200 MB (batches.create's
# input_file_id doc); Anthropic: a Message Batch holds at most 100,000 requests or 256 MB (Message Batches guide).
LIMITS = {"openai": (50_000, 200_000_000), "anthropic": (100_000, 256_000_000)}
POLL_ENV = "WEAVER_BATCH_POLL_S"  # seconds between status checks (tests use a short one)
DEFAULT_POLL_S = 30.0
RECORD_PREFIX = "batch/"  # checkpoint keys of submitted batches: batch/<id> -> {"parts": [...], "state": ...}
OPENAI_ENDED = ("completed", "expired", "failed", "cancelled")
OPENAI_WHOLE_FAILURES = ("failed", "cancelled")
# OpenAI's batch queue limit (input tokens enqueued per model and organisation) at usage tier 1, the lowest
# (OpenAI's rate-limit pages; gpt-5 and gpt-5-mini as raised in September 2025): the default of
# --batch_max_enqueued_tokens; other OpenAI models get the lowest figure. Anthropic has no token queue limit.
TIER1_QUEUE_TOKENS = {"gpt-4o-mini": 2_000_000, "gpt-5": 1_500_000, "gpt-5-mini": 5_000_000}
LOWEST_QUEUE_TOKENS = 90_000  # gpt-4o, gpt-4-turbo, o1 at tier 1
CHAT_URL = "/v1/chat/completions"


@dataclass
class Part:
    """One batch request: completions offset..offset+n of a job."""
    job: Any
    offset: int
    n: int
    seed: int | None
    params: dict
    custom_id: str
    tokens: int = 0  # input tokens (an upper bound): what the provider's batch queue limit counts


@dataclass
class BatchState:
    """One status check of a batch."""

    ended: bool
    status: str
    done: int  # requests finished so far
    failure: list[str] | None = None  # failed or cancelled as a whole: the provider's errors, one line each


def check_batch_mode(provider: str, model: str, max_cost: float | None) -> None:
    """One-line UserError before any call when --api_mode batch cannot serve this provider."""
    if provider not in LIMITS:
        raise UserError(f"--api_mode batch: provider {provider!r} (model {model}) has no batch API; batch mode works "
                        f"for {' and '.join(LIMITS)} only: use --api_mode live")
    if max_cost is not None:
        raise UserError("--api_mode batch does not take --max_cost (a batch's cost is known only when it ends); "
                        "drop one of them")


def poll_seconds() -> float:
    """Seconds between batch status checks ($WEAVER_BATCH_POLL_S, default 30)."""
    return float(os.environ.get(POLL_ENV) or DEFAULT_POLL_S)


def build_parts(config: Any, jobs: list) -> list[Part]:
    """Each job's requests at the provider's `n` limit, with the seeds and parameters live calls would send."""
    parts = []
    for job in jobs:
        offset = 0
        for size in _split(job.n, _max_n(config)):
            seed = _Runner._seed(job, offset)
            params = request_params(config, job, size, seed)
            ident = stable_hash([job.key, offset, params])[:48]
            tokens = prompt_token_bound(config.model, config.provider, job.messages)
            parts.append(Part(job, offset, size, seed, params, f"r{ident}", tokens))
            offset += size
    return parts


def chunks(provider: str, parts: list[Part], max_tokens: int | None = None) -> list[list[Part]]:
    """Parts in batches within the provider's request and byte limits and the enqueued-token limit."""
    max_requests, max_bytes = LIMITS[provider]
    out: list[list[Part]] = [[]]
    size = tokens = 0
    for part in parts:
        line = len(json.dumps(request_line(provider, part)).encode()) + 1
        if out[-1] and (len(out[-1]) >= max_requests or size + line > max_bytes
                        or max_tokens is not None and tokens + part.tokens > max_tokens):
            out.append([])
            size = tokens = 0
        out[-1].append(part)
        size += line
        tokens += part.tokens
    return [chunk for chunk in out if chunk]


def enqueued_limit(config: Any) -> int | None:
    """Input tokens this run keeps enqueued at most: --batch_max_enqueued_tokens, else OpenAI's tier-1 figure."""
    if config.batch_max_enqueued_tokens is not None:
        return config.batch_max_enqueued_tokens
    if config.provider != "openai":
        return None
    return TIER1_QUEUE_TOKENS.get(config.model, LOWEST_QUEUE_TOKENS)


def request_line(provider: str, part: Part) -> dict:
    """The batch entry of one request in the provider's format."""
    if provider == "anthropic":
        return {"custom_id": part.custom_id, "params": part.params}
    return {"custom_id": part.custom_id, "method": "POST", "url": CHAT_URL, "body": part.params}


class _Provider:
    """The SDK calls of one provider's batch API (synchronous client)."""
    def __init__(self, config: Any) -> None:

        self.config = config
        self.sdk = importlib.import_module(config.provider)
        self.client = getattr(self.sdk, "Anthropic" if config.provider == "anthropic" else "OpenAI")(
            **client_options(config, _api_key(config)))

    def submit(self, parts: list[Part]) -> str:
        """Create one batch of these parts; its id."""
        lines = [request_line(self.config.provider, part) for part in parts]
        if self.config.provider == "anthropic":
            return self.client.messages.batches.create(requests=lines).id
        data = "".join(json.dumps(line) + "\n" for line in lines).encode()
        upload = self.client.files.create(file=("batch.jsonl", data, "application/jsonl"), purpose="batch")
        return self.client.batches.create(input_file_id=upload.id, endpoint=CHAT_URL, completion_window="24h").id

    def status(self, batch_id: str, total: int) -> BatchState:
        """Where a batch of `total` requests stands (Anthropic's progress: the requests no longer `processing`; its
        other counts stay 0 until the batch ends)."""
        if self.config.provider == "anthropic":
            batch = self.client.messages.batches.retrieve(batch_id)
            ended = batch.processing_status == "ended"
            failure = ["the batch was canceled"] if ended and batch.cancel_initiated_at else None
            return BatchState(ended, batch.processing_status, total - batch.request_counts.processing, failure)
        batch = self.client.batches.retrieve(batch_id)
        counts = batch.request_counts
        done = (counts.completed + counts.failed) if counts else 0
        failure = _openai_errors(batch) if batch.status in OPENAI_WHOLE_FAILURES else None
        return BatchState(batch.status in OPENAI_ENDED, batch.status, done, failure)

    def results(self, batch_id: str) -> dict[str, tuple]:
        """custom_id -> (texts, usage, finish reasons) of every request the batch answered successfully."""

        out = {}
        if self.config.provider == "anthropic":
            for item in self.client.messages.batches.results(batch_id):
                if item.result.type == "succeeded":
                    out[item.custom_id] = _parsed(_anthropic_texts, item.result.message, 1, MalformedResponse)
            return {key: value for key, value in out.items() if value}
        from openai.types.chat import ChatCompletion

        batch = self.client.batches.retrieve(batch_id)
        if not batch.output_file_id:
            return {}
        for line in self.client.files.content(batch.output_file_id).text.splitlines():
            item = json.loads(line) if line.strip() else {}
            response = item.get("response") or {}
            if response.get("status_code") == 200 and not item.get("error"):
                body = response.get("body") or {}
                n = len(body.get("choices") or []) or 1
                try:
                    reply = ChatCompletion.model_validate(body)
                except ValueError:
                    continue
                out[item["custom_id"]] = _parsed(_openai_texts, reply, n, MalformedResponse)
        return {key: value for key, value in out.items() if value}


def _openai_errors(batch: Any) -> list[str]:
    """A failed or cancelled OpenAI batch's errors (batch.errors.data), one line each, token_limit_exceeded
    explained."""
    lines = []
    for error in getattr(batch.errors, "data", None) or []:
        line = f"{error.code or 'error'}: {' '.join(str(error.message or '').split())}"
        lines.append(line + (f" (input line {error.line})" if error.line else ""))
        if error.code == "token_limit_exceeded":
            lines.append("token_limit_exceeded: OpenAI's batch queue for this model (input tokens enqueued by your "
                         "organisation's batches, at its usage tier) is full: lower --batch_max_enqueued_tokens or "
                         "wait for other batches to end")
    return lines or [f"the batch was {batch.status}"]


def _parsed(parse: Callable, reply: Any, n: int, malformed: type) -> tuple | None:
    """parse(reply, n), or None for a malformed reply (sent live again)."""
    try:
        return parse(reply, n)
    except malformed:
        return None


class BatchFailed(UserError):
    """A batch failed or was cancelled as a whole and --batch_fallback is none: the step stops (exit 1)."""

    exit_code = 1


def run_batch_jobs(config: Any, jobs: list, on_result: Callable, desc: str, store: Any,
                   stats: dict[str, Any]) -> dict[str, Any]:
    """Jobs through the provider's batch API: resume the checkpoint's open batches covering them, submit the rest
    as the enqueued-token limit allows, poll, download, send what failed or expired request by request live, then
    on_result once per job; -> run_chat_jobs' stats. BatchFailed after on_result when a batch failed as a whole."""
    if store is None:
        raise UserError("--api_mode batch needs a checkpoint to keep its batch ids in")
    started = time.perf_counter()
    provider = _Provider(config)
    parts = {part.custom_id: part for part in build_parts(config, jobs)}
    stop = config.batch_fallback == "none"
    with tqdm(total=len(parts), desc=f"{desc} (batch)", unit="request") as bar:
        batches, ended, failures = _run_batches(provider, parts, store, bar, enqueued_limit(config), stop)
    answers: dict[str, tuple] = {}
    for batch_id in ended:
        answers.update({key: value for key, value in provider.results(batch_id).items() if key in parts})
    failed = {key for batch_id in failures for key in batches[batch_id]}
    missing = [part for key, part in parts.items() if key not in answers and key not in failed]
    if failures and not stop:
        lost = [parts[key] for key in failed if key in parts and key not in answers]
        print(f"{len(lost)} request(s) of {len(failures)} batch(es) that failed as a whole: sending them live at "
              "full price (--batch_fallback live)", flush=True)
        missing += lost
    live_stats = _send_live(config, [] if failures and stop else missing, answers)
    batch_usage = {"prompt_tokens": 0, "completion_tokens": 0, "cached_tokens": 0}
    for key, (_, usage, _) in answers.items():
        if key not in live_stats["keys"]:
            for name in batch_usage:
                batch_usage[name] += usage.get(name, 0)
    for job in jobs:
        _deliver(job, parts, answers, live_stats, stats, on_result)
    for batch_id in ended:
        state = "failed" if batch_id in failures else "done"
        store.put(RECORD_PREFIX + batch_id, {**store.get(RECORD_PREFIX + batch_id), "state": state})
    store.flush()
    if failures and stop:
        raise _failed(failures, batches, answers)
    price = pricing.price_of(config.model, config.prices)
    live_cost = live_stats["cost_usd"]
    batch_cost = pricing.usage_cost(price, batch_usage["prompt_tokens"], batch_usage["completion_tokens"], batch=True,
                                    cached_tokens=batch_usage["cached_tokens"])
    stats.update(requests=len(parts) - len(missing) + live_stats["requests"], batches=sorted(batches),
                 batch_requests=len(parts), live_fallback_requests=len(missing),
                 wall_time_s=round(time.perf_counter() - started, 3),
                 cost_usd=None if price is None else round((batch_cost or 0.0) + (live_cost or 0.0), 6))
    if price is None:
        notice_once(pricing.no_price_notice(config.model))
    return stats


def _deliver(job: Any, parts: dict[str, Part], answers: dict[str, tuple], live_stats: dict, stats: dict,
             on_result: Callable) -> None:
    """Assemble a job's completion from its parts' answers (None where one has none) and hand it on."""
    own = sorted((p for p in parts.values() if p.job is job), key=lambda p: p.offset)
    texts, usage, finishes = [], {"prompt_tokens": 0, "completion_tokens": 0}, []
    for part in own:
        got, used, reasons = answers.get(part.custom_id, ([None] * part.n, {}, [None] * part.n))
        texts += list(got) + [None] * (part.n - len(got))
        finishes += list(reasons) + [None] * (part.n - len(reasons))
        for name, value in used.items():
            usage[name] = usage.get(name, 0) + value
    error = live_stats["errors_by_job"].get(job.key) or (
        "reply had no text content" if any(t is None for t in texts) else None)
    completion = Completion(texts=texts, usage=usage, error=error, finishes=finishes)
    _record(stats, completion)
    on_result(job, completion)


def _failed(failures: dict[str, list[str]], batches: dict[str, list[str]], answers: dict) -> BatchFailed:
    """Print each failed batch's errors on its own line; the one-line stop message."""
    for batch_id, lines in failures.items():
        for line in lines:
            print(f"batch {batch_id}: {line}", file=sys.stderr)
    lost = sum(key not in answers for batch_id in failures for key in batches[batch_id])
    return BatchFailed(f"{len(failures)} batch(es) failed or were cancelled as a whole ({lost} request(s) "
                       "unanswered; errors above); nothing was sent live and the answered requests are "
                       "checkpointed: fix the cause and run the same command again, or add --batch_fallback live "
                       "to send such requests live at full price")


def _run_batches(provider: _Provider, parts: dict[str, Part], store: Any, bar: tqdm, limit: int | None,
                 stop: bool) -> tuple[dict[str, list[str]], list[str], dict[str, list[str]]]:
    """Resume the checkpoint's open batches holding these parts, submit the others in chunks while the input
    tokens enqueued stay within `limit`, poll until every batch has ended (`stop`: or one failed as a whole);
    -> (batch id -> custom ids, the ended batches, failed batch id -> its error lines)."""
    batches, tokens = _resumed(provider, parts, store)
    covered = {key for ids in batches.values() for key in ids}
    queue = chunks(provider.config.provider, [p for key, p in parts.items() if key not in covered], limit)
    pending = dict(batches)
    ended: list[str] = []
    failures: dict[str, list[str]] = {}
    finished: dict[str, int] = {}
    while queue or pending:
        if failures and stop:
            break  # the open batches stay in the checkpoint: a rerun picks them up
        while queue and (not pending or limit is None
                         or sum(tokens[b] for b in pending) + sum(p.tokens for p in queue[0]) <= limit):
            chunk = queue.pop(0)
            batch_id = _submit(provider, chunk, store)
            batches[batch_id] = pending[batch_id] = [part.custom_id for part in chunk]
            tokens[batch_id] = sum(part.tokens for part in chunk)
        states = []
        for batch_id in list(pending):
            state = provider.status(batch_id, len(batches[batch_id]))
            finished[batch_id] = len(batches[batch_id]) if state.ended else state.done
            states.append(state.status)
            if state.ended:
                del pending[batch_id]
                ended.append(batch_id)
                if state.failure:
                    failures[batch_id] = state.failure
        bar.n = sum(finished.values())
        bar.set_postfix_str(f"{len(ended)}/{len(batches) + len(queue)} batches ended; {', '.join(sorted(set(states)))}")
        bar.refresh()
        if pending and not (failures and stop):
            time.sleep(poll_seconds())
    return batches, ended, failures


def _resumed(provider: _Provider, parts: dict[str, Part], store: Any) -> tuple[dict[str, list[str]], dict[str, int]]:
    """The checkpoint's open batches holding any of these parts: (batch id -> custom ids, batch id -> tokens)."""
    batches: dict[str, list[str]] = {}
    tokens: dict[str, int] = {}
    for key, record in list(store.records.items()):
        if key.startswith(RECORD_PREFIX) and isinstance(record, dict) and record.get("state") == "open" \
                and record.get("model") == provider.config.model and parts.keys() & set(record["parts"]):
            batches[key[len(RECORD_PREFIX):]] = record["parts"]
            tokens[key[len(RECORD_PREFIX):]] = record.get("tokens", 0)
    if batches:
        print(f"resuming {len(batches)} batch(es) from the checkpoint: {', '.join(sorted(batches))}", flush=True)
    return batches, tokens


def _submit(provider: _Provider, chunk: list[Part], store: Any) -> str:
    """Create one batch; its id is in the checkpoint, fsynced, right after the provider accepted it."""
    batch_id = provider.submit(chunk)
    store.put(RECORD_PREFIX + batch_id, {"parts": [part.custom_id for part in chunk], "state": "open",
                                         "model": provider.config.model, "provider": provider.config.provider,
                                         "tokens": sum(part.tokens for part in chunk)})
    store.flush()
    print(f"submitted batch {batch_id} ({len(chunk)} requests)", flush=True)
    return batch_id


def _send_live(config: Any, missing: list[Part], answers: dict[str, tuple]) -> dict[str, Any]:
    """Send the parts a batch left failed, expired or unanswered as live requests; their answers go in `answers`."""
    out: dict[str, Any] = {"keys": set(), "errors_by_job": {}, "requests": 0, "cost_usd": 0.0}
    if not missing:
        return out
    print(f"{len(missing)} request(s) failed, expired or missing in the batch: sending them live", flush=True)
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

    stats = run_live(dataclasses.replace(config, api_mode="live"), [sub for _, sub in by_key.values()], keep,
                     "live fallback", _new_stats())
    out.update(requests=stats["requests"], cost_usd=stats["cost_usd"])
    return out
