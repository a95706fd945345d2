"""Merge Step 3 shards (outputs of --start_row/--end_row runs) back into one dataset, in the order given."""
from __future__ import annotations

import argparse
import os

from cli_support import Provenance, UserError, run_main
from dataset_io import check_output_path, load_any, provenance_path, save_atomic


def main(argv: list[str] | None = None) -> int:
    """Concatenate shards that have the same columns; refuse shards whose columns differ (naming them)."""
    import datasets

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shards", nargs="+", required=True, help="shard outputs, in row order")
    parser.add_argument("--output_path", required=True)
    args = parser.parse_args(argv)
    if os.path.realpath(args.output_path) in {os.path.realpath(path) for path in args.shards}:
        raise UserError("--output_path must differ from every shard (shards are inputs and are never modified)")
    check_output_path(args.output_path)
    shards = [load_any(path) for path in args.shards]
    reference = set(shards[0].column_names)
    for path, shard in zip(args.shards[1:], shards[1:]):
        columns = set(shard.column_names)
        if columns != reference:
            raise UserError(f"shard {path} has different columns from {args.shards[0]}: missing "
                            f"{sorted(reference - columns)}, extra {sorted(columns - reference)}; run Step 3 with "
                            "the same verifiers on every shard first")
    try:
        merged = datasets.concatenate_datasets(shards)
    except ValueError as err:
        raise UserError(f"cannot merge shards: {err}") from err
    save_atomic(merged, args.output_path)
    provenance = Provenance("step3_merge_shards", args)
    provenance.update(rows=len(merged), shard_rows=[len(s) for s in shards], columns=merged.column_names)
    provenance.write(provenance_path(args.output_path))
    print(f"merged {len(shards)} shards ({len(merged)} rows) into {args.output_path}")
    return 0


if __name__ == "__main__":
    run_main(main)
