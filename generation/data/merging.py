"""Merging shards (outputs of --start_row/--end_row runs) back into one dataset, in the order given."""
from __future__ import annotations

import json
import os

from common.cli import Provenance, UserError
from data.dataset_io import check_output_path, load_any, provenance_path, save_atomic


def shard_provenance(path: str) -> dict:
    """A shard's provenance record ({} when absent or unreadable)."""
    try:
        with open(provenance_path(path)) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def numeric(value: object) -> bool:
    """Whether a value is a number, or a record or list of numbers only (a count, a usage, a timing, row indices:
    per shard)."""
    if isinstance(value, dict):
        return all(numeric(v) for v in value.values())
    if isinstance(value, list):
        return all(numeric(v) for v in value)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def shared_fields(records: list[dict]) -> dict:
    """Provenance fields every shard records alike (settings such as the model or sampling), counts left out."""
    own = ("step", "command", "arguments", "started_at", "wall_time_s")
    return {key: value for key, value in records[0].items()
            if key not in own and not numeric(value) and all(r.get(key) == value for r in records[1:])}


def merge(paths: list[str], output_path: str, provenance: Provenance, report: dict | None = None):
    """Concatenate shards with the same columns into output_path (atomic, with provenance); returns the dataset."""
    import datasets

    if os.path.realpath(output_path) in {os.path.realpath(path) for path in paths}:
        raise UserError("--output_path must differ from every shard (shards are inputs and are never modified)")
    check_output_path(output_path)
    shards = [load_any(path) for path in paths]
    reference = set(shards[0].column_names)
    for path, shard in zip(paths[1:], shards[1:]):
        columns = set(shard.column_names)
        if columns != reference:
            raise UserError(f"shard {path} has different columns from {paths[0]}: missing "
                            f"{sorted(reference - columns)}, extra {sorted(columns - reference)}; run the step "
                            "with the same settings (Step 3: the same verifiers) on every shard first")
    try:
        merged = datasets.concatenate_datasets(shards)
    except ValueError as err:
        raise UserError(f"cannot merge shards: {err}") from err
    save_atomic(merged, output_path)
    records = [shard_provenance(path) for path in paths]
    provenance.update(**{**shared_fields(records), "rows": len(merged), "shard_rows": [len(s) for s in shards],
                         "columns": merged.column_names, **(report or {}), "shard_provenance": records})
    provenance.write(provenance_path(output_path))
    print(f"merged {len(shards)} shards ({len(merged)} rows) into {output_path}")
    return merged


