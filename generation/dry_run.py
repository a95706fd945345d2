"""--dry_run: the calls, tokens and dollars a step would spend, from its real inputs and checkpoint; nothing is called.

Calls follow the seed README's formulas. Input tokens: the model's tokenizer for local models, tiktoken for OpenAI
models, token_counts.CHARS_PER_TOKEN otherwise. Output tokens: the completion cap as the upper bound. Cost range:
input only (every reply empty) to input plus every reply at the cap.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pricing import format_cost, price_of, usage_cost
from token_counts import chat_tokens, counter_for

UNCAPPED_NOTE = "no cap (reasoning model): output unbounded, upper cost unknown"


@dataclass
class Estimate:
    """What one model would be asked: completions, requests, tokens and the dollar range."""

    model: str
    completions: int = 0
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int | None = 0  # upper bound; None: no cap
    counted_with: str = ""
    cost: tuple[float | None, float | None] | None = None  # None: a local model (no API bill)
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        """One summary line."""
        output = "unbounded" if self.output_tokens is None else f"<= {self.output_tokens:,}"
        text = (f"  {self.model}: {self.completions:,} completions in {self.requests:,} requests; input ~"
                f"{self.input_tokens:,} tokens ({self.counted_with}), output {output} tokens")
        if self.cost is not None:
            low, high = self.cost
            upper = format_cost(high) if self.output_tokens is not None else "?"
            text += f"; estimated cost {format_cost(low)} to {upper}"
        return text + "".join(f"; {note}" for note in self.notes)


def api_estimate(config: Any, asks: list[tuple[list[dict], int]], max_tokens: int | None) -> Estimate:
    """Estimate for an API model asked (messages, n completions) per job, split at its `n` limit."""
    from model_clients import _max_n, _split

    count, how = counter_for(config.model, config.provider)
    est = Estimate(config.model, counted_with=how)
    limit = _max_n(config)
    for messages, n in asks:
        requests = len(_split(n, limit)) if n else 0
        est.completions += n
        est.requests += requests
        est.input_tokens += chat_tokens(count, messages) * requests
    est.output_tokens = None if max_tokens is None else est.completions * max_tokens
    price = price_of(config.model, config.prices)
    if price is None:
        est.notes.append("no price known: add it with --prices FILE")
        est.cost = (None, None)
    else:
        est.cost = (usage_cost(price, est.input_tokens, 0), usage_cost(price, est.input_tokens, est.output_tokens or 0))
    if max_tokens is None:
        est.notes.append(UNCAPPED_NOTE)
    return est


def local_estimate(model: str, prompt_tokens: list[tuple[int, int]], max_tokens: int) -> Estimate:
    """Estimate for a local model: (prompt tokens, n) per prompt, counted with its own tokenizer."""
    est = Estimate(model, counted_with="the model's tokenizer", cost=None, notes=["local: no API cost"])
    for tokens, n in prompt_tokens:
        est.completions += n
        est.requests += bool(n)
        est.input_tokens += tokens if n else 0
    est.output_tokens = est.completions * max_tokens
    return est


def report(step: str, lines: list[str], estimates: list[Estimate]) -> dict:
    """Print the dry run and return it (for tests and callers)."""
    print(f"dry run of {step} (nothing was called):")
    for line in lines:
        print(f"  {line}")
    for est in estimates:
        print(est.line())
    costs = [est.cost for est in estimates if est.cost is not None]
    if costs:
        low = None if any(c[0] is None for c in costs) else sum(c[0] for c in costs)
        high = None if any(c[1] is None for c in costs) or any(e.output_tokens is None for e in estimates) \
            else sum(c[1] for c in costs)
        print(f"  total estimated API cost: {format_cost(low)} to {format_cost(high) if high is not None else '?'}")
    return {"estimates": estimates}


def step1(args: Any, backend: str, keys: list[str], messages: list[list[dict]], token_ids: list[list[int]] | None,
          fingerprint: dict, instructions: list[str]) -> int:
    """Step 1: min(len(dataset), max_rows) x samples_per_instruction, less what the checkpoint holds."""
    import os

    from dataset_io import checkpoint_dir
    from sample_generation import SampleCheckpoint

    n = args.samples_per_instruction
    held = dict.fromkeys(keys, 0)
    if not args.overwrite and os.path.exists(os.path.join(checkpoint_dir(args.output_path), "samples.jsonl")):
        checkpoint = SampleCheckpoint(args.output_path, fingerprint, keys, instructions, False)
        held = {key: min(checkpoint.count(key), n) for key in keys}
        checkpoint.close()
    missing = [n - held[key] for key in keys]
    lines = [f"{len(keys)} rows x {n} samples = {len(keys) * n} (seed formula: min(len(dataset), max_rows) x "
             f"samples_per_instruction); {sum(held.values())} already in the checkpoint; {sum(missing)} to generate"]
    if backend == "api":
        from model_clients import api_config_from_args

        est = api_estimate(api_config_from_args(args, args.model), list(zip(messages, missing)), args.max_new_tokens)
    else:
        est = local_estimate(args.model, [(len(ids), m) for ids, m in zip(token_ids, missing)], args.max_new_tokens)
    report("Step 1", lines, [est])
    return 0


def step2(args: Any, config: Any, rows: list[dict], graded: list) -> int:
    """Step 2: the seed's per-sample extraction count; this pipeline asks the LLM only for its fallback targets."""
    import os

    import answer_grading as grading
    from record_store import RecordStore
    from unified_evaluation import fallback_jobs, judge_cache_path

    samples = sum(len(row["samples"]) for row in rows)
    targets = grading.fallback_targets(graded, args.llm_fallback) if config is not None else []
    jobs: dict = fallback_jobs(args, config, rows, targets)[1] if targets else {}
    cache = judge_cache_path(args.output_path)
    cached = set()
    if jobs and not args.overwrite and os.path.exists(cache):
        with RecordStore(cache) as store:
            cached = {key for key in jobs if key in store}
    lines = [f"{len(rows)} rows, {samples} samples (seed formula for answer extraction: min(len(dataset), max_rows) "
             f"x min(samples_per_instruction, max_samples) = {samples}); procedural grading decides all but "
             f"{len(targets)}, which --llm_fallback {args.llm_fallback} sends to the LLM judge ({len(jobs)} distinct "
             f"prompts, {len(cached)} cached)"]
    todo = [(job.messages, job.n) for key, job in jobs.items() if key not in cached]
    estimates = [api_estimate(config, todo, max(job.max_tokens for job in jobs.values()))] if jobs else []
    report("Step 2", lines, estimates)
    return 0


def step3(args: Any, dataset: Any, rm_specs: list, judge_specs: list, judges_module: Any) -> int:
    """Step 3: samples x reward models, and samples x judges x K verdicts, less what judge caches hold."""
    import os

    from dataset_io import checkpoint_dir
    from record_store import RecordStore

    rows, samples = len(dataset), sum(len(s) for s in dataset["samples"])
    present = sum(s is not None for row in dataset["samples"] for s in row)
    k = args.verdicts_per_sample
    lines = [f"{rows} rows, {samples} samples ({present} present); reward models: {samples} x {len(rm_specs)} = "
             f"{samples * len(rm_specs)} scores (local, no API cost); LM judges: {samples} x {len(judge_specs)} x "
             f"{k} = {samples * len(judge_specs) * k} verdicts (seed formula; missing samples are not asked)"]
    estimates = []
    for spec in judge_specs:
        settings = judges_module.judge_settings(spec, args)
        chats = judges_module.judge_chats(dataset, settings, args)
        if spec.backend != "api":
            count, how = counter_for(spec.model, None)
            est = local_estimate(spec.model, [(chat_tokens(count, c), k) for c in chats if c is not None],
                                 settings.max_tokens)
            est.counted_with = f"{how}; the judge's tokenizer is not loaded"
            estimates.append(est)
            continue
        config = judges_module.api_config(spec, args)
        jobs = [job for job in judges_module.api_jobs(config, chats, settings) if job]
        cache = judges_module.cache_path(checkpoint_dir(args.output_path), spec, settings.critique)
        cached = set()
        if os.path.exists(cache) and not args.overwrite:
            with RecordStore(cache) as store:
                cached = {job.key for job in jobs if job.key in store}
        est = api_estimate(config, [(job.messages, job.n) for job in jobs if job.key not in cached],
                           settings.max_tokens)
        est.model = f"{spec.name} ({spec.model})"
        est.notes.insert(0, f"{len(cached)} of {len(jobs)} prompts cached")
        estimates.append(est)
    report("Step 3", lines, estimates)
    return 0
