"""Write offline inputs for the example: tiny files of the five benchmarks in their hub schemas (math: single-digit
sums), a tiny chat model, reward model and judge taught those sums (scripts/example_training.py; built once per seed,
then reused; the same on every x86 CPU).

Usage: python scripts/make_example_inputs.py FOLDER [--seed N]
  ->  FOLDER/{mmlu,mmlu_pro,math,gpqa,gpqa_diamond}.jsonl, FOLDER/tiny-chat/, FOLDER/tiny-rm/, FOLDER/tiny-judge/
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys

import example_training as teach
from example_benchmarks import ROWS, write_benchmark
from example_models import build_chat_model

from generation.common.logs import add_verbose_argument
from generation.steps.settings import parse_quietly

MODELS = ("tiny-chat", "tiny-rm", "tiny-judge")  # in this order: the verifiers start from the taught chat model


def teach_model(name: str, staging: str, chat: str, seed: int) -> None:
    """Build and teach one of MODELS in the staging folder."""
    if name == "tiny-chat":
        teach.teach_chat_model(build_chat_model(staging, seed, corpus=teach.corpus(), vocab_size=teach.VOCAB), seed)
    elif name == "tiny-rm":
        teach.teach_reward_model(staging, chat, seed)
    else:
        teach.teach_judge_model(staging, chat, seed)


def main() -> None:
    """Create the example inputs in the given folder (a model taught earlier with the same seed is kept)."""
    teach.reproducible_numerics()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="where to write the benchmark files, tiny-chat/, tiny-rm/ and tiny-judge/")
    parser.add_argument("--seed", type=int, default=teach.SEED, help="training seed (the same seed, the same models)")
    add_verbose_argument(parser)
    args = parse_quietly(parser, None)
    folder, seed = args.folder, args.seed
    for name in ROWS:
        print(write_benchmark(name, folder, rows=teach.math_rows(seed) if name == "math" else None))
    chat = os.path.join(folder, "tiny-chat")
    for name in MODELS:
        model = os.path.join(folder, name)
        if not teach.is_trained(model, seed):
            print(f"teaching {name} small sums (once; under a minute)", file=sys.stderr)
            staging = f"{model}.tmp"
            shutil.rmtree(staging, ignore_errors=True)
            teach_model(name, staging, chat, seed)
            shutil.rmtree(model, ignore_errors=True)
            os.rename(staging, model)
        print(model)


if __name__ == "__main__":
    main()
