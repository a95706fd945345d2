"""Write offline inputs for the example: tiny files of the five benchmarks in their hub schemas (math: single-digit
sums), a tiny chat model and a tiny reward model taught those sums (scripts/example_training.py; built once per seed,
then reused).

Usage: python scripts/make_example_inputs.py FOLDER [--seed N]
  ->  FOLDER/{mmlu,mmlu_pro,math,gpqa,gpqa_diamond}.jsonl, FOLDER/tiny-chat/, FOLDER/tiny-rm/
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys

SCRIPTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(SCRIPTS)
sys.path[:0] = [SCRIPTS, ROOT, os.path.join(ROOT, "tests")]

import example_training as teach

from generation.common.logs import add_verbose_argument
from generation.steps.settings import parse_quietly

from fixtures_benchmarks import ROWS, write_benchmark
from tiny_models import build_chat_model

MODELS = ("tiny-chat", "tiny-rm")  # in this order: the reward model starts from the taught chat model


def main() -> None:
    """Create the example inputs in the given folder (a model taught earlier with the same seed is kept)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="where to write the benchmark files, tiny-chat/ and tiny-rm/")
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
            print(f"teaching {name} small sums (once; about half a minute)", file=sys.stderr)
            staging = f"{model}.tmp"
            shutil.rmtree(staging, ignore_errors=True)
            if name == "tiny-chat":
                built = build_chat_model(staging, seed, corpus=teach.corpus(), vocab_size=teach.VOCAB)
                teach.teach_chat_model(built, seed)
            else:
                teach.teach_reward_model(staging, chat, seed)
            shutil.rmtree(model, ignore_errors=True)
            os.rename(staging, model)
        print(model)


if __name__ == "__main__":
    main()
