"""Step 2: grade every sample against the ground truth, procedurally first, with an LLM judge only where needed."""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace

import datasets
from tqdm import tqdm

from generation.backends import calls, rules
from generation.backends.rules import _max_n
from generation.common.cli import Provenance, UserError, bounded_float, command_parser, positive_int
from generation.common.logs import add_verbose_argument
from generation.common.writing import add_lock_argument
from generation.costs.budget import RunBudget
from generation.costs.dry_run import api_estimate, report
from generation.data.cluster import held_cpus
from generation.data.dataset_io import (
    FINISH_COLUMN,
    add_split_argument,
    check_output_path,
    checkpoint_dir,
    limit_samples,
    load_any,
    read_input,
    save_atomic,
)
from generation.data.merging import combined
from generation.data.schema import STEP_COLUMNS, check_rows
from generation.data.sharding import add_shard_arguments, row_range, run_keys, run_sharded, run_store
from generation.grading import decision as grading
from generation.grading.rule import ANSWERLESS, HEDGES, Policy
from generation.steps.settings import EvaluateSettings, run_budget

METHOD_COLUMN = "answer_extraction_method"  # per-sample: procedural | llm | no_answer | no_sample | undecided
NOTE_COLUMN = "answer_extraction_note"  # per-sample: why ("hedged: B vs D", "exact numbers", "no answer statement ...")
JUDGE_CACHE = "llm_judge.jsonl"
JUDGE_MAX_TOKENS = 300
GRADED_COLUMNS = ("samples", "instruction", "answer", "options", "choices", FINISH_COLUMN)  # what grading reads


def build_parser() -> argparse.ArgumentParser:
    """The Step 2 command line (the reference's flags plus the LLM fallback and resume controls)."""
    parser = command_parser(__doc__)
    parser.add_argument("--input_path", "-i", required=True, help="Step 1 output, a released dataset, file or hub id")
    parser.add_argument("--output_path", "-o", required=True, help="folder for the graded dataset")
    parser.add_argument("--dataset_type", "-t", required=True, choices=grading.DATASET_TYPES)
    parser.add_argument("--parallel", "-p", type=positive_int, default=min(8, os.cpu_count() or 1),
                        help="worker processes for math equivalence checks; the CPU count, at most 8")
    parser.add_argument("--max_samples", "-m", type=positive_int, default=None,
                        help="keep the first N samples of each row, every per-sample column cut alike (default: all)")
    parser.add_argument("--max_rows", "-r", type=positive_int, default=None,
                        help="grade the first N rows from --start_row (default: all)")
    parser.add_argument("--llm_fallback", choices=("auto", "never", "always"), default="auto",
                        help="auto: the LLM judge grades only samples the procedural path cannot decide")
    parser.add_argument("--hedges", choices=HEDGES, default="incorrect",
                        help="a multiple-choice hedge (several different committed letters with no correction between "
                             "them, 'B or D'): graded incorrect with a note, as a human grader does, or left undecided "
                             "for the judge")
    parser.add_argument("--answerless", choices=ANSWERLESS, default="no_answer",
                        help="a sample with no finish reason (a released text), no answer statement anywhere, and a "
                             "text that stops mid-sentence: no_answer (cut off) or undecided for the judge")
    parser.add_argument("--judge_model", default="gpt-4o-mini", help="LLM judge model (any --provider model)")
    parser.add_argument("--math_timeout", type=bounded_float(0, 3600), default=grading.MATH_TIMEOUT_S,
                        help="CPU seconds allowed for one math equivalence check (past it: undecided)")
    parser.add_argument("--overwrite", action="store_true", help="forget cached LLM judge replies and start again")
    calls.add_api_arguments(parser)
    add_shard_arguments(parser)
    add_lock_argument(parser)
    add_split_argument(parser)
    add_verbose_argument(parser)
    return parser


def judge_cache_path(output_path: str) -> str:
    """The LLM judge's reply cache beside the output (keyed by request: run_store finds other layouts' replies)."""
    return os.path.join(checkpoint_dir(output_path), JUDGE_CACHE)


def load_rows(settings: EvaluateSettings) -> tuple[datasets.Dataset, list[dict], str | None]:
    """The input dataset cut to --max_rows/--max_samples, its rows as dicts (validated), and the split read."""
    check_output_path(settings.output_path)
    dataset, split = read_input(settings.input_path, settings.split)
    dataset = dataset.select(row_range(len(dataset), settings.rows, settings.input_path))
    checked_rows(dataset, settings.dataset_type, settings.input_path, settings.rows.start_row)
    dataset = limit_samples(dataset, settings.max_samples)
    return dataset, grading_rows(dataset), split


def grading_rows(dataset: datasets.Dataset) -> list[dict]:
    """The columns grading reads, one dict per row."""
    return dataset.select_columns([c for c in GRADED_COLUMNS if c in dataset.column_names]).to_list()


def checked_rows(dataset: datasets.Dataset, dataset_type: str, source: str, first_row: int = 0) -> list[dict]:
    """grading_rows after Step 2's input checks (UserError naming the first row that cannot be graded as
    `dataset_type`)."""
    check_rows(dataset, STEP_COLUMNS["step2"], source, first_row)
    rows = grading_rows(dataset)
    grading.check_rows(rows, dataset.column_names, dataset_type)
    return rows


def judge_config(settings: EvaluateSettings, budget: RunBudget) -> rules.ApiConfig | None:
    """The judge's API configuration (no network, no key needed yet) on the run's ledger (`budget`); None with
    --llm_fallback never."""
    if settings.llm_fallback == "never":
        return None
    return calls.api_config_for(settings.api, settings.judge_model, budget=budget)


def fallback_jobs(settings: EvaluateSettings, config: rules.ApiConfig, rows: list[dict],
                  targets: list[tuple[int, int]]) -> tuple[list[str], dict[str, rules.ChatJob]]:
    """The judge request key of each target, and one ChatJob per distinct key."""
    keys = []
    jobs: dict[str, rules.ChatJob] = {}
    for r, i in targets:
        job = rules.ChatJob(key="", messages=grading.judge_messages(rows[r], rows[r]["samples"][i],
                                                                             settings.dataset_type),
                                    temperature=0.0, max_tokens=JUDGE_MAX_TOKENS)
        job.key = rules.request_key(config, job)
        jobs.setdefault(job.key, job)
        keys.append(job.key)
    return keys, jobs


def run_fallback(settings: EvaluateSettings, config: rules.ApiConfig | None, rows: list[dict],
                 graded: list[list[grading.Graded]]) -> dict:
    """Let the LLM judge grade the fallback targets; replies are cached on disk so a re-run, with any shard layout,
    asks nothing twice."""
    targets = grading.fallback_targets(graded, settings.llm_fallback)
    stats = {"mode": settings.llm_fallback, "judge_model": settings.judge_model, "targets": len(targets), "calls": 0,
             "cached": 0, "unusable_replies": 0, "missing": 0, "error": None}
    if not targets:
        return stats
    keys, jobs = fallback_jobs(settings, config, rows, targets)
    with run_store(judge_cache_path(settings.output_path), jobs, own_only=settings.overwrite) as store:
        if any(key not in store for key in jobs):
            try:
                rules.check_ready(config)
            except UserError as err:
                stats["error"] = str(err)
                jobs = {key: job for key, job in jobs.items() if key in store}
        run_stats: dict = {}
        try:
            calls.run_cached(config, jobs.values(), store, "LLM judge", run_stats)
        except rules.FatalApiError as err:
            stats["error"] = str(err)
        stats.update(calls=run_stats.get("jobs", 0), cached=run_stats.get("cached", 0),
                     failed_calls=run_stats.get("failed_jobs", 0),
                     tokens={k: run_stats.get(k, 0) for k in ("prompt_tokens", "completion_tokens")},
                     cost_usd={settings.judge_model: run_stats.get("cost_usd")} if run_stats.get("jobs") else {},
                     learned_limits=run_stats.get("learned_limits", {}), **calls.money_record(run_stats))
        for (r, i), key in zip(targets, keys):
            record = store.get(key)
            grade = grading.read_judge_reply(record["texts"][0] if record else None, rows[r], settings.dataset_type)
            if grade is not None:
                graded[r][i] = grade
            else:
                stats["missing"] += 1  # a failed call, a call not made (no key), or an unusable reply
                if record is not None:
                    stats["unusable_replies"] += 1
        stats["replaced_code_points"] = store.replaced_code_points
    return stats


def with_grades(dataset: datasets.Dataset, graded: list[list[grading.Graded]]) -> datasets.Dataset:
    """The dataset with extracted_answers, answer_correct, the method and note columns (replacing older ones)."""
    columns = {"extracted_answers": [[g.answer for g in grades] for grades in graded],
               "answer_correct": [[bool(g.correct) for g in grades] for grades in graded],
               METHOD_COLUMN: [[g.method for g in grades] for grades in graded],
               NOTE_COLUMN: [[g.note for g in grades] for grades in graded]}
    for name, values in columns.items():
        if name in dataset.column_names:
            dataset = dataset.remove_columns(name)
        dataset = dataset.add_column(name, values)
    return dataset


def hedged_count(methods: list[list[str]], notes: list[list[str]]) -> int:
    """How many samples are hedges graded incorrect (--hedges incorrect: method procedural, note "hedged: ...")."""
    return sum(method == "procedural" and note.startswith("hedged")
               for row_methods, row_notes in zip(methods, notes) for method, note in zip(row_methods, row_notes))


def reasons(graded: list[list[grading.Graded]], method: str) -> dict[str, int]:
    """How many samples have `method` (undecided, no_answer), per reason."""
    notes: dict[str, int] = {}
    for grade in (g for grades in graded for g in grades if g.method == method):
        notes[grade.note or "unknown"] = notes.get(grade.note or "unknown", 0) + 1
    return notes


def exit_code(settings: EvaluateSettings, summary: dict, llm: dict) -> int:
    """Explain what is missing on stderr; 1 when a wanted judgement is missing, else 0."""
    undecided = summary["methods"]["undecided"]
    if llm["error"]:
        print(f"LLM judge unavailable: {llm['error']}", file=sys.stderr)
    if undecided:
        print(f"{undecided} sample(s) could not be graded procedurally and are undecided: answer_correct is False "
              f"for them and {METHOD_COLUMN} says 'undecided'. Decide them with --llm_fallback auto and an API key "
              f"for --judge_model {settings.judge_model} (or --base_url for an OpenAI-compatible server), then run the "
              "same command again; cached judge replies are reused.", file=sys.stderr)
    missing_judge = settings.llm_fallback == "always" and bool(llm["error"] or llm.get("missing"))
    if missing_judge and llm.get("missing"):
        print(f"FAILED: {llm['missing']} of the {llm['targets']} LLM judgement(s) --llm_fallback always asks for are "
              "missing (failed calls or unusable replies; those samples keep their procedural grade); run the same "
              "command again to ask only for those", file=sys.stderr)
    return 1 if undecided and settings.llm_fallback != "never" or missing_judge else 0



def run_shards(settings: EvaluateSettings) -> int:
    """Step 2's row ranges as Ray tasks, merged into the output."""
    budget = run_budget(settings, settings.api.max_cost)  # every shard's
    judge_config(settings, budget)  # bad judge flags stop here, before Ray starts
    settings = replace(settings, split=load_rows(settings)[2])  # and bad input
    rows = row_range(len(load_any(settings.input_path, settings.split)), settings.rows, settings.input_path)
    return run_sharded("generation.steps.evaluate.run", settings, rows, num_gpus=0, recompute=merged_fields,
                       num_cpus=settings.parallel, budget=budget)


def merged_fields(dataset: datasets.Dataset, records: list[dict]) -> dict:
    """Step 2's whole-run provenance of merged parts: the summary recomputed over all rows, LLM fallback counts
    and reasons added up."""
    dataset_type = records[0].get("dataset_type") or records[0]["arguments"]["dataset_type"]
    graded = [[grading.Graded(answer, bool(correct), method) for answer, correct, method in zip(*row)]
              for row in zip(dataset["extracted_answers"], dataset["answer_correct"], dataset[METHOD_COLUMN])]
    llm = combined([record.get("llm_fallback") for record in records])
    summary = {**grading.summarize(graded, dataset_type), "llm_calls": llm.get("calls", 0),
               "llm_cost_usd": combined([record.get("summary", {}).get("llm_cost_usd") for record in records])}
    return {"summary": summary, "llm_fallback": llm, "grading_policy": records[0].get("grading_policy"),
            "hedged": hedged_count(dataset[METHOD_COLUMN], dataset[NOTE_COLUMN]),
            **{key: combined([record.get(key) or {} for record in records])
               for key in ("undecided_reasons", "no_answer_reasons", "timings")}}


def run(settings: EvaluateSettings, budget: RunBudget | None = None) -> int:
    """Grade, save atomically with provenance, print the summary; exit 1 when a wanted LLM judgement is missing
    (budget: the ledger of the sharded run this is a shard of, else the run's own)."""
    provenance = Provenance("unified_evaluation", settings)
    config = judge_config(settings, budget if budget is not None else run_budget(settings, settings.api.max_cost))
    dataset, rows, split = load_rows(settings)
    cache = judge_cache_path(settings.output_path)
    if settings.overwrite and not settings.dry_run and os.path.exists(cache):
        os.remove(cache)
    started = time.perf_counter()
    with tqdm(total=sum(len(row["samples"]) for row in rows), desc="grading", unit="sample") as bar:
        graded = grading.grade_rows(rows, settings.dataset_type, min(settings.parallel, held_cpus()), bar.update,
                                    settings.math_timeout,
                                    Policy(hedges=settings.hedges, answerless=settings.answerless))
    timings = {"procedural_s": round(time.perf_counter() - started, 3)}
    if settings.dry_run:
        return dry_run(settings, config, rows, graded)
    llm = run_fallback(settings, config, rows, graded)
    timings["llm_fallback_s"] = round(time.perf_counter() - started - timings["procedural_s"], 3)
    summary = {**grading.summarize(graded, settings.dataset_type), "llm_calls": llm["calls"],
               "llm_cost_usd": llm.get("cost_usd", {})}  # only models this run called
    provenance.update(dataset_type=settings.dataset_type, input_split=split, rows=len(rows), summary=summary,
                      llm_fallback=llm,
                      grading_policy={"hedges": settings.hedges, "answerless": settings.answerless},
                      hedged=hedged_count([[g.method for g in grades] for grades in graded],
                                         [[g.note for g in grades] for grades in graded]),
                      undecided_reasons=reasons(graded, "undecided"),
                      no_answer_reasons=reasons(graded, "no_answer"), method_column=METHOD_COLUMN, timings=timings)
    save_atomic(with_grades(dataset, graded), settings.output_path, provenance.snapshot())
    print_summary(summary, llm, settings.output_path)
    return exit_code(settings, summary, llm)


def print_summary(summary: dict, llm: dict, output_path: str) -> None:
    """A few readable lines (the whole summary is in the output's provenance.json); costs of models called only."""
    def share(key: str) -> str:
        return "-" if summary[key] is None else f"{summary[key]:.3f}"

    sizes = summary["samples_per_problem"]
    methods = ", ".join(f"{count} {method}" for method, count in summary["methods"].items() if count)
    print(f"graded {summary['samples']} samples of {summary['problems']} problems ({methods})")
    print(f"  sample accuracy {share('sample_accuracy')}, pass@{sizes[0] if len(sizes) == 1 else 'k'} "
          f"{share('pass_at_k')}, majority vote {share('majority_vote_accuracy')}, first sample "
          f"{share('first_sample_accuracy')}; no answer extracted: {share('extraction_failure_rate')} of samples")
    if llm.get("calls") or llm.get("cached"):
        costs = "".join(f", {model} " + ("cost unknown" if cost is None else f"${cost:.4f}")
                        for model, cost in summary["llm_cost_usd"].items())
        print(f"  LLM judge: {llm['calls']} calls, {llm['cached']} cached replies{costs}")
    print(f"  full summary: {os.path.join(output_path, 'provenance.json')}")


def dry_run(settings: EvaluateSettings, config: rules.ApiConfig | None, rows: list[dict], graded: list) -> int:
    """Step 2: the seed's per-sample extraction count; this pipeline asks the LLM only for its fallback targets."""

    samples = sum(len(row["samples"]) for row in rows)
    targets = grading.fallback_targets(graded, settings.llm_fallback) if config is not None else []
    jobs: dict = fallback_jobs(settings, config, rows, targets)[1] if targets else {}
    cache = judge_cache_path(settings.output_path)
    cached = run_keys(cache, jobs) if jobs and not settings.overwrite else set()
    lines = [f"{len(rows)} rows, {samples} samples (seed formula for answer extraction: min(len(dataset), max_rows) "
             f"x min(samples_per_instruction, max_samples) = {samples}); procedural grading decides all but "
             f"{len(targets)}, which --llm_fallback {settings.llm_fallback} sends to the LLM judge ({len(jobs)} "
             f"distinct prompts, {len(cached)} cached)"]
    todo = [(job.messages, job.n) for key, job in jobs.items() if key not in cached]
    cap = max((job.max_tokens for job in jobs.values()), default=None)
    estimates = [api_estimate(config, todo, cap, _max_n(config))] if jobs else []
    report("Step 2", lines, estimates)
    return 0
