"""Starting and stopping vLLM engines (sample generation, local judges, pooling reward models) in one place."""
from __future__ import annotations

import argparse
import gc
import os
from typing import Any, Callable, Iterable, Iterator

from generation.backends.engine_guard import check_gpu_memory
from generation.common.cli import positive_int
from generation.common.logs import is_quiet
from generation.common.processes import guard_descendants

CPU_KV_CACHE_GIB = "4"  # vLLM's CPU backend otherwise reserves gpu_memory_utilization of all RAM for its KV cache
VLLM_GPU_MEMORY_UTILIZATION = 0.9  # vLLM's default share of each GPU's memory
SHUTDOWN_GRACE_S = 60.0  # how long an engine may take to stop its workers before vLLM kills them
WINDOW_FILLS = 4  # default sequences in flight: this many times the engine's max_num_seqs


def chunks(items: list, size: int) -> Iterator[list]:
    """Consecutive slices of at most size items (prompts per generate call, sequences per batch)."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def start_engine(memory_flag: str | None = "--gpu_memory_utilization", **llm_kwargs):
    """A vllm.LLM; on GPUs, first a one-line error when one lacks the memory the engine asks for (naming the
    processes holding it and memory_flag); on a machine without CUDA: eager mode, a bounded KV cache
    (VLLM_CPU_KVCACHE_SPACE, GiB) and float32 unless a dtype is given."""
    import torch

    if torch.cuda.is_available():
        check_gpu_memory(llm_kwargs.get("gpu_memory_utilization") or VLLM_GPU_MEMORY_UTILIZATION,
                         llm_kwargs.get("tensor_parallel_size") or 1, memory_flag)
    from vllm import LLM

    guard_descendants()  # the engine's processes (EngineCore, workers) never outlive this step
    llm_kwargs.setdefault("use_tqdm_on_load", not is_quiet())  # vLLM's "Loading safetensors checkpoint shards" bar
    if not torch.cuda.is_available():
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", CPU_KV_CACHE_GIB)
        llm_kwargs["enforce_eager"] = True
        if llm_kwargs.get("dtype") in (None, "auto"):
            # vllm-cpu's default bf16 picks its AMX attention kernel, whose worker may run AMX before the process
            # is granted AMX state: an intermittent SIGILL ("Worker proc died unexpectedly") on AMX CPUs
            llm_kwargs["dtype"] = "float32"
    return LLM(**llm_kwargs)


def stop_engine(llm) -> None:
    """Stop the engine's worker processes and free what they held, so the next engine fits."""
    import torch

    engine_core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
    if engine_core is not None and hasattr(engine_core, "shutdown"):
        # vLLM's default grace is 5 s, then it kills the engine process before its worker has unlinked its shared
        # memory: the "resource_tracker ... leaked shared_memory" warning at exit. A busy CPU needs longer.
        engine_core.shutdown(timeout=SHUTDOWN_GRACE_S)
    context = getattr(getattr(engine_core, "resources", None), "ctx", None)
    if context is not None and not context.closed:
        # vLLM's shutdown closes its sockets, not their ZeroMQ context: each engine would leave two I/O threads
        # behind, and a "ResourceWarning: Unclosed context" whenever the garbage collector meets it
        context.destroy(linger=0)
    try:
        from vllm.distributed.parallel_state import cleanup_dist_env_and_memory
    except ImportError:  # a vLLM without this helper: collect here; the torch caches below are all else to free
        gc.collect()
    else:
        cleanup_dist_env_and_memory()  # collects garbage itself: one pass over a large heap, not two
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def largest_divisor_at_most(number: int, limit: int) -> int:
    """The largest divisor of number that is not above limit (at least 1)."""
    return max(d for d in range(1, max(1, limit) + 1) if number % d == 0)


def valid_tensor_parallel(config, gpus: int) -> int:
    """The largest tensor-parallel size not above gpus that divides the attention heads, the key/value heads and
    the MLP's intermediate size (vLLM splits each of them evenly across the GPUs); 1 when the config names none."""
    sizes = [getattr(config, name, None) for name in ("num_attention_heads", "num_key_value_heads",
                                                      "intermediate_size")]
    sizes = [size for size in sizes if isinstance(size, int) and size > 0]
    return max(d for d in range(1, max(1, gpus) + 1) if all(size % d == 0 for size in sizes))


def default_tensor_parallel(model: str, gpus: int, trust_remote_code: bool = False) -> int:
    """A valid tensor-parallel size for the model on this node's gpus (1 on CPU); see valid_tensor_parallel."""
    from transformers import AutoConfig

    if gpus <= 1:
        return 1
    config = AutoConfig.from_pretrained(model, trust_remote_code=trust_remote_code).get_text_config()
    return valid_tensor_parallel(config, gpus)


def sequences_in_flight(llm, requested: int | None) -> int:
    """The sequence window of generate_streaming: requested, else WINDOW_FILLS times the engine's max_num_seqs."""
    if requested:
        return requested
    return WINDOW_FILLS * llm.llm_engine.vllm_config.scheduler_config.max_num_seqs


def generate_streaming(llm, requests: Iterable[tuple[Any, Any]], on_finished: Callable[[int, Any], None],
                       window: int) -> None:
    """Run (prompt, SamplingParams) requests through the engine's step loop with about `window` sequences
    (prompts x n) in flight, calling on_finished(index, RequestOutput) as each request completes, so a kill loses
    only the requests in flight; the engine is always fed, no request waits for a chunk's slowest one."""
    from vllm.sampling_params import RequestOutputKind

    engine = llm.llm_engine
    pending = enumerate(requests)
    in_flight: dict[str, int] = {}  # request id -> sequences
    indices: dict[str, int] = {}  # request id -> index of the request
    load = 0

    def add(index: int, prompt: Any, params: Any) -> str:
        """Queue one request the way the installed vLLM expects: where LLM.enqueue exists it renders the prompt
        (raw prompts at the engine are deprecated there); older versions take the prompt at add_request."""
        if hasattr(llm, "enqueue"):  # it returns the engine's id: the LLM's counter plus "-" and a random suffix
            return llm.enqueue(prompt, params, use_tqdm=False)[0].split("-", 1)[0]  # outputs carry the counter
        engine.add_request(str(index), prompt, params)
        return str(index)

    def feed() -> None:
        nonlocal load
        while load < window:
            index, (prompt, params) = next(pending, (None, (None, None)))
            if index is None:
                return
            params.output_kind = RequestOutputKind.FINAL_ONLY  # what LLM.generate asks for: one output per request
            request_id = add(index, prompt, params)
            in_flight[request_id], indices[request_id] = params.n, index
            load += params.n

    feed()
    try:
        while in_flight:
            for output in engine.step():
                if output.finished:
                    load -= in_flight.pop(output.request_id)
                    on_finished(indices.pop(output.request_id), output)
            feed()
    finally:
        if in_flight:  # interrupted: leave the engine clean for the caller's shutdown
            engine.abort_request(list(in_flight), internal=False)


def add_window_arguments(group: argparse._ActionsContainer, window: str, seeds: str, seed_flag: str,
                         unit: str) -> None:
    """The vLLM in-flight window and per-request seed flags (Step 1 and the judges name them differently)."""
    group.add_argument(window, type=positive_int, default=None,
                       help=f"vLLM: {unit} (prompts x n) kept in the engine; each prompt is saved as it finishes "
                            "(default: 4 x the engine's max_num_seqs)")
    group.add_argument(seeds, action="store_true",
                       help=f"vLLM: seed every request from {seed_flag} and its prompt (reproducible whatever the "
                            "batch) instead of seeding the engine once; slower: seeded requests turn off FlashInfer "
                            "sampling")
