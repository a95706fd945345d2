"""The providers' batch APIs as --api_mode batch uses them (batch.py runs them): OpenAI Batch (a JSONL file
uploaded with files.create, then batches.create) and Anthropic Message Batches; their limits, request lines, status
and results (answers, and the provider's reason for each request it left unanswered)."""
from __future__ import annotations

import importlib
import json
import os
from dataclasses import dataclass
from typing import Any, Callable

from generation.backends.replies import _anthropic_texts, _openai_texts
from generation.backends.rules import MalformedResponse, _api_key, _max_n, _split, request_params
from generation.backends.runner import _Runner, client_options
from generation.common.cli import UserError
from generation.common.records import stable_hash
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


def check_batch_mode(provider: str, model: str) -> None:
    """One-line UserError before any call when --api_mode batch cannot serve this provider."""
    if provider not in LIMITS:
        together = (" (Together has a Batch API at half price, which this pipeline does not drive yet)"
                    if provider == "together" else "")
        raise UserError(f"--api_mode batch: provider {provider!r} (model {model}) has no batch API here{together}; "
                        f"batch mode works for {' and '.join(LIMITS)} only: use --api_mode live")


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

    def results(self, batch_id: str) -> tuple[dict[str, tuple], dict[str, tuple[str, str]]]:
        """(custom_id -> (texts, usage or None, finish reasons) of every request the batch answered, custom_id ->
        (expired | canceled | failed, the provider's one-line reason) of every request it left unanswered)."""
        answers: dict[str, tuple] = {}
        reasons: dict[str, tuple[str, str]] = {}
        if self.config.provider == "anthropic":
            for item in self.client.messages.batches.results(batch_id):
                result = item.result
                if result.type == "succeeded":
                    answers[item.custom_id] = _parsed(_anthropic_texts, result.message, 1, MalformedResponse)
                elif result.type == "errored":
                    error = result.error.error
                    reasons[item.custom_id] = ("failed", f"{error.type}: {' '.join(str(error.message).split())}")
                else:
                    reasons[item.custom_id] = (result.type, result.type)
            return _split_malformed(answers, reasons)
        from openai.types.chat import ChatCompletion

        batch = self.client.batches.retrieve(batch_id)
        for file_id in (batch.output_file_id, batch.error_file_id):
            for line in self.client.files.content(file_id).text.splitlines() if file_id else []:
                item = json.loads(line) if line.strip() else {}
                response = item.get("response") or {}
                body = response.get("body") or {}
                if response.get("status_code") == 200 and not item.get("error"):
                    try:
                        reply = ChatCompletion.model_validate(body)
                    except ValueError:
                        reply = None
                    n = len(body.get("choices") or []) or 1
                    answers[item["custom_id"]] = reply and _parsed(_openai_texts, reply, n, MalformedResponse)
                elif "custom_id" in item:
                    reasons[item["custom_id"]] = _openai_reason(item, response, body)
        return _split_malformed(answers, reasons)


def _openai_reason(item: dict, response: dict, body: dict) -> tuple[str, str]:
    """(kind, one line) of an OpenAI batch error-file line: a request error ({"error": {"code", "message"}},
    batch_expired when the window closed first) or a non-200 response body."""
    error = item.get("error") or (body.get("error") if isinstance(body.get("error"), dict) else None) or {}
    code = error.get("code") or error.get("type") or f"HTTP {response.get('status_code')}"
    kind = "expired" if code == "batch_expired" else "failed"
    return kind, f"{code}: {' '.join(str(error.get('message') or '').split())}".rstrip(": ")


def _split_malformed(answers: dict[str, tuple | None], reasons: dict[str, tuple[str, str]]
                     ) -> tuple[dict[str, tuple], dict[str, tuple[str, str]]]:
    """Answers that did not parse as a completion become failures with a reason."""
    for key in [key for key, value in answers.items() if not value]:
        del answers[key]
        reasons[key] = ("failed", "malformed reply")
    return answers, reasons


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
