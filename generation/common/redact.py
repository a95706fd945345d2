"""One redaction for everything the project writes or prints: credentials masked in names and in values."""
from __future__ import annotations

import io
import os
import re
import sys
from contextlib import contextmanager
from typing import Any, Iterator

MASK = "***"
SECRET_WORDS = frozenset({"key", "apikey", "token", "secret", "password", "passwd", "signature", "sig", "auth",
                          "authorization", "credential", "credentials"})  # words of a name that hold a secret
ABOUT_WORDS = frozenset({"mode", "path", "file", "dir", "env", "var", "name", "names", "type", "kind", "count",
                         "limit", "length", "len", "usage", "expiry", "expires", "ttl"})  # the last word
# of a name that is about a secret rather than the secret itself (RAY_AUTH_MODE, token_path, api_key_env)
MIN_ENV_SECRET = 6  # shorter environment values (flags such as "1") are not treated as keys
URL_USERINFO = re.compile(r"(?<=://)[^\s/?#]*@")  # greedy: up to the LAST @ of the authority
ASSIGNMENT = re.compile(r"(?<![A-Za-z0-9_.-])([A-Za-z0-9_.-]+)=([^&#\s\"',;]+?)(?=[&#\s\"',;]|:\s|:$|$)")
AUTHORIZATION = re.compile(r"(?i)\b(authorization[\"']?\s*[:=]\s*[\"']?)(?:(bearer|basic|token)\s+)?[^\s\"',}]+")
BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{4,}")


def is_secret_name(name: str) -> bool:
    """True for names like api_key, hf_token, X-Amz-Signature, PGPASSWORD or --password (a word of the name
    ends in a secret word) unless their last word says they are about a secret (RAY_AUTH_MODE, token_path);
    max_new_tokens is not."""
    words = [word for word in re.split(r"[^a-z0-9]+", name.lower()) if word]
    if not words or words[-1] in ABOUT_WORDS:
        return False
    return any(word.endswith(tuple(SECRET_WORDS)) for word in words)


_DERIVED: set[str] = set()  # credentials this process made itself (remember_secret)


def remember_secret(value: str) -> None:
    """Mask a credential this process derived itself (a Basic header from a URL's user-info) wherever it shows up,
    e.g. echoed back in a server's error body."""
    if len(value) >= MIN_ENV_SECRET:
        _DERIVED.add(value)


def environment_secrets() -> list[str]:
    """Values of environment variables named like keys (OPENAI_API_KEY, HF_TOKEN, ...) and the credentials this
    process derived (remember_secret), longest first."""
    values = {v for k, v in os.environ.items() if is_secret_name(k) and len(v) >= MIN_ENV_SECRET} | _DERIVED
    return sorted(values, key=len, reverse=True)


def redact_text(text: str, secrets: list[str] | None = None) -> str:
    """Text with credentials masked: URL user-info, secret-named query/assignment values, Authorization and bearer
    values, and any value of a key read from the environment."""
    for secret in environment_secrets() if secrets is None else secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    if "://" in text:
        text = URL_USERINFO.sub(MASK + "@", text)
    if "=" in text:
        text = ASSIGNMENT.sub(lambda m: f"{m.group(1)}={MASK}" if is_secret_name(m.group(1)) else m.group(0), text)
    if "uthori" in text or "UTHORI" in text:
        text = AUTHORIZATION.sub(lambda m: f"{m.group(1)}{m.group(2) + ' ' if m.group(2) else ''}{MASK}", text)
    if "earer" in text or "EARER" in text:
        text = BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
    return text


def redact(value: Any, secrets: list[str] | None = None) -> Any:
    """A JSON-able value with every string in it redacted (keys come only from the environment, so a key is masked
    wherever it lands; fields named like secrets stay out of records: see common.cli.public_args)."""
    secrets = environment_secrets() if secrets is None else secrets
    if isinstance(value, str):
        return redact_text(value, secrets)
    if isinstance(value, dict):
        return {key: redact(item, secrets) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(item, secrets) for item in value]
    return value


def redact_argv(argv: list[str]) -> list[str]:
    """A command line with credentials masked, including the value after a secret-named flag (--api_key KEY)."""
    shown = []
    for index, item in enumerate(argv):
        flag = argv[index - 1] if index else ""
        secret_value = flag.startswith("-") and "=" not in flag and is_secret_name(flag)
        shown.append(MASK if secret_value and not item.startswith("-") else redact_text(item))
    return shown


class RedactingStream(io.TextIOBase):
    """A text stream that redacts everything written before passing it on."""

    def __init__(self, stream) -> None:
        super().__init__()
        self.stream = stream

    def write(self, text: str) -> int:
        """Write the redacted text; returns the length of the text given (as callers expect)."""
        self.stream.write(redact_text(text))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def writable(self) -> bool:
        return True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


@contextmanager
def redacted_streams() -> Iterator[None]:
    """While inside: everything printed to stdout and stderr is redacted (errors, summaries, progress, warnings)."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = RedactingStream(saved[0]), RedactingStream(saved[1])
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = saved
