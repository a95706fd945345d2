"""A seeded Step 3-shaped dataset for bench/check_weaver_handoff.py: missing answers and six verifiers.

    python bench/make_weaver_handoff_dataset.py /tmp/handoff.hf [--unscored_row]

80 problems x 8 samples (about 12% of answers missing, one problem with no answer at all, few distinct wrong
answers so that groups compete), four reward models Weaver names (GRM, Skyworks, URM, ArmorRM: the label plus Gaussian
noise of growing width), one it does not (MyRM, so the export writes weaver_constants_additions.py), and a K=3 judge
(GPT-4o-mini, each verdict right with probability 0.7). --unscored_row blanks every verifier on problem 7.
"""
from __future__ import annotations

import argparse

import datasets
import numpy as np

PROBLEMS, SAMPLES, VERDICTS = 80, 8, 3
MISSING = 0.12
NOISE = {"GRM_scores": 0.6, "Skyworks_scores": 0.9, "URM_scores": 1.2, "ArmorRM_scores": 1.5, "MyRM_scores": 1.0}
JUDGE, JUDGE_ACCURACY = "GPT-4o-mini_verdicts", 0.7
NO_ANSWER_ROW, UNSCORED_ROW = 3, 7


def sample_answer(rng: np.random.Generator, gold: str, solve_rate: float) -> str | None:
    """One sample's extracted answer: missing, the gold answer, or a near miss."""
    if rng.random() < MISSING:
        return None
    return gold if rng.random() < solve_rate else str(int(gold) + int(rng.integers(1, 4)))


def build(unscored_row: bool) -> datasets.DatasetDict:
    """The dataset as Step 3 writes it (one split, 'data')."""
    rng = np.random.default_rng(35)
    gold = [str(int(x)) for x in rng.integers(1, 50, PROBLEMS)]
    answers = []
    for answer in gold:
        solve_rate = rng.uniform(0.15, 0.85)
        answers.append([sample_answer(rng, answer, solve_rate) for _ in range(SAMPLES)])
    answers[NO_ANSWER_ROW] = [None] * SAMPLES
    correct = [[a is not None and a == g for a in row] for row, g in zip(answers, gold)]
    labels = np.array(correct, float)
    columns = {"instruction": [f"q{r}" for r in range(PROBLEMS)],
               "samples": [[f"s{s}" for s in range(SAMPLES)]] * PROBLEMS, "answer": gold,
               "extracted_answers": answers, "answer_correct": correct}
    columns |= {name: (labels + rng.normal(0, noise, labels.shape)).tolist() for name, noise in NOISE.items()}
    columns[JUDGE] = [[[float(v if rng.random() < JUDGE_ACCURACY else 1 - v) for _ in range(VERDICTS)] for v in row]
                      for row in labels]
    columns["GRM_scores"][5][2] = None
    if unscored_row:
        for name in NOISE:
            columns[name][UNSCORED_ROW] = [None] * SAMPLES
        columns[JUDGE][UNSCORED_ROW] = [[None] * VERDICTS] * SAMPLES
    return datasets.DatasetDict({"data": datasets.Dataset.from_dict(columns)})


def main() -> None:
    """Write the dataset."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", help="folder to write (save_to_disk)")
    parser.add_argument("--unscored_row", action="store_true", help="blank every verifier on one problem")
    args = parser.parse_args()
    build(args.unscored_row).save_to_disk(args.output)


if __name__ == "__main__":
    main()
