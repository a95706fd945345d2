"""Step 3: score every sample with reward models and LM judges; each verifier's columns are checkpointed as it ends."""
from __future__ import annotations

from generation.common.cli import UserError, run_main
from generation.common.writing import claim
from generation.data.dataset_io import check_output_path
from generation.data.sharding import wants_shards
from generation.reward_models.registry import load_registry_file, resolve
from generation.steps.settings import VerifySettings, parse_settings
from generation.steps.verify import build_parser, pick_device, print_registry, run, run_shards, score_options


def main(argv: list[str] | None = None) -> int:
    """Run Step 3 on the parsed command line while holding the output's lock, here or (--num_shards) as Ray tasks."""
    settings = parse_settings(build_parser(), argv, VerifySettings)
    if settings.list:
        print_registry()
        return 0
    if settings.check:
        from generation.reward_models.check import check_models

        extra = load_registry_file(settings.rm_registry) if settings.rm_registry else []
        specs = resolve(settings.reward_models, extra)
        return check_models(specs, score_options(settings, pick_device(settings.device)))
    if not settings.dataset_path or not settings.output_path:
        raise UserError("--dataset_path and --output_path are required (or --list)")
    with claim({"--output_path": settings.output_path}, [("--dataset_path", settings.dataset_path)], settings.lock,
               in_place=True, check=check_output_path, writes=not settings.dry_run):
        return run(settings) if not wants_shards(settings) else run_shards(settings)


if __name__ == "__main__":
    run_main(main)
