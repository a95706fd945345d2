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
- add_api_arguments(parser): --provider --base_url --max_concurrency (alias --num_workers) --requests_per_minute
  --request_timeout --reasoning_effort --max_n_per_request; api_config_from_args(args, model) -> ApiConfig.
- model_rules(config) -> ModelRules: what the provider/model family takes (PARAMETER_RULES, one table).

Retries: HTTP-level retries (408/409/429/5xx, timeouts, dropped connections; exponential backoff with jitter that
honours Retry-After) are the SDKs' own (`max_retries`, `timeout`). This module only re-asks, a bounded number of
times, when a 200 reply is malformed (invalid JSON, no choices), asks again for choices a server left out (Ollama
and some proxies ignore `n`), splits `n` at the provider's limit, and after the SDK's retries keeps waiting out 429s
(Retry-After, shown) up to ApiConfig.rate_limit_wait_s in all. A job still failing is a Completion whose texts are
None plus a short `error`; it never raises. An error about one prompt (a flagged prompt, a prompt longer than the
context) fails that job only; other 4xx errors (auth, permission, unknown model, bad parameter) raise
FatalApiError. Anthropic gets temperature/top_p only where the installed SDK's API version takes them.
"""
from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import re
import base64
import inspect
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from tqdm import tqdm

import pricing
from budget import budget_for, request_estimate
from cli_support import UserError, bounded_float, positive_int, redact_url
from record_store import derived_seed, stable_hash

PROVIDERS = ("openai", "anthropic", "together", "openai_compatible")
ENV_KEYS = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY", "together": "TOGETHER_API_KEY",
            "openai_compatible": "OPENAI_COMPATIBLE_API_KEY"}
FALLBACK_KEY = "OPENAI_API_KEY"  # read for openai_compatible when its own variable is unset (with a notice)
# The reference's MODEL_PROVIDERS table (exact names); other names route by prefix in resolve_provider.
KNOWN_MODELS = {
    **dict.fromkeys(("gpt-4o-mini", "gpt-4o", "gpt-4-turbo", "o3-mini-2025-01-31", "o1-2024-12-17"), "openai"),
    **dict.fromkeys(("claude-3-5-sonnet-latest", "claude-3-5-haiku-latest"), "anthropic"),
    **dict.fromkeys(("deepseek-ai/DeepSeek-R1", "meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo",
                     "meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo"), "together"),
}
PREFIX_ROUTES = ((re.compile(r"^(gpt-|chatgpt-|o[1-9](-|$))"), "openai"), (re.compile(r"^claude-"), "anthropic"))

@dataclass(frozen=True)
class ModelRules:
    """Which parameters a provider's model family takes (from the provider's API reference and SDK)."""

    max_n: int | None  # completions per request; 1: the API has no `n`; None: no documented limit
    cap: str = "max_tokens"  # the completion cap's parameter name
    sampling: bool = True  # temperature / top_p accepted
    reasoning: bool = False  # hidden reasoning shares the cap: no cap unless the user sets one
    effort: bool = False  # reasoning_effort accepted
    system: str = "system"  # system turns: "system", "developer", "user" (folded into the first user turn), "param"


# (provider, model pattern, rules); the first match wins. OpenAI: n <= 128; o-series and gpt-5 (not gpt-5-chat) take
# max_completion_tokens and reasoning_effort, no temperature/top_p, developer turns (o1-mini/o1-preview: neither
# system nor developer turns, no reasoning_effort). Together: n <= 128. Anthropic: no n, `system=` parameter.
PARAMETER_RULES = (
    ("openai", re.compile(r"^o1-(mini|preview)"), ModelRules(128, "max_completion_tokens", False, True, False, "user")),
    ("openai", re.compile(r"^(o[1-9](-|$)|gpt-5(?!.*chat))"),
     ModelRules(128, "max_completion_tokens", False, True, True, "developer")),
    ("openai", re.compile(""), ModelRules(128)),
    ("together", re.compile(""), ModelRules(128)),
    ("anthropic", re.compile(""), ModelRules(1, system="param")),
    ("openai_compatible", re.compile(""), ModelRules(None)),
)
DEFAULT_REASONING_EFFORT = "high"  # what the reference sent to reasoning models
REASONING_EFFORTS = ("minimal", "low", "medium", "high")
# A 4xx about one prompt (it fails that job only): OpenAI's flagged prompt and context errors; vLLM's and other
# OpenAI-compatible servers' context-length 400s; Anthropic's "prompt is too long".
PROMPT_ERROR_CODES = ("invalid_prompt", "context_length_exceeded", "content_filter", "content_policy_violation")
PROMPT_ERROR_TEXT = re.compile(r"maximum context length|prompt is too long|context window|input is too long|"
                               r"too many (input )?tokens", re.IGNORECASE)
SDK_MODULES = {"openai": "openai", "openai_compatible": "openai", "anthropic": "anthropic", "together": "together"}
ROOT_URL_PROVIDERS = ("anthropic", "together")  # SDKs whose base URL is the server root (paths start with /v1)
FATAL_CODES = ("insufficient_quota",)  # OpenAI's 429 for an exhausted quota: waiting cannot help
MALFORMED_RETRIES = 2
RATE_LIMIT_WAIT_S = 600.0  # after the SDK's retries, keep waiting out 429s this long in all per run
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
    reasoning_effort: str | None = None  # models that take it; None: DEFAULT_REASONING_EFFORT for them
    max_n_per_request: int | None = None  # None: the provider's documented limit (PARAMETER_RULES)
    rate_limit_wait_s: float = RATE_LIMIT_WAIT_S
    prices: dict | None = None  # --prices table (pricing.PRICES when None)
    budget: Any = None  # budget.Budget shared by the process's runs under --max_cost
    api_mode: str = "live"  # "batch": the provider's batch API (batch_api.py), live calls for what it leaves failed

    def __post_init__(self) -> None:
        if self.reasoning_effort is None and self.provider in PROVIDERS and model_rules(self).effort:
            self.reasoning_effort = DEFAULT_REASONING_EFFORT


@dataclass
class ChatJob:
    """One chat request: `n` completions of `messages`."""

    key: str
    messages: list[dict]
    n: int = 1
    temperature: float = 0.0
    max_tokens: int | None = 512  # None: no cap sent (reasoning models without an explicit cap)
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


def model_rules(config: ApiConfig) -> ModelRules:
    """The PARAMETER_RULES row of the config's provider and model."""
    return next(rules for provider, pattern, rules in PARAMETER_RULES
                if provider == config.provider and pattern.match(config.model))


def is_reasoning_model(config: ApiConfig) -> bool:
    """True for models whose hidden reasoning shares the completion cap (OpenAI o-series, gpt-5)."""
    return config.provider in PROVIDERS and model_rules(config).reasoning


_NOTICES: set[str] = set()


def notice_once(text: str) -> None:
    """Print a notice on stderr once per process."""
    if text not in _NOTICES:
        _NOTICES.add(text)
        print(f"notice: {text}", file=sys.stderr)


def _api_key(config: ApiConfig) -> str:
    """The provider's key from the environment (a placeholder for keyless OpenAI-compatible servers)."""
    key = os.environ.get(ENV_KEYS[config.provider], "")
    if key:
        return key
    if config.provider == "openai_compatible":
        if os.environ.get(FALLBACK_KEY):
            notice_once(f"{ENV_KEYS[config.provider]} is not set: sending {FALLBACK_KEY} to --base_url "
                        f"{redact_url(config.base_url or '')}")
            return os.environ[FALLBACK_KEY]
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


def split_base_url(base_url: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """(URL without credentials, its query as default_query, a basic-auth header for user:password@)."""
    parts = urllib.parse.urlsplit(base_url)
    headers = {}
    if parts.username is not None or parts.password is not None:
        pair = f"{urllib.parse.unquote(parts.username or '')}:{urllib.parse.unquote(parts.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    host = parts.hostname or ""
    netloc = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
    clean = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    return clean, dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True)), headers


def _check_reachable(base_url: str) -> None:
    """GET <base_url>/models quickly: any HTTP answer counts as reachable, a connection failure does not."""
    shown = redact_url(base_url)
    if not re.match(r"^https?://", base_url):
        raise UserError(f"--base_url {shown!r} must start with http:// or https://")
    try:
        clean, query, headers = split_base_url(base_url)
        url = clean.rstrip("/") + "/models" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=READY_TIMEOUT_S):
            return
    except urllib.error.HTTPError:
        return  # the server answered (401/404 still prove it is there)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = redact_url(str(getattr(exc, "reason", exc)))
        raise UserError(f"cannot reach --base_url {shown} ({reason}); start the server or fix the URL") from None


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
    role = model_rules(config).system
    if role == "system":
        return messages
    if role == "developer":
        return [{**m, "role": "developer"} if m.get("role") == "system" else m for m in messages]
    system = "\n\n".join(m["content"] for m in messages if m.get("role") == "system")
    rest = [m for m in messages if m.get("role") != "system"]
    if not system:
        return rest
    if rest and rest[0].get("role") == "user":
        return [{**rest[0], "content": f"{system}\n\n{rest[0]['content']}"}] + rest[1:]
    return [{"role": "user", "content": system}] + rest


def request_params(config: ApiConfig, job: ChatJob, n: int = 1, seed: int | None = None) -> dict[str, Any]:
    """The SDK call's arguments for `n` completions of a job, following the model's PARAMETER_RULES row."""
    rules = model_rules(config)
    params: dict[str, Any] = {"model": config.model}
    if rules.system == "param":
        system = "\n\n".join(m["content"] for m in job.messages if m.get("role") == "system")
        params["messages"] = [m for m in job.messages if m.get("role") != "system"]
        if system:
            params["system"] = system
    else:
        params["messages"] = _openai_messages(config, job.messages)
    if n > 1:
        params["n"] = n
    if seed is not None and config.provider != "anthropic":
        params["seed"] = seed
    if job.max_tokens is not None:
        params[rules.cap] = job.max_tokens
    elif config.provider == "anthropic":
        raise UserError("the Anthropic API needs a max_tokens cap")
    if rules.effort and config.reasoning_effort:
        params["reasoning_effort"] = config.reasoning_effort
    if rules.sampling and (config.provider != "anthropic" or anthropic_takes_sampling()):
        params["temperature"] = job.temperature
        if job.top_p is not None:
            params["top_p"] = job.top_p
    return params


def anthropic_takes_sampling() -> bool:
    """Whether the installed anthropic SDK's messages.create takes temperature (its API version 2026-10-21 does not)."""
    from anthropic.resources.messages import AsyncMessages

    return "temperature" in inspect.signature(AsyncMessages.create).parameters


def sent_parameters(config: ApiConfig, job: ChatJob) -> dict[str, Any]:
    """What a request of this run sends besides the messages (for provenance and the not-sent notice)."""
    params = request_params(config, job, job.n, job.seed)
    sent = sorted(set(params) - {"model", "messages", "system"})
    wanted = {"temperature": job.temperature, "top_p": job.top_p, "seed": job.seed}
    missing = [name for name, value in wanted.items() if value is not None and name not in params]
    if missing:
        notice_once(f"{config.provider} {config.model}: {', '.join(missing)} not sent (the model or the installed "
                    "SDK's API version does not take it); the model's own setting is used")
    return {"sent": sent, "not_sent": missing, "reasoning_effort": params.get("reasoning_effort"),
            "max_n_per_request": _max_n(config)}


def _max_n(config: ApiConfig) -> int | None:
    """Completions per request: --max_n_per_request, else the provider's documented limit (None: no limit)."""
    return config.max_n_per_request or model_rules(config).max_n


def _split(total: int, limit: int | None) -> list[int]:
    """Request sizes covering `total` completions, none above `limit`."""
    if not limit or total <= limit:
        return [total]
    return [limit] * (total // limit) + ([total % limit] if total % limit else [])


def _openai_texts(reply: Any, n: int) -> tuple[list[str | None], dict[str, int], list[bool]]:
    """Texts, usage and cut-at-max_tokens flags of a chat.completions reply (1..n choices: servers that ignore `n`
    send fewer); MalformedResponse when it is not one. An empty reply cut at the cap is a failure (None)."""
    choices = getattr(reply, "choices", None)
    if not isinstance(choices, list) or not 1 <= len(choices) <= n:
        got = len(choices) if isinstance(choices, list) else type(choices).__name__
        raise MalformedResponse(f"expected {n} choices, got {got}")
    texts = [getattr(getattr(c, "message", None), "content", None) for c in choices]
    cut = [getattr(c, "finish_reason", None) == "length" for c in choices]
    usage = getattr(reply, "usage", None)
    return ([t if isinstance(t, str) and (t or not c) else None for t, c in zip(texts, cut)],
            _usage(getattr(usage, "prompt_tokens", 0), getattr(usage, "completion_tokens", 0)), cut)


def _anthropic_texts(reply: Any, n: int) -> tuple[list[str | None], dict[str, int], list[bool]]:
    """Text, usage and cut-at-max_tokens flag of an Anthropic messages reply; MalformedResponse when it is not one."""
    blocks = getattr(reply, "content", None)
    if not isinstance(blocks, list):
        raise MalformedResponse(f"expected a content list, got {type(blocks).__name__}")
    parts = [b.text for b in blocks if getattr(b, "type", None) == "text" and isinstance(b.text, str)]
    cut = getattr(reply, "stop_reason", None) == "max_tokens"
    usage = getattr(reply, "usage", None)
    return (["".join(parts) if parts and ("".join(parts) or not cut) else None],
            _usage(getattr(usage, "input_tokens", 0), getattr(usage, "output_tokens", 0)), [cut])


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


def _is_prompt_error(exc: Any) -> bool:
    """Whether a 4xx concerns this prompt only (flagged, or longer than the context), not every request."""
    return exc.status_code in (400, 413, 422) and (_error_code(exc) in PROMPT_ERROR_CODES
                                                   or bool(PROMPT_ERROR_TEXT.search(_provider_message(exc))))


def _retry_after(exc: Any) -> float | None:
    """Seconds a 429 asks to wait (retry-after-ms or Retry-After seconds), None when it does not say."""
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            return float(headers.get(name)) * scale
        except (TypeError, ValueError):
            continue
    return None


def _redact(text: str, key: str) -> str:
    """One line with the API key (if any) and URL credentials masked."""
    text = redact_url(" ".join(str(text).split()))
    return text.replace(key, "***") if key and key != PLACEHOLDER_KEY else text


def _new_stats() -> dict[str, Any]:
    """Zeroed run statistics."""
    return {"jobs": 0, "samples": 0, "failed_jobs": 0, "failed_samples": 0, "requests": 0, "http_attempts": 0,
            "retries": 0, "truncated_samples": 0, "rate_limit_wait_s": 0.0, "prompt_tokens": 0,
            "completion_tokens": 0, "wall_time_s": 0.0, "errors": {}, "cost_usd": 0.0}


def _http_client(sdk: Any, event_hooks: dict) -> Any:
    """The SDK's aiohttp transport where installed (its documented faster option at high concurrency), else httpx."""
    try:
        return sdk.DefaultAioHttpClient(event_hooks=event_hooks)
    except RuntimeError:  # the SDK was installed without its aiohttp extra
        return sdk.DefaultAsyncHttpxClient(event_hooks=event_hooks)


def client_options(config: ApiConfig, key: str) -> dict[str, Any]:
    """The SDK client's constructor options: key, base URL (credentials split off), timeout and retries."""
    base_url, query, headers = split_base_url(config.base_url) if config.base_url else (None, {}, {})
    if base_url and config.provider in ROOT_URL_PROVIDERS:
        base_url = re.sub(r"/v1/?$", "", base_url)  # these SDKs add /v1/... themselves
    return {"api_key": key, "base_url": base_url, "timeout": config.timeout, "max_retries": config.max_retries,
            "default_query": query or None, "default_headers": headers or None}


class _Runner:
    """One SDK client for the run, shared by all jobs, with the concurrency and rate limits."""

    def __init__(self, config: ApiConfig, stats: dict[str, Any]) -> None:
        self.config = config
        self.stats = stats
        self.key = _api_key(config)
        self.sdk = importlib.import_module(SDK_MODULES[config.provider])
        self.semaphore = asyncio.Semaphore(config.max_concurrency)
        self.limiter = RateLimiter(config.requests_per_minute) if config.requests_per_minute else None
        self.paused_until = 0.0  # event-loop time until which 429s asked this run to wait
        self.max_n = _max_n(config)  # lowered when a server sends fewer choices than asked (it ignores `n`)
        options = client_options(config, self.key)
        options["http_client"] = _http_client(self.sdk, {"request": [self._on_http_request]})
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
        """All `n` completions of one job: requests of at most the provider's `n` limit, run concurrently, and
        again for choices a server left out, until every completion is in or a request failed."""
        texts: list[str | None] = []
        truncated: list[bool] = []
        usage = {"prompt_tokens": 0, "completion_tokens": 0}
        error = None
        while len(texts) < job.n and error is None:
            sizes = _split(job.n - len(texts), self.max_n)
            offsets = [len(texts) + sum(sizes[:i]) for i in range(len(sizes))]
            tasks = [asyncio.ensure_future(self._call(job, size, self._seed(job, offset)))
                     for size, offset in zip(sizes, offsets)]
            try:
                parts = await asyncio.gather(*tasks)
            finally:
                for task in tasks:
                    task.cancel()
            for size, (got, used, cut, failed) in zip(sizes, parts):
                texts += got
                truncated += cut
                for name in usage:
                    usage[name] += used.get(name, 0)
                error = error or failed
                if not failed and len(got) < size:
                    self.max_n = len(got)  # the server ignores (or caps) `n`: ask in requests it answers fully
        texts += [None] * (job.n - len(texts))
        truncated += [False] * (job.n - len(truncated))
        if error is None and any(t is None for t in texts):
            error = ("reply cut at max_tokens before any text" if any(c and t is None for t, c in zip(texts, truncated))
                     else "reply had no text content")
        return Completion(texts=texts, usage=usage, error=error, truncated=truncated)

    @staticmethod
    def _seed(job: ChatJob, offset: int) -> int | None:
        """The seed of the request asking for completions from `offset` on (each part of a split job differs)."""
        if job.seed is None or offset == 0:
            return job.seed
        return derived_seed(job.seed, offset)

    async def _call(self, job: ChatJob, n: int, seed: int | None
                    ) -> tuple[list[str | None], dict[str, int], list[bool], str | None]:
        """One request (the SDK's retries, bounded re-asks for malformed replies, waiting out long 429 spells)
        -> texts (1..n), usage, cut flags, error."""
        reason = ""
        attempt = 0
        while attempt <= MALFORMED_RETRIES:
            if attempt:
                self.stats["retries"] += 1
            attempt += 1
            try:
                async with self.semaphore:
                    if self.limiter:
                        await self.limiter.wait()
                    self.stats["requests"] += 1
                    reply = await self._request(job, n, seed)
                parse = _anthropic_texts if self.config.provider == "anthropic" else _openai_texts
                texts, usage, truncated = parse(reply, n)
                return texts, usage, truncated, None
            except (MalformedResponse, json.JSONDecodeError) as exc:
                reason = f"malformed reply ({_redact(exc, self.key)[:120]})"
            except self.sdk.APIStatusError as exc:
                status = exc.status_code
                if status == 429 and _error_code(exc) not in FATAL_CODES and await self._wait_out(exc):
                    attempt -= 1  # a rate-limit wait is not a malformed-reply re-ask
                    continue
                if _is_prompt_error(exc):
                    return [None] * n, {}, [False] * n, (f"HTTP {status} about this prompt: "
                                                         f"{_redact(_provider_message(exc), self.key)[:100]}")
                if 400 <= status < 500 and status not in (408, 409, 429) or _error_code(exc) in FATAL_CODES:
                    raise FatalApiError(f"{self.config.provider} API refused the request (HTTP {status}): "
                                        f"{_redact(_provider_message(exc), self.key)}") from None
                return [None] * n, {}, [False] * n, f"HTTP {status} after retries"
            except self.sdk.APIConnectionError as exc:
                return [None] * n, {}, [False] * n, f"{type(exc).__name__} after retries"
        return [None] * n, {}, [False] * n, reason

    async def _wait_out(self, exc: Any) -> bool:
        """After the SDK's retries, wait what a 429 asks (at least 1 s, shown) while the run's budget lasts."""
        now = asyncio.get_running_loop().time()
        end = max(self.paused_until, now + min(max(_retry_after(exc) or 0.0, 1.0), 60.0))
        added = end - max(self.paused_until, now)  # concurrent waits overlap: count wall time once
        if self.stats["rate_limit_wait_s"] + added > self.config.rate_limit_wait_s:
            return False
        self.stats["rate_limit_wait_s"] = round(self.stats["rate_limit_wait_s"] + added, 3)
        if added > 0:
            tqdm.write(f"rate limited (HTTP 429): waiting {end - now:.0f} s ({self.stats['rate_limit_wait_s'] / 60:.1f}"
                       f" of {self.config.rate_limit_wait_s / 60:.0f} min allowed per run)", file=sys.stderr)
        self.paused_until = end
        await asyncio.sleep(end - now)
        return True

    async def _request(self, job: ChatJob, n: int, seed: int | None) -> Any:
        """Send one request through the SDK."""
        params = request_params(self.config, job, n, seed)
        if self.config.provider == "anthropic":
            return await self.client.messages.create(**params)
        return await self.client.chat.completions.create(**params)


def _record(stats: dict[str, Any], completion: Completion) -> None:
    """Add one finished job to the statistics."""
    stats["jobs"] += 1
    stats["samples"] += len(completion.texts)
    failed = sum(t is None for t in completion.texts)
    stats["failed_samples"] += failed
    stats["failed_jobs"] += bool(failed)
    stats["truncated_samples"] += sum(completion.truncated)
    for name in ("prompt_tokens", "completion_tokens"):
        stats[name] += completion.usage.get(name, 0)
    if completion.error:
        stats["errors"][completion.error] = stats["errors"].get(completion.error, 0) + 1


async def _run_all(config: ApiConfig, jobs: list[ChatJob], on_result: Callable[[ChatJob, Completion], None],
                   bar: tqdm, stats: dict[str, Any]) -> None:
    """max_concurrency workers drain the jobs; each result goes to on_result (same thread) as it lands."""
    runner = _Runner(config, stats)
    queue = iter(jobs)
    price = pricing.price_of(config.model, config.prices)

    async def worker() -> None:
        for job in queue:
            estimate = 0.0
            if config.budget is not None:
                estimate = request_estimate(price, config.model, config.provider, job.messages, job.n, job.max_tokens)
                if not config.budget.reserve(estimate):
                    continue  # past the cap: count the rest as not sent
            completion = await runner.run_job(job)
            if config.budget is not None:
                config.budget.settle(estimate, pricing.usage_cost(price, completion.usage.get("prompt_tokens", 0),
                                                                  completion.usage.get("completion_tokens", 0)))
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
                  desc: str = "API requests", store: Any = None) -> dict[str, Any]:
    """Run every job asynchronously; on_result(job, completion) runs in this thread as each lands; -> stats.

    --api_mode batch: the jobs go through the provider's batch API instead; `store` (the run's RecordStore) keeps
    the batch ids so that a rerun resumes them (batch_api.run_batch_jobs).

    stats: jobs, samples, failed_jobs, failed_samples, requests (SDK calls), http_attempts (including the SDK's
    retries), retries, truncated_samples (cut at max_tokens), rate_limit_wait_s, prompt_tokens, completion_tokens,
    wall_time_s, errors ({short reason: jobs}).
    """
    jobs = list(jobs)
    stats = _new_stats()
    if not jobs:
        return stats
    if config.api_mode == "batch":
        import batch_api

        return batch_api.run_batch_jobs(config, jobs, on_result, desc, store, stats)
    started = time.perf_counter()
    with tqdm(total=sum(job.n for job in jobs), desc=desc, unit="sample", smoothing=0.05) as bar:
        try:
            asyncio.run(_run_all(config, jobs, on_result, bar, stats))
        finally:
            stats["wall_time_s"] = round(time.perf_counter() - started, 3)
            stats["cost_usd"] = run_cost(config, stats)
    if config.budget is not None and config.budget.stopped:
        raise config.budget.error()
    return stats


def run_cost(config: ApiConfig, stats: dict[str, Any]) -> float | None:
    """Dollars of a run's recorded usage at the model's price; None (with a notice) when it has no price."""
    price = pricing.price_of(config.model, config.prices)
    if price is None:
        notice_once(pricing.no_price_notice(config.model))
    return pricing.usage_cost(price, stats.get("prompt_tokens", 0), stats.get("completion_tokens", 0))


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

    run_stats = run_chat_jobs(config, todo.values(), keep, desc, store)
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
    group.add_argument("--request_timeout", type=bounded_float(0.0, float("inf")), default=600.0,
                       help="seconds one API request may take before the SDK retries it (default 600)")
    group.add_argument("--reasoning_effort", choices=REASONING_EFFORTS, default=None,
                       help=f"reasoning models that take it (OpenAI o-series, gpt-5); default "
                            f"{DEFAULT_REASONING_EFFORT!r} as in the reference; not sent to other models")
    group.add_argument("--max_n_per_request", type=positive_int, default=None,
                       help="completions asked per API request (default: the provider's limit, 128 for OpenAI "
                            "and Together, none for OpenAI-compatible servers; Anthropic is always 1)")
    group.add_argument("--api_mode", choices=("live", "batch"), default="live",
                       help="batch: OpenAI Batch / Anthropic Message Batches (half price, results within 24 h; "
                            "resumable; failed or expired requests are then sent live); default live")
    pricing.add_cost_arguments(parser)


def api_config_from_args(args: argparse.Namespace, model: str, provider: str | None = None) -> ApiConfig:
    """ApiConfig for `model` (on `provider`, else routed) from the parsed API arguments; UserError when the model
    is not an API model."""
    provider = provider or resolve_provider(model, getattr(args, "provider", None), getattr(args, "base_url", None))
    if provider is None:
        raise UserError(f"{model!r} is not a known API model; pass --provider {{{','.join(PROVIDERS)}}} "
                        f"or --base_url URL")
    prices = getattr(args, "prices", None)
    api_mode = getattr(args, "api_mode", "live")
    if api_mode == "batch":
        import batch_api

        batch_api.check_batch_mode(provider, model, getattr(args, "max_cost", None))
    return ApiConfig(model=model, provider=provider, base_url=getattr(args, "base_url", None), api_mode=api_mode,
                     prices=prices, budget=budget_for(args, model, pricing.price_of(model, prices)),
                     max_concurrency=getattr(args, "max_concurrency", 16),
                     requests_per_minute=getattr(args, "requests_per_minute", None),
                     timeout=getattr(args, "request_timeout", 600.0),
                     reasoning_effort=getattr(args, "reasoning_effort", None),
                     max_n_per_request=getattr(args, "max_n_per_request", None))
