"""Write offline inputs for the example: tiny files of the five benchmarks in their hub schemas, a tiny chat model and a
tiny reward model (random weights, locally trained tokenizer).

Usage: python scripts/make_example_inputs.py FOLDER  ->  FOLDER/{mmlu,mmlu_pro,math,gpqa,gpqa_diamond}.jsonl, FOLDER/tiny-chat/, FOLDER/tiny-rm/
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))

from fixtures_benchmarks import ROWS, write_benchmark  # noqa: E402
from tiny_models import build_chat_model  # noqa: E402
from tiny_reward_models import build_sequence_classifier  # noqa: E402


def main() -> None:
    """Create the example inputs in the given folder (an existing tiny model is kept)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="where to write the benchmark files, tiny-chat/ and tiny-rm/")
    folder = parser.parse_args().folder
    for name in ROWS:
        print(write_benchmark(name, folder))
    for name, build in (("tiny-chat", build_chat_model), ("tiny-rm", build_sequence_classifier)):
        model = os.path.join(folder, name)
        if not os.path.exists(os.path.join(model, "config.json")):
            build(model)
        print(model)


if __name__ == "__main__":
    main()
