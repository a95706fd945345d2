"""Resume state of --num_shards: disk after 2 -> 3 -> unsharded runs of one output, and a shard's memory against the
rows other shards own.

Usage: python bench/bench_resume_state.py [--tree CHECKOUT] [--rows 200] [--samples 4] [--text_bytes 2000]
    [--memory_rows 2000,20000,60000] [--memory_only]
--tree: the checkout whose generation/ runs (default: this one), to compare two versions on the same machine.
Disk: Step 1 of `--rows` math rows against a local OpenAI-compatible server (each sample `--text_bytes` long), once
unsharded into its own output (one run's resume state), then into another output with --num_shards 2, then 3, then
unsharded (a local Ray each time); after each run, the bytes of OUTPUT.checkpoint (the resume state) and of the
shard folder, and the requests sent. Memory: sibling shard logs holding each of `--memory_rows` other rows (Step 1
sample logs, a Steps 2/3 cache log, an API judge's answer logs with `--samples` answers per row, keyed by the real
request keys) besides the 100 rows of one shard, then, in a fresh process, the peak resident memory that shard adds
when it opens its checkpoint (Step 1's SampleCheckpoint, run_store for a cache whose keys it knows) or judges its rows
(run_judge, every answer found in the other logs, no request).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
OWNED = 100  # rows the measured shard owns


def serve(text_bytes: int) -> tuple[ThreadingHTTPServer, list[int]]:
    """An OpenAI-compatible chat server on 127.0.0.1 answering n texts of text_bytes; the request count."""
    sent = [0]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            return

        def do_GET(self) -> None:
            self._send({"object": "list", "data": [{"id": "loop", "object": "model"}]})

        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            sent[0] += 1
            text = ("Step by step. " * (text_bytes // 14 + 1))[:text_bytes - 16] + "\nThe answer is: 2"
            n = int(request.get("n") or 1)
            self._send({"id": "x", "object": "chat.completion", "created": 0, "model": "loop",
                        "choices": [{"index": i, "message": {"role": "assistant", "content": text},
                                     "finish_reason": "stop"} for i in range(n)],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 10 * n, "total_tokens": 10 + 10 * n}})

        def _send(self, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, sent


def size(path: str) -> int:
    """Bytes of a file or of every file under a folder (0 when absent)."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def step1(tree: str, url: str, data: str, out: str, samples: int, *extra: str) -> None:
    """One Step 1 run of `tree`'s code; raises with its stderr when it fails."""
    proc = subprocess.run([sys.executable, os.path.join(tree, "generation", "generate_reasoning_samples.py"),
                           "--model", "loop", "--base_url", url, "--dataset", "math", "--dataset_path", data,
                           "--output_path", out, "--samples_per_instruction", str(samples), "--max_concurrency",
                           "8", *extra], env={**ENV, "PYTHONPATH": tree}, capture_output=True, text=True, cwd=tree)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])


def disk(tree: str, rows: int, samples: int, text_bytes: int, folder: str) -> None:
    """Print the resume state of one run and of 2 -> 3 -> unsharded runs of another output."""
    data = os.path.join(folder, "math.jsonl")
    with open(data, "w") as handle:
        for i in range(rows):
            handle.write(json.dumps({"problem": f"Compute ${i} + {i}$.", "solution": f"${2 * i}$",
                                     "answer": str(2 * i), "subject": "Prealgebra", "level": 1,
                                     "unique_id": f"test/{i}.json"}) + "\n")
    server, sent = serve(text_bytes)
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    single, out = os.path.join(folder, "single.hf"), os.path.join(folder, "out.hf")
    step1(tree, url, data, single, samples)
    one = size(single + ".checkpoint")
    print(f"one unsharded run: resume state {one / 1e3:.0f} KB, output {size(single) / 1e3:.0f} KB, "
          f"{sent[0]} requests")
    for label, extra in (("--num_shards 2", ["--num_shards", "2"]), ("--num_shards 3", ["--num_shards", "3"]),
                         ("unsharded", [])):
        before, started = sent[0], time.time()
        step1(tree, url, data, out, samples, *extra)
        state = size(out + ".checkpoint")
        print(f"then {label}: resume state {state / 1e3:.0f} KB ({state / one:.2f}x one run), of which shards "
              f"{size(os.path.join(out + '.checkpoint', 'shards')) / 1e3:.0f} KB; {sent[0] - before} requests; "
              f"{time.time() - started:.0f} s")
    server.shutdown()


MEMORY = """
import inspect, json, os, resource, sys
from generation.steps.sample_checkpoint import SampleCheckpoint
from generation.data.sharding import run_store
out, kind, owned = sys.argv[1], sys.argv[2], int(sys.argv[3])
keys = [f"{i}-h" for i in range(owned)]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if kind == "samples":
    store = SampleCheckpoint(out, {"fp": 1}, keys, ["q"] * owned, False)
    assert store.taken == owned * 4, store.taken
else:  # a cache whose keys the shard knows before opening it (main: a callable `wanted`; now: the keys themselves)
    mine = {f"k{i}" for i in range(owned)}
    log = os.path.join(out + ".checkpoint", "shards", "mine.hf.checkpoint", "cache.jsonl")
    required = inspect.signature(run_store).parameters["wanted"].default is inspect.Parameter.empty
    store = run_store(log, wanted=mine if required else mine.__contains__)
    assert all(store.get(key) for key in mine)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)
"""

JUDGE = """
import json, os, resource, sys
import datasets
from generation.common.cli import settings_from
from generation.judges import judging
from generation.steps.settings import VerifySettings
from generation.steps.verify import build_parser
out, url, (owned, others, samples, text_bytes, write) = sys.argv[1], sys.argv[2], map(int, sys.argv[3:8])
options = settings_from(VerifySettings, vars(build_parser().parse_args(["--base_url", url]))).judges
spec = judging.resolve_judges(["Loop=openai_compatible:judge"], options)[0]


def rows(span):
    return datasets.Dataset.from_dict({"instruction": [f"Compute ${i} + {i}$." for i in span],
                                       "samples": [[f"Step {j}. The answer is: {2 * i}" for j in range(samples)]
                                                   for i in span]})


if write:  # another layout's answer logs (4 shards) for the others' rows and the measured shard's own
    settings, config = judging.judge_settings(spec, options), judging.api_config(spec, options)
    total = others + owned
    for part in range(4):
        span = range(part * total // 4, (part + 1) * total // 4)
        folder = os.path.join(out + ".checkpoint", "shards", f"rows_{span.start:09d}_{span.stop:09d}.hf.checkpoint")
        os.makedirs(folder)
        with open(judging.cache_path(folder, spec, False), "w") as handle:
            for job in judging.api_jobs(config, judging.judge_chats(rows(span), settings, options), settings):
                handle.write(json.dumps({"k": job.key, "v": {"texts": ["x" * text_bytes], "usage": {},
                                                             "finishes": ["stop"]}}) + "\\n")
    sys.exit()
mine = rows(range(others, others + owned))
judging.run_judge(spec, rows(range(-1, 0)), options, out + ".warm")  # lazy imports, the client: not the cache's
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
_, stats = judging.run_judge(spec, mine, options, os.path.join(out + ".checkpoint", "shards", "mine.hf.checkpoint"))
assert stats["cached"] == owned * samples and stats["calls"] == 0, stats
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)
"""


def run_code(tree: str, code: str, *argv: object) -> str:
    """The last word a script printed, run with `tree`'s code in a fresh process."""
    proc = subprocess.run([sys.executable, "-c", code, *map(str, argv)], capture_output=True, text=True,
                          env={**ENV, "PYTHONPATH": tree}, cwd=tree)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    return (proc.stdout.split() or [""])[-1]


def memory(tree: str, counts: list[int], samples: int, text_bytes: int, folder: str) -> None:
    """Print the memory a shard owning OWNED rows adds when other shards' logs hold `counts` rows."""
    server, _ = serve(text_bytes)
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    for count in counts:
        out = os.path.join(folder, f"mem{count}.hf")
        shards = os.path.join(out + ".checkpoint", "shards")
        text = "x" * text_bytes
        for part in range(4):  # four sibling shards of another layout, each a quarter of the rows
            rows = range(part * count // 4, (part + 1) * count // 4)
            log_folder = os.path.join(shards, f"rows_{rows.start:09d}_{rows.stop:09d}.hf.checkpoint")
            os.makedirs(log_folder)
            with open(os.path.join(log_folder, "samples.jsonl"), "w") as handle:
                handle.write(json.dumps({"k": "fingerprint", "v": {"fp": 1}}) + "\n")
                for row in rows:
                    handle.write(json.dumps({"k": f"s/{row}-h/0", "v": {"texts": [text] * 4, "usage": {},
                                                                        "finishes": ["stop"] * 4}}) + "\n")
            with open(os.path.join(log_folder, "cache.jsonl"), "w") as handle:
                for row in rows:
                    handle.write(json.dumps({"k": f"k{row}", "v": {"texts": [text] * 4, "usage": {}}}) + "\n")
        logs = sum(size(os.path.join(shards, name, "samples.jsonl")) for name in os.listdir(shards))
        figures = [run_code(tree, MEMORY, out, kind, OWNED) for kind in ("samples", "wanted")]
        shutil.rmtree(out + ".checkpoint")
        run_code(tree, JUDGE, out, url, OWNED, count, samples, text_bytes, 1)
        judge_logs = size(shards)
        figures.append(run_code(tree, JUDGE, out, url, OWNED, count, samples, text_bytes, 0))
        print(f"other shards' rows {count}: sample logs {logs / 1e6:.1f} MB; a shard of {OWNED} rows adds "
              f"{figures[0]} MB (Step 1), {figures[1]} MB (a cache whose keys it knows: LLM fallback, reward models); "
              f"judge answer logs {judge_logs / 1e6:.1f} MB ({count * samples} other answers): its API judge adds "
              f"{figures[2]} MB")
        shutil.rmtree(out + ".checkpoint")
        shutil.rmtree(out + ".warm")
    server.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", default=ROOT)
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--text_bytes", type=int, default=2000)
    parser.add_argument("--memory_rows", default="2000,20000,60000")
    parser.add_argument("--memory_only", action="store_true", help="skip the disk figures (four Step 1 runs on Ray)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        print(f"code: {args.tree}")
        if not args.memory_only:
            disk(args.tree, args.rows, args.samples, args.text_bytes, folder)
        memory(args.tree, [int(n) for n in args.memory_rows.split(",")], args.samples, args.text_bytes, folder)


if __name__ == "__main__":
    main()
