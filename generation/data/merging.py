"""Merging the parts of one run (shards, --start_row/--end_row parts of any step) back into one dataset.

The rule: a merge takes only parts of ONE run. Their provenance must show the same step and the same settings
apart from where and which rows they ran (PER_PART), and their row ranges must tile one range: no row twice, no
row missing (unless allow_gaps, which records the gaps). Every merge goes through `merge`.
"""
from __future__ import annotations

import json
import os
from typing import Any, Callable

from generation.common.cli import Provenance, UserError
from generation.common.writing import provenance_path
from generation.data.dataset_io import check_output_path, load_any, save_atomic

# Arguments that say where a part ran, which rows, or how fast: they may differ between parts of one run.
PER_PART = frozenset({"output_path", "start_row", "end_row", "max_rows", "num_shards", "ray_address", "overwrite",
                      "push_to_hub", "dry_run", "max_concurrency", "parallel", "shards", "allow_gaps", "keep_shards"})
SHARDED = " (sharded)"
Recompute = Callable[[Any, list[dict]], dict]  # (merged dataset, part records) -> provenance fields over all rows


def read_provenance(path: str) -> dict | None:
    """The provenance record of a step's output (None when absent or unreadable)."""
    try:
        with open(provenance_path(path), encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def run_identity(record: dict, seen: frozenset[str] = frozenset()) -> dict:
    """What makes a part's rows belong to its run: the step and its settings (PER_PART left out); an input made by
    this pipeline stands for the run that made it, so parts of parts (Step 2 of each Step 1 part) agree too."""
    if "run_identity" in record:
        return record["run_identity"]
    settings = {}
    for key, value in record.get("arguments", {}).items():
        if key in PER_PART:
            continue
        source = read_provenance(value) if isinstance(value, str) and value not in seen else None
        settings[key] = {"run": run_identity(source, seen | {value})} if source else value
    return {"step": str(record.get("step", "")).removesuffix(SHARDED), "settings": settings}


def first_row(record: dict, seen: frozenset[str] = frozenset()) -> int:
    """The part's first row, counted in the rows of the run's first input (a part of a part adds up)."""
    if "row_range" in record:
        return record["row_range"][0]
    arguments = record.get("arguments", {})
    for key, value in arguments.items():
        source = (read_provenance(value) if key not in PER_PART and isinstance(value, str) and value not in seen
                  else None)
        if source:
            return first_row(source, seen | {value}) + (arguments.get("start_row") or 0)
    return arguments.get("start_row") or 0


def differences(a: Any, b: Any, where: str = "") -> list[str]:
    """Where two identities differ, as '--name a vs b' items (the first few)."""
    if isinstance(a, dict) and isinstance(b, dict):
        found = []
        for key in sorted(set(a) | set(b)):
            found += differences(a.get(key), b.get(key), key if key not in ("settings", "run") else where)
        return found
    return [] if a == b else [f"{('--' + where) if where else 'step'} {a!r} vs {b!r}"]


def check_parts(paths: list[str], records: list[dict | None], sizes: list[int], allow_gaps: bool) -> list[list[int]]:
    """UserError unless the parts come from one run and tile one row range; returns the gaps ([start, stop])."""
    for path, record in zip(paths, records):
        if record is None:
            raise UserError(f"{path} has no provenance ({provenance_path(path)}); only outputs of this pipeline's "
                            "steps can be merged, as their provenance shows which run and rows they hold")
    reference = run_identity(records[0])
    for path, record in zip(paths[1:], records[1:]):
        diff = differences(reference, run_identity(record))
        if diff:
            raise UserError(f"{path} comes from another run than {paths[0]} ({'; '.join(diff[:3])}); merge only "
                            "parts made with the same step, model, sampling, dataset, prompt and verifiers")
    ranges = sorted((first_row(record), first_row(record) + size, path)
                    for path, record, size in zip(paths, records, sizes))
    gaps = []
    for (start_a, stop_a, path_a), (start_b, stop_b, path_b) in zip(ranges, ranges[1:]):
        if start_b < stop_a:
            raise UserError(f"rows {start_b}-{min(stop_a, stop_b)} are in both {path_a} and {path_b}; merge parts "
                            "whose row ranges do not overlap")
        if start_b > stop_a:
            gaps.append([stop_a, start_b])
    if gaps and not allow_gaps:
        raise UserError(f"rows {gaps[0][0]}-{gaps[0][1]} are in no part ({len(gaps)} gap(s) in all); run them "
                        f"(--start_row {gaps[0][0]} --end_row {gaps[0][1]}) and merge again, or pass --allow_gaps")
    return gaps


def numeric(value: object) -> bool:
    """Whether a value is a number, or a record or list of numbers only (a count, a usage, a timing, row indices:
    per shard)."""
    if isinstance(value, dict):
        return all(numeric(v) for v in value.values())
    if isinstance(value, list):
        return all(numeric(v) for v in value)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def shared_fields(records: list[dict]) -> dict:
    """Provenance fields every part records alike (settings such as the model or sampling), counts left out."""
    own = ("step", "command", "arguments", "started_at", "wall_time_s", "run_identity", "row_range")
    return {key: value for key, value in records[0].items()
            if key not in own and not numeric(value) and all(r.get(key) == value for r in records[1:])}


def combined(values: list[Any]) -> Any:
    """Per-part values as one over all rows: numbers summed, records merged key by key, equal values kept, else
    the list of the parts' values."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return round(sum(present), 6)
    if present and all(isinstance(v, dict) for v in present):
        return {key: combined([v.get(key) for v in present]) for key in dict.fromkeys(k for v in present for k in v)}
    return present[0] if present and all(v == present[0] for v in present) else values if present else None


def merge(paths: list[str], output_path: str, provenance: Provenance, report: dict | None = None,
          recompute: Recompute | None = None, allow_gaps: bool = False):
    """Check that the parts are one run's (see the module's rule), concatenate them in row order into output_path
    (atomic, with provenance; `recompute` adds the step's whole-run fields); returns the dataset."""
    import datasets

    if os.path.realpath(output_path) in {os.path.realpath(path) for path in paths}:
        raise UserError("--output_path must differ from every shard (shards are inputs and are never modified)")
    check_output_path(output_path)
    parts = [load_any(path) for path in paths]
    reference = set(parts[0].column_names)
    for path, part in zip(paths[1:], parts[1:]):
        columns = set(part.column_names)
        if columns != reference:
            raise UserError(f"shard {path} has different columns from {paths[0]}: missing "
                            f"{sorted(reference - columns)}, extra {sorted(columns - reference)}; run the step "
                            "with the same settings (Step 3: the same verifiers) on every shard first")
    records = [read_provenance(path) for path in paths]
    gaps = check_parts(paths, records, [len(part) for part in parts], allow_gaps)
    order = sorted(range(len(paths)), key=lambda i: first_row(records[i]))
    paths, parts, records = [paths[i] for i in order], [parts[i] for i in order], [records[i] for i in order]
    try:
        merged = datasets.concatenate_datasets(parts)
    except ValueError as err:
        raise UserError(f"cannot merge shards: {err}") from err
    start = first_row(records[0])
    fields = {**shared_fields(records), "run_identity": run_identity(records[0]),
              "row_range": [start, first_row(records[-1]) + len(parts[-1])], "rows": len(merged),
              "shard_rows": [len(part) for part in parts], "columns": merged.column_names,
              **({"gaps": gaps} if gaps else {}), **(recompute(merged, records) if recompute else {}),
              **(report or {}), "shard_provenance": records}
    provenance.update(**fields)
    save_atomic(merged, output_path, provenance.snapshot())
    print(f"merged {len(parts)} shards ({len(merged)} rows) into {output_path}"
          + (f"; rows missing (--allow_gaps): {', '.join(f'{a}-{b}' for a, b in gaps)}" if gaps else ""))
    return merged
