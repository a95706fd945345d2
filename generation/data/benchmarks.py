"""Benchmark registry for Step 1: where each benchmark lives, how its rows become prompts, which columns it adds."""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from generation.common.cli import UserError, error_line
from generation.data.dataset_io import is_per_sample_column, read_input
from generation.data.schema import Rule, check_rows, present

if TYPE_CHECKING:
    from datasets import Dataset

SOLVE = "Please solve this step by step, then output your answer on a new line as 'The answer is: X'"
ABCD_TAIL = " where X is A, B, C, or D."
LETTER_TAIL = " where X is the letter corresponding to your choice."
MMLU_PRO_SEED = 42  # the reference's fixed shuffle, kept so row order matches the released datasets
MMLU_SUBJECTS = {
    "college": ("college_biology", "college_chemistry", "college_computer_science", "college_mathematics",
                "college_medicine", "college_physics"),
    "professional": ("professional_accounting", "professional_law", "professional_medicine",
                     "professional_psychology"),
}
GPQA_OPTION_COLUMNS = ("Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")
GPQA_STORED = ("original_instruction", "options", "answer", "correct_answer", "type", "subject")


def letter(index: int) -> str:
    """Option letter for a 0-based index (A, B, ...)."""
    return chr(65 + index)


def choice_prompt(question: str, options: list[str], tail: str) -> str:
    """The shared multiple-choice prompt: question, lettered choices, the answer-format instruction."""
    lines = "\n".join(f"{letter(i)}) {option}" for i, option in enumerate(options))
    return f"Question: {question}\n\nChoices:\n{lines}\n\n{SOLVE}{tail}"


def math_prompt(problem: str) -> str:
    """The MATH prompt."""
    return f"Problem: {problem}\n\n{SOLVE}"


def gpqa_permutation(seed: int, question: str) -> list[int]:
    """Option order for a GPQA question: a pure function of (seed, question text)."""
    digest = hashlib.sha256(f"{seed}\x00{question}".encode()).digest()
    order = list(range(len(GPQA_OPTION_COLUMNS)))
    random.Random(int.from_bytes(digest[:8], "big")).shuffle(order)
    return order


def mmlu_row(row: dict, seed: int) -> dict:
    """cais/mmlu row -> question, subject, choices, answer letter, problem."""
    answer = row["answer"]
    prompt = choice_prompt(row["question"], list(row["choices"]), ABCD_TAIL)
    return {"question": row["question"], "subject": row["subject"], "choices": list(row["choices"]),
            "answer": answer if isinstance(answer, str) else letter(int(answer)), "problem": prompt}


def mmlu_pro_row(row: dict, seed: int) -> dict:
    """TIGER-Lab/MMLU-Pro row: original columns plus problem, subject (= category) and the answer letter."""
    prompt = choice_prompt(row["question"], list(row["options"]), LETTER_TAIL)
    return {**row, "answer": letter(int(row["answer_index"])), "problem": prompt, "subject": row["category"]}


def math_row(row: dict, seed: int) -> dict:
    """MATH-500 row: `problem` becomes the prompt, the raw text moves to `original_problem`; `answer` stays short."""
    return {**row, "problem": math_prompt(row["problem"]), "original_problem": row["problem"]}


def gpqa_row(row: dict, seed: int, kind: str) -> dict:
    """Idavidrein/gpqa row -> seeded option order, answer letter, the reference's GPQA columns (texts kept as is)."""
    question = row["Question"]
    texts = [str(row[column]) for column in GPQA_OPTION_COLUMNS]
    order = gpqa_permutation(seed, question)
    options = [texts[i] for i in order]
    answer = letter(order.index(0))
    return {"problem": choice_prompt(question, options, LETTER_TAIL), "original_instruction": question,
            "type": kind, "options": options, "answer": answer, "correct_answer": answer, "subject": "science"}


def gpqa_stored_row(row: dict, seed: int) -> dict:
    """A GPQA Step 1 output row: its stored option order and letters kept, the prompt rebuilt from them."""
    return {"problem": choice_prompt(row["original_instruction"], list(row["options"]), LETTER_TAIL)}


@dataclass(frozen=True)
class Benchmark:
    """One row of the registry: hub location, required input columns, row builder, ordering."""

    name: str
    hub_id: str
    configs: tuple[str | None, ...]
    split: str
    required: tuple[str, ...]
    build_row: Callable[[dict, int], dict]
    keep_source_columns: bool
    shuffle_seed: int | None = None
    stored_required: tuple[str, ...] = ()  # columns of its own Step 1 output, when those lack `required`
    build_stored_row: Callable[[dict, int], dict] | None = None


BENCHMARKS = {b.name: b for b in (
    Benchmark("mmlu", "cais/mmlu", (), "test", ("question", "choices", "answer"), mmlu_row, False),
    Benchmark("mmlu_pro", "TIGER-Lab/MMLU-Pro", (None,), "test",
              ("question", "options", "answer_index", "category"), mmlu_pro_row, True, MMLU_PRO_SEED),
    Benchmark("math", "HuggingFaceH4/MATH-500", (None,), "test", ("problem", "solution", "answer"), math_row, True),
    Benchmark("gpqa", "Idavidrein/gpqa", ("gpqa_main",), "train", ("Question",) + GPQA_OPTION_COLUMNS,
              lambda row, seed: gpqa_row(row, seed, "main"), False, stored_required=GPQA_STORED,
              build_stored_row=gpqa_stored_row),
    Benchmark("gpqa_diamond", "Idavidrein/gpqa", ("gpqa_diamond",), "train", ("Question",) + GPQA_OPTION_COLUMNS,
              lambda row, seed: gpqa_row(row, seed, "diamond"), False, stored_required=GPQA_STORED,
              build_stored_row=gpqa_stored_row),
)}


def mmlu_subject_list(subjects: list[str] | None, category: str) -> list[str]:
    """The MMLU subjects to use, in a stable order (the user's order, else the built-in set's)."""
    return list(dict.fromkeys(subjects)) if subjects else list(MMLU_SUBJECTS[category])


def _load_hub(bench: Benchmark, configs: list[str | None]) -> Dataset:
    """Load and concatenate the benchmark's hub configs; a missing subject or gated dataset is a UserError."""
    import datasets

    parts = []
    for config in configs:
        try:
            part = datasets.load_dataset(bench.hub_id, config, split=bench.split)
        except Exception as err:  # network, gating, unknown config: all reported the same way
            where = bench.hub_id + (f" ({config})" if config else "")
            raise UserError(f"cannot load {where} from the hub: {error_line(err)}; "
                            f"for offline runs pass --dataset_path with a local copy") from err
        if config and bench.name == "mmlu":
            part = part.map(lambda row, s=config: {"subject": row.get("subject") or s}, keep_in_memory=True)
        parts.append(part)
    return parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)


def _select_mmlu_subjects(dataset: Dataset, subjects: list[str], source: str) -> Dataset:
    """Keep rows of the chosen subjects, grouped in the given subject order (stable within a subject)."""
    if "subject" not in dataset.column_names:
        raise UserError(f"{source} lacks the 'subject' column that cais/mmlu rows carry")
    found = dataset["subject"]
    rank = {s: i for i, s in enumerate(subjects)}
    keep = sorted((rank[s], i) for i, s in enumerate(found) if s in rank)
    if not keep:
        raise UserError(f"{source} has no rows for subjects {subjects}; it has {sorted(set(found))}; "
                        f"choose them with --mmlu_subjects")
    return dataset.select([i for _, i in keep])


def drop_generated_columns(dataset: Dataset) -> Dataset:
    """A Step 1 (or later) output used as input: drop its prompts and per-sample columns, restore MATH's raw problem."""
    generated = [c for c in dataset.column_names if c == "instruction" or is_per_sample_column(c)]
    if "original_problem" in dataset.column_names and "problem" in dataset.column_names:
        generated.append("problem")
    dataset = dataset.remove_columns(generated)
    if "original_problem" in dataset.column_names and "problem" not in dataset.column_names:
        dataset = dataset.rename_column("original_problem", "problem")
    return dataset


def check_columns(dataset: Dataset, bench: Benchmark, source: str) -> None:
    """Fail with the names of the required columns the input lacks."""
    missing = [c for c in bench.required if c not in dataset.column_names]
    if missing:
        raise UserError(f"{source} lacks columns required for --dataset {bench.name}: {', '.join(missing)} "
                        f"(it has: {', '.join(dataset.column_names)}); lay it out in the {bench.hub_id} schema")


def load_benchmark(name: str, dataset_path: str | None = None, seed: int = 42, max_rows: int | None = None,
                   mmlu_subjects: list[str] | None = None, mmlu_category: str = "college",
                   split: str | None = None) -> Dataset:
    """Load a benchmark (hub or local file in its hub schema) as prompts: its columns plus `problem`."""
    if name not in BENCHMARKS:
        raise UserError(f"unknown --dataset {name!r}; choose one of {', '.join(BENCHMARKS)}")
    bench = BENCHMARKS[name]
    subjects = mmlu_subject_list(mmlu_subjects, mmlu_category) if name == "mmlu" else None
    if dataset_path:
        source = dataset_path
        dataset, _ = read_input(dataset_path, split)
        step_output = "instruction" in dataset.column_names  # a Step 1 (or later) output: already in benchmark order
        dataset = drop_generated_columns(dataset)
        check_rows(dataset, {column: Rule(present, f"fill it in (the {bench.hub_id} schema), or drop the row")
                             for column in bench.required + bench.stored_required}, source)
        if subjects is not None:
            check_columns(dataset, bench, source)
            dataset = _select_mmlu_subjects(dataset, subjects, source)
    else:
        source, step_output = bench.hub_id, False
        dataset = _load_hub(bench, subjects if subjects is not None else list(bench.configs))
    build_row, keep_columns = bench.build_row, bench.keep_source_columns
    if step_output and bench.build_stored_row and all(c in dataset.column_names for c in bench.stored_required):
        build_row, keep_columns = bench.build_stored_row, True  # its own output: the stored option order is kept
    else:
        check_columns(dataset, bench, source)
    if bench.shuffle_seed is not None and not step_output:
        dataset = dataset.shuffle(seed=bench.shuffle_seed, keep_in_memory=True)
    if max_rows is not None:
        dataset = dataset.select(range(min(max_rows, len(dataset))))
    removed = [] if keep_columns else dataset.column_names
    # keep_in_memory: never write cache files beside a save_to_disk input (the input is read-only to us)
    return dataset.map(lambda row: build_row(row, seed), remove_columns=removed, keep_in_memory=True,
                       desc=f"building {name} prompts")
