"""Provider routing, CLI arguments, request keys and the fail-fast checks of model_clients."""
from __future__ import annotations

import argparse

import pytest

from generation.backends.calls import ApiSettings, add_api_arguments, api_config_for
from generation.backends.rules import ApiConfig, ChatJob, check_ready, request_key, resolve_provider
from generation.common.cli import UserError, settings_from

from conftest import free_port
from loopback import LoopbackServer


@pytest.mark.parametrize("model,provider", [
    ("gpt-4o-mini", "openai"), ("gpt-4o", "openai"), ("gpt-4-turbo", "openai"), ("o3-mini-2025-01-31", "openai"),
    ("o1-2024-12-17", "openai"), ("claude-3-5-sonnet-latest", "anthropic"), ("claude-3-5-haiku-latest", "anthropic"),
    ("deepseek-ai/DeepSeek-R1", "together"), ("meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo", "together"),
    ("meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo", "together"),
    ("gpt-4.1-mini", "openai"), ("o4-mini", "openai"), ("o1", "openai"), ("claude-sonnet-4-5", "anthropic"),
    ("Qwen/Qwen2.5-0.5B-Instruct", None), ("simplescaling/s1-32B", None), ("o1x", None), ("llama", None),
])
def test_routing_by_name(model, provider):
    assert resolve_provider(model) == provider


def test_routing_flags_and_local_paths(tmp_path):
    local = tmp_path / "gpt-local"
    local.mkdir()
    assert resolve_provider(str(local)) is None
    assert resolve_provider("tiny-chat", base_url="http://127.0.0.1:8000/v1") == "openai_compatible"
    assert resolve_provider("Qwen/Qwen2.5-7B", provider="together") == "together"
    assert resolve_provider("gpt-4o-mini", base_url="http://127.0.0.1:1/v1") == "openai"
    with pytest.raises(UserError, match="unknown --provider"):
        resolve_provider("x", provider="groq")


def test_arguments_alias_and_defaults():
    parser = argparse.ArgumentParser()
    add_api_arguments(parser)
    args = parser.parse_args([])
    assert (args.provider, args.base_url, args.max_concurrency, args.requests_per_minute) == (None, None, 16, None)
    assert parser.parse_args(["--num_workers", "8"]).max_concurrency == 8
    args = parser.parse_args(["--max_concurrency", "32", "--requests_per_minute", "120", "--base_url", "http://h/v1"])
    config = api_config_for(settings_from(ApiSettings, vars(args), partial=True), "tiny-chat")
    assert config == ApiConfig(model="tiny-chat", provider="openai_compatible", base_url="http://h/v1",
                               max_concurrency=32, requests_per_minute=120.0)
    for bad in (["--num_workers", "0"], ["--requests_per_minute", "-1"], ["--provider", "groq"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)
    with pytest.raises(UserError, match="not a known API model"):
        api_config_for(settings_from(ApiSettings, vars(parser.parse_args([])), partial=True),
                       "Qwen/Qwen2.5-0.5B-Instruct")


def test_request_key_is_stable_and_sensitive():
    config = ApiConfig(model="gpt-4o-mini", provider="openai")
    job = ChatJob(key="", messages=[{"role": "user", "content": "2+2?"}], n=2, temperature=0.7, seed=1)
    key = request_key(config, job)
    assert key == request_key(config, ChatJob(key="other", messages=[{"content": "2+2?", "role": "user"}], n=2,
                                              temperature=0.7, seed=1))
    assert len(key) == 64
    changed = [ChatJob(key="", messages=job.messages, n=2, temperature=0.7, seed=2),
               ChatJob(key="", messages=job.messages, n=3, temperature=0.7, seed=1),
               ChatJob(key="", messages=job.messages, n=2, temperature=0.0, seed=1),
               ChatJob(key="", messages=[{"role": "user", "content": "2+3?"}], n=2, temperature=0.7, seed=1)]
    assert len({key, *(request_key(config, j) for j in changed)}) == 5
    assert key != request_key(ApiConfig(model="gpt-4o", provider="openai"), job)


@pytest.mark.parametrize("provider,variable", [("openai", "OPENAI_API_KEY"), ("anthropic", "ANTHROPIC_API_KEY"),
                                               ("together", "TOGETHER_API_KEY")])
def test_missing_key_is_one_line_user_error(provider, variable):
    with pytest.raises(UserError) as info:
        check_ready(ApiConfig(model="m", provider=provider))
    assert variable in str(info.value) and "\n" not in str(info.value)


def test_unreachable_base_url(monkeypatch):
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(UserError, match="cannot reach --base_url") as info:
        check_ready(ApiConfig(model="tiny-chat", provider="openai_compatible", base_url=url))
    assert url in str(info.value)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    with pytest.raises(UserError, match="cannot reach"):
        check_ready(ApiConfig(model="claude-x", provider="anthropic", base_url=url))
    with pytest.raises(UserError, match="needs --base_url"):
        check_ready(ApiConfig(model="tiny-chat", provider="openai_compatible"))
    with pytest.raises(UserError, match="http"):
        check_ready(ApiConfig(model="tiny-chat", provider="openai_compatible", base_url="127.0.0.1:8000"))


def test_keyless_openai_compatible_server_is_ready():
    with LoopbackServer() as server:
        check_ready(ApiConfig(model="tiny-chat", provider="openai_compatible", base_url=server.url))
