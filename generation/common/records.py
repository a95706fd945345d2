"""Append-only JSONL checkpoint: each finished unit of work is on disk before the next one is asked for."""
from __future__ import annotations

import hashlib
import json
import os
import re
from typing import Any, Iterable, Iterator

SURROGATE = re.compile("[\ud800-\udfff]")  # lone UTF-16 halves: valid in a Python str, not encodable as UTF-8
REPLACEMENT = "\ufffd"


def replace_surrogates(value: Any) -> tuple[Any, int]:
    """The value with every lone surrogate in its strings replaced by U+FFFD, and how many were replaced."""
    if isinstance(value, str):
        return SURROGATE.subn(REPLACEMENT, value)
    if isinstance(value, (list, tuple)):
        parts = [replace_surrogates(item) for item in value]
        return type(value)(item for item, _ in parts), sum(n for _, n in parts)
    if isinstance(value, dict):
        parts = {key: replace_surrogates(item) for key, item in value.items()}
        return {key: item for key, (item, _) in parts.items()}, sum(n for _, n in parts.values())
    return value, 0


def stable_hash(payload: Any) -> str:
    """Hex sha256 of a JSON-able value (key order ignored): cache keys and fingerprints that survive restarts."""
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def derived_seed(*parts: Any) -> int:
    """A 32-bit seed derived from a base seed and what identifies one request."""
    return int(stable_hash(parts)[:8], 16)


def log_lines(path: str) -> Iterator[tuple[str, Any, int]]:
    """Yield (key, value, replaced code points) for every complete line of a log (read only: another process may be
    appending to it; a torn last line is left out)."""
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.endswith("\n"):
                break  # torn write from a killed process
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                continue
            yield item["k"], item["v"], item.get("r", 0)


def read_log(path: str) -> dict[str, Any]:
    """A log's records (later keys win); {} when it is gone (another run's --overwrite may remove it)."""
    try:
        return {key: value for key, value, _ in log_lines(path)}
    except FileNotFoundError:
        return {}


class RecordStore:
    """A key -> JSON value log that survives SIGKILL: a torn last line is ignored on reload, later keys win.

    `also_read`: other logs (read once, never written) whose records get() and `in` find too, after this log's own;
    `records` holds this log's own only.
    """

    def __init__(self, path: str, sync_every: int = 1, also_read: Iterable[str] = ()) -> None:
        self.path = path
        self.sync_every = max(1, sync_every)
        self.records: dict[str, Any] = {}
        self.elsewhere: dict[str, Any] = {}  # records of the also_read logs
        self.replaced: dict[str, int] = {}  # key -> code points replaced by U+FFFD in its value (kept in the log)
        self._unstored_replaced = 0
        self._pending = 0
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        if os.path.exists(path):
            for key, value, replaced in log_lines(path):
                self.records[key] = value
                self.replaced[key] = replaced
            self._truncate_torn_tail()
        for other in also_read:
            if os.path.realpath(other) != os.path.realpath(path):
                self.elsewhere.update(read_log(other))
        self._handle = open(path, "a", encoding="utf-8")

    def _truncate_torn_tail(self) -> None:
        """Drop a partial last line so new records start on a fresh line."""
        with open(self.path, "rb+") as handle:
            data = handle.read()
            if data and not data.endswith(b"\n"):
                handle.truncate(data.rfind(b"\n") + 1)

    def __contains__(self, key: str) -> bool:
        return key in self.records or key in self.elsewhere

    def __len__(self) -> int:
        return len(self.records)

    def get(self, key: str, default: Any = None) -> Any:
        """The value stored for key in this log, else in an also_read log, else default."""
        return self.records[key] if key in self.records else self.elsewhere.get(key, default)

    @property
    def replaced_code_points(self) -> int:
        """Lone surrogates replaced by U+FFFD in the stored values (over all runs) and in clean() calls."""
        return sum(self.replaced.values()) + self._unstored_replaced

    def clean(self, value: Any) -> Any:
        """A value that will not be stored, with lone surrogates replaced by U+FFFD (counted)."""
        value, replaced = replace_surrogates(value)
        self._unstored_replaced += replaced
        return value

    def put(self, key: str, value: Any) -> Any:
        """Append one record (any text storable: lone surrogates become U+FFFD, counted); return the stored value.

        The record is handed to the OS at once (survives SIGKILL) and fsynced every `sync_every` records.
        """
        value, replaced = replace_surrogates(value)
        self.records[key] = value
        self.replaced[key] = replaced
        line = {"k": key, "v": value, **({"r": replaced} if replaced else {})}
        self._handle.write(json.dumps(line, ensure_ascii=False) + "\n")
        self._handle.flush()
        self._pending += 1
        if self._pending >= self.sync_every:
            self.flush()
        return value

    def flush(self) -> None:
        """Flush buffered records to disk."""
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._pending = 0

    def close(self) -> None:
        """Flush and close the log."""
        if not self._handle.closed:
            self.flush()
            self._handle.close()

    def __enter__(self) -> "RecordStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
