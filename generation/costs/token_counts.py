"""Token counts for estimates: the model's own tokenizer where local, tiktoken for OpenAI models, else chars / 4."""
from __future__ import annotations

import functools
from typing import Any

CHARS_PER_TOKEN = 4.0  # the usual English-text rule of thumb (OpenAI's and Anthropic's docs); an estimate only
MESSAGE_OVERHEAD_TOKENS = 4  # role and separator tokens per chat turn (OpenAI's cookbook counts 3-4)
REQUEST_OVERHEAD_TOKENS = 16  # the reply's priming and any provider framing around the turns (an upper bound)


@functools.lru_cache(maxsize=16)
def _tiktoken_encoding(model: str) -> Any:
    """tiktoken's encoding for an OpenAI model (o200k_base for names it does not know yet), or None offline."""
    try:
        import tiktoken

        try:
            return tiktoken.encoding_for_model(model)
        except KeyError:
            return tiktoken.get_encoding("o200k_base")
    except Exception:  # noqa: BLE001 - no tiktoken or its BPE file cannot be fetched: fall back to chars / 4
        return None


def counter_for(model: str, provider: str | None) -> tuple[Any, str]:
    """(text -> tokens, how it counts) for an API model."""
    encoding = _tiktoken_encoding(model) if provider == "openai" else None
    if encoding is not None:
        return (lambda text: len(encoding.encode(text, disallowed_special=()))), f"tiktoken {encoding.name}"
    how = f"{CHARS_PER_TOKEN:g} characters per token"
    if provider == "openai":
        how += " (tiktoken's encoding could not be loaded)"
    return (lambda text: int(-(-len(text) // CHARS_PER_TOKEN))), how


def chat_tokens(count: Any, messages: list[dict]) -> int:
    """Input tokens of a chat request: each turn's text plus a small per-turn overhead."""
    return sum(count(str(m.get("content", ""))) + MESSAGE_OVERHEAD_TOKENS for m in messages)


def prompt_token_bound(model: str, provider: str | None, messages: list[dict]) -> int:
    """At most how many input tokens the provider bills for these messages: tiktoken's exact count for OpenAI
    models, else the UTF-8 bytes (no BPE token is shorter than one byte), plus the per-turn and request overheads."""
    count, how = counter_for(model, provider)
    if not how.startswith("tiktoken"):
        count = _utf8_bytes
    return chat_tokens(count, messages) + REQUEST_OVERHEAD_TOKENS


def _utf8_bytes(text: str) -> int:
    """A text's length in UTF-8 bytes."""
    return len(text.encode("utf-8"))
