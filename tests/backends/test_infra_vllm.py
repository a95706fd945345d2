"""The shared fixtures work: the tiny model loads, and a real vLLM server answers chat completions."""
import json
import urllib.request


def test_vllm_server_chat(vllm_server):
    body = json.dumps({"model": "tiny-chat", "messages": [{"role": "user", "content": "What is 2 + 2?"}],
                       "max_tokens": 8, "n": 3, "seed": 1, "temperature": 1.0}).encode()
    req = urllib.request.Request(f"{vllm_server}/chat/completions", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as response:
        reply = json.load(response)
    assert len(reply["choices"]) == 3
    assert reply["usage"]["completion_tokens"] > 0
