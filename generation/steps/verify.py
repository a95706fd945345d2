"""Step 3: score every sample with reward models and LM judges; each verifier's columns are checkpointed as it ends."""
from __future__ import annotations

import argparse
import json
import os
from dataclasses import replace
from typing import Any, Callable

from generation.backends.rules import _max_n
from generation.common.cli import Provenance, UserError, command_parser, error_line, positive_int
from generation.common.logs import add_verbose_argument
from generation.common.writing import add_lock_argument, provenance_path, write_json_atomic
from generation.costs.budget import RunBudget
from generation.costs.dry_run import api_estimate, local_estimate, report
from generation.costs.token_counts import chat_tokens, counter_for
from generation.data.dataset_io import (
    add_split_argument,
    check_output_path,
    checkpoint_dir,
    limit_samples,
    load_any,
    push_to_hub,
    read_input,
    save_atomic,
)
from generation.data.merging import combined
from generation.data.schema import STEP_COLUMNS, check_rows
from generation.data.sharding import add_shard_arguments, row_range, run_keys, run_sharded
from generation.judges import judging
from generation.judges.registry import JudgeSpec
from generation.reward_models.inputs import TORCH_DTYPES, ScoreOptions
from generation.reward_models.loaders import check_loadable
from generation.reward_models.placement import gpus_needed
from generation.reward_models.registry import (
    kinds_table,
    load_registry_file,
    markdown_table,
    resolve,
    vllm_backend_text,
)
from generation.steps.settings import VerifySettings, run_budget
from generation.steps.verifier_checkpoints import VerifierCheckpoints, rows_fingerprint

DEFAULT_REWARD_MODELS = ("GRM,Skyworks,URM,QRM,GPM,GRMLlama32,OffsetBias,GRMGemma,ArmorRM,QwenPRM,EurusPRMStage1,"
                         "EurusPRMStage2,InternLM2Reward7B,DecisionTreeReward8B")


def build_parser() -> argparse.ArgumentParser:
    """The Step 3 command line: the reference flags plus device, dtype, resume and registry options."""
    parser = command_parser(__doc__)
    parser.add_argument("--dataset_path", help="Step 2 output (or any dataset with instruction and samples) "
                                                "(default: none; required unless --list or --check)")
    parser.add_argument("--output_path", help="where to save the dataset with verifier columns (may equal input) "
                                               "(default: none; required unless --list or --check)")
    parser.add_argument("--reward_models", default=DEFAULT_REWARD_MODELS,
                        help="comma-separated registry names and/or NAME=PATH:KIND entries; '' for none")
    parser.add_argument("--rm_registry", help="JSON file with extra reward-model entries (RewardModelSpec fields) "
                                               "(default: the built-in registry alone)")
    parser.add_argument("--lm_judges", default="", help="comma-separated LM judge names (see --list); '' for none")
    parser.add_argument("--batch_size", type=positive_int, default=4,
                        help="reward-model batch size (length-sorted batches, halved on OOM) in every mode")
    parser.add_argument("--max_input_length", type=positive_int, default=2048,
                        help="reward-model input tokens; longer inputs lose their middle, never the final answer")
    parser.add_argument("--verdicts_per_sample", type=positive_int, default=1,
                        help="LM judge verdicts per sample (K > 1: sampled at --judge_temperature)")
    parser.add_argument("--critique_mode", action="store_true", help="LM judges use the critique prompt")
    parser.add_argument("--sequential_rm_processing", action="store_true",
                        help="load, score and free one reward model at a time in this process "
                             "(without it, on GPUs: one worker process per GPU)")
    parser.add_argument("--max_rows", type=positive_int, default=None,
                        help="score the first N rows from --start_row (default: all)")
    parser.add_argument("--max_samples", type=positive_int, default=None,
                        help="keep the first N samples of each row, every per-sample column cut alike (default: all)")
    parser.add_argument("--push_to_hub", default=None,
                        help="also push DatasetDict({'data': ...}) privately to this hub repo (default: not pushed)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto: CUDA when a GPU is visible; cuda without a GPU is an error")
    parser.add_argument("--dtype", choices=("auto",) + TORCH_DTYPES, default="auto",
                        help="reward-model dtype (auto: the registry's dtype on GPU, float32 on CPU)")
    parser.add_argument("--attn_implementation", choices=("auto", "flash_attention_2", "sdpa", "eager"),
                        default="auto", help="auto: flash_attention_2 on GPU when flash-attn is installed, "
                                             "else eager for Gemma-2 RMs and sdpa otherwise")
    parser.add_argument("--rm_backend", choices=("transformers", "vllm"), default="transformers",
                        help=vllm_backend_text())
    parser.add_argument("--overwrite", action="store_true",
                        help="recompute verifiers whose columns already exist, reusing no cached judge answer or "
                             "reward-model score (default: keep them, and resume from the caches)")
    parser.add_argument("--list", action="store_true", help="print the reward models and judges, then exit")
    parser.add_argument("--check", action="store_true",
                        help="load each --reward_models entry, score two built-in correct/wrong pairs and print how "
                             "it loaded, whether its scores are finite and rank correct above wrong, seconds and "
                             "peak memory (no dataset needed); exit 1 if any fails to load or is non-finite")
    judging.add_judge_arguments(parser)
    add_shard_arguments(parser)
    add_lock_argument(parser)
    add_split_argument(parser)
    add_verbose_argument(parser)
    return parser


def print_registry() -> None:
    """--list: the reward-model and judge tables."""
    print("## Reward models\n")
    print(markdown_table())
    print("\n## Loader kinds\n")
    print(kinds_table())
    try:
        from generation.judges import registry as judge_registry
    except ImportError:
        return
    print("\n## LM judges\n")
    print(judge_registry.markdown_table())


def pick_device(choice: str) -> str:
    """cpu or cuda; UserError when CUDA is asked for and absent."""
    import torch

    if choice == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was given but no CUDA GPU is visible; use --device cpu or auto")
    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return choice


def load_rows(settings: VerifySettings):
    """Load, validate and slice the input dataset as the reference does (start/end, max_rows, max_samples); the
    dataset and the split read."""
    dataset, split = read_input(settings.dataset_path, settings.split)
    before = (len(dataset), sum(len(s) for s in dataset["samples"] if isinstance(s, list))
              if "samples" in dataset.column_names else 0)
    if "instruction" not in dataset.column_names and "problem" in dataset.column_names:
        dataset = dataset.rename_column("problem", "instruction")
    missing = [c for c in ("instruction", "samples") if c not in dataset.column_names]
    if missing:
        raise UserError(f"{settings.dataset_path} lacks column(s) {', '.join(missing)}; Step 3 needs 'instruction' "
                        f"(or 'problem') and 'samples' (it has {', '.join(dataset.column_names)})")
    dataset = dataset.select(row_range(len(dataset), settings.rows, settings.dataset_path))
    check_rows(dataset, STEP_COLUMNS["step3"], settings.dataset_path, settings.rows.start_row)
    dataset = limit_samples(dataset, settings.max_samples)
    after = (len(dataset), sum(len(s) for s in dataset["samples"] if isinstance(s, list)))
    if after != before and os.path.realpath(settings.dataset_path) == os.path.realpath(settings.output_path):
        raise UserError(f"--start_row/--end_row/--max_rows/--max_samples keep {after[0]} of {before[0]} rows and "
                        f"{after[1]} of {before[1]} samples: writing them over the input would delete the rest; "
                        "give a different --output_path")
    sizes = [len(s) if isinstance(s, list) else -1 for s in dataset["samples"]]
    if sizes:
        common = max(set(sizes), key=sizes.count)
        odd = [settings.rows.start_row + i for i, n in enumerate(sizes) if n != common]
        if odd:
            raise UserError(f"'samples' must hold the same number of samples in every row ({common} in most); "
                            f"rows {odd[:10]}{' ...' if len(odd) > 10 else ''} differ. Re-run Step 1 for them "
                            "or use --max_samples to cut every row to the same length")
    return dataset, split


def score_options(settings: VerifySettings, device: str) -> ScoreOptions:
    """Reward-model run options from the command line."""
    return ScoreOptions(device=device, dtype=settings.dtype, attn_implementation=settings.attn_implementation,
                        batch_size=settings.batch_size, max_input_length=settings.max_input_length,
                        backend=settings.rm_backend)


def preflight(specs) -> None:
    """Fail before any work when reward models cannot be loaded, naming every one of them and why (see
    reward_models.loaders.check_loadable), so one run shows all there is to fix."""
    failures = []
    for spec in specs:
        try:
            check_loadable(spec)
        except Exception as err:  # noqa: BLE001 - any reason is reported to the user
            failures.append(f"reward model {spec.name} cannot be loaded ({spec.hf_id}): {error_line(err)}")
    if len(failures) == 1:
        raise UserError(failures[0])
    if failures:
        raise UserError(f"{len(failures)} of {len(specs)} reward models cannot be loaded:\n  " + "\n  ".join(failures))


def resolve_verifiers(settings: VerifySettings, budget: RunBudget) -> tuple[list, list[JudgeSpec]]:
    """The reward-model and judge specs the command line names (UserError for unknown ones; API judges on the run's
    ledger, `budget`)."""
    extra = load_registry_file(settings.rm_registry) if settings.rm_registry else []
    judge_names = [n.strip() for n in settings.lm_judges.split(",") if n.strip()]
    judge_specs = judging.resolve_judges(judge_names, settings.judges, settings.dry_run, budget) if judge_names else []
    return resolve(settings.reward_models, extra), judge_specs


def run_shards(settings: VerifySettings) -> int:
    """Step 3's row ranges as Ray tasks, merged into the output."""
    check_output_path(settings.output_path)
    budget = run_budget(settings, settings.judges.api.max_cost)  # every shard's
    rm_specs, judge_specs = resolve_verifiers(settings, budget)
    settings = replace(settings, split=load_rows(settings)[1])  # bad input stops here, before Ray starts
    rows = row_range(len(load_any(settings.dataset_path, settings.split)), settings.rows, settings.dataset_path)
    judge_gpus = [settings.judges.judge_tensor_parallel_size or s.tensor_parallel for s in judge_specs
                  if s.backend == "vllm"]
    return run_sharded("generation.steps.verify.run", settings, rows, shard_gpus(rm_specs, judge_gpus),
                       recompute=merged_fields, budget=budget)


def shard_gpus(rm_specs: list, judge_gpus: list[int]) -> Callable[[float | None], int]:
    """A shard's GPUs for the smallest GPU of the cluster (GB, None when unknown): enough for the largest reward
    model by the registry's memory figure, and for each vLLM judge's tensor parallel size."""
    return lambda per_gpu_gb: max([gpus_needed(spec, per_gpu_gb) if per_gpu_gb else 1 for spec in rm_specs]
                                  + judge_gpus + [0])


def merged_fields(dataset, records: list[dict]) -> dict:
    """Step 3's whole-run provenance of merged parts: the rows' fingerprint recomputed, each verifier's record (and
    the earlier verifiers' kept ones) added up over the parts, so a later Step 3 run on the merge keeps them."""
    return {"fingerprint": rows_fingerprint(dataset), "samples": sum(len(s) for s in dataset["samples"]),
            **{key: combined([record.get(key) or {} for record in records])
               for key in ("verifiers", "earlier_verifiers", "failures")}}


def run(settings: VerifySettings, budget: RunBudget | None = None) -> int:
    """Run Step 3 (budget: the ledger of the sharded run this is a shard of, else the run's own); return 1 when any
    verifier has failures left (re-run to retry them) or the hub push failed."""
    check_output_path(settings.output_path)
    budget = budget if budget is not None else run_budget(settings, settings.judges.api.max_cost)
    rm_specs, judge_specs = resolve_verifiers(settings, budget)
    device = pick_device(settings.device)
    dataset, split = load_rows(settings)
    settings = replace(settings, split=split)
    if settings.dry_run:
        return dry_run(settings, budget, dataset, rm_specs, judge_specs)
    provenance = Provenance("step3_verifiers", settings)
    checkpoints = VerifierCheckpoints(checkpoint_dir(settings.output_path), rows_fingerprint(dataset),
                                      settings.overwrite)
    options = score_options(settings, device)
    rm_todo = checkpoints.plan_reward_models(rm_specs, dataset, options)
    preflight(rm_todo)
    mode = checkpoints.run_reward_models(rm_todo, dataset, options, settings.sequential_rm_processing)
    for spec in judge_specs:
        checkpoints.run_judge(spec, judging, dataset, settings.judges, budget)
    dataset = checkpoints.merge_into(dataset)
    provenance.update(input_split=settings.split, rows=len(dataset), samples=sum(len(s) for s in dataset["samples"]),
                      device=device,
                      rm_mode=mode, fingerprint=checkpoints.fingerprint, verifiers=checkpoints.report,
                      earlier_verifiers=earlier_verifiers(settings.dataset_path, checkpoints.report,
                                                          dataset.column_names),
                      failures={n: r["failures"] for n, r in checkpoints.report.items() if r.get("failures")},
                      pushed_to_hub=None)
    save_atomic(dataset, settings.output_path, provenance.snapshot())
    push_error = push_to_hub(dataset, settings.push_to_hub) if settings.push_to_hub else None
    if settings.push_to_hub:  # the push's outcome, recorded in the output's own provenance (one file replaced)
        provenance.update(pushed_to_hub=push_error or "ok")
        write_json_atomic(provenance_path(settings.output_path), provenance.snapshot())
    code = checkpoints.print_summary(settings.output_path)
    return 1 if push_error else code


def earlier_verifiers(dataset_path: str, report: dict, columns: list[str]) -> dict:
    """The input's Step 3 provenance records of verifier columns kept, not recomputed, by this run."""
    try:
        with open(provenance_path(dataset_path), encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return {}
    known = {**record.get("earlier_verifiers", {}),
             **{name: entry for name, entry in record.get("verifiers", {}).items() if not _kept(entry)}}
    recomputed = {name for name, entry in report.items() if not _kept(entry)}
    return {name: entry for name, entry in known.items()
            if name not in recomputed and any(column.startswith(f"{name}_") for column in columns)}


def _kept(entry: dict) -> bool:
    """Whether a provenance entry only says the verifier's columns were kept from the input."""
    return entry.get("status") == "kept existing columns"


def dry_run(settings: VerifySettings, budget: RunBudget, dataset: Any, rm_specs: list,
            judge_specs: list[JudgeSpec]) -> int:
    """Step 3: samples x reward models, and samples x judges x K verdicts, less what judge caches hold."""

    rows, samples = len(dataset), sum(len(s) for s in dataset["samples"])
    present = sum(s is not None for row in dataset["samples"] for s in row)
    options = settings.judges
    k = options.verdicts_per_sample
    lines = [f"{rows} rows, {samples} samples ({present} present); reward models: {samples} x {len(rm_specs)} = "
             f"{samples * len(rm_specs)} scores (local, no API cost); LM judges: {samples} x {len(judge_specs)} x "
             f"{k} = {samples * len(judge_specs) * k} verdicts (seed formula; missing samples are not asked)"]
    estimates = []
    for spec in judge_specs:
        judge = judging.judge_settings(spec, options)
        chats = judging.judge_chats(dataset, judge, options)
        if spec.backend != "api":
            count, how = counter_for(spec.model, None)
            est = local_estimate(spec.model, [(chat_tokens(count, c), k) for c in chats if c is not None],
                                 judge.max_tokens)
            est.counted_with = f"{how}; the judge's tokenizer is not loaded"
            estimates.append(est)
            continue
        config = judging.api_config(spec, options, budget)
        jobs = [job for job in judging.api_jobs(config, chats, judge) if job]
        cache = judging.cache_path(checkpoint_dir(settings.output_path), spec, judge.critique)
        cached = run_keys(cache, {job.key for job in jobs}) if not settings.overwrite else set()
        est = api_estimate(config, [(job.messages, job.n) for job in jobs if job.key not in cached],
                           judge.max_tokens, _max_n(config))
        est.model = f"{spec.name} ({spec.model})"
        est.notes.insert(0, f"{len(cached)} of {len(jobs)} prompts cached")
        estimates.append(est)
    report("Step 3", lines, estimates)
    return 0
