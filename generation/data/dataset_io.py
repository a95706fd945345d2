"""Reading any dataset layout the pipeline meets, and saving a dataset output (through common.writing)."""
from __future__ import annotations

import os
import re
import shutil
import sys

from generation.common.cli import UserError, error_line
from generation.common.writing import publish, real_path

FILE_FORMATS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv", ".arrow": "arrow"}
REAL_ESCAPE = r"(?<!\\)(?:\\\\)*"  # a backslash escape, not an escaped backslash followed by text
HIGH, LOW = r"\\u[dD][89abAB][0-9a-fA-F]{2}", r"\\u[dD][c-fC-F][0-9a-fA-F]{2}"
LONE_SURROGATE_ESCAPE = re.compile(f"{REAL_ESCAPE}(?:{HIGH}(?!{LOW})|(?<!{HIGH}){LOW})")
SAVE_METADATA_BYTES = 1 << 20  # room for dataset_dict.json, state.json, dataset_info.json beside the arrow data


def add_split_argument(parser) -> None:
    """--split: which split of a multi-split input to read (every step takes it)."""
    parser.add_argument("--split", default=None,
                        help="split to read when the input has several, e.g. test; the split read is printed and "
                             "recorded in the provenance (default: the input's only split)")


def read_input(path: str, split: str | None):
    """A step's input and the split read (load_split), the split printed."""
    dataset, name = load_split(path, split)
    if name is not None:
        print(f"reading split {name!r} of {path} ({len(dataset)} rows)")
    return dataset, name


def only_split(dataset_dict, source: str, split: str | None) -> str:
    """The split to read: the one asked for, else the only one; UserError for a missing or ambiguous split."""
    if split is not None and split not in dataset_dict:
        raise UserError(f"{source} has no split {split!r}; it has {sorted(dataset_dict)}: pass one of them to --split")
    if split is None and len(dataset_dict) > 1:
        raise UserError(f"{source} has {len(dataset_dict)} splits ({', '.join(sorted(dataset_dict))}); pass --split "
                        "NAME to choose the one to read")
    return split or next(iter(dataset_dict))


def is_saved_dataset(path: str) -> bool:
    """Whether a folder was written by save_to_disk (a Dataset or a DatasetDict)."""
    return any(os.path.exists(os.path.join(path, f)) for f in ("dataset_dict.json", "state.json"))


def load_any(path: str, split: str | None = None):
    """A Dataset from a save_to_disk folder (Dataset or DatasetDict), a data file or folder, or a hub id."""
    return load_split(path, split)[0]


def load_split(path: str, split: str | None = None):
    """(Dataset, the split read or None) from a save_to_disk folder, a data file or folder, or a hub id; an input
    with several splits needs `split`."""
    import datasets

    try:
        if os.path.isdir(path):
            loaded = datasets.load_from_disk(path) if is_saved_dataset(path) else datasets.load_dataset(path)
        elif os.path.isfile(path):
            ext = os.path.splitext(path)[1].lower()
            if ext not in FILE_FORMATS:
                raise UserError(f"cannot read {path}: unsupported file type {ext!r}; use one of {sorted(FILE_FORMATS)}")
            if FILE_FORMATS[ext] == "json":
                check_json_text(path)
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
        raise UserError(f"cannot read dataset {path}: {read_error(err)}; fix it (UTF-8 JSON lines, JSON, CSV, "
                        "parquet or a save_to_disk folder, with at least one row) or pass another input") from err
    name = None
    if isinstance(loaded, datasets.DatasetDict):
        name = only_split(loaded, path, split)
        loaded = loaded[name]
    if len(loaded) == 0:
        raise UserError(f"dataset {path} holds no rows; pass a dataset with at least one row")
    return loaded, name


def check_json_text(path: str) -> None:
    """UserError naming the line of a JSON file that is not UTF-8 or holds a lone surrogate escape (json loaders
    would fail or silently cut the text there)."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise UserError(f"cannot read dataset {path}: line {number} is not UTF-8 text (byte "
                                f"{raw[err.start:err.start + 1]!r}); re-export the file as UTF-8") from None
            if "\\u" in line and LONE_SURROGATE_ESCAPE.search(line):
                raise UserError(f"cannot read dataset {path}: line {number} holds a lone UTF-16 surrogate escape "
                                f"({LONE_SURROGATE_ESCAPE.search(line).group()[-6:]}) that no text can hold; "
                                "replace it (e.g. with \\ufffd) and run again")


def read_error(err: BaseException) -> str:
    """The most telling one-line reason an input could not be read (datasets wraps the parser's own error)."""
    while err.__cause__ is not None:
        err = err.__cause__
    if isinstance(err, (StopIteration, IndexError)) or "corresponds to no data" in str(err):  # no rows, no shards
        return "it holds no data"
    if isinstance(err, UnicodeDecodeError):
        return f"it is not UTF-8 text (byte {err.object[err.start:err.start + 1]!r} at offset {err.start})"
    return error_line(err)


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


def check_free_space(dataset, output_path: str) -> None:
    """UserError before writing when the output's file system has less free space than the dataset needs."""
    folder = os.path.dirname(real_path(output_path))
    table = dataset.data
    need = table.nbytes * len(dataset) // max(1, table.num_rows) + SAVE_METADATA_BYTES
    free = shutil.disk_usage(folder).free
    if need > free:
        raise UserError(f"not enough space to save {output_path}: about {need / 1e6:.1f} MB needed, "
                        f"{free / 1e6:.1f} MB free in {folder}; free some space and run the same command again "
                        "(finished work is checkpointed)")


def own_rows(dataset):
    """A selection of rows (select, shuffle, --max_rows) as a dataset of its own rows, built in memory: the one way
    indices are flattened, never into a cache file beside the input."""
    return dataset.flatten_indices(keep_in_memory=True) if dataset._indices is not None else dataset


def save_atomic(dataset, output_path: str, provenance: dict | None = None) -> None:
    """Save as DatasetDict({'data': dataset}) with its provenance inside, as one unit (common.writing.publish):
    never a half-written output, never an output without its own provenance."""
    import datasets

    check_output_path(output_path)
    os.makedirs(os.path.dirname(real_path(output_path)), exist_ok=True)
    check_free_space(dataset, output_path)
    dataset = own_rows(dataset)

    def build(folder: str) -> None:
        try:
            datasets.DatasetDict({"data": dataset}).save_to_disk(folder)
        except OSError as err:
            raise UserError(f"cannot save {output_path}: {error_line(err)}; free some space or choose a writable "
                            "--output_path, then run the same command again (finished work is checkpointed)") from err

    publish(output_path, build, provenance)


def push_to_hub(dataset, repo: str) -> str | None:
    """Push DatasetDict({'data': dataset}) privately to the hub (HF_ENDPOINT's); None on success, else the reason, with
    one FAILED: line (the local copy stays; the step exits 1)."""
    import datasets

    try:
        datasets.DatasetDict({"data": dataset}).push_to_hub(repo, private=True)
    except Exception as err:  # noqa: BLE001 - network, auth, permissions: the local output is already saved
        reason = error_line(err)
        print(f"FAILED: push to {repo} failed ({reason}); the local output is saved: fix the cause and run the same "
              "command again to push it (finished work is reused)", file=sys.stderr)
        return reason
    print(f"pushed to https://huggingface.co/datasets/{repo} (split 'data', private)")
    return None


def sidecar_path(output_path: str, suffix: str) -> str:
    """Path of a file or folder kept beside the output (checkpoints, lock)."""
    return real_path(output_path).rstrip(os.sep) + suffix


def checkpoint_dir(output_path: str) -> str:
    """Folder beside the output holding a step's checkpoints and caches."""
    return sidecar_path(output_path, ".checkpoint")


FINISH_COLUMN = "sample_finish_reasons"  # Step 1's finish reason per sample: stop, length, content_filter, error, null
PER_SAMPLE_NAMES = ("samples", FINISH_COLUMN, "extracted_answers", "answer_correct")
PER_SAMPLE_SUFFIXES = ("_scores", "_verdicts", "_judgments", "_correct", "_extraction_method", "_extraction_note")


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
    return dataset.map(lambda row: {c: row[c][:max_samples] for c in columns}, desc="--max_samples",
                       keep_in_memory=True)  # never a cache file beside the input
