"""The live async runner: one SDK client per run, bounded concurrency, rate limit, 429 waits,
malformed-reply re-asks, `n` splitting, parameter maxima learned from 400s, --max_cost ledger reservations."""
from __future__ import annotations

import asyncio
import importlib
import json
import re
import sys
import time
from typing import Any, Callable

from tqdm import tqdm

from generation.backends.limits import LearnedLimits, parameter_limit, refusal_line, refused_parameter
from generation.backends.replies import (
    _anthropic_texts,
    _error_code,
    _is_prompt_error,
    _openai_texts,
    _provider_message,
    _redact,
    _retry_after,
)
from generation.backends.rules import (
    FATAL_CODES,
    MALFORMED_RETRIES,
    ROOT_URL_PROVIDERS,
    SDK_MODULES,
    ApiConfig,
    ChatJob,
    Completion,
    FatalApiError,
    MalformedResponse,
    _api_key,
    _max_n,
    _split,
    notice_once,
    request_params,
    split_base_url,
)
from generation.common.records import derived_seed
from generation.costs import pricing
from generation.costs.budget import Gate, output_limit, unreported_usage, worst_case


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


def _new_stats() -> dict[str, Any]:
    """Zeroed run statistics."""
    return {"jobs": 0, "samples": 0, "failed_jobs": 0, "failed_samples": 0, "requests": 0, "http_attempts": 0,
            "retries": 0, "truncated_samples": 0, "rate_limit_wait_s": 0.0, "prompt_tokens": 0,
            "completion_tokens": 0, "wall_time_s": 0.0, "errors": {}, "cost_usd": 0.0, "cost_upper_usd": 0.0,
            "learned_limits": {}}


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
        self.limits = LearnedLimits(f"{config.provider} {config.model}")  # maxima the server named in a 400
        stats["learned_limits"] = self.limits.values
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
        finishes: list[str | None] = []
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
            for size, part in zip(sizes, parts):
                if part is None:
                    continue  # asked again below, with what the server taught (a maximum, a parameter left out)
                texts += part.texts
                finishes += part.finishes
                for name, value in part.usage.items():
                    usage[name] = usage.get(name, 0) + value
                error = error or part.error
                if not part.error and len(part.texts) < size:
                    self.max_n = len(part.texts)  # the server ignores (or caps) `n`: ask in requests it answers fully
        texts += [None] * (job.n - len(texts))
        finishes += [None] * (job.n - len(finishes))
        if error is None and any(t is None for t in texts):
            error = ("reply cut at max_tokens before any text" if any(f == "length" and t is None for t, f in
                                                                     zip(texts, finishes))
                     else "reply had no text content")
        return Completion(texts=texts, usage=usage, error=error, finishes=finishes)

    @staticmethod
    def _seed(job: ChatJob, offset: int) -> int | None:
        """The seed of the request asking for completions from `offset` on (each part of a split job differs)."""
        if job.seed is None or offset == 0:
            return job.seed
        return derived_seed(job.seed, offset)

    async def _call(self, job: ChatJob, n: int, seed: int | None) -> Completion | None:
        """One request (the SDK's retries, bounded re-asks for malformed replies, waiting out long 429 spells)
        -> its 1..n completions, or None when a 400 lowered a parameter to the server's maximum (ask again)."""
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
                texts, usage, finishes = parse(reply, n)
                if usage is None:  # billed all the same: counted at its worst case
                    usage = unreported_usage(self.config.model, self.config.provider, job.messages, n,
                                             job.max_tokens)
                return Completion(texts=texts, usage=usage, finishes=finishes)
            except (MalformedResponse, json.JSONDecodeError) as exc:
                reason = f"malformed reply ({_redact(exc, self.key)[:120]})"
            except self.sdk.APIStatusError as exc:
                status = exc.status_code
                if status == 429 and _error_code(exc) not in FATAL_CODES and await self._wait_out(exc):
                    attempt -= 1  # a rate-limit wait is not a malformed-reply re-ask
                    continue
                refused = refused_parameter(exc)
                if self._learn(parameter_limit(exc)) or self.limits.refuse(refused, exc):
                    return None
                if refused is not None:
                    raise FatalApiError(_redact(refusal_line(self.limits.where, refused, exc), self.key)) from None
                if _is_prompt_error(exc):
                    return Completion.failure(n, f"HTTP {status} about this prompt: "
                                                 f"{_redact(_provider_message(exc), self.key)[:100]}")
                if 400 <= status < 500 and status not in (408, 409, 429) or _error_code(exc) in FATAL_CODES:
                    raise FatalApiError(f"{self.config.provider} API refused the request (HTTP {status}): "
                                        f"{_redact(_provider_message(exc), self.key)}",
                                        status in (401, 403) or _error_code(exc) in FATAL_CODES) from None
                return Completion.failure(n, f"HTTP {status} after retries")
            except self.sdk.APIConnectionError as exc:
                return Completion.failure(n, f"{type(exc).__name__} after retries")
        return Completion.failure(n, reason)

    def _learn(self, limit: tuple[str, int, int] | None) -> bool:
        """Lower the parameter a 400 named to the server's maximum for the rest of the run; False when it cannot."""
        if limit is None or not self.limits.lower(*limit):
            return False
        name, value, _ = limit
        if name == "n":
            self.max_n = min(self.max_n or value, value)
        return True

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
        params = self.limits.apply(request_params(self.config, job, n, seed))
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
    for name in ("prompt_tokens", "completion_tokens", "cached_tokens", *pricing.UNREPORTED_FIELDS):
        if name in completion.usage or name in stats:
            stats[name] = stats.get(name, 0) + completion.usage.get(name, 0)
    if completion.error:
        stats["errors"][completion.error] = stats["errors"].get(completion.error, 0) + 1


async def _run_all(config: ApiConfig, jobs: list[ChatJob], on_result: Callable[[ChatJob, Completion], None],
                   bar: tqdm, stats: dict[str, Any]) -> None:
    """max_concurrency workers drain the jobs; each result goes to on_result (same thread) as it lands."""
    runner = _Runner(config, stats)
    queue = iter(jobs)
    price = pricing.price_of(config.model, config.prices)
    gate = Gate(config.budget) if config.budget is not None else None

    def worst(job: ChatJob) -> float:
        """The job's reservation: its prompt once per request (each completion its own request where the server
        has no documented `n` limit: it may ignore `n`) and every completion at its cap or the model's maximum."""
        requests = len(_split(job.n, runner.max_n)) if runner.max_n else job.n
        return worst_case(price, config.model, config.provider, job.messages, requests, job.n, job.max_tokens)

    capped = gate is not None and config.budget.cap is not None
    if capped:
        worst(jobs[0])  # a model without a bound on its output stops here, before any request

    stopped = {"refused_all": False}  # a FatalApiError said no request of the run can be billed

    async def worker() -> None:
        for job in queue:
            reserved = 0.0
            if gate is not None:
                reserved = worst(job) if capped or output_limit(config.model, job.max_tokens) else 0.0
                if not await gate.enter(reserved):
                    continue  # the next request no longer fits: counted as not sent
            try:
                completion = await runner.run_job(job)
            except FatalApiError as err:  # refused: not billed
                stopped["refused_all"] = err.refuses_all
                if gate is not None:
                    gate.leave(reserved, 0.0)
                raise
            except BaseException:  # stopped in flight: billed up to its worst case, unless the server refuses all
                if gate is not None:
                    unbilled = stopped["refused_all"]
                    gate.leave(reserved, 0.0 if unbilled else reserved, 0.0 if unbilled else reserved)
                raise
            if gate is not None:
                cost, upper = pricing.record_cost(price, completion.usage)
                gate.leave(reserved, reserved if cost is None else cost, reserved if cost is None else upper)
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


def run_cost(config: ApiConfig, stats: dict[str, Any]) -> float | None:
    """Dollars of a run's recorded usage at the model's price; None (with a notice) when it has no price."""
    price = pricing.price_of(config.model, config.prices)
    if price is None:
        notice_once(pricing.no_price_notice(config.model))
    cost, stats["cost_upper_usd"] = pricing.record_cost(price, stats)
    return cost


def run_live(config: ApiConfig, jobs: list[ChatJob], on_result: Callable[[ChatJob, Completion], None], desc: str,
             stats: dict[str, Any], unit: str = "sample") -> dict[str, Any]:
    """Run jobs as live requests (calls.run_chat_jobs' live half; the bar counts completions as `unit`); fills and
    returns stats."""
    started = time.perf_counter()
    with tqdm(total=sum(job.n for job in jobs), desc=desc, unit=unit, smoothing=0.05) as bar:
        try:
            asyncio.run(_run_all(config, jobs, on_result, bar, stats))
        finally:
            stats["wall_time_s"] = round(time.perf_counter() - started, 3)
            stats["cost_usd"] = run_cost(config, stats)
    if config.budget is not None and config.budget.not_sent:
        raise config.budget.error()
    return stats
