"""Merge the parts of one run of any step (outputs of --start_row/--end_row runs) into one dataset, in row order."""
from __future__ import annotations

import argparse

from generation.common.cli import Provenance, command_parser, run_main
from generation.common.logs import add_verbose_argument
from generation.common.writing import add_lock_argument, claim
from generation.data.dataset_io import check_output_path
from generation.data.merging import merge, read_provenance
from generation.steps.evaluate import merged_fields as evaluate_fields
from generation.steps.settings import parse_quietly
from generation.steps.verify import merged_fields as verify_fields

RECOMPUTE = {"unified_evaluation": evaluate_fields, "step3_verifiers": verify_fields}  # by provenance "step"


def build_parser() -> argparse.ArgumentParser:
    """The merge command line: the parts, the output, --allow_gaps, --lock."""
    parser = command_parser(__doc__)
    parser.add_argument("--shards", nargs="+", required=True, help="the parts (outputs of one run's row ranges)")
    parser.add_argument("--output_path", required=True, help="folder for the merged dataset")
    parser.add_argument("--allow_gaps", action="store_true",
                        help="merge although some rows are in no part (the gaps are recorded in the provenance)")
    add_lock_argument(parser)
    add_verbose_argument(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Merge parts that their provenance shows to be one run's, with the same columns and row ranges that tile one
    range, while holding the output's lock; refuse anything else with one line."""
    args = parse_quietly(build_parser(), argv)
    step = str((read_provenance(args.shards[0]) or {}).get("step", "")).removesuffix(" (sharded)")
    with claim({"--output_path": args.output_path}, [("--shards", path) for path in args.shards], args.lock,
               check=check_output_path):
        merge(args.shards, args.output_path, Provenance("merge_shards", vars(args)), recompute=RECOMPUTE.get(step),
              allow_gaps=args.allow_gaps)
    return 0


if __name__ == "__main__":
    run_main(main)
