"""Reading provider replies and errors: texts, usage, finish reasons, error codes, Retry-After."""
from __future__ import annotations

from typing import Any

from generation.backends.rules import (
    PLACEHOLDER_KEY,
    PROMPT_ERROR_CODES,
    PROMPT_ERROR_TEXT,
    MalformedResponse,
)
from generation.common.redact import redact_text

# Each engine's finish reasons in Step 1's words (`sample_finish_reasons`: stop, length, content_filter, error);
# anything else is unknown (None). OpenAI: choices[].finish_reason; Anthropic: stop_reason; vLLM: finish_reason.
FINISH_WORDS = {
    "openai": {"stop": "stop", "length": "length", "content_filter": "content_filter", "tool_calls": "stop",
               "function_call": "stop"},
    "anthropic": {"end_turn": "stop", "stop_sequence": "stop", "tool_use": "stop", "max_tokens": "length",
                  "model_context_window_exceeded": "length", "refusal": "content_filter"},
    "vllm": {"stop": "stop", "length": "length", "abort": "error", "error": "error",
             "repetition": "length"},  # stopped in a repetition loop: cut off, as at the token limit
}


def finish_word(engine: str, reason: Any) -> str | None:
    """An engine's finish reason as stop / length / content_filter / error, or None when unknown."""
    return FINISH_WORDS[engine].get(reason) if isinstance(reason, str) else None


def _openai_texts(reply: Any, n: int) -> tuple[list[str | None], dict[str, int] | None, list[str | None]]:
    """Texts, usage (None when the reply reports none) and finish reasons of a chat.completions reply (1..n
    choices: servers that ignore `n` send fewer); MalformedResponse when it is not one. An empty reply cut at the
    cap is a failure (None)."""
    choices = getattr(reply, "choices", None)
    if not isinstance(choices, list) or not 1 <= len(choices) <= n:
        got = len(choices) if isinstance(choices, list) else type(choices).__name__
        raise MalformedResponse(f"expected {n} choices, got {got}")
    texts = [getattr(getattr(c, "message", None), "content", None) for c in choices]
    finishes = [finish_word("openai", getattr(c, "finish_reason", None)) for c in choices]
    usage = getattr(reply, "usage", None)
    return ([t if isinstance(t, str) and (t or f != "length") else None for t, f in zip(texts, finishes)],
            _usage(getattr(usage, "prompt_tokens", None), getattr(usage, "completion_tokens", None),
                   getattr(getattr(usage, "prompt_tokens_details", None), "cached_tokens", 0)), finishes)


def _anthropic_texts(reply: Any, n: int) -> tuple[list[str | None], dict[str, int] | None, list[str | None]]:
    """Text, usage (None when the reply reports none) and finish reason of an Anthropic messages reply;
    MalformedResponse when it is not one."""
    blocks = getattr(reply, "content", None)
    if not isinstance(blocks, list):
        raise MalformedResponse(f"expected a content list, got {type(blocks).__name__}")
    parts = [b.text for b in blocks if getattr(b, "type", None) == "text" and isinstance(b.text, str)]
    finish = finish_word("anthropic", getattr(reply, "stop_reason", None))
    usage = getattr(reply, "usage", None)
    return (["".join(parts) if parts and ("".join(parts) or finish != "length") else None],
            _anthropic_usage(usage), [finish])


def _usage(prompt: Any, completion: Any, cached: Any = 0) -> dict[str, int] | None:
    """Token usage as {prompt_tokens, completion_tokens}, with cached_tokens (the part of the prompt read from the
    provider's prompt cache) when it reports some; None when the reply does not report both counts (a gateway that
    drops `usage`): its cost is unknown, never 0."""
    if not (isinstance(prompt, int) and isinstance(completion, int)) or isinstance(prompt, bool):
        return None
    usage = {"prompt_tokens": prompt, "completion_tokens": completion}
    if isinstance(cached, int) and cached > 0:
        usage["cached_tokens"] = cached
    return usage


def _anthropic_usage(usage: Any) -> dict[str, int] | None:
    """An Anthropic reply's usage: its input_tokens leave out cache reads and writes, which are input too (None
    when the reply reports none)."""
    read, written = (getattr(usage, f"cache_{kind}_input_tokens", 0) or 0 for kind in ("read", "creation"))
    prompt = getattr(usage, "input_tokens", None)
    return _usage(prompt + read + written if isinstance(prompt, int) else prompt,
                  getattr(usage, "output_tokens", None), read)


def _error_code(exc: Any) -> str | None:
    """The provider's error code or type from an SDK status error's body, if any."""
    body = getattr(exc, "body", None)
    inner = body.get("error", body) if isinstance(body, dict) else None
    return (inner.get("code") or inner.get("type")) if isinstance(inner, dict) else None


def _error_param(exc: Any) -> Any:
    """The parameter an SDK status error's body names (OpenAI's error.param), if any."""
    body = getattr(exc, "body", None)
    inner = body.get("error", body) if isinstance(body, dict) else None
    return inner.get("param") if isinstance(inner, dict) else None


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
    text = redact_text(" ".join(str(text).split()))
    return text.replace(key, "***") if key and key != PLACEHOLDER_KEY else text
