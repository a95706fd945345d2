"""Small benchmark files in the hub schemas of cais/mmlu, TIGER-Lab/MMLU-Pro, MATH-500 and Idavidrein/gpqa (the
example's offline inputs; tests write them too)."""
from __future__ import annotations

import os


def mmlu_rows() -> list[dict]:
    """cais/mmlu rows (question, subject, choices, answer as int) from three subjects."""
    rows = []
    for subject in ("college_physics", "abstract_algebra", "college_biology"):
        for i in range(3):
            rows.append({"question": f"{subject} question {i}: what is {i} + 1?", "subject": subject,
                         "choices": [str(i), str(i + 1), str(i + 2), str(i + 3)], "answer": 1})
    return rows


def mmlu_pro_rows() -> list[dict]:
    """TIGER-Lab/MMLU-Pro rows with up to ten options."""
    rows = []
    for i in range(12):
        options = [f"option {j} of {i}" for j in range(10 - i % 3)]
        index = i % len(options)
        rows.append({"question_id": 100 + i, "question": f"Pro question {i}?", "options": options,
                     "answer": chr(65 + index), "answer_index": index, "cot_content": "",
                     "category": ("math", "history", "biology")[i % 3], "src": f"ori_mmlu-{i}"})
    return rows


def math_rows() -> list[dict]:
    """HuggingFaceH4/MATH-500 rows with a short answer and a worked solution."""
    return [{"problem": f"Compute ${i} + {i}$.", "solution": f"We add: ${i} + {i} = \\boxed{{{2 * i}}}$.",
             "answer": str(2 * i), "subject": "Prealgebra", "level": 1 + i % 5,
             "unique_id": f"test/prealgebra/{i}.json"} for i in range(1, 7)]


def gpqa_rows() -> list[dict]:
    """Idavidrein/gpqa rows (a subset of its columns, including the four answer columns)."""
    return [{"Pre-Revision Question": f"old {i}", "Question": f"Which particle is number {i}?",
             "Correct Answer": f"right {i}", "Incorrect Answer 1": f"wrong a{i}", "Incorrect Answer 2": f"wrong b{i}",
             "Incorrect Answer 3": f"wrong c{i}", "Explanation": f"because {i}", "Record ID": f"rec{i}",
             "High-level domain": "Physics", "Subdomain": "Particle physics"} for i in range(8)]


ROWS = {"mmlu": mmlu_rows, "mmlu_pro": mmlu_pro_rows, "math": math_rows, "gpqa": gpqa_rows,
        "gpqa_diamond": gpqa_rows}


def write_benchmark(name: str, folder: str, fmt: str = "jsonl", rows: list[dict] | None = None) -> str:
    """Write a benchmark's rows as jsonl or parquet into folder; return the file path."""
    from datasets import Dataset

    os.makedirs(folder, exist_ok=True)
    dataset = Dataset.from_list(rows if rows is not None else ROWS[name]())
    path = os.path.join(folder, f"{name}.{fmt}")
    if fmt == "parquet":
        dataset.to_parquet(path)
    else:
        dataset.to_json(path, lines=True)
    return path
