"""Step 1 engine: prompts per row, a resumable sample checkpoint, the API/vLLM/transformers backends, the output."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import time
from dataclasses import replace
from typing import Any

from generation.backends.calls import api_config_for, money_record
from generation.backends.rules import ApiConfig, _max_n
from generation.common.cli import Provenance, UserError, row_list
from generation.common.records import derived_seed
from generation.common.redact import redact_text
from generation.costs.budget import RunBudget, output_bound, output_limit
from generation.costs.dry_run import Pilot, api_estimate, local_estimate, report
from generation.costs.pricing import cost_text
from generation.data.benchmarks import BENCHMARKS, load_benchmark
from generation.data.dataset_io import (
    FINISH_COLUMN,
    check_output_path,
    checkpoint_dir,
    push_to_hub,
    save_atomic,
)
from generation.data.sharding import row_range, run_sharded
from generation.steps.sample_checkpoint import SAMPLE_LOG, SampleCheckpoint
from generation.steps.settings import GenerateSettings, run_budget

S1_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
S1_SUFFIX = '\nAt the end of your response, add your answer on a newline with the format "The answer is: <answer here>"'
S1_NAME = re.compile(r"(?<![a-z0-9])s1(?![a-z0-9])")
DEFAULT_MAX_NEW_TOKENS = 512  # reasoning API models get no cap unless --max_new_tokens is given
LOCAL_TOP_P = 0.9  # the reference's --top_p default; API calls get top_p only when it is given


def is_s1(model: str, chat_format: str | None) -> bool:
    """s1 ChatML mode: --chat_format s1, or `s1` as a whole token of the model name (simplescaling/s1-32B)."""
    return chat_format == "s1" or bool(S1_NAME.search(model.lower()))


def chat_messages(instruction: str, s1: bool) -> list[dict]:
    """The chat turns for one prompt: a single user turn, or the s1 system turn plus the suffixed user turn."""
    if s1:
        return [{"role": "system", "content": S1_SYSTEM}, {"role": "user", "content": instruction + S1_SUFFIX}]
    return [{"role": "user", "content": instruction}]


def text_hash(text: str) -> str:
    """Short sha256 of a text."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def choose_backend(settings: GenerateSettings) -> tuple[str, str | None]:
    """(backend, provider): auto is the API for API models, else vLLM when installed, else transformers."""
    from generation.backends.rules import resolve_provider

    model, backend = settings.model, settings.backend
    provider = resolve_provider(model, settings.api.provider, settings.api.base_url)
    if backend == "api" and provider is None:
        raise UserError(f"--backend api: {model!r} is not a known API model; pass --provider or --base_url")
    local_name = "/" in model or os.path.exists(model)  # a hub id or a path (DeepSeek-R1 is both)
    if backend in ("vllm", "transformers") and provider is not None and not local_name:
        raise UserError(f"--backend {backend}: {model!r} is an API model ({provider}), not a local model; "
                        "use --backend api (or auto), or pass a local path or hub id")
    if backend == "vllm" and importlib.util.find_spec("vllm") is None:
        raise UserError("--backend vllm: vllm is not installed (pip install -r requirements-gpu.txt), "
                        "or use --backend transformers")
    if backend != "auto":
        return backend, provider if backend == "api" else None
    if provider is not None:
        return "api", provider
    return ("vllm" if importlib.util.find_spec("vllm") is not None else "transformers"), None


def fingerprint_of(settings: GenerateSettings, backend: str, s1: bool, top_p: float | None,
                   reasoning_effort: str | None = None) -> dict:
    """What determines the samples besides the prompt texts (those are part of each row's key)."""
    fingerprint = {"model": settings.model, "dataset": settings.dataset, "backend": backend,
                   "temperature": settings.temperature, "top_p": top_p, "max_new_tokens": settings.max_new_tokens,
                   "max_length": None if backend == "api" else settings.max_length, "seed": settings.seed, "s1": s1}
    if reasoning_effort is not None:
        fingerprint["reasoning_effort"] = reasoning_effort
    return fingerprint


def run_api(settings: GenerateSettings, config: ApiConfig, keys: list[str], messages: list[list[dict]],
            checkpoint: SampleCheckpoint, n: int, top_p: float | None) -> dict[str, Any]:
    """One ChatJob per row with n = its missing samples; each result is checkpointed as it lands."""
    from generation.backends.calls import run_chat_jobs
    from generation.backends.rules import ChatJob, sent_parameters

    jobs = [ChatJob(key=key, messages=msgs, n=n - checkpoint.count(key), temperature=settings.temperature,
                    max_tokens=settings.max_new_tokens, top_p=top_p,
                    seed=derived_seed(settings.seed, key, checkpoint.count(key)))
            for key, msgs in zip(keys, messages) if checkpoint.count(key) < n]

    def on_result(job: Any, completion: Any) -> None:
        """Checkpoint a job's successful samples, their usage and finish reasons."""
        done = [(t, f) for t, f in zip(completion.texts[:job.n], completion.finishes) if t is not None]
        checkpoint.add(job.key, [t for t, _ in done], completion.usage, [f for _, f in done])

    sent = sent_parameters(config, jobs[0]) if jobs else {}
    stats = run_chat_jobs(config, jobs, on_result, desc=f"{settings.model} samples", store=checkpoint.store)
    return {"base_url": redact_text(config.base_url or "") or None, "requests": stats.get("requests", 0),
            "token_usage": {k: stats.get(k, 0) for k in ("prompt_tokens", "completion_tokens")},
            "retries": stats.get("retries", 0), "errors": stats.get("errors", {}), "api_parameters": sent,
            "truncated_samples": stats.get("truncated_samples", 0),
            "rate_limit_wait_s": stats.get("rate_limit_wait_s", 0.0), "cost_usd": {settings.model: stats["cost_usd"]},
            "learned_limits": stats.get("learned_limits", {}), **money_record(stats)}


def run_local(settings: GenerateSettings, backend: str, tokenizer: Any, keys: list[str],
              token_ids: list[list[int]], s1: bool, top_p: float, checkpoint: SampleCheckpoint) -> dict[str, Any]:
    """Generate the missing samples with vLLM or transformers, checkpointing per chunk or batch."""
    from tqdm import tqdm

    from generation.backends import local_generation as lg

    n, seed = settings.samples_per_instruction, settings.seed
    requests = [lg.LocalRequest(key, ids, n - checkpoint.count(key), derived_seed(seed, key, checkpoint.count(key)))
                for key, ids in zip(keys, token_ids) if checkpoint.count(key) < n]
    sampling = lg.SamplingSettings(settings.temperature, top_p, settings.max_new_tokens, settings.max_length)
    stops = lg.stop_token_ids(tokenizer, s1)
    usage = {"completion_tokens": 0}
    cut = {"truncated_samples": 0}
    with tqdm(total=sum(r.n for r in requests), desc=f"{os.path.basename(settings.model.rstrip('/'))} samples",
              unit="sample", smoothing=0.05) as bar:
        def on_result(key: str, texts: list[str], tokens: int, finishes: list[str | None]) -> None:
            """Checkpoint a prompt's new samples with their finish reasons; count them (and those cut at
            max_new_tokens)."""
            checkpoint.add(key, texts, {"completion_tokens": tokens}, finishes)
            usage["completion_tokens"] += tokens
            cut["truncated_samples"] += finishes.count("length")
            bar.update(len(texts))

        if backend == "vllm":
            engine = lg.VllmBackend(settings.model, sampling, stops, seed, settings.tensor_parallel_size,
                                    settings.gpu_memory_utilization, trust_remote_code=settings.trust_remote_code,
                                    per_request_seeds=settings.per_request_seeds)
            try:
                engine.run(requests, on_result, settings.vllm_sequences_in_flight)
            finally:
                engine.close()
        else:
            lg.TransformersBackend(settings.model, tokenizer, sampling, stops, settings.batch_size,
                                   trust_remote_code=settings.trust_remote_code).run(requests, on_result)
    return {"token_usage": usage, **cut}


def check_model(settings: GenerateSettings, backend: str, budget: RunBudget
                ) -> tuple[GenerateSettings, Any, str | None]:
    """UserError unless the model can be used: the API is ready (key, --base_url; not checked in a dry run; on the
    run's ledger, `budget`) or its tokenizer and weights load. Returns the settings with the default --max_new_tokens
    set (none for API reasoning models), the tokenizer (local models) and the reasoning effort sent (API models that
    take one)."""
    model, max_new_tokens = settings.model, settings.max_new_tokens
    if backend == "api":
        from generation.backends.rules import check_ready, is_reasoning_model, model_rules

        config = api_config_for(settings.api, model, budget=budget)
        if not settings.dry_run:
            check_ready(config)
        if max_new_tokens is None and not is_reasoning_model(config):
            max_new_tokens = DEFAULT_MAX_NEW_TOKENS  # reasoning models: no cap unless one is given
        if settings.api.max_cost is not None:
            output_bound(model, max_new_tokens)  # before the checkpoint exists
        effort = config.reasoning_effort if model_rules(config).effort else None
        return replace(settings, max_new_tokens=max_new_tokens), None, effort
    settings = replace(settings, max_new_tokens=max_new_tokens or DEFAULT_MAX_NEW_TOKENS)
    from generation.backends.local_generation import check_context, check_weights, load_tokenizer

    tokenizer = load_tokenizer(model, settings.trust_remote_code)
    check_context(model, settings.trust_remote_code, max_length=settings.max_length,
                  max_new_tokens=settings.max_new_tokens)
    check_weights(model)
    return settings, tokenizer, None


def generate(settings: GenerateSettings, budget: RunBudget | None = None) -> int:
    """Step 1 (budget: the ledger of the sharded run this is a shard of, else the run's own); returns the exit code
    (1 when samples are still missing)."""
    provenance = Provenance("generate_reasoning_samples", settings)
    check_output_path(settings.output_path)
    if settings.dataset not in BENCHMARKS:
        raise UserError(f"unknown --dataset {settings.dataset!r}; choose one of {', '.join(BENCHMARKS)}")
    backend, provider = choose_backend(settings)
    if settings.pilot and not (settings.dry_run and backend == "api"):
        raise UserError("--pilot ROWS goes with --dry_run and an API model: it sends the first rows for real to "
                        "measure their replies")
    budget = budget if budget is not None else run_budget(settings, settings.api.max_cost, bool(settings.pilot))
    s1 = is_s1(settings.model, settings.chat_format)
    settings, tokenizer, reasoning_effort = check_model(settings, backend, budget)
    dataset = load_benchmark(settings.dataset, settings.dataset_path, settings.seed, None, settings.mmlu_subjects,
                             settings.mmlu_category, settings.split)
    if len(dataset) == 0:
        raise UserError(f"--dataset {settings.dataset} has no rows to sample")
    rows = row_range(len(dataset), settings.rows, settings.dataset_path or settings.dataset)
    dataset = dataset.select(rows)
    instructions = dataset["problem"]
    messages = [chat_messages(text, s1) for text in instructions]
    top_p = settings.top_p if backend == "api" or settings.top_p is not None else LOCAL_TOP_P
    lowered = None  # APIs have no --max_length
    if backend == "api":
        prompts = [json.dumps(m, ensure_ascii=False) for m in messages]
    else:
        from generation.backends import local_generation as lg

        prompts = [lg.prompt_text(tokenizer, m, s1) for m in messages]
        token_ids = [lg.prompt_ids(tokenizer, p, s1) for p in prompts]
        lg.check_prompt_lengths(token_ids, settings.max_length)
        lowered = lg.lowered_max_new_tokens(token_ids, settings.max_new_tokens, settings.max_length)
    keys = [f"{i}-{text_hash(p)}" for i, p in zip(rows, prompts)]  # row index + the exact prompt sent
    print(f"first prompt sent to the model:\n{prompts[0]}\n")

    n = settings.samples_per_instruction
    fingerprint = fingerprint_of(settings, backend, s1, top_p, reasoning_effort)
    if settings.dry_run:
        pilot = (run_pilot(settings, budget, keys, messages, fingerprint, instructions, top_p) if settings.pilot
                 else None)
        return dry_run(settings, budget, backend, keys, messages, None if backend == "api" else token_ids,
                       fingerprint, instructions, pilot)
    checkpoint = SampleCheckpoint(settings.output_path, fingerprint, keys, instructions, settings.overwrite)
    if checkpoint.adopted:
        print(f"{settings.output_path} had no checkpoint: its {sum(map(len, checkpoint.adopted))} samples are kept")
    if checkpoint.taken:
        print(f"{checkpoint.taken} samples of these rows were in this run's other checkpoints (another shard layout "
              "or the unsharded run): they are kept, not asked again")
    reused = sum(min(checkpoint.count(k), n) for k in keys)
    started = time.time()
    details: dict[str, Any] = {"token_usage": {"prompt_tokens": 0, "completion_tokens": 0}}  # nothing to generate
    try:
        if reused < n * len(keys):
            if backend == "api":
                config = api_config_for(settings.api, settings.model, budget=budget)
                details = run_api(settings, config, keys, messages, checkpoint, n, top_p)
            else:
                details = run_local(settings, backend, tokenizer, keys, token_ids, s1, top_p, checkpoint)
        samples = [checkpoint.samples(k, n) for k in keys]
        finishes = [checkpoint.finish_reasons(k, n) for k in keys]
    finally:
        checkpoint.close()
    provenance.update(model=settings.model, backend=backend, provider=provider, dataset=settings.dataset,
                      input_split=settings.split,
                      dataset_path=settings.dataset_path, sampling=fingerprint, first_prompt=prompts[0],
                      trust_remote_code=settings.trust_remote_code, max_new_tokens_lowered=lowered,
                      chat_template_date=None if backend == "api" or s1 else lg.TEMPLATE_DATE,
                      generation_time_s=round(time.time() - started, 3),
                      checkpoint=checkpoint_dir(settings.output_path),
                      token_usage_all_runs=dict(checkpoint.usage),
                      replaced_code_points=checkpoint.store.replaced_code_points, **details)
    return finish(settings, provenance, dataset, instructions, (samples, finishes), backend, reused,
                  time.time() - started, details.get("errors") or {})


def cost_note(record: dict) -> str:
    """'; cost $x' for a summary line of an API run ('' when nothing was sent)."""
    costs = record.get("cost_usd")
    return f"; cost {cost_text(sum(costs.values()) if None not in costs.values() else None, record)}" if costs else ""


def generate_sharded(settings: GenerateSettings) -> int:
    """Step 1 with --num_shards: check the input, then run row ranges as Ray tasks and merge them."""
    check_output_path(settings.output_path)
    backend = choose_backend(settings)[0]
    budget = run_budget(settings, settings.api.max_cost)  # every shard's
    settings = check_model(settings, backend, budget)[0]
    dataset = load_benchmark(settings.dataset, settings.dataset_path, settings.seed, None, settings.mmlu_subjects,
                             settings.mmlu_category, settings.split)
    rows = row_range(len(dataset), settings.rows, settings.dataset_path or settings.dataset)
    gpus = 0 if backend == "api" else settings.tensor_parallel_size or 1
    return run_sharded("generation.steps.generate.generate", settings, rows, gpus, budget=budget)


def finish(settings: GenerateSettings, provenance: Provenance, dataset: Any, instructions: list[str],
           generated_samples: tuple[list[list[str | None]], list[list[str | None]]], backend: str, reused: int,
           seconds: float, errors: dict) -> int:
    """Write the output (samples and their finish reasons) and provenance, print the summary, push if asked; exit
    code 1 while holes remain."""
    from datasets import List, Value

    samples, finishes = generated_samples
    dataset = dataset.add_column("instruction", instructions).add_column(
        "samples", samples, feature=List(Value("string"))).add_column(
        FINISH_COLUMN, finishes, feature=List(Value("string")))
    total = len(samples) * settings.samples_per_instruction
    holes = sum(t is None for row in samples for t in row)
    generated = total - holes - reused
    failed_rows = [i for i, row in enumerate(samples) if any(t is None for t in row)]
    rows_with_holes = len(failed_rows)
    truncated = provenance.record.get("truncated_samples", 0)
    provenance.update(counts={"rows": len(samples), "samples_per_instruction": settings.samples_per_instruction,
                              "samples": total, "generated_this_run": generated, "reused_from_checkpoint": reused,
                              "failed_samples": holes, "rows_with_failures": rows_with_holes,
                              "failed_rows": failed_rows[:1000]}, truncated_samples=truncated)
    save_atomic(dataset, settings.output_path, provenance.snapshot())
    rate = f", {generated / seconds:.1f} samples/s" if generated and seconds > 0 else ""
    print(f"Step 1 done: {len(samples)} rows x {settings.samples_per_instruction} samples ({backend}); "
          f"generated {generated}{rate} ({truncated} cut at max_new_tokens), reused {reused} from the checkpoint; "
          f"saved to {settings.output_path}" + cost_note(provenance.record))
    code = 0
    if holes:
        reasons = "; ".join(f"{msg} (x{count})" for msg, count in list(errors.items())[:3])
        print(f"FAILED: {holes} samples in {rows_with_holes} rows (row {row_list(failed_rows)}) are still missing "
              "(None in `samples`)"
              + (f": {reasons}" if reasons else "") + "; run the same command again to fill only those")
        code = 1
    if settings.push_to_hub:
        code = 1 if push_to_hub(dataset, settings.push_to_hub) else code
    return code


def run_pilot(settings: GenerateSettings, budget: RunBudget, keys: list[str], messages: list[list[dict]],
              fingerprint: dict, instructions: list[str], top_p: float | None) -> Pilot:
    """--pilot N: the first N rows still missing samples are asked for real, live (within --max_cost, in the
    output's ledger; their samples kept in the checkpoint, so the run reuses them); what they measured."""
    n = settings.samples_per_instruction
    live = replace(settings.api, api_mode="live")  # a pilot answers now, not within a batch's 24 hours
    checkpoint = SampleCheckpoint(settings.output_path, fingerprint, keys, instructions, settings.overwrite)
    try:
        rows = [i for i, key in enumerate(keys) if checkpoint.count(key) < n][:settings.pilot]
        asks = [(messages[i], n - checkpoint.count(keys[i])) for i in rows]
        details = run_api(settings, api_config_for(live, settings.model, budget=budget), [keys[i] for i in rows],
                          [messages[i] for i in rows], checkpoint, n, top_p)
    finally:
        checkpoint.close()
    config = api_config_for(live, settings.model, budget=budget)
    counted = api_estimate(config, asks, settings.max_new_tokens, _max_n(config))
    usage = details["token_usage"]
    return Pilot(len(rows), counted.completions, counted.input_tokens, usage["prompt_tokens"],
                 usage["completion_tokens"], details["cost_usd"][settings.model],
                 details["usage_unreported"]["requests"])


def dry_run(settings: GenerateSettings, budget: RunBudget, backend: str, keys: list[str],
            messages: list[list[dict]], token_ids: list[list[int]] | None, fingerprint: dict,
            instructions: list[str], pilot: Pilot | None = None) -> int:
    """Step 1: min(len(dataset), max_rows) x samples_per_instruction, less what the checkpoint holds (a pilot's
    rows included); with a pilot, the expected cost from its measured replies."""

    n = settings.samples_per_instruction
    held = dict.fromkeys(keys, 0)
    if (not settings.overwrite or pilot) and os.path.exists(os.path.join(checkpoint_dir(settings.output_path),
                                                                         SAMPLE_LOG)):
        checkpoint = SampleCheckpoint(settings.output_path, fingerprint, keys, instructions, False)
        held = {key: min(checkpoint.count(key), n) for key in keys}
        checkpoint.close()
    missing = [n - held[key] for key in keys]
    lines = [f"{len(keys)} rows x {n} samples = {len(keys) * n} (seed formula: min(len(dataset), max_rows) x "
             f"samples_per_instruction); {sum(held.values())} already in the checkpoint; {sum(missing)} to generate"]
    if backend == "api":
        config = api_config_for(settings.api, settings.model, budget=budget)
        est = api_estimate(config, list(zip(messages, missing)), settings.max_new_tokens, _max_n(config), pilot)
        if pilot is not None:
            lines.append(pilot.line(output_limit(settings.model, settings.max_new_tokens)))
    else:
        est = local_estimate(settings.model, [(len(ids), m) for ids, m in zip(token_ids, missing)],
                             settings.max_new_tokens)
    report("Step 1", lines, [est], pilot)
    return 0
