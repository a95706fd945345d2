"""Step 3 bookkeeping: which verifiers to run, their per-verifier checkpoints, merging and the run summary."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import time

from generation.common.cli import row_list
from generation.common.records import stable_hash
from generation.common.redact import redact
from generation.common.writing import write_json_atomic
from generation.costs.budget import RunBudget
from generation.costs.pricing import format_cost
from generation.judges.judging import JudgeOptions
from generation.judges.registry import JudgeSpec
from generation.reward_models.inputs import ScoreOptions, resolve_dtype
from generation.reward_models.loaders import MISSING_SAMPLE, resolve_attn
from generation.reward_models.placement import Job, run_all, stored_results
from generation.reward_models.registry import RewardModelSpec
from generation.reward_models.scoring import row_columns

SUMMARY_COUNTS = (  # report counts named in the summary line after the failures: (key, what they are)
    ("truncated", "inputs truncated (middle cut, answer kept)"),
    ("missing_samples", "missing samples left as None"),
    ("kept_nones", "None values kept from the input (--overwrite recomputes them)"),
    ("unparsed", "judgments without a verdict (None)"),
    ("too_long", "prompts longer than the judge's context (None)"),
)
COLUMN_INFO_KEY = "verifier_columns"  # in the saved dataset's info.description (JSON): per column, how it was made


def _hash(payload) -> str:
    """Short stable hash of a JSON-able value."""
    return stable_hash(payload)[:16]


def rows_fingerprint(dataset) -> str:
    """Fingerprint of the rows a verifier scores (instructions and samples)."""
    digest = hashlib.sha256()
    for instruction, samples in zip(dataset["instruction"], dataset["samples"]):
        digest.update(json.dumps([instruction, samples]).encode())
    return digest.hexdigest()[:16]


def _nones_for_present_samples(dataset, column: str) -> int:
    """How many samples that exist have a None (or a None verdict) in a verifier column."""
    return sum(value is None or (isinstance(value, list) and None in value)
               for values, samples in zip(dataset[column], dataset["samples"])
               for value, sample in zip(values, samples) if sample is not None)


def describe_columns(description: str | None, columns: dict[str, dict]) -> str:
    """A dataset description (JSON) with per-column verifier metadata merged in; earlier plain text kept as "text"."""
    try:
        record = json.loads(description) if description else {}
    except ValueError:
        record = None
    if not isinstance(record, dict):
        record = {"text": description}
    record[COLUMN_INFO_KEY] = {**record.get(COLUMN_INFO_KEY, {}), **columns}
    return json.dumps(record, sort_keys=True)


def rm_settings(spec: RewardModelSpec, options: ScoreOptions) -> list:
    """Everything besides the rows that shapes a reward model's scores: its scores log is named by their hash."""
    return [dataclasses.asdict(spec), options.max_input_length, resolve_dtype(spec, options), options.backend]


def _slug(name: str) -> str:
    """File-name-safe form of a verifier name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


class VerifierCheckpoints:
    """One JSON file per finished verifier (its columns, keyed by the rows and settings it was computed on)."""

    def __init__(self, folder: str, fingerprint: str, overwrite: bool) -> None:
        self.folder, self.fingerprint, self.overwrite = folder, fingerprint, overwrite
        self.columns: dict[str, list] = {}
        self.report: dict[str, dict] = {}
        self.column_info: dict[str, dict] = {}  # applied to the columns this run writes

    # ---- checkpoint files ------------------------------------------------------------------------------------
    def _path(self, name: str) -> str:
        """The checkpoint file of one verifier."""
        return os.path.join(self.folder, f"verifier-{_slug(name)}.json")

    def _load(self, name: str, key: str) -> dict | None:
        """The saved result of a verifier for this key, if any."""
        path = self._path(name)
        if self.overwrite or not os.path.exists(path):
            return None
        with open(path, encoding="utf-8") as handle:
            saved = json.load(handle)
        return saved if saved.get("key") == key else None

    def _save(self, name: str, key: str, columns: dict, stats: dict, complete: bool) -> None:
        """Write a verifier's columns as soon as it has finished."""
        record = {"key": key, "columns": columns, "stats": redact(stats), "complete": complete,
                  "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
        write_json_atomic(self._path(name), record, data=True)  # the columns (judgments) exactly as made
        self.columns.update(columns)

    def _skip_or_reuse(self, name: str, key: str, wanted: list[str], dataset) -> bool:
        """True when the verifier needs no work: its columns exist (kept) or a complete checkpoint matches."""
        saved = self._load(name, key)
        if saved and saved["complete"]:
            self.columns.update(saved["columns"])
            self.report[name] = {**saved["stats"], "status": "reused checkpoint"}
            return True
        if not self.overwrite and saved is None and all(c in dataset.column_names for c in wanted):
            self.report[name] = {"status": "kept existing columns", "failures": 0,
                                 "kept_nones": _nones_for_present_samples(dataset, wanted[0])}
            return True
        return False

    # ---- reward models ---------------------------------------------------------------------------------------
    def rm_key(self, spec: RewardModelSpec, options: ScoreOptions) -> str:
        """Everything that shapes a reward model's scores of these rows."""
        return _hash([self.fingerprint, *rm_settings(spec, options)])

    def plan_reward_models(self, specs: list[RewardModelSpec], dataset, options: ScoreOptions) -> list:
        """The reward models that still need scoring (others are kept or reused)."""
        return [s for s in specs if not self._skip_or_reuse(s.name, self.rm_key(s, options), s.columns(), dataset)]

    def run_reward_models(self, specs: list[RewardModelSpec], dataset, options: ScoreOptions,
                          sequential: bool) -> str:
        """Score the reward models (workers per GPU or in-process); each is checkpointed when it finishes."""
        if not specs:
            return "none"
        items = [[instruction, sample] for instruction, samples in zip(dataset["instruction"], dataset["samples"])
                 for sample in samples]
        items_path = os.path.join(self.folder, f"items-{self.fingerprint}.json")
        if not os.path.exists(items_path):
            write_json_atomic(items_path, items, data=True)  # the texts scored: exactly the samples
        row_sizes = [len(s) for s in dataset["samples"]]
        jobs = []
        for spec in specs:
            base = os.path.join(self.folder, f"rm-{_slug(spec.name)}-{_hash(rm_settings(spec, options))}")
            if self.overwrite and os.path.exists(base + ".jsonl"):
                os.remove(base + ".jsonl")
            if os.path.exists(base + ".summary.json"):
                os.remove(base + ".summary.json")
            jobs.append(Job(spec, options, items_path, base + ".jsonl", base + ".summary.json", self.overwrite))

        def finished(job: Job, summary: dict) -> None:
            """Checkpoint a model's columns as soon as its job ends."""
            self._finish_rm(job, summary, row_sizes)

        return run_all(jobs, options.device, sequential, finished)

    def _finish_rm(self, job: Job, summary: dict, row_sizes: list[int]) -> None:
        """Turn a finished job into columns, checkpoint them, and record its stats."""
        spec, options = job.spec, job.options
        stats = {"hf_id": spec.hf_id, "revision": spec.revision or "main", "kind": spec.kind, "loaded": spec.loading,
                 "dtype": resolve_dtype(spec, options),
                 "attn_implementation": summary.get("attn_implementation") or resolve_attn(spec, options),
                 "batch_size": options.batch_size, "max_input_length": options.max_input_length,
                 "device": options.device, "device_map": options.device_map,
                 **{k: summary[k] for k in ("backend", "truncated", "load_s", "score_s", "tokens", "resumed",
                                            "scored") if k in summary}}
        if "fatal" in summary:
            self.report[spec.name] = {**stats, "status": "failed", "failures": sum(row_sizes),
                                      "error": summary["fatal"]}
            return
        results = stored_results(job)
        errors = {int(k): v for k, v in summary.get("errors", {}).items()}
        columns, errors = row_columns(spec, results, errors, row_sizes)
        missing = sum(1 for reason in errors.values() if reason == MISSING_SAMPLE)
        failures = len(errors) - missing
        reasons = sorted({reason for reason in errors.values() if reason != MISSING_SAMPLE})
        stats.update(failures=failures, missing_samples=missing, failure_reasons=reasons[:5],
                     status="scored" if not failures else "scored with failures")
        self._save(spec.name, self.rm_key(spec, options), columns, stats, complete=not failures)
        self.report[spec.name] = stats

    # ---- LM judges -------------------------------------------------------------------------------------------
    def run_judge(self, spec: JudgeSpec, judges_module, dataset, options: JudgeOptions,
                  budget: RunBudget | None = None) -> None:
        """Run one LM judge (it caches its own requests; budget: the run's ledger); a failure is recorded
        and never discards other columns."""
        critique = bool(options.critique_mode)
        wanted = judges_module.judge_columns(spec, critique)
        name = wanted[0].removesuffix("_verdicts")  # the column prefix: standard and critique runs keep apart
        settings = {"verdicts_per_sample": options.verdicts_per_sample, "critique_mode": options.critique_mode,
                    "judge_temperature": options.judge_temperature, "judge_seed": options.judge_seed,
                    "judge_max_tokens": options.judge_max_tokens,
                    "prompts_hash": judges_module.judge_settings(spec, options).prompts_hash}  # --judge_prompts
        key = _hash([self.fingerprint, dataclasses.asdict(spec), settings])
        self.column_info.update({c: {"judge": spec.name, "model": spec.model, "prompts_hash": settings["prompts_hash"]}
                                 for c in wanted})
        if self._skip_or_reuse(name, key, wanted[:1], dataset):  # released datasets hold only `_verdicts`
            return
        try:
            columns, stats = judges_module.run_judge(spec, dataset, options, self.folder, self.overwrite, budget)
        except Exception as err:  # noqa: BLE001 - one judge's failure must not lose the other verifiers
            self.report[name] = {"status": "failed", "failures": sum(len(s) for s in dataset["samples"]),
                                 "error": f"{type(err).__name__}: {err}"}
            return
        failures = int(stats.get("failures", 0))
        stats = {**stats, "failures": failures, "failure_reasons": sorted(stats.get("api_errors") or {})[:5],
                 "status": "judged" if not failures else "judged with failures"}
        self._save(name, key, columns, stats, complete=not failures)
        self.report[name] = stats

    # ---- output ----------------------------------------------------------------------------------------------
    def merge_into(self, dataset):
        """The dataset with every computed or reused verifier column (replacing same-named columns)."""
        replaced = [c for c in self.columns if c in dataset.column_names]
        if replaced:
            dataset = dataset.remove_columns(replaced)
        for name, values in self.columns.items():
            dataset = dataset.add_column(name, values)
        written = {c: info for c, info in self.column_info.items() if c in self.columns}
        if written:
            dataset.info.description = describe_columns(dataset.info.description, written)
        return dataset

    def print_summary(self, output_path: str) -> int:
        """Print one line per verifier; 1 when failures remain (a re-run retries only those), else 0."""
        print(f"Step 3 summary ({output_path}):")
        failed = []
        for name, report in self.report.items():
            failures = report.get("failures", 0)
            if failures:
                failed.append(f"{name} ({failures})")
            detail = f", {failures} failed samples" if failures else ""
            if failures and report.get("failed_rows"):  # judges name the rows, as Step 1's summary does
                detail += f" in rows {row_list(report['failed_rows'])}"
            if report.get("error"):
                detail += f" ({report['error']})"
            elif report.get("failure_reasons"):
                detail += f" ({'; '.join(report['failure_reasons'])})"
            detail += "".join(f", {report[key]} {text}" for key, text in SUMMARY_COUNTS if report.get(key))
            detail += f", cost {format_cost(report['cost_usd'])}" if "cost_usd" in report else ""
            print(f"  {name}: {report['status']}{detail}")
        if failed:
            print(f"FAILED: samples of {', '.join(failed)} have no score or verdict (None in the data, see above); "
                  "run the same command again to retry only them")
        return 1 if failed else 0
