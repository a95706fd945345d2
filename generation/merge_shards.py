"""Merge any step's shards (outputs of --start_row/--end_row runs) back into one dataset, in the order given."""
from __future__ import annotations

import argparse

from common.cli import Provenance, run_main
from data.merging import merge


def build_parser() -> argparse.ArgumentParser:
    """The merge command line: the shards in row order and the output."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shards", nargs="+", required=True, help="shard outputs, in row order")
    parser.add_argument("--output_path", required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Concatenate shards that have the same columns; refuse shards whose columns differ (naming them)."""
    args = build_parser().parse_args(argv)
    merge(args.shards, args.output_path, Provenance("merge_shards", args))
    return 0


if __name__ == "__main__":
    run_main(main)
