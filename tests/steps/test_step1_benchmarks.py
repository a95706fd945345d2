"""Step 1 benchmark loaders on fixture files in each hub schema: columns, prompts, ordering, bad input."""
import os

import pytest

from generation.common.cli import UserError
from generation.data.benchmarks import BENCHMARKS, gpqa_permutation, load_benchmark

from fixtures_benchmarks import gpqa_rows, math_rows, mmlu_pro_rows, write_benchmark


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("bench"))
    for name in BENCHMARKS:
        write_benchmark(name, folder)
    write_benchmark("math", folder, fmt="parquet")
    return folder


def test_math_keeps_short_answer_and_solution(data_dir):
    ds = load_benchmark("math", os.path.join(data_dir, "math.parquet"))
    rows = math_rows()
    assert len(ds) == len(rows)
    first = ds[0]
    assert first["answer"] == rows[0]["answer"] == "2"
    assert first["solution"] == rows[0]["solution"]
    assert first["original_problem"] == rows[0]["problem"]
    assert first["problem"] == ("Problem: Compute $1 + 1$.\n\nPlease solve this step by step, then output your "
                                "answer on a new line as 'The answer is: X'")
    assert {"subject", "level", "unique_id"} <= set(ds.column_names)


def test_mmlu_subject_order_is_stable_and_answers_are_letters(data_dir):
    path = os.path.join(data_dir, "mmlu.jsonl")
    ds = load_benchmark("mmlu", path)  # college set: biology comes before physics; abstract_algebra is not in it
    assert ds["subject"] == ["college_biology"] * 3 + ["college_physics"] * 3
    assert set(ds.column_names) == {"question", "subject", "choices", "answer", "problem"}
    assert ds[0]["answer"] == "B"
    assert ds[0]["problem"].startswith("Question: college_biology question 0: what is 0 + 1?\n\nChoices:\nA) 0\nB) 1")
    assert ds[0]["problem"].endswith("where X is A, B, C, or D.")
    chosen = load_benchmark("mmlu", path, mmlu_subjects=["college_physics", "abstract_algebra"])
    assert chosen["subject"] == ["college_physics"] * 3 + ["abstract_algebra"] * 3
    with pytest.raises(UserError, match="no rows for subjects"):
        load_benchmark("mmlu", path, mmlu_category="professional")


def test_mmlu_pro_shuffled_with_seed_42_and_letters_up_to_j(data_dir):
    path = os.path.join(data_dir, "mmlu_pro.jsonl")
    ds = load_benchmark("mmlu_pro", path, seed=7)
    again = load_benchmark("mmlu_pro", path, seed=123)  # --seed does not move MMLU-Pro rows
    assert ds["question_id"] == again["question_id"]
    assert ds["question_id"] != [r["question_id"] for r in mmlu_pro_rows()]
    by_id = {r["question_id"]: r for r in mmlu_pro_rows()}
    for row in ds:
        source = by_id[row["question_id"]]
        assert row["answer"] == chr(65 + source["answer_index"])
        assert row["subject"] == source["category"]
        assert f"{chr(64 + len(source['options']))}) {source['options'][-1]}" in row["problem"]
        assert row["problem"].endswith("where X is the letter corresponding to your choice.")
    assert load_benchmark("mmlu_pro", path, max_rows=4)["question_id"] == ds["question_id"][:4]


def test_gpqa_options_are_seeded_per_question(data_dir, tmp_path):
    path = os.path.join(data_dir, "gpqa.jsonl")
    ds = load_benchmark("gpqa", path, seed=42)
    assert set(ds.column_names) == {"problem", "original_instruction", "type", "options", "answer",
                                    "correct_answer", "subject"}
    for source, row in zip(gpqa_rows(), ds):
        assert row["options"][ord(row["answer"]) - 65] == source["Correct Answer"]
        assert sorted(row["options"]) == sorted(source[c] for c in ("Correct Answer", "Incorrect Answer 1",
                                                                    "Incorrect Answer 2", "Incorrect Answer 3"))
        assert row["correct_answer"] == row["answer"] and row["type"] == "main" and row["subject"] == "science"
    assert len({tuple(o) for o in ds["options"]}) > 1 and len(set(ds["answer"])) > 1  # really shuffled
    reversed_path = write_benchmark("gpqa", str(tmp_path), rows=gpqa_rows()[::-1])
    reordered = {r["original_instruction"]: r["options"] for r in load_benchmark("gpqa", reversed_path, seed=42)}
    assert all(reordered[r["original_instruction"]] == r["options"] for r in ds)
    assert load_benchmark("gpqa", path, seed=42, max_rows=3)["options"] == ds["options"][:3]
    other = load_benchmark("gpqa", path, seed=43)
    assert other["options"] != ds["options"]
    assert gpqa_permutation(42, "q") == gpqa_permutation(42, "q")
    assert load_benchmark("gpqa_diamond", path)["type"][0] == "diamond"


def test_save_to_disk_input_is_not_modified(tmp_path):
    from datasets import Dataset, DatasetDict

    folder = str(tmp_path / "mmlu_pro_saved")
    DatasetDict({"test": Dataset.from_list(mmlu_pro_rows())}).save_to_disk(folder)
    before = sorted(os.listdir(os.path.join(folder, "test")))
    assert len(load_benchmark("mmlu_pro", folder)) == 12
    assert sorted(os.listdir(os.path.join(folder, "test"))) == before


def test_bad_inputs_are_user_errors(data_dir, tmp_path):
    with pytest.raises(UserError, match="unknown --dataset 'aime'"):
        load_benchmark("aime", os.path.join(data_dir, "math.jsonl"))
    with pytest.raises(UserError, match="does not exist"):
        load_benchmark("math", str(tmp_path / "absent.jsonl"))
    with pytest.raises(UserError, match="lacks columns required for --dataset gpqa: Question, Correct Answer"):
        load_benchmark("gpqa", os.path.join(data_dir, "math.jsonl"))
    with pytest.raises(UserError, match=r"cannot load HuggingFaceH4/MATH-500 from the hub.*--dataset_path"):
        load_benchmark("math")  # the tests run offline
    with pytest.raises(UserError, match=r"cais/mmlu \(college_biology\)"):
        load_benchmark("mmlu")
    broken = tmp_path / "broken.parquet"
    broken.write_text("not parquet")
    with pytest.raises(UserError, match="cannot read dataset"):
        load_benchmark("math", str(broken))


def test_a_later_step_output_as_input_is_read_as_the_benchmark(data_dir, tmp_path):
    from datasets import DatasetDict

    for name in BENCHMARKS:
        original = load_benchmark(name, os.path.join(data_dir, f"{name}.jsonl"))
        graded = original.add_column("instruction", original["problem"])
        for column in ("samples", "answer_correct", "GRM_scores"):
            graded = graded.add_column(column, [[None, "x"]] * len(original))
        DatasetDict({"data": graded}).save_to_disk(str(tmp_path / name))
        again = load_benchmark(name, str(tmp_path / name))
        assert sorted(again.column_names) == sorted(original.column_names)
        assert again.to_list() == original.to_list()


def test_gpqa_question_and_options_are_kept_as_they_are(tmp_path):
    rows = gpqa_rows()[:2]
    rows[0]["Question"] = "  Which particle?\n"
    rows[0]["Correct Answer"] = " right \n"
    path = write_benchmark("gpqa", str(tmp_path), rows=rows)
    row = load_benchmark("gpqa", path)[0]
    assert row["original_instruction"] == "  Which particle?\n" and " right \n" in row["options"]
    assert row["problem"].startswith("Question:   Which particle?\n\n\nChoices:\n")
    assert f"{row['answer']})  right \n\n" in row["problem"]
