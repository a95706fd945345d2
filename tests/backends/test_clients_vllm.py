"""model_clients end to end against a real vLLM OpenAI-compatible server (openai_compatible provider)."""
from __future__ import annotations

from generation.backends.calls import run_chat_jobs
from generation.backends.rules import ApiConfig, ChatJob, check_ready


def test_openai_compatible_vllm_server_n_and_seed(vllm_server):
    config = ApiConfig(model="tiny-chat", provider="openai_compatible", base_url=vllm_server, max_concurrency=4,
                       timeout=120.0, max_retries=1)
    check_ready(config)
    jobs = [ChatJob(key=f"q{i}", messages=[{"role": "user", "content": f"What is {i} + {i}?"}], n=2,
                    temperature=1.0, top_p=0.95, max_tokens=8, seed=i) for i in range(3)]
    results = {}
    stats = run_chat_jobs(config, jobs, lambda job, c: results.__setitem__(job.key, c), desc="vllm")
    assert sorted(results) == ["q0", "q1", "q2"]
    for completion in results.values():
        assert completion.error is None and len(completion.texts) == 2
        assert all(isinstance(t, str) for t in completion.texts)
        assert 0 < completion.usage["completion_tokens"] <= 2 * 8 and completion.usage["prompt_tokens"] > 0
    assert stats["failed_samples"] == 0 and stats["requests"] == 3 and stats["samples"] == 6
