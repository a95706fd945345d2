"""Row ranges for every step, and --num_shards: contiguous row ranges run as Ray tasks, each a resumable shard."""
from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import socket
import sys
from dataclasses import dataclass, replace
from typing import Any, Callable, Collection, TypeVar

from generation.common.cli import Provenance, UserError, error_line, int_at_least, positive_int, public_args
from generation.common.records import RecordStore, compact, is_record_log, keyed_lines
from generation.common.redact import redact, redacted_streams
from generation.common.writing import lock_holder, output_lock, real_path, release_dead_holder, write_json_atomic
from generation.data.cluster import DEATH_WAIT_S, connect, preflight, reported_dead, smallest_gpu_gb
from generation.data.dataset_io import checkpoint_dir, push_to_hub
from generation.data.environment import apply, driver_environment
from generation.data.merging import Recompute, merge

SHARD_FOLDER = "shards"
TASK_RETRIES = 2  # the driver re-runs a shard task this many times after a crash or a lost node; each run resumes


@dataclass(frozen=True)
class RowSettings:
    """--start_row/--end_row and the step's --max_rows: the rows a run (or one shard) processes."""

    start_row: int
    end_row: int | None
    max_rows: int | None


@dataclass(frozen=True)
class StepSettings:
    """The settings every step has: its output and rows, --num_shards/--ray_address/--keep_shards, --lock, --split,
    --overwrite, --dry_run and --verbose (each step's settings add their own)."""

    output_path: str | None  # None only for Step 3's --list and --check
    rows: RowSettings
    num_shards: int | None
    ray_address: str | None
    keep_shards: bool
    lock: str
    split: str | None
    overwrite: bool
    dry_run: bool
    verbose: bool


@dataclass(frozen=True)
class PushingStepSettings(StepSettings):
    """A step that also pushes its output to the hub: the merged output is pushed, never a shard."""

    push_to_hub: str | None


Settings = TypeVar("Settings", bound=StepSettings)


def add_shard_arguments(parser: argparse.ArgumentParser) -> None:
    """--start_row/--end_row (one row range, e.g. a SLURM array task) and --num_shards/--ray_address (Ray)."""
    group = parser.add_argument_group("row ranges and sharding")
    group.add_argument("--start_row", type=int_at_least(0), default=0, help="first row to process (0-based)")
    group.add_argument("--end_row", type=int_at_least(0), default=None,
                       help="row after the last one to process (default: the last row)")
    group.add_argument("--num_shards", type=positive_int, default=None,
                       help="split the rows into N contiguous ranges, each a Ray task with its own resumable "
                            "shard, merged into --output_path at the end (default: one process, no shards)")
    group.add_argument("--ray_address", default=None,
                       help="with --num_shards: a Ray cluster ('auto', HOST:PORT or ray://HOST:PORT) "
                            "(default: a local Ray started and stopped by this command)")
    group.add_argument("--keep_shards", action="store_true",
                       help="with --num_shards: keep the shard outputs and their checkpoints after a successful "
                            "merge (default: their logs are folded into the output's checkpoint and they go)")


def wants_shards(settings: StepSettings) -> bool:
    """Whether to run on Ray (--num_shards); --ray_address alone is a usage error."""
    if settings.ray_address and not settings.num_shards:
        raise UserError("--ray_address is used only with --num_shards N; add --num_shards or drop --ray_address")
    return bool(settings.num_shards) and not settings.dry_run  # a dry run estimates the whole run here


def row_range(num_rows: int, rows: RowSettings, source: str) -> range:
    """The rows --start_row/--end_row, then --max_rows, select out of num_rows; UserError when they select none."""
    end = num_rows if rows.end_row is None else min(rows.end_row, num_rows)
    if not rows.start_row < end:
        raise UserError(f"--start_row {rows.start_row} / --end_row {rows.end_row} select no rows of the "
                        f"{num_rows} in {source}")
    return range(rows.start_row, end)[:rows.max_rows or None]


def split(rows: range, num_shards: int) -> list[range]:
    """num_shards contiguous, near-equal ranges covering rows, empty ones left out (more shards than rows is fine)."""
    bounds = [rows.start + len(rows) * i // num_shards for i in range(num_shards + 1)]
    return [range(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


def shard_path(output_path: str, rows: range) -> str:
    """Where the shard of a row range is written: under the output's checkpoint folder."""
    return os.path.join(checkpoint_dir(output_path), SHARD_FOLDER, f"rows_{rows.start:09d}_{rows.stop:09d}.hf")


def shard_settings(settings: Settings, rows: range) -> Settings:
    """The settings of one shard's single-process run: its rows, its own output, no sharding, no hub push."""
    shard = replace(settings, output_path=shard_path(settings.output_path, rows), num_shards=None, ray_address=None,
                    keep_shards=False,
                    rows=RowSettings(rows.start, rows.stop, max_rows=None))  # rows: those the unsharded run uses
    return replace(shard, push_to_hub=None) if isinstance(shard, PushingStepSettings) else shard


def run_logs(output_path: str, name: str) -> list[str]:
    """Every `name` log kept for the run that output_path (the output, or one of its shards) belongs to, whatever
    shard layout wrote it: the whole output's checkpoint and each shard's, so finished rows are found by any rerun."""
    path = real_path(output_path).rstrip(os.sep)
    parent = os.path.dirname(path)
    checkpoint = os.path.dirname(parent)
    if os.path.basename(parent) == SHARD_FOLDER and checkpoint.endswith(".checkpoint"):
        path = checkpoint.removesuffix(".checkpoint")
    folder = checkpoint_dir(path)
    shards = glob.glob(os.path.join(glob.escape(os.path.join(folder, SHARD_FOLDER)), "*.checkpoint", name))
    return [log for log in [os.path.join(folder, name), *sorted(shards)] if os.path.isfile(log)]


def run_store(log_path: str, wanted: Collection[str], sync_every: int = 1, own_only: bool = False) -> RecordStore:
    """The cache log at log_path (in an output's or a shard's checkpoint folder), whose lookups also find what the
    run's other logs of that name hold, whatever shard layout or unsharded run wrote them (keys are content keys:
    what was asked and the settings that shape it), so no finished unit is paid for twice. wanted: the keys this run
    can ask for, known before the store opens; only those of the other logs are noted, so a shard holds nothing for
    the rows other shards own. own_only: this log's records only (--overwrite)."""
    return RecordStore(log_path, sync_every, also_read=[] if own_only else _sibling_logs(log_path), wanted=wanted)


def run_keys(log_path: str, wanted: Collection[str]) -> set[str]:
    """The wanted keys that the log at log_path or any other log of its run holds (read only: a dry run writes
    nothing; only the keys of other lines are read)."""
    found: set[str] = set()
    for log in _sibling_logs(log_path):
        try:
            found.update(key for key, _, _ in keyed_lines(log, wanted.__contains__))
        except FileNotFoundError:  # removed meanwhile by another run's --overwrite
            continue
    return found


def _sibling_logs(log_path: str) -> list[str]:
    """Every log of the run named like log_path, itself included when it exists."""
    folder, name = os.path.split(log_path)
    return run_logs(folder.removesuffix(".checkpoint"), name)


def fold_layouts(output_path: str) -> None:
    """After a merge of shards that all finished: fold each checkpoint log of every shard layout of the run into the
    output's own log of that name (records.compact: one record per key), then remove the shard outputs and their
    checkpoints, so the run's resume state is one run's again (the done markers go first: a kill meanwhile leaves
    shards that run again, resuming from the folded logs). A JSON-lines file that is no checkpoint log (a cost
    ledger) is never rewritten, and a shard folder holding one stays."""
    folder = checkpoint_dir(output_path)
    shards = os.path.join(folder, SHARD_FOLDER)
    if not os.path.isdir(shards):
        return
    logs = glob.glob(os.path.join(glob.escape(shards), "*.checkpoint", "*.jsonl"))
    others = sorted(log for log in logs if not is_record_log(log))
    names = {os.path.basename(log) for log in logs if log not in others}
    names = {name for name in names if not os.path.exists(os.path.join(folder, name))
             or is_record_log(os.path.join(folder, name))}
    before = sum(os.path.getsize(os.path.join(root, name)) for root, _, files in os.walk(shards) for name in files)
    written = sum(compact(run_logs(output_path, name), os.path.join(folder, name)) for name in sorted(names))
    if others:
        print(f"notice: folded the shards' checkpoint logs into {folder}; the shard outputs stay, as "
              f"{others[0]} is no checkpoint log (e.g. a cost ledger)", file=sys.stderr)
        return
    for marker in glob.glob(os.path.join(glob.escape(shards), "*.done.json")):
        os.remove(marker)
    shutil.rmtree(shards)
    print(f"folded the shards' checkpoints into {folder} ({written / 1e6:.2f} MB) and removed the shard outputs "
          f"({before / 1e6:.2f} MB); --keep_shards keeps them", flush=True)


def _done_marker(shard_output: str) -> str:
    return shard_output + ".done.json"


def _settings(settings: StepSettings) -> str:
    """A shard's settings as stored in its done marker (redacted, as everything written)."""
    return json.dumps(redact(public_args(settings)), sort_keys=True, default=str)


def is_done(settings: StepSettings) -> bool:
    """Whether this shard already finished with exactly these settings (exit 0), so it is not run again."""
    try:
        with open(_done_marker(settings.output_path)) as handle:
            return json.load(handle).get("settings") == _settings(settings)
    except (OSError, ValueError):
        return False


def run_shard(step: str, settings: StepSettings, cwd: str, environment: dict[str, str], budget: Any = None
              ) -> dict[str, Any]:
    """Ray task body: one shard's single-process run, `step` = "module.function" taking (settings, budget) (it
    resumes its own checkpoint; budget: the run's --max_cost ledger), with the driver's environment contract
    (`environment`, data/environment.py), holding the shard's lock (a task of a killed driver that still runs makes
    the rerun's task stop, not write too); marks the shard done on exit 0."""
    import importlib

    import ray

    apply(environment)  # before anything reads it (the SDKs, the redaction of keys)
    if not os.path.isdir(cwd):  # relative paths of the command line must mean what they meant to the driver
        return {"code": 2, "error": f"node {socket.gethostname()} has no folder {cwd} (the driver's working "
                                    "directory): run the command from a folder every node shares"}
    os.chdir(cwd)
    try:
        module, function = step.rsplit(".", 1)
        node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
        with redacted_streams(), output_lock(settings.output_path, settings.lock, ray_node=node):
            code = getattr(importlib.import_module(module), function)(settings, budget)
    except UserError as err:  # bad input (or --max_cost reached: exit 1) repeats on a retry: report it instead
        return {"code": getattr(err, "exit_code", 2), "error": str(err)}
    if code == 0:
        write_json_atomic(_done_marker(settings.output_path), {"settings": _settings(settings)})
    return {"code": code}


def run_tasks(step: str, shards: list[StepSettings], options: dict[str, Any], environment: dict[str, str],
              budget: Any = None) -> dict[str, dict]:
    """Run each shard as a Ray task (`options`: its resources; `environment`: the driver's contract; budget: the
    --max_cost ledger every shard shares) until it returns, re-running a crashed one up to TASK_RETRIES times;
    before re-running a shard whose node died, take over its lock once Ray reports that node dead (only then: a lock
    of a live node's task is never taken). Results by shard output path."""
    import ray

    task = ray.remote(run_shard).options(**options, max_retries=0)
    cwd = os.getcwd()
    tries = {shard.output_path: 0 for shard in shards}
    pending = {task.remote(step, shard, cwd, environment, budget): shard for shard in shards}
    results: dict[str, dict] = {}
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        shard = pending.pop(ready[0])
        try:
            results[shard.output_path] = ray.get(ready[0])
        except ray.exceptions.RayError as err:
            if tries[shard.output_path] == TASK_RETRIES:
                results[shard.output_path] = {"code": 1, "error": f"failed after {TASK_RETRIES} retries: "
                                                                  f"{error_line(err)}"}
                continue
            if isinstance(err, ray.exceptions.NodeDiedError):
                take_over_from_dead_node(shard)
            tries[shard.output_path] += 1
            pending[task.remote(step, shard, cwd, environment, budget)] = shard
    return results


def take_over_from_dead_node(shard: StepSettings) -> None:
    """Release the lock a shard's task left on a node that died, once Ray reports that node dead."""
    node = (lock_holder(shard.output_path) or {}).get("ray_node")
    if node and reported_dead(node, DEATH_WAIT_S):
        release_dead_holder(shard.output_path, f"its Ray node {node[:8]} is dead; rows {shard.rows.start_row}-"
                                               f"{shard.rows.end_row} resume on another node")


def run_sharded(step: str, settings: StepSettings, rows: range, num_gpus: int | Callable[[float | None], int],
                recompute: Recompute | None = None, num_cpus: int = 1, budget: Any = None) -> int:
    """Run `step` ("module.function" taking (settings, budget)) on the shards of rows as Ray tasks (num_gpus each
    where the cluster has GPUs, or num_gpus(memory of the cluster's smallest GPU); up to num_cpus CPUs; the driver's
    environment contract given to each; budget: the --max_cost ledger every shard shares) once the cluster preflight
    passed; merge them into --output_path when all ran (`recompute`: the step's whole-run provenance fields).
    Returns the worst shard's exit code."""
    import ray

    provenance = Provenance(f"{step} (sharded)", settings)
    shards = [shard_settings(settings, part) for part in split(rows, settings.num_shards)]
    connect(settings.ray_address)
    results: dict[str, dict] = {}
    try:
        gpus = (num_gpus(smallest_gpu_gb()) if callable(num_gpus) else num_gpus) if ray.cluster_resources().get(
            "GPU", 0) else 0
        cpus = min(num_cpus, max(node["Resources"].get("CPU", 1) for node in ray.nodes() if node.get("Alive")))
        environment = driver_environment()
        preflight(settings.output_path, {"CPU": cpus, "GPU": gpus}, environment)
        todo = []
        for shard in shards:
            if is_done(shard):
                results[shard.output_path] = {"code": 0, "skipped": "done in an earlier run"}
            else:
                todo.append(shard)
        print(f"{len(shards)} shards of rows {rows.start}-{rows.stop}: {len(todo)} to run, "
              f"{len(shards) - len(todo)} done earlier; {gpus} GPU(s) per shard", flush=True)
        results.update(run_tasks(step, todo, {"num_cpus": cpus, "num_gpus": gpus}, environment, budget))
    finally:
        if ray.is_initialized():
            ray.shutdown()
    report = {"shards": [{"rows": [s.rows.start_row, s.rows.end_row], "path": s.output_path, **results[s.output_path]}
                         for s in shards]}
    failed = [r for r in report["shards"] if "error" in r]
    for record in failed:
        print(f"shard rows {record['rows'][0]}-{record['rows'][1]}: {record['error']}", file=sys.stderr)
    if failed:
        if all(r["code"] == 2 for r in failed):
            raise UserError(failed[0]["error"])
        print(f"{len(failed)} of {len(shards)} shards failed; run the same command again to run only those",
              file=sys.stderr)
        return 1
    merged = merge([s.output_path for s in shards], settings.output_path, provenance, report, recompute)
    code = max(r["code"] for r in report["shards"])
    if code == 0 and not settings.keep_shards:
        fold_layouts(settings.output_path)
    target = settings.push_to_hub if isinstance(settings, PushingStepSettings) else None
    if target and push_to_hub(merged, target):
        code = 1
    if code:
        print("some shards have failures left (see above); run the same command again to retry only those",
              file=sys.stderr)
    return code
