"""Step 1 with vLLM: the whole command vs a plain script calling vllm.LLM + LLM.generate on the same prompts (CPU,
tiny model), each broken down into phases.

Usage: python bench/bench_vllm_generation.py [--problems 256] [--samples 8] [--max_new_tokens 128] [--repeats 3]
                                             [--same_engine]
Builds a tiny random Llama chat model and a MATH-500-schema file of `--problems` rows, then runs, alternating which
goes first, `--repeats` times each:
- ours: `generate_reasoning_samples.py --backend vllm` in a fresh process, through a bootstrap that times its phases
  from outside (wrapping the step's functions; nothing is added to the product code);
- plain: a fresh process that imports vLLM, reads the same file with `datasets`, renders the same chat prompts,
  starts `vllm.LLM` with the same engine arguments (seed, max_model_len, float32 and eager on CPU), calls
  `LLM.generate` once with the same SamplingParams(n=samples) and saves the samples with `datasets`.
Each run's process wall time (from the launch to the exit, as `time` would show) is split into phases; medians over
the runs are printed per phase, with the load average. Both sample, so their lengths differ a little (EOS):
completion tokens are printed too. `--same_engine` adds the earlier check: on one warm engine, LLM.generate vs our
step loop with a checkpoint record per finished prompt, twice each.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GENERATION = os.path.join(ROOT, "generation")
sys.path[:0] = [ROOT, os.path.join(ROOT, "scripts"), os.path.join(ROOT, "tests")]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
       "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"), "VLLM_NO_USAGE_STATS": "1",
       "TOKENIZERS_PARALLELISM": "false", "VLLM_LOGGING_LEVEL": "ERROR"}  # what the command sets for itself
MAX_LENGTH = 512

# Runs the Step 1 script as __main__ (so that vLLM's spawned processes import it, as they do for the command),
# timing the step's phases by wrapping its functions.
OURS = """
import json, os, runpy, sys, time
booted = time.time()
generation, report, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
sys.path.insert(0, os.path.dirname(generation))  # the checkout that holds this generation package
marks = []
start = time.time()
from generation import generate_reasoning_samples
marks.append(["imports", start, time.time()])
import generation.backends.local_generation as lg
import generation.steps.generate as step
import generation.steps.sample_checkpoint as checkpoint

def timed(owner, name, phase):
    function = getattr(owner, name)
    def wrapper(*args, **kwargs):
        begun = time.time()
        try:
            return function(*args, **kwargs)
        finally:
            marks.append([phase, begun, time.time()])
    setattr(owner, name, wrapper)

for owner, name, phase in [(step, "check_model", "tokenizer + model checks"), (step, "load_benchmark", "dataset load"),
                           (step, "SampleCheckpoint", "checkpoint open"), (lg.VllmBackend, "__init__", "engine start"),
                           (lg.VllmBackend, "run", "generation"), (lg.VllmBackend, "close", "engine stop"),
                           (checkpoint.SampleCheckpoint, "add", "checkpoint writes"),
                           (step, "save_atomic", "save + provenance")]:
    timed(owner, name, phase)
main_start = time.time()
sys.argv = [os.path.join(generation, "generate_reasoning_samples.py"), *argv]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    json.dump({"booted": booted, "main": [main_start, time.time()], "marks": marks}, open(report, "w"))
"""

# A plain script: what a user would write with vLLM and datasets alone; stamps its phase boundaries.
PLAIN = """
import json, sys, time
booted = time.time()
args, marks = json.loads(sys.argv[1]), []
start = time.time()
import torch
from datasets import Dataset, load_dataset
from transformers import AutoTokenizer
from vllm import LLM, SamplingParams
marks.append(["imports", start, time.time()])
start = time.time()
tok = AutoTokenizer.from_pretrained(args["model"])
problems = load_dataset("json", data_files=args["data"], split="train")["problem"]
ids = [tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, tokenize=True,
                               return_dict=True)["input_ids"] for p in problems]
marks.append(["dataset load + prompts", start, time.time()])
start = time.time()
cpu = {} if torch.cuda.is_available() else {"enforce_eager": True, "dtype": "float32"}
llm = LLM(model=args["model"], max_model_len=args["max_length"], seed=42, **cpu)
marks.append(["engine start", start, time.time()])
start = time.time()
params = [SamplingParams(n=args["samples"], temperature=0.7, top_p=0.9, stop_token_ids=[tok.eos_token_id],
                         max_tokens=min(args["max_new_tokens"], args["max_length"] - len(i))) for i in ids]
outs = llm.generate([{"prompt_token_ids": i} for i in ids], params, use_tqdm=False)
marks.append(["generation", start, time.time()])
start = time.time()
Dataset.from_dict({"problem": problems,
                   "samples": [[c.text for c in o.outputs] for o in outs]}).save_to_disk(args["out"])
marks.append(["save + provenance", start, time.time()])
tokens = sum(len(c.token_ids) for o in outs for c in o.outputs)
json.dump({"booted": booted, "main": [marks[0][2], time.time()], "marks": marks, "tokens": tokens},
          open(args["report"], "w"))
"""

# The earlier same-engine check: LLM.generate vs our step loop writing each finished prompt to a RecordStore.
SAME_ENGINE = """
import json, sys, time
sys.path.insert(0, {root!r})
from transformers import AutoTokenizer
from vllm import SamplingParams
from generation.backends.vllm_engine import generate_streaming, sequences_in_flight, start_engine, stop_engine
from generation.common.records import RecordStore
args = json.loads(sys.argv[1])
tok = AutoTokenizer.from_pretrained(args["model"])
ids = [tok.apply_chat_template([{{"role": "user", "content": f"Problem {{i}}: compute {{i}} + 1."}}],
                               add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
       for i in range(args["problems"])]
llm = start_engine(model=args["model"], max_model_len=args["max_length"], seed=42)
params = SamplingParams(n=args["samples"], temperature=0.7, top_p=0.9, max_tokens=args["max_new_tokens"],
                        stop_token_ids=[tok.eos_token_id])
report = {{}}
for round in range(2):
    start = time.perf_counter()
    outs = llm.generate([{{"prompt_token_ids": i}} for i in ids], params, use_tqdm=False)
    report.setdefault("generate", []).append(sum(len(c.token_ids) for o in outs for c in o.outputs)
                                             / (time.perf_counter() - start))
    tokens = []
    with RecordStore(args["store"] + str(round), sync_every=64) as store:
        def finished(index, out):
            store.put(f"s/{{index}}/0", {{"texts": [c.text for c in out.outputs], "usage": {{}}}})
            tokens.append(sum(len(c.token_ids) for c in out.outputs))
        start = time.perf_counter()
        generate_streaming(llm, (({{"prompt_token_ids": i}}, params.clone()) for i in ids), finished,
                           sequences_in_flight(llm, None))
        report.setdefault("stream", []).append(sum(tokens) / (time.perf_counter() - start))
stop_engine(llm)
print(json.dumps(report), flush=True)
"""


def math_rows(count: int) -> list[dict]:
    """MATH-500-schema rows with distinct problems."""
    return [{"problem": f"Compute ${i} + {i * 7 % 13}$ and explain each step.", "solution": f"\\boxed{{{i}}}",
             "answer": str(i), "subject": "Prealgebra", "level": 1, "unique_id": f"test/{i}.json"}
            for i in range(count)]


def phases(launched: float, ended: float, report: dict) -> dict[str, float]:
    """Seconds per phase of one run: the marked ones, interpreter start, the rest of main, and the exit."""
    seconds: dict[str, float] = {"interpreter start": report["booted"] - launched}
    for name, start, end in report["marks"]:
        seconds[name] = seconds.get(name, 0.0) + end - start
    inside = seconds.pop("checkpoint writes", 0.0)  # within generation: shown apart
    main_start, main_end = report["main"]
    marked = sum(end - start for name, start, end in report["marks"] if name not in ("imports", "checkpoint writes"))
    seconds["other work in main"] = main_end - main_start - marked
    seconds["exit (after main)"] = ended - main_end
    seconds["whole process"] = ended - launched
    seconds["of generation: checkpoint writes"] = inside
    return seconds


def timed_process(cmd: list[str], report: str) -> tuple[float, float, dict]:
    """Run a command; (launch time, exit time, the report it wrote)."""
    launched = time.time()
    done = subprocess.run(cmd, env=ENV, capture_output=True, text=True, check=False)
    ended = time.time()
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    with open(report) as handle:
        return launched, ended, json.load(handle)


def run_ours(model: str, data: str, tmp: str, args: argparse.Namespace, generation: str = GENERATION
             ) -> dict[str, float]:
    """One Step 1 command (of the code in `generation`) on a fresh output; its phases and completion tokens."""
    out, report = os.path.join(tmp, "ours.hf"), os.path.join(tmp, "ours.json")
    argv = ["--model", model, "--backend", "vllm", "--dataset", "math", "--dataset_path", data, "--output_path", out,
            "--samples_per_instruction", str(args.samples), "--max_new_tokens", str(args.max_new_tokens),
            "--max_length", str(MAX_LENGTH), "--overwrite"]
    launched, ended, marks = timed_process([sys.executable, "-c", OURS, generation, report, *argv], report)
    with open(os.path.join(out, "provenance.json")) as handle:
        tokens = json.load(handle)["token_usage"]["completion_tokens"]
    return {**phases(launched, ended, marks), "tokens": tokens}


def run_plain(model: str, data: str, tmp: str, args: argparse.Namespace) -> dict[str, float]:
    """The plain script in a fresh process; its phases and completion tokens."""
    report = os.path.join(tmp, "plain.json")
    spec = json.dumps({"model": model, "data": data, "samples": args.samples, "max_new_tokens": args.max_new_tokens,
                       "max_length": MAX_LENGTH, "out": os.path.join(tmp, "plain.hf"), "report": report})
    launched, ended, marks = timed_process([sys.executable, "-c", PLAIN, spec], report)
    return {**phases(launched, ended, marks), "tokens": marks["tokens"]}


def same_engine(model: str, tmp: str, args: argparse.Namespace) -> dict:
    """Completion tokens/s of LLM.generate and of our step loop + checkpoint on one warm engine, twice each."""
    spec = json.dumps({"model": model, "problems": args.problems, "samples": args.samples,
                       "max_new_tokens": args.max_new_tokens, "max_length": MAX_LENGTH,
                       "store": os.path.join(tmp, "stream.jsonl")})
    done = subprocess.run([sys.executable, "-c", SAME_ENGINE.format(root=ROOT), spec], env=ENV,
                          check=True, capture_output=True, text=True)
    return json.loads(done.stdout.splitlines()[-1])


def table(results: dict[str, list[dict[str, float]]]) -> str:
    """Median seconds per phase for each side, and ours minus plain."""
    names = list(dict.fromkeys(name for runs in results.values() for run in runs for name in run))
    lines = [f"{'phase':34}" + "".join(f"{side:>9}" for side in results) + f"{'ours-plain':>11}"]
    for name in names:
        medians = {side: statistics.median(run.get(name, 0.0) for run in runs) for side, runs in results.items()}
        lines.append(f"{name:34}" + "".join(f"{value:9.2f}" for value in medians.values())
                     + f"{medians['ours'] - medians['plain']:+11.2f}")
    return "\n".join(lines)


def main() -> None:
    """Alternate ours and plain `--repeats` times; print each run's phases and the medians per phase."""
    from fixtures_benchmarks import write_benchmark
    from tiny_models import build_chat_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=256)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--max_new_tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--same_engine", action="store_true", help="also compare the loops on one warm engine")
    parser.add_argument("--before", metavar="GENERATION", default=None,
                        help="also run the command from another checkout's generation/ folder (the code before a "
                             "change), interleaved with the others")
    args = parser.parse_args()
    loads = []
    with tempfile.TemporaryDirectory() as tmp:
        model = build_chat_model(os.path.join(tmp, "tiny-chat"))
        data = write_benchmark("math", tmp, rows=math_rows(args.problems))
        runners = {"ours": run_ours, "plain": run_plain}
        if args.before:
            runners["before"] = lambda *a: run_ours(*a, generation=os.path.abspath(args.before))
        results: dict[str, list[dict[str, float]]] = {name: [] for name in runners}
        for repeat in range(args.repeats):  # rotating which goes first, so none always runs in the same slot
            names = list(runners)
            for name in names[repeat % len(names):] + names[:repeat % len(names)]:
                loads.append(os.getloadavg()[0])
                results[name].append(runners[name](model, data, tmp, args))
                print(json.dumps({"side": name, "load": loads[-1],
                                  **{k: round(v, 2) for k, v in results[name][-1].items()}}), flush=True)
        loops = same_engine(model, tmp, args) if args.same_engine else None
    walls = {side: statistics.median(run["whole process"] for run in runs) for side, runs in results.items()}
    print(f"{args.problems} prompts x {args.samples} samples x <= {args.max_new_tokens} tokens, {args.repeats} runs "
          f"each; load average at the starts {min(loads):.1f}-{max(loads):.1f}; medians (s):\n{table(results)}"
          + "".join(f"\n{side} (whole process) vs plain script: {100 * (walls[side] / walls['plain'] - 1):+.1f}%"
                    for side in walls if side != "plain"))
    if loops:
        print(f"same warm engine, completion tokens/s: LLM.generate {[round(x) for x in loops['generate']]}, "
              f"our step loop + checkpoint {[round(x) for x in loops['stream']]}")


if __name__ == "__main__":
    main()
