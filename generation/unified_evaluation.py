"""Step 2: grade every sample against the ground truth, procedurally first, with an LLM judge only where needed."""
from __future__ import annotations

from generation.common.cli import run_main
from generation.common.writing import claim
from generation.data.dataset_io import check_output_path
from generation.data.sharding import wants_shards
from generation.steps.evaluate import build_parser, run, run_shards
from generation.steps.settings import EvaluateSettings, parse_settings


def main(argv: list[str] | None = None) -> int:
    """Run Step 2 on the parsed command line while holding the output's lock, in this process or (--num_shards) as Ray
    tasks; exit 1 when a wanted LLM judgement is missing."""
    settings = parse_settings(build_parser(), argv, EvaluateSettings)
    with claim({"--output_path": settings.output_path}, [("--input_path", settings.input_path)], settings.lock,
               check=check_output_path, writes=not settings.dry_run):
        return run(settings) if not wants_shards(settings) else run_shards(settings)


if __name__ == "__main__":
    run_main(main)
