"""Row ranges for every step, and --num_shards: contiguous row ranges run as Ray tasks, each a resumable shard."""
from __future__ import annotations

import argparse
import copy
import glob
import json
import os
import socket
import sys
from typing import Any, Callable

from generation.common.cli import Provenance, UserError, error_line, int_at_least, positive_int, public_args
from generation.common.records import RecordStore, read_log
from generation.common.redact import redact, redacted_streams
from generation.common.writing import output_lock, real_path, write_json_atomic
from generation.data.cluster import connect, preflight, smallest_gpu_gb
from generation.data.dataset_io import checkpoint_dir, push_to_hub
from generation.data.merging import Recompute, merge

SHARD_FOLDER = "shards"
TASK_RETRIES = 2  # Ray re-runs a shard task this many times after a crash or a lost node; each run resumes


def add_shard_arguments(parser: argparse.ArgumentParser) -> None:
    """--start_row/--end_row (one row range, e.g. a SLURM array task) and --num_shards/--ray_address (Ray)."""
    group = parser.add_argument_group("row ranges and sharding")
    group.add_argument("--start_row", type=int_at_least(0), default=0, help="first row to process (0-based)")
    group.add_argument("--end_row", type=int_at_least(0), default=None, help="row after the last one to process (default: the last row)")
    group.add_argument("--num_shards", type=positive_int, default=None,
                       help="split the rows into N contiguous ranges, each a Ray task with its own resumable "
                            "shard, merged into --output_path at the end (default: one process, no shards)")
    group.add_argument("--ray_address", default=None,
                       help="with --num_shards: a Ray cluster ('auto', HOST:PORT or ray://HOST:PORT) "
                            "(default: a local Ray started and stopped by this command)")


def wants_shards(args: argparse.Namespace) -> bool:
    """Whether to run on Ray (--num_shards); --ray_address alone is a usage error."""
    if args.ray_address and not args.num_shards:
        raise UserError("--ray_address is used only with --num_shards N; add --num_shards or drop --ray_address")
    return bool(args.num_shards) and not getattr(args, "dry_run", False)  # a dry run estimates the whole run here


def row_range(num_rows: int, args: argparse.Namespace, source: str) -> range:
    """The rows --start_row/--end_row, then --max_rows, select out of num_rows; UserError when they select none."""
    end = num_rows if args.end_row is None else min(args.end_row, num_rows)
    if not args.start_row < end:
        raise UserError(f"--start_row {args.start_row} / --end_row {args.end_row} select no rows of the "
                        f"{num_rows} in {source}")
    return range(args.start_row, end)[:args.max_rows or None]


def split(rows: range, num_shards: int) -> list[range]:
    """num_shards contiguous, near-equal ranges covering rows, empty ones left out (more shards than rows is fine)."""
    bounds = [rows.start + len(rows) * i // num_shards for i in range(num_shards + 1)]
    return [range(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


def shard_path(output_path: str, rows: range) -> str:
    """Where the shard of a row range is written: under the output's checkpoint folder."""
    return os.path.join(checkpoint_dir(output_path), SHARD_FOLDER, f"rows_{rows.start:09d}_{rows.stop:09d}.hf")


def shard_arguments(args: argparse.Namespace, rows: range) -> argparse.Namespace:
    """The arguments of one shard's single-process run: its rows, its own output, no sharding, no hub push."""
    shard = copy.copy(args)
    shard.start_row, shard.end_row, shard.num_shards, shard.ray_address = rows.start, rows.stop, None, None
    shard.max_rows = None  # already applied: rows are absolute indices of the rows the unsharded run would use
    shard.output_path = shard_path(args.output_path, rows)
    if hasattr(shard, "push_to_hub"):
        shard.push_to_hub = None
    return shard


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


def run_store(log_path: str, sync_every: int = 1, own_only: bool = False) -> RecordStore:
    """The cache log at log_path (in an output's or a shard's checkpoint folder), whose lookups also find what the
    run's other logs of that name hold, whatever shard layout or unsharded run wrote them (keys are content keys:
    what was asked and the settings that shape it), so no finished unit is paid for twice; own_only: this log's
    records only (--overwrite)."""
    return RecordStore(log_path, sync_every, also_read=[] if own_only else _sibling_logs(log_path))


def run_keys(log_path: str) -> set[str]:
    """The keys that the log at log_path or any other log of its run holds (read only: a dry run writes nothing)."""
    return {key for log in _sibling_logs(log_path) for key in read_log(log)}


def _sibling_logs(log_path: str) -> list[str]:
    """Every log of the run named like log_path, itself included when it exists."""
    folder, name = os.path.split(log_path)
    return run_logs(folder.removesuffix(".checkpoint"), name)


def _done_marker(shard_output: str) -> str:
    return shard_output + ".done.json"


def _settings(args: argparse.Namespace) -> str:
    """A shard's settings as stored in its done marker (redacted, as everything written)."""
    return json.dumps(redact(public_args(args)), sort_keys=True, default=str)


def is_done(args: argparse.Namespace) -> bool:
    """Whether this shard already finished with exactly these arguments (exit 0), so it is not run again."""
    try:
        with open(_done_marker(args.output_path)) as handle:
            return json.load(handle).get("settings") == _settings(args)
    except (OSError, ValueError):
        return False


def run_shard(step: str, args: argparse.Namespace, cwd: str) -> dict[str, Any]:
    """Ray task body: one shard's single-process run, `step` = "module.function" (it resumes its own checkpoint),
    holding the shard's lock (a task of a killed driver that still runs makes the rerun's task stop, not write too);
    marks the shard done on exit 0."""
    import importlib

    if not os.path.isdir(cwd):  # relative paths of the command line must mean what they meant to the driver
        return {"code": 2, "error": f"node {socket.gethostname()} has no folder {cwd} (the driver's working "
                                    "directory): run the command from a folder every node shares"}
    os.chdir(cwd)
    try:
        module, function = step.rsplit(".", 1)
        with redacted_streams(), output_lock(args.output_path, args.lock):
            code = getattr(importlib.import_module(module), function)(args)
    except UserError as err:  # bad input (or --max_cost reached: exit 1) repeats on a retry: report it instead
        return {"code": getattr(err, "exit_code", 2), "error": str(err)}
    if code == 0:
        write_json_atomic(_done_marker(args.output_path), {"settings": _settings(args)})
    return {"code": code}


def run_sharded(step: str, args: argparse.Namespace, rows: range, num_gpus: int | Callable[[float | None], int],
                recompute: Recompute | None = None, env_names: list[str] | tuple[str, ...] = (),
                num_cpus: int = 1) -> int:
    """Run `step` ("module.function" taking the parsed arguments) on the shards of rows as Ray tasks (num_gpus each
    where the cluster has GPUs, or num_gpus(memory of the cluster's smallest GPU); up to num_cpus CPUs; the
    env_names variables forwarded) once the cluster preflight passed; merge them into --output_path when all ran
    (`recompute`: the step's whole-run provenance fields). Returns the worst shard's exit code."""
    import ray

    provenance = Provenance(f"{step} (sharded)", args)
    shards = [shard_arguments(args, part) for part in split(rows, args.num_shards)]
    connect(args.ray_address, list(env_names))
    results: dict[str, dict] = {}
    try:
        gpus = (num_gpus(smallest_gpu_gb()) if callable(num_gpus) else num_gpus) if ray.cluster_resources().get(
            "GPU", 0) else 0
        cpus = min(num_cpus, max(node["Resources"].get("CPU", 1) for node in ray.nodes() if node.get("Alive")))
        preflight(args.output_path, {"CPU": cpus, "GPU": gpus}, list(env_names))
        task = ray.remote(run_shard).options(num_cpus=cpus, num_gpus=gpus, max_retries=TASK_RETRIES,
                                             retry_exceptions=True)
        todo = {}
        for shard in shards:
            if is_done(shard):
                results[shard.output_path] = {"code": 0, "skipped": "done in an earlier run"}
            else:
                todo[task.remote(step, shard, os.getcwd())] = shard.output_path
        print(f"{len(shards)} shards of rows {rows.start}-{rows.stop}: {len(todo)} to run, "
              f"{len(shards) - len(todo)} done earlier; {gpus} GPU(s) per shard", flush=True)
        pending = list(todo)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            try:
                results[todo[ready[0]]] = ray.get(ready[0])
            except ray.exceptions.RayError as err:
                results[todo[ready[0]]] = {"code": 1, "error": f"failed after {TASK_RETRIES} retries: "
                                                              f"{error_line(err)}"}
    finally:
        if ray.is_initialized():
            ray.shutdown()
    report = {"shards": [{"rows": [s.start_row, s.end_row], "path": s.output_path, **results[s.output_path]}
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
    merged = merge([s.output_path for s in shards], args.output_path, provenance, report, recompute)
    code = max(r["code"] for r in report["shards"])
    if getattr(args, "push_to_hub", None) and push_to_hub(merged, args.push_to_hub):
        code = 1
    if code:
        print("some shards have failures left (see above); run the same command again to retry only those",
              file=sys.stderr)
    return code
