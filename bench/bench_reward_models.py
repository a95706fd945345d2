"""Reward-model throughput: batch 1 (the reference's mode) vs length-sorted batches, measured in one run.

CPU (default): a tiny random Llama reward model built on the fly, 2,000 samples of mixed lengths.
GPU: `--device cuda [--model Skywork/Skywork-Reward-V2-Qwen3-0.6B]` (any cached RM or local folder; a tiny model
otherwise). Prints samples/s for both modes, their ratio, and checks both modes give the same scores.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, ".."), os.path.join(HERE, "..", "scripts"), os.path.join(HERE, "..", "tests")]

from generation.reward_models.inputs import ScoreOptions  # noqa: E402
from generation.reward_models.registry import RewardModelSpec  # noqa: E402
from generation.reward_models.scoring import (
    Scorer,
    run_batches,  # noqa: E402
)

WORDS = "the of and to in is that for it as Step add check result answer number".split()


def make_items(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """n (instruction, sample) pairs whose samples range from a few words to several hundred."""
    rng = random.Random(seed)
    items = []
    for _ in range(n):
        words = rng.choice([rng.randint(5, 40), rng.randint(40, 200), rng.randint(200, 600)])
        sample = " ".join(rng.choice(WORDS) for _ in range(words)) + f"\n\nThe answer is: {rng.randint(0, 9)}"
        items.append((f"Question: What is {rng.randint(1, 99)} + {rng.randint(1, 99)}?", sample))
    return items


def timed(scorer: Scorer, encoded: dict, batch_size: int, sort: bool) -> tuple[float, dict]:
    """Seconds to score everything, and the scores; unsorted batch 1 is the reference's one-at-a-time loop."""
    results: dict = {}
    start = time.perf_counter()
    if sort:
        run_batches(scorer, encoded, batch_size, results.__setitem__, lambda i, e: None)
    else:
        for index, enc in encoded.items():
            results[index] = scorer.forward([enc])[0]
    if scorer.torch.cuda.is_available():
        scorer.torch.cuda.synchronize()
    return time.perf_counter() - start, results


def main() -> None:
    """Run both modes on the same encoded inputs and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default=None, help="RM folder or hub id (sequence classifier); tiny if omitted")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--max_input_length", type=int, default=2048)
    parser.add_argument("--hidden", type=int, default=64, help="hidden size of the random model (GPU: try 1024)")
    parser.add_argument("--layers", type=int, default=2, help="layers of the random model")
    parser.add_argument("--vllm", action="store_true", help="also time vLLM's pooling runner (--rm_backend vllm)")
    args = parser.parse_args()
    path = args.model
    if path is None:
        from tiny_reward_models import build_sequence_classifier

        sizes = dict(hidden_size=args.hidden, intermediate_size=args.hidden * 2, num_hidden_layers=args.layers,
                     num_attention_heads=max(2, args.hidden // 64), num_key_value_heads=max(2, args.hidden // 64))
        path = build_sequence_classifier(os.path.join(tempfile.mkdtemp(), "tiny-rm"), **sizes)
    spec = RewardModelSpec("bench", path, "sequence_classifier")
    scorer = Scorer(spec, ScoreOptions(device=args.device, dtype=args.dtype, batch_size=args.batch_size,
                                       max_input_length=args.max_input_length))
    items = make_items(args.samples)
    encoded = {i: scorer.encode(q, a) for i, (q, a) in enumerate(items)}
    lengths = sorted(len(e.ids) for e in encoded.values())
    timed(scorer, dict(list(encoded.items())[:8]), args.batch_size, True)  # warm-up
    one_s, one = timed(scorer, encoded, 1, False)
    batch_s, batched = timed(scorer, encoded, args.batch_size, True)
    drift = max(abs(one[i] - batched[i]) for i in one)
    name = args.model or f"random Llama RM (hidden {args.hidden}, {args.layers} layers)"
    print(f"model {name} on {args.device}, dtype "
          f"{scorer.dtype}; {len(items)} samples, tokens min/median/max {lengths[0]}/{lengths[len(lengths) // 2]}/"
          f"{lengths[-1]}")
    print(f"batch 1 (reference mode): {len(items) / one_s:8.1f} samples/s ({one_s:.1f} s)")
    print(f"length-sorted batches of {args.batch_size}: {len(items) / batch_s:8.1f} samples/s ({batch_s:.1f} s)")
    print(f"speed-up: {one_s / batch_s:.1f}x; max score difference between modes {drift:.2e}")
    if args.vllm:
        from generation.reward_models.vllm_backend import CHUNK, VllmScorer

        scorer.close()
        engine = VllmScorer(spec, ScoreOptions(device=args.device, dtype=args.dtype, batch_size=args.batch_size,
                                               max_input_length=args.max_input_length))
        timed(engine, dict(list(encoded.items())[:8]), CHUNK, True)
        vllm_s, scores = timed(engine, encoded, CHUNK, True)
        engine.close()
        print(f"vLLM pooling runner (max_num_seqs {args.batch_size}): {len(items) / vllm_s:8.1f} samples/s "
              f"({vllm_s:.1f} s); {one_s / vllm_s:.1f}x batch 1; max difference to transformers "
              f"{max(abs(scores[i] - batched[i]) for i in scores):.2e}")


if __name__ == "__main__":
    main()
