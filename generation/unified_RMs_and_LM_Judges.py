"""Step 3: score every sample with reward models and LM judges; each verifier's columns are checkpointed as it ends."""
from __future__ import annotations

from generation.common.cli import UserError, run_main
from generation.common.logs import parse_quietly
from generation.common.writing import claim
from generation.data.dataset_io import check_output_path
from generation.data.sharding import wants_shards
from generation.reward_models.registry import load_registry_file, resolve
from generation.steps.verify import build_parser, pick_device, print_registry, run, run_shards, score_options


def main(argv: list[str] | None = None) -> int:
    """Run Step 3 on the parsed command line while holding the output's lock, here or (--num_shards) as Ray tasks."""
    args = parse_quietly(build_parser(), argv)
    if args.list:
        print_registry()
        return 0
    if args.check:
        from generation.reward_models.check import check_models

        specs = resolve(args.reward_models, load_registry_file(args.rm_registry) if args.rm_registry else [])
        return check_models(specs, score_options(args, pick_device(args.device)))
    if not args.dataset_path or not args.output_path:
        raise UserError("--dataset_path and --output_path are required (or --list)")
    with claim({"--output_path": args.output_path}, [("--dataset_path", args.dataset_path)], args.lock,
               in_place=True, check=check_output_path, writes=not args.dry_run):
        return run(args) if not wants_shards(args) else run_shards(args)


if __name__ == "__main__":
    run_main(main)
