"""The Ray cluster of --num_shards: join it with the driver's code, and check every node before any shard.

The preflight runs one small task on each node a shard could land on and refuses (one line naming the node and the
fix) when the output folder is not shared, the driver's working directory is missing, the code or the key package
versions differ, the node sets a variable of the environment contract (data/environment.py) that the driver does not
or lacks a file one names, the node died, or no node is big enough for a shard.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import os
import socket
import subprocess
import sys
import time
import uuid
from typing import Any

from generation.common.cli import UserError, error_line
from generation.common.processes import guard_descendants
from generation.data.environment import contract_names, family_of, missing_files, node_only

GENERATION_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("vllm", "transformers", "torch", "datasets")  # their versions must match the driver's on every node
CODE_EXCLUDES = ["__pycache__", "*.pyc"]
CONNECT_TIMEOUT_S = 5.0
PREFLIGHT_TIMEOUT_S = 300.0  # a node's first task unpacks the shipped code and may start a worker
DEATH_WAIT_S = 60.0  # how long to wait for Ray to report dead a node that vanished (it misses health checks first)


def check_reachable(address: str) -> None:
    """UserError unless something listens at a HOST:PORT Ray address (fast, before Ray waits for it)."""
    host, _, port = address.split("://")[-1].rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=CONNECT_TIMEOUT_S):
            return
    except (OSError, ValueError) as err:
        raise UserError(f"--ray_address {address} is unreachable ({error_line(err)}); start the cluster "
                        "(`ray start --head`), fix the address, or leave --ray_address out for a local Ray") from err


def connect(address: str | None) -> None:
    """Join the Ray cluster at address ('auto': the one on this machine), or start a local one (None) whose
    processes die with this one (common.processes); every task runs the driver's generation package (shipped as a
    py_module). No variable goes into the runtime_env: Ray's runtime_env agent logs it (the environment contract
    travels in the tasks' arguments)."""
    import ray

    if address is None:
        guard_descendants()  # a SIGKILLed driver takes its local Ray (shards, agents) with it at once
    elif address != "auto":
        check_reachable(address)
    runtime_env = {"py_modules": [GENERATION_DIR], "excludes": CODE_EXCLUDES}
    try:
        ray.init(address=address or "local", runtime_env=runtime_env, log_to_driver=True,
                 **({} if address else {"include_dashboard": False}))
    except (ConnectionError, RuntimeError, ValueError) as err:
        if any("Authentication" in f"{type(cause).__name__} {cause}" for cause in _causes(err)):
            raise UserError(f"Ray at --ray_address {address} uses token authentication and refused this command's "
                            "token: export RAY_AUTH_MODE=token and the cluster's token (RAY_AUTH_TOKEN, or "
                            "RAY_AUTH_TOKEN_PATH / ~/.ray/auth_token) where the command starts") from err
        raise UserError(f"cannot join Ray at --ray_address {address}: {error_line(err)}") from err


def _causes(err: BaseException) -> list[BaseException]:
    """An exception and the ones it was raised from or during, outermost first."""
    chain: list[BaseException] = []
    while err is not None and err not in chain:
        chain.append(err)
        err = err.__cause__ or err.__context__
    return chain


def code_hash(folder: str = GENERATION_DIR) -> str:
    """Hash of the Python sources under folder (names and contents)."""
    digest = hashlib.sha256()
    for root, dirs, files in sorted(os.walk(folder)):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(f for f in files if f.endswith(".py")):
            path = os.path.join(root, name)
            digest.update(os.path.relpath(path, folder).encode())
            with open(path, "rb") as handle:
                digest.update(handle.read())
    return digest.hexdigest()[:16]


def package_versions() -> dict[str, str | None]:
    """Installed versions of PACKAGES (None when missing)."""
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def node_report(probe: str, token: str, reply: str, cwd: str, files: dict[str, str]) -> dict[str, Any]:
    """Preflight task body on one node: read the driver's probe, write `reply` back, report code, packages, the
    contract variables the node sets itself and which of the driver's files (`files`: CA bundles) it lacks."""
    seen = None
    try:
        with open(probe, encoding="utf-8") as handle:
            seen = handle.read()
    except OSError:
        pass
    wrote = "the probe is not visible"
    if seen == token:
        try:
            with open(reply, "w", encoding="utf-8") as handle:
                handle.write(token)
            wrote = ""
        except OSError as err:
            wrote = error_line(err)
    return {"sees_probe": seen == token, "write_error": wrote, "cwd": os.path.isdir(cwd), "code": code_hash(),
            "packages": package_versions(), "contract": sorted(contract_names(dict(os.environ))),
            "missing_files": missing_files(files), "python": sys.version.split()[0]}


def fits(request: dict[str, float], resources: dict[str, float]) -> bool:
    """Whether a node's total resources hold one shard's request."""
    return all(resources.get(name, 0) >= amount for name, amount in request.items() if amount)


def describe(resources: dict[str, float], names: tuple[str, ...] = ("CPU", "GPU")) -> str:
    """'2 GPU, 1 CPU'-style text of the resources that matter."""
    return ", ".join(f"{resources.get(name, 0):g} {name}" for name in names)


def node_name(node: dict) -> str:
    """How a node is named in messages: its address and the start of its id."""
    return f"{node.get('NodeManagerAddress', '?')} ({node['NodeID'][:8]})"


def node_problems(node: dict, report: dict, mine: dict, folder: str, reply_seen: bool) -> list[str]:
    """One line per thing wrong on a node (empty when it is ready), each naming the node and the fix."""
    name = f"node {node_name(node)}"
    problems = []
    if not report["sees_probe"]:  # then its writes cannot reach the driver either: the other checks still apply
        problems.append(f"{name} does not see the output folder {folder} (the driver's probe file is not there): "
                        "put --output_path on a filesystem every node mounts at the same path (NFS, Lustre, ...)")
    elif report["write_error"] or not reply_seen:
        why = report["write_error"] or "its file did not reach the driver"
        problems.append(f"{name} cannot write to {folder} so that the driver sees it ({why}): make the folder "
                        "writable and shared by every node")
    if not report["cwd"]:
        problems.append(f"{name} has no folder {mine['cwd']} (the driver's working directory; relative paths are "
                        "read from it): run the command from a folder every node shares")
    if report["code"] != mine["code"]:
        problems.append(f"{name} runs other code than the driver's generation/: the shipped py_module did not "
                        "reach it; check the node's Ray runtime_env logs")
    for package, version in mine["packages"].items():
        if report["packages"].get(package) != version:
            problems.append(f"{name} has {package} {report['packages'].get(package) or 'not installed'} but the "
                            f"driver has {version or 'none'}: install the same versions on every node")
    extra = node_only(set(report["contract"]), mine["environment"])
    if extra:
        problems.append(f"{name} sets {', '.join(extra)} but the driver does not, so its shards would not talk to "
                        "the servers the single run talks to: export the same where the command starts (it is "
                        "forwarded to every shard), or unset it where that node's `ray start` runs")
    if report["missing_files"]:
        problems.append(f"{name} has no {', '.join(report['missing_files'])} (named by the driver's environment, "
                        "which every shard gets): put the file at that path on every node")
    return problems


def preflight(output_path: str, request: dict[str, float], environment: dict[str, str]) -> None:
    """Before any shard: UserError unless some node fits a shard's request and every such node is alive, sees the
    output folder, can write to it, has the driver's working directory, code, package versions, sets no contract
    variable the driver does not (`environment`: what every shard gets) and has the files it names."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = [node for node in ray.nodes() if node.get("Alive")]
    ready = [node for node in nodes if fits(request, node.get("Resources", {}))]
    if not ready:
        largest = max(nodes, key=lambda n: [n.get("Resources", {}).get(k, 0) for k in request])
        raise UserError(f"each shard needs {describe(request)} but the largest Ray node, {node_name(largest)}, has "
                        f"{describe(largest.get('Resources', {}))}: ask for fewer per shard (e.g. a smaller "
                        "--tensor_parallel_size) or add a node that has them")
    folder = os.path.dirname(os.path.abspath(output_path))
    token = uuid.uuid4().hex
    probe = os.path.join(folder, f".{os.path.basename(os.path.abspath(output_path))}.preflight-{token[:12]}")
    files = {name: value for name, value in environment.items() if family_of(name).file}
    mine = {"cwd": os.getcwd(), "code": code_hash(), "packages": package_versions(), "environment": environment}
    task = ray.remote(node_report)
    replies = {node["NodeID"]: f"{probe}.{node['NodeID'][:12]}" for node in ready}
    os.makedirs(folder, exist_ok=True)  # where the output goes (its lock is there already in most steps)
    with open(probe, "w", encoding="utf-8") as handle:
        handle.write(token)
    try:
        refs = [task.options(num_cpus=0, max_retries=0, scheduling_strategy=NodeAffinitySchedulingStrategy(
            node["NodeID"], soft=False)).remote(probe, token, replies[node["NodeID"]], mine["cwd"], files)
            for node in ready]
        problems = []
        for node, ref in zip(ready, refs):
            try:
                report = ray.get(ref, timeout=PREFLIGHT_TIMEOUT_S)
            except (ray.exceptions.RayError, TimeoutError) as err:
                if isinstance(err, ray.exceptions.NodeDiedError) or reported_dead(node["NodeID"], DEATH_WAIT_S):
                    problems.append(f"node {node_name(node)} is dead (Ray lost it during the preflight): start it "
                                    "again (`ray start --address ...` there) or wait until `ray status` no longer "
                                    "lists it, then run the same command again")
                else:
                    problems.append(f"node {node_name(node)} did not run the preflight task ({error_line(err)}): "
                                    "check that its Ray and Python match the driver's")
                continue
            problems += node_problems(node, report, mine, folder, _read(replies[node["NodeID"]]) == token)
    finally:
        for path in [probe, *replies.values()]:
            if os.path.exists(path):
                os.remove(path)
    for line in problems[1:]:
        print(f"preflight: {line}", file=sys.stderr)
    if problems:
        more = f" ({len(problems) - 1} more problem(s) above)" if len(problems) > 1 else ""
        raise UserError(f"cluster preflight: {problems[0]}{more}")
    print(f"cluster preflight: {len(ready)} node(s) ready (shared output folder, same code and packages)", flush=True)


def dead_nodes() -> set[str]:
    """Ids of the nodes Ray reports dead."""
    import ray

    return {node["NodeID"] for node in ray.nodes() if not node.get("Alive")}


def reported_dead(node_id: str, wait_s: float) -> bool:
    """Whether Ray reports the node dead, waiting up to wait_s for it to say so (a node that vanished is marked dead
    once it missed its health checks)."""
    deadline = time.monotonic() + wait_s
    while node_id not in dead_nodes():
        if time.monotonic() > deadline:
            return False
        time.sleep(1.0)
    return True


def node_gpu_memory_gb() -> list[float]:
    """Task body: the memory of each GPU of this node, from nvidia-smi ([] without one)."""
    try:
        listed = subprocess.run(["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
                                capture_output=True, text=True, timeout=60).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return []
    return [float(mib) / 1024 for mib in listed if mib.replace(".", "", 1).isdigit()]


def smallest_gpu_gb() -> float | None:
    """The memory of the smallest GPU on the cluster's GPU nodes (None when no node reports one)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    task = ray.remote(node_gpu_memory_gb)
    refs = [task.options(num_cpus=0, max_retries=0, scheduling_strategy=NodeAffinitySchedulingStrategy(
        node["NodeID"], soft=False)).remote() for node in ray.nodes()
        if node.get("Alive") and node.get("Resources", {}).get("GPU")]
    sizes = [size for sizes in ray.get(refs, timeout=PREFLIGHT_TIMEOUT_S) for size in sizes]
    return min(sizes) if sizes else None


def _read(path: str) -> str | None:
    """A small text file's content (None when unreadable)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return None


def held_cpus() -> int:
    """The CPUs this process may keep busy: those its Ray task holds (inside a shard), else those the OS gives it."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        context = ray.get_runtime_context()
        held = context.get_assigned_resources().get("CPU") if context.worker.mode == ray.WORKER_MODE else None
        if held:
            return max(1, int(held))
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
