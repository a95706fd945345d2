"""Resume state of --num_shards: disk after 2 -> 3 -> unsharded runs of one output, and a shard's memory against the
rows other shards own.

Usage: python bench/bench_resume_state.py [--tree CHECKOUT] [--rows 200] [--samples 4] [--text_bytes 2000]
    [--memory_rows 2000,20000,60000]
--tree: the checkout whose generation/ runs (default: this one), to compare two versions on the same machine.
Disk: Step 1 of `--rows` math rows against a local OpenAI-compatible server (each sample `--text_bytes` long), once
unsharded into its own output (one run's resume state), then into another output with --num_shards 2, then 3, then
unsharded (a local Ray each time); after each run, the bytes of OUTPUT.checkpoint (the resume state) and of the
shard folder, and the requests sent. Memory: sibling shard logs holding each of `--memory_rows` rows (Step 1 sample
logs, and Steps 2/3 cache logs), then, in a fresh process, the peak resident memory added by opening the checkpoint of
a shard that owns 100 of those rows (Step 1's SampleCheckpoint, Steps 2/3's run_store).
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
if kind == "wanted" and "wanted" not in inspect.signature(run_store).parameters:
    print("n/a")
    sys.exit()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if kind == "samples":
    store = SampleCheckpoint(out, {"fp": 1}, keys, ["q"] * owned, False)
    assert store.taken == owned * 4, store.taken
else:
    mine = {f"k{i}" for i in range(owned)}
    log = os.path.join(out + ".checkpoint", "shards", "mine.hf.checkpoint", "cache.jsonl")
    store = run_store(log, wanted=mine.__contains__) if kind == "wanted" else run_store(log)
    assert all(store.get(key) for key in mine)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)
"""


def memory(tree: str, counts: list[int], text_bytes: int, folder: str) -> None:
    """Print the memory a shard owning OWNED rows adds when other shards' logs hold `counts` rows."""
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
        figures = []
        for kind in ("samples", "cache", "wanted"):
            proc = subprocess.run([sys.executable, "-c", MEMORY, out, kind, str(OWNED)], capture_output=True,
                                  text=True, env={**ENV, "PYTHONPATH": tree}, cwd=tree)
            if proc.returncode:
                raise RuntimeError(proc.stderr[-3000:])
            figures.append(proc.stdout.split()[-1])
        print(f"other shards' rows {count}: sample logs {logs / 1e6:.1f} MB; a shard of {OWNED} rows adds "
              f"{figures[0]} MB (Step 1), {figures[1]} MB (a Steps 2/3 cache, keys unknown: judges) and "
              f"{figures[2]} MB (keys known: LLM fallback, reward models)")
        shutil.rmtree(out + ".checkpoint")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", default=ROOT)
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--text_bytes", type=int, default=2000)
    parser.add_argument("--memory_rows", default="2000,20000,60000")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        print(f"code: {args.tree}")
        disk(args.tree, args.rows, args.samples, args.text_bytes, folder)
        memory(args.tree, [int(n) for n in args.memory_rows.split(",")], args.text_bytes, folder)


if __name__ == "__main__":
    main()
