"""--api_mode batch: OpenAI Batch (files + batches) and Anthropic Message Batches, resumable by the batch ids kept
in the run's checkpoint; what a batch leaves failed or expired is then sent live, so results match live calls."""
from __future__ import annotations

import dataclasses
import importlib
import json
import os
import time
from dataclasses import dataclass
from typing import Any, Callable

from tqdm import tqdm

from backends.replies import _anthropic_texts, _openai_texts
from backends.rules import ChatJob, Completion, MalformedResponse, _api_key, _max_n, _split, notice_once, request_params
from backends.runner import _new_stats, _record, _Runner, client_options, run_live
from common.cli import UserError
from common.records import stable_hash
from costs import pricing

# Per batch: (requests, bytes). OpenAI: an input file holds at most 50,000 requests and 200 MB (batches.create's
# input_file_id doc); Anthropic: a Message Batch holds at most 100,000 requests or 256 MB (Message Batches guide).
LIMITS = {"openai": (50_000, 200_000_000), "anthropic": (100_000, 256_000_000)}
POLL_ENV = "WEAVER_BATCH_POLL_S"  # seconds between status checks (tests use a short one)
DEFAULT_POLL_S = 30.0
RECORD_PREFIX = "batch/"  # checkpoint keys of submitted batches: batch/<id> -> {"parts": [...], "state": ...}
OPENAI_ENDED = ("completed", "expired", "failed", "cancelled")
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
            parts.append(Part(job, offset, size, seed, params, f"r{ident}"))
            offset += size
    return parts


def chunks(provider: str, parts: list[Part]) -> list[list[Part]]:
    """Parts in batches within the provider's request and byte limits."""
    max_requests, max_bytes = LIMITS[provider]
    out: list[list[Part]] = [[]]
    size = 0
    for part in parts:
        line = len(json.dumps(request_line(provider, part)).encode()) + 1
        if out[-1] and (len(out[-1]) >= max_requests or size + line > max_bytes):
            out.append([])
            size = 0
        out[-1].append(part)
        size += line
    return [chunk for chunk in out if chunk]


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

    def status(self, batch_id: str) -> tuple[bool, str, int]:
        """(ended, status, requests finished so far)."""
        if self.config.provider == "anthropic":
            batch = self.client.messages.batches.retrieve(batch_id)
            counts = batch.request_counts
            done = counts.succeeded + counts.errored + counts.canceled + counts.expired
            return batch.processing_status == "ended", batch.processing_status, done
        batch = self.client.batches.retrieve(batch_id)
        counts = batch.request_counts
        done = (counts.completed + counts.failed) if counts else 0
        return batch.status in OPENAI_ENDED, batch.status, done

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


def _parsed(parse: Callable, reply: Any, n: int, malformed: type) -> tuple | None:
    """parse(reply, n), or None for a malformed reply (sent live again)."""
    try:
        return parse(reply, n)
    except malformed:
        return None


def run_batch_jobs(config: Any, jobs: list, on_result: Callable, desc: str, store: Any,
                   stats: dict[str, Any]) -> dict[str, Any]:
    """Jobs through the provider's batch API: resume the checkpoint's open batches covering them, submit the rest,
    poll, download, send what failed or expired live, then on_result once per job; -> run_chat_jobs' stats."""
    if store is None:
        raise UserError("--api_mode batch needs a checkpoint to keep its batch ids in")
    started = time.perf_counter()
    provider = _Provider(config)
    parts = {part.custom_id: part for part in build_parts(config, jobs)}
    batches = _resume_or_submit(provider, parts, store)
    answers: dict[str, tuple] = {}
    with tqdm(total=len(parts), desc=f"{desc} (batch)", unit="request") as bar:
        for batch_id in _wait(provider, batches, bar):
            answers.update({key: value for key, value in provider.results(batch_id).items() if key in parts})
    missing = [part for key, part in parts.items() if key not in answers]
    live_stats = _send_live(config, missing, answers)
    batch_usage = {"prompt_tokens": 0, "completion_tokens": 0}
    for key, (_, usage, _) in answers.items():
        if key not in live_stats["keys"]:
            for name in batch_usage:
                batch_usage[name] += usage.get(name, 0)
    for job in jobs:
        own = sorted((p for p in parts.values() if p.job is job), key=lambda p: p.offset)
        texts, usage, finishes = [], {"prompt_tokens": 0, "completion_tokens": 0}, []
        for part in own:
            got, used, reasons = answers.get(part.custom_id, ([None] * part.n, {}, [None] * part.n))
            texts += list(got) + [None] * (part.n - len(got))
            finishes += list(reasons) + [None] * (part.n - len(reasons))
            for name in usage:
                usage[name] += used.get(name, 0)
        error = live_stats["errors_by_job"].get(job.key) or (
            "reply had no text content" if any(t is None for t in texts) else None)
        completion = Completion(texts=texts, usage=usage, error=error, finishes=finishes)
        _record(stats, completion)
        on_result(job, completion)
    for batch_id in batches:
        store.put(RECORD_PREFIX + batch_id, {**store.get(RECORD_PREFIX + batch_id), "state": "done"})
    store.flush()
    price = pricing.price_of(config.model, config.prices)
    live_cost = live_stats["cost_usd"]
    batch_cost = pricing.usage_cost(price, batch_usage["prompt_tokens"], batch_usage["completion_tokens"], batch=True)
    stats.update(requests=len(parts) - len(missing) + live_stats["requests"], batches=sorted(batches),
                 batch_requests=len(parts), live_fallback_requests=len(missing),
                 wall_time_s=round(time.perf_counter() - started, 3),
                 cost_usd=None if price is None else round((batch_cost or 0.0) + (live_cost or 0.0), 6))
    if price is None:
        notice_once(pricing.no_price_notice(config.model))
    return stats


def _resume_or_submit(provider: _Provider, parts: dict[str, Part], store: Any) -> dict[str, list[str]]:
    """batch id -> its custom ids: the checkpoint's open batches holding any of these parts, then new batches for
    the parts none holds (each id is in the checkpoint, fsynced, right after the provider accepted the batch)."""
    batches: dict[str, list[str]] = {}
    covered: set[str] = set()
    for key, record in list(store.records.items()):
        if key.startswith(RECORD_PREFIX) and isinstance(record, dict) and record.get("state") == "open" \
                and record.get("model") == provider.config.model and parts.keys() & set(record["parts"]):
            batches[key[len(RECORD_PREFIX):]] = record["parts"]
            covered |= set(record["parts"])
    if batches:
        print(f"resuming {len(batches)} batch(es) from the checkpoint: {', '.join(sorted(batches))}", flush=True)
    todo = [part for key, part in parts.items() if key not in covered]
    for chunk in chunks(provider.config.provider, todo) if todo else []:
        batch_id = provider.submit(chunk)
        ids = [part.custom_id for part in chunk]
        store.put(RECORD_PREFIX + batch_id, {"parts": ids, "state": "open", "model": provider.config.model,
                                             "provider": provider.config.provider})
        store.flush()
        batches[batch_id] = ids
        print(f"submitted batch {batch_id} ({len(ids)} requests)", flush=True)
    return batches


def _wait(provider: _Provider, batches: dict[str, list[str]], bar: tqdm) -> list[str]:
    """Poll until every batch has ended (progress on the bar); the ended batches' ids."""
    pending = dict(batches)
    finished: dict[str, int] = {}
    while pending:
        states = []
        for batch_id in list(pending):
            ended, status, done = provider.status(batch_id)
            finished[batch_id] = len(batches[batch_id]) if ended else done
            states.append(status)
            if ended:
                del pending[batch_id]
        bar.n = sum(finished.values())
        bar.set_postfix_str(f"{len(batches) - len(pending)}/{len(batches)} batches ended; "
                            f"{', '.join(sorted(set(states)))}")
        bar.refresh()
        if pending:
            time.sleep(poll_seconds())
    return list(batches)


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
