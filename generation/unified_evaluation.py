"""Step 2: grade every sample against the ground truth, procedurally first, with an LLM judge only where needed."""
from __future__ import annotations

from generation.common.cli import run_main
from generation.common.logs import parse_quietly
from generation.common.writing import claim
from generation.data.dataset_io import check_output_path
from generation.data.sharding import wants_shards
from generation.steps.evaluate import build_parser, run, run_shards


def main(argv: list[str] | None = None) -> int:
    """Run Step 2 on the parsed command line while holding the output's lock, in this process or (--num_shards) as Ray
    tasks; exit 1 when a wanted LLM judgement is missing."""
    args = parse_quietly(build_parser(), argv)
    with claim({"--output_path": args.output_path}, [("--input_path", args.input_path)], args.lock,
               check=check_output_path, writes=not args.dry_run):
        return run(args) if not wants_shards(args) else run_shards(args)


if __name__ == "__main__":
    run_main(main)
