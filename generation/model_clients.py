"""API model clients shared by every step: provider routing, async bounded concurrency, rate limit, retries.

INTERFACE CONTRACT (implementation in progress by the Step 1 owner; Step 2 and Step 3b code against it):
- resolve_provider(model, provider, base_url) -> provider name or None (None: not an API model).
- ApiConfig, ChatJob, Completion dataclasses below.
- check_ready(config): raises UserError for a missing API key or an unreachable --base_url, before any work.
- run_chat_jobs(config, jobs, on_result, desc) -> stats dict; calls on_result(job, completion) in the calling
  thread as each job finishes; raises FatalApiError (a UserError) on auth/permission/bad-request errors.
- run_cached(config, jobs, store, desc) -> dict[key, Completion]: skips jobs whose key is in the RecordStore,
  stores each fully successful completion as it arrives (failures are not cached), returns all completions.
- add_api_arguments(parser): --provider --base_url --max_concurrency (alias --num_workers) --requests_per_minute.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from cli_support import UserError

PROVIDERS = ("openai", "anthropic", "together", "openai_compatible")
ENV_KEYS = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY", "together": "TOGETHER_API_KEY",
            "openai_compatible": "OPENAI_API_KEY"}


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


class FatalApiError(UserError):
    """Authentication, permission or bad-request error: retrying cannot help, so the run stops."""
