"""Provider routing and what each provider/model family is sent (PARAMETER_RULES, one table);
the request dataclasses, keys and readiness checks."""
from __future__ import annotations

import base64
import inspect
import os
import re
import sys
import typing
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from openai.types.shared.reasoning_effort import ReasoningEffort

from generation.common.cli import UserError
from generation.common.records import stable_hash
from generation.common.redact import redact_text, remember_secret
from generation.costs.pricing import max_output_of

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


def _sdk_literals(annotation: Any) -> tuple[str, ...]:
    """The string values of a (possibly Optional) Literal type."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Literal:
        return tuple(a for a in args if isinstance(a, str))
    return tuple(value for arg in args for value in _sdk_literals(arg))


# What the installed openai SDK's reasoning_effort accepts (its ReasoningEffort type), so the choices never drift.
REASONING_EFFORTS = _sdk_literals(ReasoningEffort)
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
    api_mode: str = "live"  # "batch": the provider's batch API (batch.py), live calls for what it leaves failed
    batch_fallback: str = "none"  # "live": requests of a batch that failed as a whole are sent live (full price)
    batch_max_enqueued_tokens: int | None = None  # None: OpenAI's tier-1 batch queue limit (batch.enqueued_limit)

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
    finishes: list[str | None] = field(default_factory=list)  # per text: stop/length/content_filter/error or None

    @classmethod
    def failure(cls, n: int, error: str) -> Completion:
        """`n` failed completions (no text, no usage, finish unknown) and the reason."""
        return cls(texts=[None] * n, error=error, finishes=[None] * n)

    @property
    def truncated(self) -> list[bool]:
        """Per text: whether it was stopped by max_tokens."""
        return [finish == "length" for finish in self.finishes]


class FatalApiError(UserError):
    """Authentication, permission or bad-request error: retrying cannot help, so the run stops. `refuses_all`: the
    server refuses every request of the run this way (a key it does not accept, an exhausted quota), so none of
    those in flight beside it is billed either."""

    def __init__(self, message: str, refuses_all: bool = False) -> None:
        super().__init__(message)
        self.refuses_all = refuses_all


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
                        f"{redact_text(config.base_url or '')}")
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
        remember_secret(headers["Authorization"].split()[1])  # a server may echo it back
    host = parts.hostname or ""
    netloc = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
    clean = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    return clean, dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True)), headers


def _check_reachable(base_url: str) -> None:
    """GET <base_url>/models quickly: any HTTP answer counts as reachable, a connection failure does not."""
    shown = redact_text(base_url)
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
        reason = redact_text(str(getattr(exc, "reason", exc)))
        raise UserError(f"cannot reach --base_url {shown} ({reason}); start the server or fix the URL") from None


def request_key(config: ApiConfig, job: ChatJob) -> str:
    """Stable sha256 of what determines a reply: model, provider, messages and sampling parameters."""
    payload = {"model": config.model, "provider": config.provider, "messages": job.messages, "n": job.n,
               "temperature": job.temperature, "max_tokens": job.max_tokens, "top_p": job.top_p, "seed": job.seed}
    if config.reasoning_effort is not None:
        payload["reasoning_effort"] = config.reasoning_effort
    return stable_hash(payload)


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
        params[rules.cap] = clamped_cap(config, job.max_tokens)
    elif config.provider == "anthropic":
        raise UserError("the Anthropic API needs a max_tokens cap")
    if rules.effort and config.reasoning_effort:
        params["reasoning_effort"] = config.reasoning_effort
    if rules.sampling and (config.provider != "anthropic" or anthropic_takes_sampling()):
        params["temperature"] = job.temperature
        if job.top_p is not None:
            params["top_p"] = job.top_p
    return params


def clamped_cap(config: ApiConfig, max_tokens: int) -> int:
    """The completion cap sent: the one asked, lowered to the model's documented maximum output (said once), which
    the server would refuse anyway."""
    documented = max_output_of(config.model)
    if documented is None or max_tokens <= documented:
        return max_tokens
    notice_once(f"{config.provider} {config.model}: the completion cap {max_tokens:,} (--max_new_tokens, Step 3: "
                f"--judge_max_tokens) is above the model's documented maximum output ({documented:,}): sending "
                f"{documented:,}")
    return documented


def anthropic_takes_sampling() -> bool:
    """Whether the installed anthropic SDK's messages.create takes temperature (its API version 2026-10-21 does not)."""
    from anthropic.resources.messages import AsyncMessages

    return "temperature" in inspect.signature(AsyncMessages.create).parameters


def sent_parameters(config: ApiConfig, job: ChatJob) -> dict[str, Any]:
    """What a request of this run sends besides the messages (for provenance and the not-sent notice)."""
    params = request_params(config, job, min(job.n, _max_n(config) or job.n), job.seed)  # as one request is sent
    sent = sorted(set(params) - {"model", "messages", "system"})
    wanted = {"temperature": job.temperature, "top_p": job.top_p, "seed": job.seed}
    missing = [name for name, value in wanted.items() if value is not None and name not in params]
    if missing:
        notice_once(f"{config.provider} {config.model}: {', '.join(missing)} not sent (the model or the installed "
                    "SDK's API version does not take it); the model's own setting is used")
    return {"sent": sent, "not_sent": missing, "reasoning_effort": params.get("reasoning_effort"),
            "max_n_per_request": _max_n(config), "completion_cap": params.get(model_rules(config).cap)}


def _max_n(config: ApiConfig) -> int | None:
    """Completions per request: --max_n_per_request, else the provider's documented limit (None: no limit)."""
    return config.max_n_per_request or model_rules(config).max_n


def _split(total: int, limit: int | None) -> list[int]:
    """Request sizes covering `total` completions, none above `limit`."""
    if not limit or total <= limit:
        return [total]
    return [limit] * (total // limit) + ([total % limit] if total % limit else [])
