"""API model clients shared by every step: provider routing, async bounded concurrency, rate limit, retries.

INTERFACE CONTRACT (Step 1, Step 2 and Step 3b code against it):
- resolve_provider(model, provider, base_url) -> provider name or None (None: not an API model).
- ApiConfig, ChatJob, Completion dataclasses below.
- check_ready(config): raises UserError for a missing API key or an unreachable --base_url, before any work.
- run_chat_jobs(config, jobs, on_result, desc) -> stats dict; calls on_result(job, completion) in the calling
  thread as each job finishes; raises FatalApiError (a UserError) on auth/permission/bad-request errors.
- run_cached(config, jobs, store, desc) -> dict[key, Completion]: skips jobs whose key is in the RecordStore,
  stores each fully successful completion as it arrives (failures are not cached), returns all completions.
- request_key(config, job) -> stable sha256 of model, provider, messages and sampling params (a ChatJob.key).
- add_api_arguments(parser): --provider --base_url --max_concurrency (alias --num_workers) --requests_per_minute;
  api_config_from_args(args, model) -> ApiConfig.

Retries: HTTP-level retries (408/409/429/5xx, timeouts, dropped connections; exponential backoff with jitter that
honours Retry-After) are the SDKs' own (`max_retries`, `timeout`). This module only re-asks, a bounded number of
times, when a 200 reply is malformed (invalid JSON, missing choices). A job still failing is a Completion whose
texts are None plus a short `error`; it never raises. 4xx errors other than 408/409/429 raise FatalApiError.
Anthropic gets no sampling parameters (its API version 2026-10-21 rejects them); n > 1 is n separate calls.
"""
from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from tqdm import tqdm

from cli_support import UserError, bounded_float, positive_int
from record_store import stable_hash

PROVIDERS = ("openai", "anthropic", "together", "openai_compatible")
ENV_KEYS = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY", "together": "TOGETHER_API_KEY",
            "openai_compatible": "OPENAI_API_KEY"}
# The reference's MODEL_PROVIDERS table (exact names); other names route by prefix in resolve_provider.
KNOWN_MODELS = {
    **dict.fromkeys(("gpt-4o-mini", "gpt-4o", "gpt-4-turbo", "o3-mini-2025-01-31", "o1-2024-12-17"), "openai"),
    **dict.fromkeys(("claude-3-5-sonnet-latest", "claude-3-5-haiku-latest"), "anthropic"),
    **dict.fromkeys(("deepseek-ai/DeepSeek-R1", "meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo",
                     "meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo"), "together"),
}
PREFIX_ROUTES = ((re.compile(r"^(gpt-|chatgpt-|o[1-9](-|$))"), "openai"), (re.compile(r"^claude-"), "anthropic"))
# OpenAI reasoning models: no temperature/top_p, max_completion_tokens, system -> developer.
REASONING_MODEL = re.compile(r"^(o[1-9](-|$)|gpt-5(?!.*chat))")
NO_DEVELOPER_ROLE = ("o1-mini", "o1-preview")  # early o1 models accept neither system nor developer messages
SDK_MODULES = {"openai": "openai", "openai_compatible": "openai", "anthropic": "anthropic", "together": "together"}
ROOT_URL_PROVIDERS = ("anthropic", "together")  # SDKs whose base URL is the server root (paths start with /v1)
FATAL_CODES = ("insufficient_quota",)  # OpenAI's 429 for an exhausted quota: waiting cannot help
MALFORMED_RETRIES = 2
READY_TIMEOUT_S = 5.0
PLACEHOLDER_KEY = "EMPTY"


@dataclass
class ApiConfig:
    """Which API model to call and how hard."""

    model: str
    provider: str
    base_url: str | None = None
    max_concurrency: int = 16
    requests_per_minute: float | None = None
    timeout: float = 600.0
    max_retries: int = 6
    reasoning_effort: str | None = None  # OpenAI reasoning models only (the reference sent "high")


@dataclass
class ChatJob:
    """One chat request: `n` completions of `messages`."""

    key: str
    messages: list[dict]
    n: int = 1
    temperature: float = 0.0
    max_tokens: int = 512
    top_p: float | None = None
    seed: int | None = None


@dataclass
class Completion:
    """The texts a job produced (None where a completion failed after its retries) and token usage."""

    texts: list[str | None]
    usage: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    truncated: list[bool] = field(default_factory=list)  # per text: stopped by max_tokens (empty when unknown)


class FatalApiError(UserError):
    """Authentication, permission or bad-request error: retrying cannot help, so the run stops."""


class MalformedResponse(Exception):
    """A 200 reply whose body is not a usable completion (retried a bounded number of times)."""


def resolve_provider(model: str, provider: str | None = None, base_url: str | None = None) -> str | None:
    """The API provider for a model: --provider, else the known table, else --base_url, else a name prefix."""
    if provider:
        if provider not in PROVIDERS:
            raise UserError(f"unknown --provider {provider!r}; choose one of {', '.join(PROVIDERS)}")
        return provider
    if model in KNOWN_MODELS:
        return KNOWN_MODELS[model]
    if base_url:
        return "openai_compatible"
    if "/" in model or os.path.exists(model):
        return None  # a hub id or a local path: a local model
    return next((name for pattern, name in PREFIX_ROUTES if pattern.match(model)), None)


def is_reasoning_model(config: ApiConfig) -> bool:
    """True for OpenAI reasoning models (o1/o3/o4 family, gpt-5), which take different parameters."""
    return config.provider == "openai" and bool(REASONING_MODEL.match(config.model))


def _api_key(config: ApiConfig) -> str:
    """The provider's key from the environment (a placeholder for keyless OpenAI-compatible servers)."""
    key = os.environ.get(ENV_KEYS[config.provider], "")
    if key:
        return key
    if config.provider == "openai_compatible":
        return PLACEHOLDER_KEY
    raise UserError(f"{ENV_KEYS[config.provider]} is not set: export it to call the {config.provider} API "
                    f"(model {config.model})")


def check_ready(config: ApiConfig) -> None:
    """Fail fast with a one-line UserError for a bad provider, a missing key or an unreachable --base_url."""
    if config.provider not in PROVIDERS:
        raise UserError(f"unknown provider {config.provider!r}; choose one of {', '.join(PROVIDERS)}")
    if config.max_concurrency < 1:
        raise UserError(f"--max_concurrency must be >= 1, got {config.max_concurrency}")
    _api_key(config)
    if config.provider == "openai_compatible" and not config.base_url:
        raise UserError("--provider openai_compatible needs --base_url URL (e.g. http://127.0.0.1:8000/v1)")
    if config.base_url:
        _check_reachable(config.base_url)


def _check_reachable(base_url: str) -> None:
    """GET <base_url>/models quickly: any HTTP answer counts as reachable, a connection failure does not."""
    if not re.match(r"^https?://", base_url):
        raise UserError(f"--base_url {base_url!r} must start with http:// or https://")
    url = base_url.rstrip("/") + "/models"
    try:
        with urllib.request.urlopen(url, timeout=READY_TIMEOUT_S):
            return
    except urllib.error.HTTPError:
        return  # the server answered (401/404 still prove it is there)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UserError(f"cannot reach --base_url {base_url} ({reason}); start the server or fix the URL") from None


def request_key(config: ApiConfig, job: ChatJob) -> str:
    """Stable sha256 of what determines a reply: model, provider, messages and sampling parameters."""
    payload = {"model": config.model, "provider": config.provider, "messages": job.messages, "n": job.n,
               "temperature": job.temperature, "max_tokens": job.max_tokens, "top_p": job.top_p, "seed": job.seed}
    if config.reasoning_effort is not None:
        payload["reasoning_effort"] = config.reasoning_effort
    return stable_hash(payload)


class RateLimiter:
    """Spaces request starts evenly so that at most `per_minute` start in any minute (no bursts)."""

    def __init__(self, per_minute: float) -> None:
        self.interval = 60.0 / per_minute
        self.next_slot = 0.0

    async def wait(self) -> None:
        """Reserve the next free slot and sleep until it."""
        now = asyncio.get_running_loop().time()
        slot = max(now, self.next_slot)
        self.next_slot = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


def _openai_messages(config: ApiConfig, messages: list[dict]) -> list[dict]:
    """Messages as the model accepts them: reasoning models take developer (or, for early o1, user) turns."""
    if not is_reasoning_model(config):
        return messages
    if not config.model.startswith(NO_DEVELOPER_ROLE):
        return [{**m, "role": "developer"} if m.get("role") == "system" else m for m in messages]
    system = "\n\n".join(m["content"] for m in messages if m.get("role") == "system")
    rest = [m for m in messages if m.get("role") != "system"]
    if not system:
        return rest
    if rest and rest[0].get("role") == "user":
        return [{**rest[0], "content": f"{system}\n\n{rest[0]['content']}"}] + rest[1:]
    return [{"role": "user", "content": system}] + rest


def _openai_params(config: ApiConfig, job: ChatJob, n: int) -> dict[str, Any]:
    """chat.completions arguments for OpenAI, Together and OpenAI-compatible servers."""
    params: dict[str, Any] = {"model": config.model, "messages": _openai_messages(config, job.messages)}
    if n > 1:
        params["n"] = n
    if job.seed is not None:
        params["seed"] = job.seed
    if is_reasoning_model(config):
        params["max_completion_tokens"] = job.max_tokens
        if config.reasoning_effort:
            params["reasoning_effort"] = config.reasoning_effort
        return params
    params.update(max_tokens=job.max_tokens, temperature=job.temperature)
    if job.top_p is not None:
        params["top_p"] = job.top_p
    return params


def _anthropic_params(config: ApiConfig, job: ChatJob) -> dict[str, Any]:
    """messages.create arguments: system turns go to `system=`, one completion per call.

    No temperature/top_p/seed: the anthropic SDK 2.x sends API version 2026-10-21, which rejects sampling
    parameters on every model (the SDK removed them), so the model's own sampling is used.
    """
    system = "\n\n".join(m["content"] for m in job.messages if m.get("role") == "system")
    params: dict[str, Any] = {"model": config.model, "max_tokens": job.max_tokens,
                              "messages": [m for m in job.messages if m.get("role") != "system"]}
    if system:
        params["system"] = system
    return params


def _openai_texts(reply: Any, n: int) -> tuple[list[str | None], dict[str, int], list[bool]]:
    """Texts, usage and cut-at-max_tokens flags of a chat.completions reply; MalformedResponse when it is not one."""
    choices = getattr(reply, "choices", None)
    if not isinstance(choices, list) or len(choices) != n:
        got = len(choices) if isinstance(choices, list) else type(choices).__name__
        raise MalformedResponse(f"expected {n} choices, got {got}")
    texts = [getattr(getattr(c, "message", None), "content", None) for c in choices]
    usage = getattr(reply, "usage", None)
    return ([t if isinstance(t, str) else None for t in texts],
            _usage(getattr(usage, "prompt_tokens", 0), getattr(usage, "completion_tokens", 0)),
            [getattr(c, "finish_reason", None) == "length" for c in choices])


def _anthropic_texts(reply: Any, n: int) -> tuple[list[str | None], dict[str, int], list[bool]]:
    """Text, usage and cut-at-max_tokens flag of an Anthropic messages reply; MalformedResponse when it is not one."""
    blocks = getattr(reply, "content", None)
    if not isinstance(blocks, list):
        raise MalformedResponse(f"expected a content list, got {type(blocks).__name__}")
    parts = [b.text for b in blocks if getattr(b, "type", None) == "text" and isinstance(b.text, str)]
    usage = getattr(reply, "usage", None)
    return (["".join(parts) if parts else None],
            _usage(getattr(usage, "input_tokens", 0), getattr(usage, "output_tokens", 0)),
            [getattr(reply, "stop_reason", None) == "max_tokens"])


def _usage(prompt: Any, completion: Any) -> dict[str, int]:
    """Token usage as {prompt_tokens, completion_tokens} (0 for what the server did not report)."""
    return {"prompt_tokens": prompt if isinstance(prompt, int) else 0,
            "completion_tokens": completion if isinstance(completion, int) else 0}


def _error_code(exc: Any) -> str | None:
    """The provider's error code or type from an SDK status error's body, if any."""
    body = getattr(exc, "body", None)
    inner = body.get("error", body) if isinstance(body, dict) else None
    return (inner.get("code") or inner.get("type")) if isinstance(inner, dict) else None


def _provider_message(exc: Any) -> str:
    """The provider's own error message from an SDK status error."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
        if message:
            return str(message)
    return str(getattr(exc, "message", exc))


def _redact(text: str, key: str) -> str:
    """One line with the API key (if any) masked."""
    text = " ".join(str(text).split())
    return text.replace(key, "***") if key and key != PLACEHOLDER_KEY else text


def _new_stats() -> dict[str, Any]:
    """Zeroed run statistics."""
    return {"jobs": 0, "samples": 0, "failed_jobs": 0, "failed_samples": 0, "requests": 0, "http_attempts": 0,
            "retries": 0, "prompt_tokens": 0, "completion_tokens": 0, "wall_time_s": 0.0, "errors": {}}


def _http_client(sdk: Any, event_hooks: dict) -> Any:
    """The SDK's aiohttp transport where installed (its documented faster option at high concurrency), else httpx."""
    try:
        return sdk.DefaultAioHttpClient(event_hooks=event_hooks)
    except RuntimeError:  # the SDK was installed without its aiohttp extra
        return sdk.DefaultAsyncHttpxClient(event_hooks=event_hooks)


class _Runner:
    """One SDK client for the run, shared by all jobs, with the concurrency and rate limits."""

    def __init__(self, config: ApiConfig, stats: dict[str, Any]) -> None:
        self.config = config
        self.stats = stats
        self.key = _api_key(config)
        self.sdk = importlib.import_module(SDK_MODULES[config.provider])
        self.semaphore = asyncio.Semaphore(config.max_concurrency)
        self.limiter = RateLimiter(config.requests_per_minute) if config.requests_per_minute else None
        http = _http_client(self.sdk, {"request": [self._on_http_request]})
        base_url = config.base_url
        if base_url and config.provider in ROOT_URL_PROVIDERS:
            base_url = re.sub(r"/v1/?$", "", base_url)  # these SDKs add /v1/... themselves
        options = {"api_key": self.key, "base_url": base_url, "timeout": config.timeout,
                   "max_retries": config.max_retries, "http_client": http}
        # Together: its SDK (together 3.x) is generated like the OpenAI one, with the same base_url/max_retries/
        # timeout options, Retry-After-aware retries and error classes, so the native client is used rather
        # than the OpenAI SDK pointed at Together's OpenAI-compatible endpoint.
        factory = {"anthropic": "AsyncAnthropic", "together": "AsyncTogether"}.get(config.provider, "AsyncOpenAI")
        self.client = getattr(self.sdk, factory)(**options)

    async def _on_http_request(self, request: Any) -> None:
        """httpx hook: count every HTTP attempt, and the SDK's own retries (it marks them in a header)."""
        self.stats["http_attempts"] += 1
        if request.headers.get("x-stainless-retry-count", "0") != "0":
            self.stats["retries"] += 1

    async def run_job(self, job: ChatJob) -> Completion:
        """All `n` completions of one job (Anthropic: n separate calls, run concurrently)."""
        if job.n < 1:
            return Completion(texts=[])
        if self.config.provider == "anthropic":
            tasks = [asyncio.ensure_future(self._call(job, 1)) for _ in range(job.n)]
            try:
                parts = await asyncio.gather(*tasks)
            finally:
                for task in tasks:
                    task.cancel()
        else:
            parts = [await self._call(job, job.n)]
        texts = [t for part in parts for t in part[0]]
        usage = {k: sum(part[1].get(k, 0) for part in parts) for k in ("prompt_tokens", "completion_tokens")}
        truncated = [cut for part in parts for cut in part[2]]
        error = next((part[3] for part in parts if part[3]), None)
        if error is None and any(t is None for t in texts):
            error = "reply had no text content"
        return Completion(texts=texts, usage=usage, error=error, truncated=truncated)

    async def _call(self, job: ChatJob, n: int) -> tuple[list[str | None], dict[str, int], list[bool], str | None]:
        """One request (the SDK's retries, plus bounded re-asks for malformed replies) -> texts, usage, cut, error."""
        reason = ""
        for attempt in range(MALFORMED_RETRIES + 1):
            if attempt:
                self.stats["retries"] += 1
            try:
                async with self.semaphore:
                    if self.limiter:
                        await self.limiter.wait()
                    self.stats["requests"] += 1
                    reply = await self._request(job, n)
                parse = _anthropic_texts if self.config.provider == "anthropic" else _openai_texts
                texts, usage, truncated = parse(reply, n)
                return texts, usage, truncated, None
            except (MalformedResponse, json.JSONDecodeError) as exc:
                reason = f"malformed reply ({_redact(exc, self.key)[:120]})"
            except self.sdk.APIStatusError as exc:
                status = exc.status_code
                if 400 <= status < 500 and (status not in (408, 409, 429) or _error_code(exc) in FATAL_CODES):
                    raise FatalApiError(f"{self.config.provider} API refused the request (HTTP {status}): "
                                        f"{_redact(_provider_message(exc), self.key)}") from None
                return [None] * n, {}, [False] * n, f"HTTP {status} after retries"
            except self.sdk.APIConnectionError as exc:
                return [None] * n, {}, [False] * n, f"{type(exc).__name__} after retries"
        return [None] * n, {}, [False] * n, reason

    async def _request(self, job: ChatJob, n: int) -> Any:
        """Send one request through the SDK."""
        if self.config.provider == "anthropic":
            return await self.client.messages.create(**_anthropic_params(self.config, job))
        return await self.client.chat.completions.create(**_openai_params(self.config, job, n))


def _record(stats: dict[str, Any], completion: Completion) -> None:
    """Add one finished job to the statistics."""
    stats["jobs"] += 1
    stats["samples"] += len(completion.texts)
    failed = sum(t is None for t in completion.texts)
    stats["failed_samples"] += failed
    stats["failed_jobs"] += bool(failed)
    for name in ("prompt_tokens", "completion_tokens"):
        stats[name] += completion.usage.get(name, 0)
    if completion.error:
        stats["errors"][completion.error] = stats["errors"].get(completion.error, 0) + 1


async def _run_all(config: ApiConfig, jobs: list[ChatJob], on_result: Callable[[ChatJob, Completion], None],
                   bar: tqdm, stats: dict[str, Any]) -> None:
    """max_concurrency workers drain the jobs; each result goes to on_result (same thread) as it lands."""
    runner = _Runner(config, stats)
    queue = iter(jobs)

    async def worker() -> None:
        for job in queue:
            completion = await runner.run_job(job)
            _record(stats, completion)
            on_result(job, completion)
            bar.update(len(completion.texts))
            if stats["failed_samples"]:
                bar.set_postfix(failed=stats["failed_samples"], refresh=False)

    workers = [asyncio.ensure_future(worker()) for _ in range(min(config.max_concurrency, len(jobs)))]
    try:
        await asyncio.gather(*workers)  # a FatalApiError (or on_result's error) surfaces here at once
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        await runner.client.close()


def run_chat_jobs(config: ApiConfig, jobs: Iterable[ChatJob], on_result: Callable[[ChatJob, Completion], None],
                  desc: str = "API requests") -> dict[str, Any]:
    """Run every job asynchronously; on_result(job, completion) runs in this thread as each lands; -> stats.

    stats: jobs, samples, failed_jobs, failed_samples, requests (SDK calls), http_attempts (including the SDK's
    retries), retries, prompt_tokens, completion_tokens, wall_time_s, errors ({short reason: jobs}).
    """
    jobs = list(jobs)
    stats = _new_stats()
    if not jobs:
        return stats
    started = time.perf_counter()
    with tqdm(total=sum(job.n for job in jobs), desc=desc, unit="sample", smoothing=0.05) as bar:
        try:
            asyncio.run(_run_all(config, jobs, on_result, bar, stats))
        finally:
            stats["wall_time_s"] = round(time.perf_counter() - started, 3)
    return stats


def run_cached(config: ApiConfig, jobs: Iterable[ChatJob], store: Any, desc: str = "API requests",
               stats: dict[str, Any] | None = None) -> dict[str, Completion]:
    """Completions for all jobs, asking only for keys not in `store`; fully successful ones are stored as they land.

    Cached completions carry usage {} so that summing usage over the result gives this run's cost. Jobs sharing a
    key are asked once. If `stats` is given it is filled with run_chat_jobs' statistics plus `cached`.
    """
    results: dict[str, Completion] = {}
    todo: dict[str, ChatJob] = {}
    for job in jobs:
        record = store.get(job.key)
        if _usable(record, job.n):
            results[job.key] = Completion(texts=list(record["texts"]), usage={},
                                          truncated=list(record.get("truncated") or []))
        else:
            todo.setdefault(job.key, job)

    def keep(job: ChatJob, completion: Completion) -> None:
        if completion.texts and all(t is not None for t in completion.texts):
            completion.texts = store.put(job.key, {"texts": completion.texts, "usage": completion.usage,
                                                   "truncated": completion.truncated})["texts"]
        else:
            completion.texts = store.clean(completion.texts)
        results[job.key] = completion

    run_stats = run_chat_jobs(config, todo.values(), keep, desc)
    if stats is not None:
        stats.update(run_stats, cached=len(results) - run_stats["jobs"])
    return results


def _usable(record: Any, n: int) -> bool:
    """True for a stored {"texts": [...]} record holding n strings."""
    texts = record.get("texts") if isinstance(record, dict) else None
    return isinstance(texts, list) and len(texts) == n and all(isinstance(t, str) for t in texts)


def add_api_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --provider, --base_url, --max_concurrency (alias --num_workers) and --requests_per_minute."""
    group = parser.add_argument_group("API models")
    group.add_argument("--provider", choices=PROVIDERS, default=None,
                       help="API provider; default: routed from the model name (or openai_compatible with --base_url)")
    group.add_argument("--base_url", default=None,
                       help="API base URL, e.g. an OpenAI-compatible server such as http://127.0.0.1:8000/v1")
    group.add_argument("--max_concurrency", "--num_workers", dest="max_concurrency", type=positive_int, default=16,
                       help="API requests in flight at once (--num_workers is the reference's name); default 16")
    group.add_argument("--requests_per_minute", type=bounded_float(0.0, float("inf")), default=None,
                       help="cap on API requests started per minute (default: no cap)")


def api_config_from_args(args: argparse.Namespace, model: str) -> ApiConfig:
    """ApiConfig for `model` from the parsed API arguments; UserError when the model is not an API model."""
    provider = resolve_provider(model, getattr(args, "provider", None), getattr(args, "base_url", None))
    if provider is None:
        raise UserError(f"{model!r} is not a known API model; pass --provider {{{','.join(PROVIDERS)}}} "
                        f"or --base_url URL")
    return ApiConfig(model=model, provider=provider, base_url=getattr(args, "base_url", None),
                     max_concurrency=getattr(args, "max_concurrency", 16),
                     requests_per_minute=getattr(args, "requests_per_minute", None))
