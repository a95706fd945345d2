"""The vLLM step loop (each request reported as it finishes, a bounded window of sequences) and the TP default."""
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from generation.backends.vllm_engine import (
    default_tensor_parallel,
    generate_streaming,
    start_engine,
    stop_engine,
    valid_tensor_parallel,
)


@given(st.integers(1, 128), st.integers(1, 16), st.integers(1, 64), st.integers(0, 16))
def test_default_tensor_parallel_divides_heads_kv_heads_and_mlp(heads, group, mlp_unit, gpus):
    """The rule vLLM asserts (heads, KV heads and intermediate size split evenly), largest such size <= the GPUs."""
    kv_heads = max(1, heads // group)
    config = SimpleNamespace(num_attention_heads=heads, num_key_value_heads=kv_heads, intermediate_size=mlp_unit * 64)
    size = valid_tensor_parallel(config, gpus)
    sizes = (heads, kv_heads, config.intermediate_size)
    assert 1 <= size <= max(1, gpus) and all(n % size == 0 for n in sizes)
    assert not any(all(n % bigger == 0 for n in sizes) for bigger in range(size + 1, gpus + 1))


@pytest.mark.parametrize("heads, kv_heads, gpus, want", [(40, 8, 6, 4), (28, 4, 7, 4), (40, 8, 5, 4), (32, 8, 8, 8)])
def test_gqa_configs_of_the_issue(heads, kv_heads, gpus, want):
    """Qwen2.5-14B/32B-like (40 heads, 8 KV) on 5-7 GPUs and Qwen2.5-7B-like (28, 4) on 7 used to get 5 and 7."""
    config = SimpleNamespace(num_attention_heads=heads, num_key_value_heads=kv_heads, intermediate_size=27648)
    assert valid_tensor_parallel(config, gpus) == want


def test_default_tensor_parallel_reads_the_model_heads(tiny_chat_model):
    assert default_tensor_parallel(tiny_chat_model, 3) == 2  # the tiny model has 2 attention heads
    assert default_tensor_parallel(tiny_chat_model, 1) == 1
    assert default_tensor_parallel("/no/such/model", 0) == 1  # no GPU: 1, without reading a config


@pytest.mark.slow
def test_streaming_equals_generate_and_an_interrupt_leaves_the_engine_clean(tiny_chat_model):
    from vllm import SamplingParams

    llm = start_engine(model=tiny_chat_model, max_model_len=256, max_num_seqs=4, seed=0)
    try:
        prompts = [{"prompt_token_ids": [1, 5 + i, 9, 20 + 2 * i]} for i in range(7)]

        def params(seed: int) -> SamplingParams:
            return SamplingParams(n=2, temperature=1.0, max_tokens=6, seed=seed)  # seeded: batch-independent

        want = [[list(c.token_ids) for c in out.outputs]
                for out in llm.generate(prompts, [params(i) for i in range(7)], use_tqdm=False)]
        engine, added, live = llm.llm_engine, [], set()
        original_add = engine.add_request

        def counting_add(request_id, prompt, sampling, **options):
            added.append(request_id)
            live.add(request_id)
            assert 2 * len(live) <= 3 + 1  # window 3 sequences: never more than one request past it
            assert prompt.get("type") == "token"  # rendered as this vLLM expects (raw prompts are deprecated here)
            return original_add(request_id, prompt, sampling, **options)

        engine.add_request = counting_add
        got: dict[int, list] = {}

        def finished(index, output):
            live.discard(output.request_id)
            got[index] = [list(c.token_ids) for c in output.outputs]

        generate_streaming(llm, ((p, params(i)) for i, p in enumerate(prompts)), finished, window=3)
        assert sorted(got) == list(range(7)) and [got[i] for i in range(7)] == want

        def interrupt(index, output):
            raise KeyboardInterrupt

        engine.add_request = original_add
        with pytest.raises(KeyboardInterrupt):
            generate_streaming(llm, ((p, params(i)) for i, p in enumerate(prompts)), interrupt, window=8)
        assert not engine.has_unfinished_requests()  # what was in flight was aborted
        again = llm.generate(prompts[:2], [params(0), params(1)], use_tqdm=False)
        assert [[list(c.token_ids) for c in out.outputs] for out in again] == want[:2]
    finally:
        stop_engine(llm)
    context = llm.llm_engine.engine_core.resources.ctx  # the ZeroMQ context of vLLM's engine client
    assert context.closed  # no I/O threads left behind, no "Unclosed context" warning when it is collected
