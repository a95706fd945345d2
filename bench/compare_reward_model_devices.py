"""Every loader kind on a tiny model: the same inputs scored on the CPU in float32 and on DEVICE in DTYPE.

Prints one row per kind with how it loaded, the largest |score| on the CPU, the largest |difference| and pass/fail at
a tolerance for DTYPE (bf16 keeps ~3 significant digits). Needs only torch and transformers (no network, no vLLM).
Usage: python bench/compare_reward_model_devices.py [--device cuda] [--dtype bfloat16]; exit 1 if any kind fails.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, ".."), os.path.join(HERE, "..", "scripts"), os.path.join(HERE, "..", "tests")]

from generation.reward_models.inputs import ScoreOptions  # noqa: E402
from generation.reward_models.registry import RewardModelSpec  # noqa: E402
from generation.reward_models.scoring import score_items  # noqa: E402

import tiny_reward_models as tiny  # noqa: E402

ITEMS = [("What is 2 + 2?", "Step 1: add the numbers.\n\nStep 2: check the result.\n\nThe answer is: B"),
         ("Compute 1/2 + 1/4.", "The answer is \\boxed{\\frac{3}{4}}"),
         ("What is 2 + 2?", "the of and to " * 40 + "\n\nThe answer is: C"),
         ("Question: A B C D", "0 1 2 3\n\n4 5 6\n\nThe answer is: D")]
TOLERANCE = {"bfloat16": (0.02, 0.04), "float16": (0.005, 0.01), "float32": (1e-4, 1e-4)}  # (absolute, relative)


def build_all(root: str) -> list[RewardModelSpec]:
    """One tiny checkpoint per loader kind (and the remote-code classifier), as specs."""
    policy, reference = tiny.build_implicit_pair(f"{root}/eurus")
    remote = dict(trust_remote_code=True)
    system = dict(system_prompt="Please reason step by step.")
    return [
        RewardModelSpec("sequence_classifier", tiny.build_sequence_classifier(f"{root}/seq"), "sequence_classifier"),
        RewardModelSpec("sequence_classifier (remote)", tiny.build_remote_classifier(f"{root}/urm"),
                        "sequence_classifier", **remote),
        RewardModelSpec("multi_objective", tiny.build_multi_objective(f"{root}/gated"), "multi_objective", **remote),
        RewardModelSpec("decision_tree", tiny.build_multi_objective(f"{root}/tree"), "decision_tree", **remote),
        RewardModelSpec("scalar_head", tiny.build_qwen2_rm(f"{root}/qwen_rm", 1), "scalar_head", **system),
        RewardModelSpec("gpm", tiny.build_custom_head(f"{root}/gpm", "gpm"), "gpm"),
        RewardModelSpec("inform", tiny.build_custom_head(f"{root}/inform", "inform"), "inform"),
        RewardModelSpec("ldl", tiny.build_ldl(f"{root}/ldl"), "ldl"),
        RewardModelSpec("internlm2", tiny.build_internlm2(f"{root}/intern"), "internlm2"),
        RewardModelSpec("step_prm", tiny.build_qwen2_rm(f"{root}/qwen_prm", 2), "step_prm", **system),
        RewardModelSpec("implicit_prm", policy, "implicit_prm", reference_model=reference, beta=1.0),
    ]


def flatten(results: list) -> list[float | None]:
    """Every number of a run's results (scores, step scores, GPM vectors and eigenvalues)."""
    values: list[float | None] = []
    for value in results:
        if isinstance(value, dict):
            values += value["v"] + value["r"]
        elif isinstance(value, list):
            values += value
        else:
            values.append(value)
    return values


def compare(spec: RewardModelSpec, device: str, dtype: str, max_len: int) -> tuple[str, bool]:
    """One table row for spec: CPU float32 against device/dtype on the same inputs."""
    started = time.time()
    runs = [score_items(spec, ITEMS, ScoreOptions(device=d, dtype=t, batch_size=4, max_input_length=max_len))
            for d, t in (("cpu", "float32"), (device, dtype))]
    ref, got = (flatten(r.results) for r in runs)
    errors = {**runs[0].errors, **runs[1].errors}
    if errors or len(ref) != len(got) or None in ref + got:
        return f"{spec.name:<30} {spec.loading:<12} FAILED: {errors or 'result shapes differ'}", False
    scale = max(abs(x) for x in ref)
    diff = max(abs(a - b) for a, b in zip(ref, got))
    absolute, relative = TOLERANCE[dtype]
    tol = absolute + relative * scale
    ok = math.isfinite(diff) and diff <= tol
    return (f"{spec.name:<30} {spec.loading:<12} {len(ref):>6} {scale:>10.4f} {diff:>12.2e} {tol:>9.2e} "
            f"{'pass' if ok else 'FAIL':>5} {time.time() - started:>6.1f}"), ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--dtype", default="bfloat16", choices=sorted(TOLERANCE))
    parser.add_argument("--max_input_length", type=int, default=64, help="small, so truncation is exercised too")
    args = parser.parse_args()
    import torch
    from transformers.utils import logging

    logging.disable_progress_bar()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device visible; use --device cpu", file=sys.stderr)
        return 2
    print(f"torch {torch.__version__}, device {args.device}"
          f"{' (' + torch.cuda.get_device_name(0) + ')' if args.device.startswith('cuda') else ''}, {args.dtype} "
          f"vs cpu float32, max_input_length {args.max_input_length}")
    started = time.time()
    with tempfile.TemporaryDirectory() as root:
        specs = build_all(root)
        print(f"built {len(specs)} tiny models in {time.time() - started:.1f} s")
        print(f"{'kind':<30} {'loaded':<12} {'values':>6} {'max|cpu|':>10} {'max|diff|':>12} {'tol':>9} "
              f"{'':>5} {'s':>6}")
        passed = True
        for spec in specs:
            row, ok = compare(spec, args.device, args.dtype, args.max_input_length)
            print(row, flush=True)
            passed &= ok
    print(f"{'all kinds pass' if passed else 'SOME KINDS FAIL'} ({time.time() - started:.1f} s)")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
