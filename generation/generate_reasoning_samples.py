"""Step 1: generate reasoning samples for a benchmark with an API model, vLLM or transformers (resumable)."""
from __future__ import annotations

import argparse

from generation.backends.calls import add_api_arguments
from generation.backends.vllm_engine import add_window_arguments
from generation.common.cli import bounded_float, command_parser, positive_int, run_main
from generation.common.logs import add_verbose_argument
from generation.common.writing import add_lock_argument, claim
from generation.data.benchmarks import BENCHMARKS, MMLU_SUBJECTS
from generation.data.dataset_io import add_split_argument, check_output_path
from generation.data.sharding import add_shard_arguments, wants_shards
from generation.steps.generate import DEFAULT_MAX_NEW_TOKENS, LOCAL_TOP_P, generate, generate_sharded
from generation.steps.settings import GenerateSettings, parse_settings


def build_parser() -> argparse.ArgumentParser:
    """The Step 1 command line (the reference's flags and defaults, plus resume/backend/API options)."""
    p = command_parser(__doc__)
    p.add_argument("--model", required=True, help="API model name, or a hub id / local folder for vLLM/transformers")
    p.add_argument("--dataset", required=True, help=f"benchmark: {', '.join(BENCHMARKS)}")
    p.add_argument("--output_path", required=True, help="output folder (DatasetDict with split 'data')")
    p.add_argument("--dataset_path", default=None,
                   help="read the benchmark from a local file or folder in its hub schema (default: from the hub)")
    p.add_argument("--max_rows", type=positive_int, default=None,
                   help="keep N problems, counted from --start_row (default: all)")
    p.add_argument("--samples_per_instruction", type=positive_int, default=1, help="samples per problem")
    p.add_argument("--batch_size", type=positive_int, default=4,
                   help="transformers: sequences per generate call (a problem's samples may span calls); "
                        "vLLM sends every prompt with n samples, so it is not needed there; unused by APIs")
    p.add_argument("--max_length", type=positive_int, default=2048, help="local models: prompt + output tokens")
    p.add_argument("--max_new_tokens", type=positive_int, default=None,
                   help=f"tokens per sample (default: {DEFAULT_MAX_NEW_TOKENS}; reasoning API models such as "
                        "o3-mini: no cap, since their hidden reasoning shares it)")
    p.add_argument("--temperature", type=bounded_float(0.0, float("inf"), low_inclusive=True), default=0.7,
                   help="sampling temperature")
    p.add_argument("--top_p", type=bounded_float(0.0, 1.0), default=None,
                   help=f"nucleus sampling (default: {LOCAL_TOP_P} for local models; not sent to APIs)")
    p.add_argument("--seed", type=int, default=42, help="sampling seed (where the backend takes one) and GPQA "
                                                        "option order")
    p.add_argument("--tensor_parallel_size", type=positive_int, default=None,
                   help="vLLM: GPUs per engine (default: the largest divisor of the model's attention heads not above "
                        "the visible GPUs; with --num_shards: 1 GPU per shard)")
    add_window_arguments(p, "--vllm_sequences_in_flight", "--per_request_seeds", "--seed", "samples")
    p.add_argument("--gpu_memory_utilization", type=bounded_float(0.0, 1.0), default=0.90,
                   help="vLLM: share of GPU memory to use")
    p.add_argument("--trust_remote_code", action="store_true",
                   help="local models: run the model's own code from its folder or hub repo (trusted models only)")
    p.add_argument("--chat_format", choices=["s1"], default=None,
                   help="s1: the Qwen/s1 ChatML prompt (default: s1 when 's1' is a whole token of --model, else the "
                        "problem as one user turn)")
    p.add_argument("--mmlu_subjects", nargs="+", default=None,
                   help="MMLU subject configs, in this order (default: the --mmlu_category set)")
    p.add_argument("--mmlu_category", choices=sorted(MMLU_SUBJECTS), default="college",
                   help="built-in MMLU subject set when --mmlu_subjects is absent")
    p.add_argument("--backend", choices=["auto", "api", "vllm", "transformers"], default="auto",
                   help="auto: the API for API models, else vLLM when installed, else transformers")
    p.add_argument("--push_to_hub", metavar="REPO", default=None,
                   help="also push the output to this hub repo, split 'data', private (default: not pushed)")
    p.add_argument("--overwrite", action="store_true",
                   help="discard this output's checkpoint (and its --max_cost ledger) and start again")
    p.add_argument("--pilot", metavar="ROWS", type=positive_int, default=None,
                   help="with --dry_run: ask the first ROWS rows for real (live, within --max_cost; their samples "
                        "are kept for the run) and add the expected cost of the rest from their measured replies "
                        "(default: no pilot, nothing is sent)")
    add_api_arguments(p)
    add_shard_arguments(p)
    add_lock_argument(p)
    add_split_argument(p)
    add_verbose_argument(p)
    return p


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run Step 1 while holding the output's lock, in this process or (--num_shards) as Ray
    tasks."""
    settings = parse_settings(build_parser(), argv, GenerateSettings)
    with claim({"--output_path": settings.output_path}, [("--dataset_path", settings.dataset_path)], settings.lock,
               check=check_output_path, writes=not settings.dry_run):
        return generate_sharded(settings) if wants_shards(settings) else generate(settings)


if __name__ == "__main__":
    run_main(main)
