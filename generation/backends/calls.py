"""The calls every step makes: run chat jobs live or as a batch, cached runs, and the API flags."""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from generation.backends import batch, batch_api
from generation.backends.rules import (
    DEFAULT_REASONING_EFFORT,
    PROVIDERS,
    REASONING_EFFORTS,
    ApiConfig,
    ChatJob,
    Completion,
    resolve_provider,
)
from generation.backends.runner import _new_stats, run_live
from generation.common.cli import UserError, bounded_float, positive_int
from generation.costs import pricing
from generation.costs.budget import RunBudget
from generation.costs.pricing import Price


@dataclass(frozen=True)
class ApiSettings:
    """The API flags of a step (add_api_arguments: provider, limits, batch mode, --prices and --max_cost)."""

    provider: str | None
    base_url: str | None
    max_concurrency: int
    requests_per_minute: float | None
    request_timeout: float
    reasoning_effort: str | None
    max_n_per_request: int | None
    api_mode: str
    batch_fallback: str
    batch_max_enqueued_tokens: int | None
    prices: dict[str, Price] | None
    max_cost: float | None


def run_chat_jobs(config: ApiConfig, jobs: Iterable[ChatJob], on_result: Callable[[ChatJob, Completion], None],
                  desc: str = "API requests", store: Any = None, unit: str = "sample") -> dict[str, Any]:
    """Run every job asynchronously; on_result(job, completion) runs in this thread as each lands; -> stats.

    --api_mode batch: the jobs go through the provider's batch API instead; `store` (the run's RecordStore) keeps
    the batch ids so that a rerun resumes them (batch.run_batch_jobs).

    stats: jobs, samples, failed_jobs, failed_samples, requests (SDK calls), http_attempts (including the SDK's
    retries), retries, truncated_samples (cut at max_tokens), rate_limit_wait_s, prompt_tokens, completion_tokens,
    wall_time_s, errors ({short reason: jobs}).
    """
    jobs = list(jobs)
    stats = _new_stats()
    if not jobs:
        return stats
    if config.api_mode == "batch":
        return batch.run_batch_jobs(config, jobs, on_result, desc, store, stats)
    return run_live(config, jobs, on_result, desc, stats, unit)


def money_record(stats: dict[str, Any]) -> dict[str, Any]:
    """What provenance keeps of a run's API money beside cost_usd: the requests whose reply reported no usage
    (counted at their worst case: cost_usd is then an upper bound) and, in batch mode, the batches' counts and the
    provider's reasons."""
    record = {"usage_unreported": {"requests": stats.get("unreported_requests", 0),
                                   "prompt_tokens_at_most": stats.get("unreported_prompt_tokens", 0),
                                   "completion_tokens_at_most": stats.get("unreported_completion_tokens", 0),
                                   "cost_usd_at_most": stats.get("cost_upper_usd", 0.0)}}
    if "batch" in stats:
        record["batch"] = stats["batch"]
    return record


def stored_finishes(record: dict) -> list[str | None]:
    """The finish reasons of a stored completion (a record written before they were kept has cut flags only)."""
    if "finishes" in record:
        return list(record["finishes"])
    return ["length" if cut else None for cut in record.get("truncated") or []]


def run_cached(config: ApiConfig, jobs: Iterable[ChatJob], store: Any, desc: str = "API requests",
               stats: dict[str, Any] | None = None, unit: str = "sample") -> dict[str, Completion]:
    """Completions for all jobs, asking only for keys not in `store`; fully successful ones are stored as they land.

    Cached completions carry usage {} so that summing usage over the result gives this run's cost. Jobs sharing a
    key are asked once. If `stats` is given it is filled with run_chat_jobs' statistics plus `cached`.
    """
    results: dict[str, Completion] = {}
    todo: dict[str, ChatJob] = {}
    for job in jobs:
        record = store.get(job.key)
        if _usable(record, job.n):
            results[job.key] = Completion(texts=list(record["texts"]), usage={}, finishes=stored_finishes(record))
        else:
            todo.setdefault(job.key, job)

    def keep(job: ChatJob, completion: Completion) -> None:
        if completion.texts and all(t is not None for t in completion.texts):
            completion.texts = store.put(job.key, {"texts": completion.texts, "usage": completion.usage,
                                                   "finishes": completion.finishes})["texts"]
        else:
            completion.texts = store.clean(completion.texts)
        results[job.key] = completion

    run_stats = run_chat_jobs(config, todo.values(), keep, desc, store, unit)
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
                       help="API provider (default: routed from the model name, or openai_compatible with --base_url)")
    group.add_argument("--base_url", default=None,
                       help="API base URL, e.g. an OpenAI-compatible server such as http://127.0.0.1:8000/v1 "
                            "(default: the provider's own)")
    group.add_argument("--max_concurrency", "--num_workers", dest="max_concurrency", type=positive_int, default=16,
                       help="API requests in flight at once (--num_workers is the reference's name)")
    group.add_argument("--requests_per_minute", type=bounded_float(0.0, float("inf")), default=None,
                       help="cap on API requests started per minute (default: no cap)")
    group.add_argument("--request_timeout", type=bounded_float(0.0, float("inf")), default=600.0,
                       help="seconds one API request may take before the SDK retries it")
    group.add_argument("--reasoning_effort", choices=REASONING_EFFORTS, default=None,
                       help=f"reasoning models that take it (OpenAI o-series, gpt-5); not sent to other models "
                            f"(default: {DEFAULT_REASONING_EFFORT} for those models, as in the reference)")
    group.add_argument("--max_n_per_request", type=positive_int, default=None,
                       help="completions asked per API request (default: the provider's limit, 128 for OpenAI "
                            "and Together, none for OpenAI-compatible servers; Anthropic is always 1)")
    group.add_argument("--api_mode", choices=("live", "batch"), default="live",
                       help="batch: OpenAI Batch / Anthropic Message Batches (half price, results within 24 h; "
                            "resumable; under --max_cost each chunk reserves its worst case at the batch price)")
    group.add_argument("--batch_fallback", choices=("none", "live"), default="none",
                       help="requests a batch leaves unanswered (failed or expired one by one, or a whole batch "
                            "failed or cancelled): none sends nothing live (they stay failures a rerun submits "
                            "again; a batch failed as a whole stops the step with the provider's errors); live sends "
                            "them live at full price, within --max_cost")
    group.add_argument("--batch_max_enqueued_tokens", type=positive_int, default=None,
                       help="input tokens kept enqueued in batches at once; further chunks are submitted as earlier "
                            "ones end (default: OpenAI's usage tier 1 batch queue limit for the model, e.g. "
                            "90,000 for gpt-4o, 2,000,000 for gpt-4o-mini; Anthropic: no limit)")
    pricing.add_cost_arguments(parser)


def api_config_for(settings: ApiSettings, model: str, provider: str | None = None,
                   budget: RunBudget | None = None) -> ApiConfig:
    """ApiConfig for `model` (on `provider`, else routed) under the API settings; its requests go through the run's
    ledger (`budget`; else one in memory). UserError when the model is not an API model, or has no price under
    --max_cost."""
    provider = provider or resolve_provider(model, settings.provider, settings.base_url)
    if provider is None:
        raise UserError(f"{model!r} is not a known API model; pass --provider {{{','.join(PROVIDERS)}}} "
                        f"or --base_url URL")
    if settings.api_mode == "batch":
        batch_api.check_batch_mode(provider, model)
    price = pricing.price_of(model, settings.prices)
    spending = budget if budget is not None else RunBudget(settings.max_cost, None)
    return ApiConfig(model=model, provider=provider, base_url=settings.base_url, api_mode=settings.api_mode,
                     prices=settings.prices, budget=spending.for_model(model, price),
                     max_concurrency=settings.max_concurrency, requests_per_minute=settings.requests_per_minute,
                     timeout=settings.request_timeout, reasoning_effort=settings.reasoning_effort,
                     max_n_per_request=settings.max_n_per_request, batch_fallback=settings.batch_fallback,
                     batch_max_enqueued_tokens=settings.batch_max_enqueued_tokens)
