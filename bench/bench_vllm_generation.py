"""Step 1 with vLLM: the whole command vs calling vllm.LLM.generate directly on the same prompts (CPU, tiny model).

Usage: python bench/bench_vllm_generation.py [--problems 128] [--samples 4] [--max_new_tokens 64] [--repeats 3]
Builds a tiny random Llama chat model and a MATH-500-schema file of `--problems` rows, then alternates:
- ours: `generate_reasoning_samples.py --backend vllm` (engine step loop, a checkpoint record per finished prompt,
  output and provenance), timed from the provenance's generation_time_s (engine start + generation) and as a process;
- direct: a child process that renders the same chat prompts, starts `vllm.LLM` with the same engine arguments
  (start_engine) and calls `LLM.generate` once with `SamplingParams(n=samples)`, timed over the same span
  (engine start, generation and stop_engine, which the command also does before it writes its output).
Both runs sample, so their lengths differ a little (EOS); completion tokens per second is the fair comparison.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "generation"), os.path.join(ROOT, "tests")]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
       "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"), "VLLM_NO_USAGE_STATS": "1",
       "VLLM_LOGGING_LEVEL": "WARNING", "TOKENIZERS_PARALLELISM": "false"}

DIRECT = """
import json, sys, time
sys.path.insert(0, {generation!r})
from datasets import load_from_disk
from transformers import AutoTokenizer
from vllm import SamplingParams
from backends.vllm_engine import start_engine, stop_engine
args = json.loads(sys.argv[1])
tok = AutoTokenizer.from_pretrained(args["model"])
rows = load_from_disk(args["prompts_from"])["data"]["instruction"]
ids = [tok.apply_chat_template([{{"role": "user", "content": r}}], add_generation_prompt=True, tokenize=True,
                               return_dict=True)["input_ids"] for r in rows]
start = time.perf_counter()
llm = start_engine(model=args["model"], tensor_parallel_size=1, gpu_memory_utilization=0.9,
                   max_model_len=args["max_length"], seed=42, trust_remote_code=False)
params = SamplingParams(n=args["samples"], temperature=0.7, top_p=0.9, max_tokens=args["max_new_tokens"],
                        stop_token_ids=[tok.eos_token_id])
outs = llm.generate([{{"prompt_token_ids": i}} for i in ids], params, use_tqdm=False)
seconds = time.perf_counter() - start
report = {{"seconds": seconds, "tokens": sum(len(c.token_ids) for o in outs for c in o.outputs)}}
# the same engine, alternately: LLM.generate vs our step loop with a checkpoint record per finished prompt
from common.records import RecordStore
from backends.vllm_engine import generate_streaming, sequences_in_flight
for round in range(2):
    start = time.perf_counter()
    outs = llm.generate([{{"prompt_token_ids": i}} for i in ids], params, use_tqdm=False)
    report[f"generate_s_{{round}}"] = time.perf_counter() - start
    report[f"generate_tokens_{{round}}"] = sum(len(c.token_ids) for o in outs for c in o.outputs)
    tokens = []
    with RecordStore(args["store"] + str(round), sync_every=64) as store:
        def finished(index, out):
            store.put(f"s/{{index}}/0", {{"texts": [c.text for c in out.outputs], "usage": {{}}}})
            tokens.append(sum(len(c.token_ids) for c in out.outputs))
        start = time.perf_counter()
        generate_streaming(llm, (({{"prompt_token_ids": i}}, params.clone()) for i in ids), finished,
                           sequences_in_flight(llm, None))
        report[f"stream_s_{{round}}"] = time.perf_counter() - start
    report[f"stream_tokens_{{round}}"] = sum(tokens)
start = time.perf_counter()
stop_engine(llm)  # as the command does (left running, the engine's processes keep the interpreter alive)
report["stop_s"] = time.perf_counter() - start
print(json.dumps(report), flush=True)
"""


def math_rows(count: int) -> list[dict]:
    """MATH-500-schema rows with distinct problems."""
    return [{"problem": f"Compute ${i} + {i * 7 % 13}$ and explain each step.", "solution": f"\\boxed{{{i}}}",
             "answer": str(i), "subject": "Prealgebra", "level": 1, "unique_id": f"test/{i}.json"}
            for i in range(count)]


def run_ours(model: str, data: str, out: str, args: argparse.Namespace) -> dict:
    """One Step 1 command on a fresh output; its generation span, process wall time and completion tokens."""
    cmd = [sys.executable, os.path.join(ROOT, "generation", "generate_reasoning_samples.py"), "--model", model,
           "--backend", "vllm", "--dataset", "math", "--dataset_path", data, "--output_path", out,
           "--samples_per_instruction", str(args.samples), "--max_new_tokens", str(args.max_new_tokens),
           "--max_length", "512", "--overwrite"]
    start = time.perf_counter()
    subprocess.run(cmd, env=ENV, check=True, capture_output=True)
    wall = time.perf_counter() - start
    prov = json.load(open(os.path.join(out, "provenance.json")))
    return {"seconds": prov["generation_time_s"], "wall": wall, "tokens": prov["token_usage"]["completion_tokens"]}


def run_direct(model: str, prompts_from: str, args: argparse.Namespace) -> dict:
    """LLM.generate in a child process on the prompts of a Step 1 output; its engine+generate span and tokens."""
    spec = json.dumps({"model": model, "prompts_from": prompts_from, "samples": args.samples,
                       "max_new_tokens": args.max_new_tokens, "max_length": 512,
                       "store": os.path.join(os.path.dirname(prompts_from), "stream.jsonl")})
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", DIRECT.format(generation=os.path.join(ROOT, "generation")), spec],
                          env=ENV, check=True, capture_output=True, text=True)
    report = next(line for line in reversed(done.stdout.splitlines()) if line.startswith('{"seconds"'))
    return {**json.loads(report), "wall": time.perf_counter() - start}


def main() -> None:
    """Alternate ours and direct `--repeats` times; print each pair and the best tokens/s of each."""
    from fixtures_benchmarks import write_benchmark
    from tiny_models import build_chat_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=128)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--max_new_tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = build_chat_model(os.path.join(tmp, "tiny-chat"))
        data = write_benchmark("math", tmp, rows=math_rows(args.problems))
        out = os.path.join(tmp, "ours.hf")
        results: dict[str, list[dict]] = {"ours": [], "direct": []}
        runners = {"ours": lambda: run_ours(model, data, out, args), "direct": lambda: run_direct(model, out, args)}
        results["ours"].append(runners["ours"]())  # its output holds the prompts the direct runs read
        for repeat in range(args.repeats):  # alternating which goes first, so neither always pays a cold start
            for name in ("direct", "ours") if repeat % 2 == 0 else ("ours", "direct"):
                results[name].append(runners[name]())
            print(json.dumps({name: runs[-1] for name, runs in results.items()}), flush=True)
    best = {name: max(r["tokens"] / (r["seconds"] + r.get("stop_s", 0)) for r in runs)
            for name, runs in results.items()}
    direct = results["direct"]
    loop = {kind: max(r[f"{kind}_tokens_{i}"] / r[f"{kind}_s_{i}"] for r in direct for i in range(2))
            for kind in ("generate", "stream")}
    print(f"load average {os.getloadavg()[0]:.1f}; {args.problems} prompts x {args.samples} samples x "
          f"<= {args.max_new_tokens} tokens; best completion tokens/s:\n"
          f"  whole span (engine start, generation, engine stop): ours (the command) {best['ours']:.0f}, "
          f"direct LLM.generate {best['direct']:.0f}: overhead {100 * (best['direct'] / best['ours'] - 1):+.1f}%\n"
          f"  generation only, same engine: our step loop + checkpoint {loop['stream']:.0f}, LLM.generate "
          f"{loop['generate']:.0f}: overhead {100 * (loop['generate'] / loop['stream'] - 1):+.1f}%")


if __name__ == "__main__":
    main()
