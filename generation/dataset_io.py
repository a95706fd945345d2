"""Reading any dataset layout the pipeline meets, and writing outputs atomically."""
from __future__ import annotations

import os
import shutil
import sys
import uuid

from cli_support import UserError, error_line

SPLIT_PREFERENCE = ("data", "test", "train")
FILE_FORMATS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv", ".arrow": "arrow"}


def pick_split(dataset_dict, source: str):
    """Return the `data` split (else test, else train, else the only one) of a DatasetDict."""
    for name in SPLIT_PREFERENCE:
        if name in dataset_dict:
            return dataset_dict[name]
    if len(dataset_dict) == 1:
        return next(iter(dataset_dict.values()))
    raise UserError(f"{source} has splits {sorted(dataset_dict)}; expected one named 'data', 'test' or 'train'")


def is_saved_dataset(path: str) -> bool:
    """Whether a folder was written by save_to_disk (a Dataset or a DatasetDict)."""
    return any(os.path.exists(os.path.join(path, f)) for f in ("dataset_dict.json", "state.json"))


def load_any(path: str, split: str | None = None):
    """Load a Dataset from a save_to_disk folder (Dataset or DatasetDict), a data file or folder, or a hub id."""
    import datasets

    try:
        if os.path.isdir(path):
            loaded = datasets.load_from_disk(path) if is_saved_dataset(path) else datasets.load_dataset(path)
        elif os.path.isfile(path):
            ext = os.path.splitext(path)[1].lower()
            if ext not in FILE_FORMATS:
                raise UserError(f"cannot read {path}: unsupported file type {ext!r}; use one of {sorted(FILE_FORMATS)}")
            loaded = datasets.load_dataset(FILE_FORMATS[ext], data_files=path)
        elif path.startswith((".", "/", "~")) or os.sep in path.rstrip(os.sep) and path.count("/") != 1:
            raise UserError(f"input path {path} does not exist; pass an existing dataset folder, file or hub id")
        else:
            loaded = datasets.load_dataset(path)
    except UserError:
        raise
    except FileNotFoundError as err:
        raise UserError(f"cannot read dataset {path}: {err}") from err
    except Exception as err:  # datasets raises many types for unreadable input
        raise UserError(f"cannot read dataset {path}: {error_line(err)}") from err
    if isinstance(loaded, datasets.DatasetDict):
        if split is not None and split not in loaded:
            raise UserError(f"{path} has no split {split!r}; it has {sorted(loaded)}")
        loaded = loaded[split] if split is not None else pick_split(loaded, path)
    if len(loaded) == 0:
        raise UserError(f"dataset {path} holds no rows; pass a dataset with at least one row")
    return loaded


def check_output_path(path: str) -> None:
    """Fail early when the output path cannot be a dataset folder."""
    if os.path.isfile(path):
        raise UserError(f"output path {path} is an existing file; pass a folder path for the dataset")
    if os.path.isdir(path) and os.listdir(path) and not is_saved_dataset(path):
        raise UserError(f"output path {path} is an existing folder that is not a saved dataset (it would be "
                        f"replaced); pass a new folder path for the dataset")
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.isfile(parent):
        raise UserError(f"output path {path} is inside a file; pass a folder path for the dataset")


def save_atomic(dataset, output_path: str) -> None:
    """Save as DatasetDict({'data': dataset}) via a temporary folder and renames; never leaves a half-written output."""
    import datasets

    check_output_path(output_path)
    target = os.path.abspath(output_path)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    token = uuid.uuid4().hex[:8]
    tmp = f"{target}.tmp-{token}"
    old = f"{target}.old-{token}"
    try:
        # flatten_indices so a selected/filtered dataset is written as its own rows, independent of its source files
        datasets.DatasetDict({"data": dataset.flatten_indices()}).save_to_disk(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if os.path.exists(target):
        os.rename(target, old)
    os.rename(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def push_to_hub(dataset, repo: str) -> str | None:
    """Push DatasetDict({'data': dataset}) privately to the hub; None on success, else the reason (local copy stays)."""
    import datasets

    try:
        datasets.DatasetDict({"data": dataset}).push_to_hub(repo, private=True)
    except Exception as err:  # noqa: BLE001 - network, auth, permissions: the local output is already saved
        reason = error_line(err)
        print(f"warning: push to {repo} failed ({reason}); the local output is saved", file=sys.stderr)
        return reason
    print(f"pushed to https://huggingface.co/datasets/{repo} (split 'data', private)")
    return None


def sidecar_path(output_path: str, suffix: str) -> str:
    """Path of a file or folder kept beside the output (provenance, checkpoints)."""
    return os.path.abspath(output_path).rstrip(os.sep) + suffix


def provenance_path(output_path: str) -> str:
    """Where a step's provenance JSON lives: beside the output folder."""
    return sidecar_path(output_path, ".provenance.json")


def checkpoint_dir(output_path: str) -> str:
    """Folder beside the output holding a step's checkpoints and caches."""
    return sidecar_path(output_path, ".checkpoint")


PER_SAMPLE_NAMES = ("samples", "extracted_answers", "answer_correct")
PER_SAMPLE_SUFFIXES = ("_scores", "_verdicts", "_judgments", "_correct", "_extraction_method")


def is_per_sample_column(name: str) -> bool:
    """Whether a column holds one value per sample, by the pipeline's naming contract."""
    return name in PER_SAMPLE_NAMES or name.endswith(PER_SAMPLE_SUFFIXES)


def per_sample_columns(dataset) -> list[str]:
    """The per-sample columns present (samples, answers, verdicts, scores), by naming contract."""
    return [name for name in dataset.column_names if is_per_sample_column(name)]


def limit_samples(dataset, max_samples: int | None):
    """Keep the first max_samples samples of every row, cutting every per-sample column alike."""
    if not max_samples:
        return dataset
    columns = per_sample_columns(dataset)
    return dataset.map(lambda row: {c: row[c][:max_samples] for c in columns}, desc="--max_samples")
