"""Starting and stopping vLLM engines (sample generation, local judges, pooling reward models) in one place."""
from __future__ import annotations

import gc
import os
from typing import Iterator

CPU_KV_CACHE_GIB = "4"  # vLLM's CPU backend otherwise reserves gpu_memory_utilization of all RAM for its KV cache


def chunks(items: list, size: int) -> Iterator[list]:
    """Consecutive slices of at most size items (prompts per generate call, sequences per batch)."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def start_engine(**llm_kwargs):
    """A vllm.LLM; on a machine without CUDA: eager mode and a bounded KV cache (VLLM_CPU_KVCACHE_SPACE, GiB)."""
    import torch
    from vllm import LLM

    if not torch.cuda.is_available():
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", CPU_KV_CACHE_GIB)
        llm_kwargs["enforce_eager"] = True
    return LLM(**llm_kwargs)


def stop_engine(llm) -> None:
    """Stop the engine's worker processes and free what they held, so the next engine fits."""
    import torch

    engine_core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
    if engine_core is not None and hasattr(engine_core, "shutdown"):
        engine_core.shutdown()
    gc.collect()
    try:
        from vllm.distributed.parallel_state import cleanup_dist_env_and_memory
    except ImportError:  # a vLLM without this helper: the torch caches below are all there is to free
        pass
    else:
        cleanup_dist_env_and_memory()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
