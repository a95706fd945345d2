"""Quiet by default: engine and library logs, warnings and progress bars are hidden unless --verbose."""
from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings

# Read by the libraries at import, also in the engine's worker processes, which inherit the environment.
QUIET_ENV = {
    "VLLM_LOGGING_LEVEL": "ERROR",  # vLLM's INFO/WARNING lines (OpenMP binding, LD_PRELOAD advice, shutdown)
    "TRANSFORMERS_VERBOSITY": "error",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # transformers' and the hub's bars (loading/writing weights)
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",  # datasets' bars (saving, map, json export)
    "TORCH_CPP_LOG_LEVEL": "ERROR",  # torch's C++ warnings (NUMA binding)
    "TORCH_LOGS": "-torch",  # torch's Python logs ("Triton not available" in vLLM's workers)
    "PYTHONWARNINGS": "ignore::FutureWarning,ignore::DeprecationWarning",  # libraries' notes to their developers
    "TOKENIZERS_PARALLELISM": "false",
}
_QUIET = []  # holds True once quiet_libraries ran
LIBRARY_LOGGERS = ("vllm", "transformers", "datasets", "huggingface_hub", "torch", "ray", "urllib3", "httpx",
                   "filelock", "accelerate")


def add_verbose_argument(parser: argparse.ArgumentParser) -> None:
    """The --verbose flag every step has."""
    parser.add_argument("--verbose", action="store_true",
                        help="show engine and library logs, warnings and progress bars (vLLM, transformers, datasets, "
                             "torch); by default a step prints its own progress bar, notices and summary only")


def is_quiet() -> bool:
    """Whether this process hides the libraries' output (no --verbose)."""
    return bool(_QUIET)


def quiet_libraries() -> None:
    """Engine and library logs at error level, their warnings and progress bars off (a variable the user set wins)."""
    _QUIET.append(True)
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    if "datasets" in sys.modules:  # imported before the command line was read: the variables came too late
        sys.modules["datasets"].disable_progress_bars()
        sys.modules["datasets"].logging.set_verbosity_error()
    if "transformers" in sys.modules:
        sys.modules["transformers"].logging.set_verbosity_error()
        sys.modules["transformers"].logging.disable_progress_bar()
    if "huggingface_hub" in sys.modules:
        sys.modules["huggingface_hub"].utils.disable_progress_bars()
