"""Append-only JSONL checkpoint: each finished unit of work is on disk before the next one is asked for."""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Iterator


def stable_hash(payload: Any) -> str:
    """Hex sha256 of a JSON-able value (key order ignored): cache keys and fingerprints that survive restarts."""
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def derived_seed(*parts: Any) -> int:
    """A 32-bit seed derived from a base seed and what identifies one request."""
    return int(stable_hash(parts)[:8], 16)


class RecordStore:
    """A key -> JSON value log that survives SIGKILL: a torn last line is ignored on reload, later keys win."""

    def __init__(self, path: str, sync_every: int = 1) -> None:
        self.path = path
        self.sync_every = max(1, sync_every)
        self.records: dict[str, Any] = {}
        self._pending = 0
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        if os.path.exists(path):
            self.records = dict(self._read())
            self._truncate_torn_tail()
        self._handle = open(path, "a", encoding="utf-8")

    def _read(self) -> Iterator[tuple[str, Any]]:
        """Yield (key, value) for every complete line."""
        with open(self.path, encoding="utf-8") as handle:
            for line in handle:
                if not line.endswith("\n"):
                    break  # torn write from a killed process
                try:
                    item = json.loads(line)
                except json.JSONDecodeError:
                    continue
                yield item["k"], item["v"]

    def _truncate_torn_tail(self) -> None:
        """Drop a partial last line so new records start on a fresh line."""
        with open(self.path, "rb+") as handle:
            data = handle.read()
            if data and not data.endswith(b"\n"):
                handle.truncate(data.rfind(b"\n") + 1)

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def __len__(self) -> int:
        return len(self.records)

    def get(self, key: str, default: Any = None) -> Any:
        """The stored value for key, or default."""
        return self.records.get(key, default)

    def put(self, key: str, value: Any) -> None:
        """Append one record: handed to the OS at once (survives SIGKILL), fsynced every `sync_every` records."""
        self.records[key] = value
        self._handle.write(json.dumps({"k": key, "v": value}, ensure_ascii=False) + "\n")
        self._handle.flush()
        self._pending += 1
        if self._pending >= self.sync_every:
            self.flush()

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
