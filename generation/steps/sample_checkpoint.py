"""Step 1's sample checkpoint: samples per row in an append-only log beside the output (or a shard), resumed by
any later run whatever its shard layout."""
from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

from generation.common.cli import UserError
from generation.common.records import FINGERPRINT_KEY, RecordStore, read_log
from generation.common.writing import provenance_path
from generation.data.dataset_io import FINISH_COLUMN, checkpoint_dir, is_saved_dataset, load_any
from generation.data.sharding import run_logs

SAMPLE_LOG = "samples.jsonl"  # in the output's checkpoint folder
SYNC_EVERY = 64  # records between fsyncs; every record reaches the OS at once, so SIGKILL loses nothing


class SampleCheckpoint:
    """Samples per row in an append-only log beside the output; survives SIGKILL, refuses foreign settings."""

    def __init__(self, output_path: str, fingerprint: dict, keys: list[str], instructions: list[str],
                 overwrite: bool) -> None:
        self.path = os.path.join(checkpoint_dir(output_path), SAMPLE_LOG)
        if overwrite and os.path.exists(self.path):
            os.remove(self.path)
        fresh = not overwrite and not os.path.exists(self.path)
        self.adopted = existing_output_samples(output_path, fingerprint, instructions) if fresh else []
        self.store = RecordStore(self.path, sync_every=SYNC_EVERY)
        self._check_settings(fingerprint)
        self.usage: Counter = Counter()  # tokens of every stored sample, over all runs
        self.texts, self.finishes = self._load_samples()
        stored_rows = {row.split("-", 1)[0]: row for row in self.texts}
        moved = [key for key in keys if stored_rows.get(key.split("-", 1)[0], key) != key]
        if moved:
            self._refuse(f"holds samples for other prompts at {len(moved)} rows (first: row "
                         f"{moved[0].split('-', 1)[0]}): the input file, subjects or prompt format changed")
        for key, (texts, finishes) in zip(keys, self.adopted):
            self.add(key, texts, finishes=finishes)
        self.taken = 0 if overwrite else self._take_from_run_logs(output_path, fingerprint, keys)

    def _check_settings(self, fingerprint: dict) -> None:
        """Record the run's settings in a new log; refuse a log made with other settings."""
        stored = self.store.get(FINGERPRINT_KEY)
        if stored is None:
            self.store.put(FINGERPRINT_KEY, fingerprint)
            self.store.flush()
        elif stored != fingerprint:
            changed = ", ".join(f"{k}: {stored.get(k)!r} -> {fingerprint.get(k)!r}"
                                for k in sorted(set(stored) | set(fingerprint)) if stored.get(k) != fingerprint.get(k))
            self._refuse(f"was made with other settings ({changed})")

    def _load_samples(self) -> tuple[dict[str, list[str]], dict[str, list[str | None]]]:
        """The stored samples per row key and their finish reasons; sums their token usage."""
        return samples_by_row(self.store.records, self.usage)

    def _take_from_run_logs(self, output_path: str, fingerprint: dict, keys: list[str]) -> int:
        """Copy in the samples that the run's other logs (another shard layout, the unsharded run) hold for these
        rows beyond this log's, made with the same settings; returns how many, so no finished row is asked again."""
        taken, owned = 0, set(keys)

        def wanted(key: str) -> bool:  # only the rows this run owns are read (not the whole run's)
            return key == FINGERPRINT_KEY or key.startswith("s/") and key[2:].rsplit("/", 1)[0] in owned

        for path in run_logs(output_path, SAMPLE_LOG):
            if os.path.realpath(path) == os.path.realpath(self.path):
                continue
            records = read_log(path, wanted)
            if records.get(FINGERPRINT_KEY) != fingerprint:
                continue
            texts, finishes = samples_by_row(records, Counter())
            for key in keys:
                held = self.count(key)
                self.add(key, texts.get(key, [])[held:], finishes=finishes.get(key, [])[held:])
                taken += len(texts.get(key, [])[held:])
        return taken

    def _refuse(self, why: str) -> None:
        """Close the log and stop: its samples belong to another run."""
        self.store.close()
        raise UserError(f"the checkpoint {self.path} {why}; pass --overwrite to start again, or use another "
                        f"--output_path")

    def count(self, row: str) -> int:
        """Samples stored for a row."""
        return len(self.texts.get(row, ()))

    def add(self, row: str, texts: list[str], usage: dict[str, int] | None = None,
            finishes: list[str | None] | None = None) -> None:
        """Append a row's new samples, their token usage and finish reasons; in the OS's hands (safe from SIGKILL)
        on return."""
        if not texts:
            return
        held = self.texts.setdefault(row, [])
        finishes = list(finishes) if finishes else [None] * len(texts)
        stored = self.store.put(f"s/{row}/{len(held)}", {"texts": texts, "usage": usage or {}, "finishes": finishes})
        held.extend(stored["texts"])
        self.finishes.setdefault(row, []).extend(finishes)
        self.usage.update(usage or {})

    def samples(self, row: str, n: int) -> list[str | None]:
        """Exactly n samples for a row: the first n stored, None for each still missing."""
        held = self.texts.get(row, [])[:n]
        return held + [None] * (n - len(held))

    def finish_reasons(self, row: str, n: int) -> list[str | None]:
        """The finish reasons of samples(row, n), None where unknown or missing."""
        held = self.finishes.get(row, [])[:n]
        return held + [None] * (n - len(held))

    def close(self) -> None:
        """Close the log."""
        self.store.close()


def samples_by_row(records: dict[str, Any], usage: Counter
                   ) -> tuple[dict[str, list[str]], dict[str, list[str | None]]]:
    """The samples per row key of a sample log's records and their finish reasons (None where a checkpoint written
    before they were recorded has none), in the order they were added; adds their token usage."""
    parts: dict[str, list[tuple[int, list[str], list[str | None]]]] = {}
    for key, value in records.items():
        if key.startswith("s/"):
            row, offset = key[2:].rsplit("/", 1)
            if isinstance(value, list):  # a checkpoint written before usage was recorded
                value = {"texts": value, "usage": {}}
            finishes = value.get("finishes") or [None] * len(value["texts"])
            parts.setdefault(row, []).append((int(offset), value["texts"], finishes))
            usage.update(value["usage"])
    ordered = {row: sorted(items, key=lambda item: item[0]) for row, items in parts.items()}
    return ({row: [t for _, chunk, _ in items for t in chunk] for row, items in ordered.items()},
            {row: [f for _, _, chunk in items for f in chunk] for row, items in ordered.items()})


def existing_output_samples(output_path: str, fingerprint: dict, instructions: list[str]
                            ) -> list[tuple[list[str], list[str | None]]]:
    """The samples per row of an output whose checkpoint is gone, with their finish reasons, so that none is asked
    for again ([] if no output).

    UserError when its provenance shows other settings or it holds rows this run would not write back.
    """
    if not is_saved_dataset(output_path):
        return []
    redo = "pass --overwrite to replace it, or use another --output_path"
    try:
        with open(provenance_path(output_path)) as handle:
            sampling = json.load(handle).get("sampling")
    except (OSError, ValueError, AttributeError):
        sampling = None
    if sampling != fingerprint:
        raise UserError(f"{output_path} exists without its checkpoint, and its provenance does not show this "
                        f"run's settings; {redo}")
    old = load_any(output_path)
    if old.num_rows > len(instructions) or old["instruction"] != instructions[:old.num_rows]:
        raise UserError(f"{output_path} exists without its checkpoint and holds {old.num_rows} rows that differ "
                        f"from this run's first {len(instructions)} prompts; {redo}")
    finishes = old[FINISH_COLUMN] if FINISH_COLUMN in old.column_names else [[None] * len(r) for r in old["samples"]]
    return [([t for t in row if t is not None], [f for t, f in zip(row, reasons) if t is not None])
            for row, reasons in zip(old["samples"], finishes)]
