"""Append-only JSONL checkpoint: each finished unit of work is on disk before the next one is asked for."""
from __future__ import annotations

import glob
import hashlib
import json
import os
import re
from typing import Any, BinaryIO, Callable, Container, Iterable, Iterator

from generation.common.cli import naming

FINGERPRINT_KEY = "fingerprint"  # a log's record of the settings its records were made with (Step 1's sample log)
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


KEY_FIRST = re.compile(rb'\{"k": ("(?:[^"\\]|\\.)*")')  # a record line starts with its key (RecordStore.put)


def keyed_lines(path: str, wanted: Callable[[str], bool] | None = None) -> Iterator[tuple[str, int, bytes]]:
    """Yield (key, byte offset, line) for every complete line of a log whose key `wanted` accepts (all without it),
    reading only the key of the others (read only: another process may be appending; a torn last line is left
    out)."""
    with open(path, "rb") as handle:
        offset = 0
        for line in handle:
            start, offset = offset, offset + len(line)
            if not line.endswith(b"\n"):
                break  # torn write from a killed process
            match = KEY_FIRST.match(line)
            try:
                key = json.loads(match.group(1)) if match else json.loads(line)["k"]
            except (ValueError, KeyError, TypeError):
                continue
            if wanted is None or wanted(key):
                yield key, start, line


def log_lines(path: str, wanted: Callable[[str], bool] | None = None) -> Iterator[tuple[str, Any, int]]:
    """Yield (key, value, replaced code points) for every complete line of a log whose key `wanted` accepts."""
    for _, _, line in keyed_lines(path, wanted):
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            continue
        yield item["k"], item["v"], item.get("r", 0)


def read_log(path: str, wanted: Callable[[str], bool] | None = None) -> dict[str, Any]:
    """A log's records whose key `wanted` accepts (later keys win); {} when it is gone (another run's --overwrite
    may remove it)."""
    try:
        return {key: value for key, value, _ in log_lines(path, wanted)}
    except FileNotFoundError:
        return {}


def value_at(handle: BinaryIO, offset: int) -> Any:
    """The value of the record line at a byte offset of an open log."""
    handle.seek(offset)
    return json.loads(handle.readline())["v"]


def is_record_log(path: str) -> bool:
    """Whether a file is a RecordStore log (its first line is a record, or it is empty), not another JSON-lines file
    (a cost ledger) that compact() must never rewrite."""
    with open(path, "rb") as handle:
        first = handle.readline()
    return not first or KEY_FIRST.match(first) is not None


def compact(logs: list[str], target: str) -> int:
    """Write into target (atomically) one line per key of the logs: each log's last record of a key, the first log's
    that holds the key winning (a log whose `fingerprint` record differs from the first one's belongs to other
    settings and is left out); lines are copied as they are. Returns the bytes written."""
    chosen: dict[str, tuple[str, int]] = {}
    fingerprint = None
    for log in logs:
        latest = {key: offset for key, offset, _ in keyed_lines(log)}  # later lines of a log win
        if FINGERPRINT_KEY in latest:
            with open(log, "rb") as handle:
                mine = value_at(handle, latest[FINGERPRINT_KEY])
            if fingerprint is not None and mine != fingerprint:
                continue
            fingerprint = mine
        for key, offset in latest.items():
            chosen.setdefault(key, (log, offset))
    for stale in glob.glob(glob.escape(target) + ".tmp-*"):  # left by a compaction that was killed
        os.remove(stale)
    tmp = f"{target}.tmp-{os.getpid()}"
    written = 0
    with open(tmp, "wb") as out:
        for log in logs:
            with open(log, "rb") as handle:
                for key, offset in ((k, o) for k, (source, o) in chosen.items() if source == log):
                    handle.seek(offset)
                    written += out.write(handle.readline())
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, target)
    return written


class RecordStore:
    """A key -> JSON value log that survives SIGKILL: a torn last line is ignored on reload, later keys win.

    `also_read`: other logs (never written) whose records of the `wanted` keys get() and `in` find too, after this
    log's own; only where each of those records lies is held (key -> log and offset), its value is read when asked
    for, so memory does not grow with what other logs hold for other keys. `records` holds this log's own only.
    """

    def __init__(self, path: str, sync_every: int = 1, also_read: Iterable[str] = (),
                 wanted: Container[str] = frozenset()) -> None:
        self.path = path
        self.sync_every = max(1, sync_every)
        self.records: dict[str, Any] = {}
        self.elsewhere: dict[str, tuple[str, int]] = {}  # key -> (an also_read log, offset of its record)
        self._readers: dict[str, BinaryIO] = {}  # the also_read logs opened by get()
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
                self._index(other, wanted)
        self._handle = open(path, "a", encoding="utf-8")

    def _index(self, log: str, wanted: Container[str]) -> None:
        """Note where each wanted record of another log lies (a log that is gone holds none)."""
        try:
            for key, offset, _ in keyed_lines(log, wanted.__contains__):
                self.elsewhere[key] = (log, offset)
        except FileNotFoundError:
            return

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
        if key in self.records:
            return self.records[key]
        if key not in self.elsewhere:
            return default
        log, offset = self.elsewhere[key]
        if log not in self._readers:
            self._readers[log] = open(log, "rb")
        return value_at(self._readers[log], offset)

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
        with naming(self.path):
            self._handle.write(json.dumps(line, ensure_ascii=False) + "\n")
            self._handle.flush()
        self._pending += 1
        if self._pending >= self.sync_every:
            self.flush()
        return value

    def flush(self) -> None:
        """Flush buffered records to disk."""
        with naming(self.path):
            self._handle.flush()
            os.fsync(self._handle.fileno())
        self._pending = 0

    def close(self) -> None:
        """Flush and close the log (and the other logs it reads)."""
        if not self._handle.closed:
            self.flush()
            self._handle.close()
        for reader in self._readers.values():
            reader.close()

    def __enter__(self) -> "RecordStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
