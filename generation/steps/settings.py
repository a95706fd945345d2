"""Each step's settings: one frozen dataclass per step, built once from its parsed command line (the flags' defaults
live in the parsers); lower layers get the part they need (`settings.api`, `settings.rows`, `settings.judges`)."""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TypeVar

from generation.backends.calls import ApiSettings
from generation.common.cli import settings_from
from generation.common.logs import quiet_libraries
from generation.costs.budget import RunBudget
from generation.data.sharding import PushingStepSettings, StepSettings
from generation.judges.judging import JudgeOptions

S = TypeVar("S")


@dataclass(frozen=True)
class GenerateSettings(PushingStepSettings):
    """Step 1 (generate_reasoning_samples.py)."""

    model: str
    dataset: str
    dataset_path: str | None
    samples_per_instruction: int
    batch_size: int
    max_length: int
    max_new_tokens: int | None  # the step sets the default once it knows the model (generate.check_model)
    temperature: float
    top_p: float | None
    seed: int
    tensor_parallel_size: int | None
    vllm_sequences_in_flight: int | None
    per_request_seeds: bool
    gpu_memory_utilization: float
    trust_remote_code: bool
    chat_format: str | None
    mmlu_subjects: list[str] | None
    mmlu_category: str
    backend: str
    pilot: int | None
    api: ApiSettings


@dataclass(frozen=True)
class EvaluateSettings(StepSettings):
    """Step 2 (unified_evaluation.py)."""

    input_path: str
    dataset_type: str
    parallel: int
    max_samples: int | None
    llm_fallback: str
    hedges: str
    answerless: str
    judge_model: str
    math_timeout: float
    api: ApiSettings


@dataclass(frozen=True)
class VerifySettings(PushingStepSettings):
    """Step 3 (unified_RMs_and_LM_Judges.py)."""

    dataset_path: str | None
    reward_models: str
    rm_registry: str | None
    lm_judges: str
    batch_size: int
    max_input_length: int
    sequential_rm_processing: bool
    max_samples: int | None
    device: str
    dtype: str
    attn_implementation: str
    rm_backend: str
    list: bool
    check: bool
    judges: JudgeOptions


def parse_quietly(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line, then quiet the libraries unless --verbose asks for their logs."""
    args = parser.parse_args(argv)
    if not args.verbose:
        quiet_libraries()
    return args


def parse_settings(parser: argparse.ArgumentParser, argv: list[str] | None, cls: type[S]) -> S:
    """A step's settings from its command line (parse_quietly), built once."""
    return settings_from(cls, vars(parse_quietly(parser, argv)))


def run_budget(settings: StepSettings, cap: float | None, pilot: bool = False) -> RunBudget:
    """A step's RunBudget under --max_cost `cap`: on its output's ledger, new with --overwrite, shared by its shards
    (--num_shards); a dry run writes nothing unless it pilots."""
    return RunBudget(cap, settings.output_path, fresh=settings.overwrite, shared=bool(settings.num_shards),
                     writes=not settings.dry_run or pilot)
