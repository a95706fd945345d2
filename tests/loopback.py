"""A scripted HTTP server on 127.0.0.1 speaking the OpenAI, Together and Anthropic chat formats, for fault tests,
with provider personas (OpenAI, Anthropic, Together, a vLLM server, Ollama) that behave as their docs say."""
from __future__ import annotations

import base64
import json
import multiprocessing
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator


@dataclass
class Reply:
    """What the server sends back for one request."""

    status: int = 200
    body: Any = None  # dict -> JSON; str/bytes -> sent raw (malformed bodies)
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (timeouts, latency)


def default_text(request: dict) -> str:
    """Default assistant text: a deterministic answer naming the last user message length."""
    last = request.get("messages", [{}])[-1].get("content", "")
    if isinstance(last, list):
        last = " ".join(part.get("text", "") for part in last)
    return f"Reasoning about {len(last)} characters.\nThe answer is: B"


def openai_body(request: dict, texts: list[str], model: str | None = None, finish_reason: str = "stop") -> dict:
    """An OpenAI chat.completions response with one choice per text."""
    return {
        "id": "chatcmpl-loopback", "object": "chat.completion", "created": int(time.time()),
        "model": model or request.get("model", "loopback"),
        "choices": [{"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": finish_reason}
                    for i, t in enumerate(texts)],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5 * len(texts), "total_tokens": 10 + 5 * len(texts)},
    }


def anthropic_body(request: dict, text: str, stop_reason: str = "end_turn") -> dict:
    """An Anthropic messages response."""
    return {
        "id": "msg_loopback", "type": "message", "role": "assistant", "model": request.get("model", "loopback"),
        "content": [{"type": "text", "text": text}], "stop_reason": stop_reason, "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5},
    }


def default_responder(path: str, request: dict, count: int) -> Reply:
    """Answer every request successfully in the format its path implies."""
    if path.endswith("/messages"):
        return Reply(body=anthropic_body(request, default_text(request)))
    n = int(request.get("n") or 1)
    return Reply(body=openai_body(request, [default_text(request)] * n))


def _error(status: int, message: str, kind: str = "invalid_request_error", code: Any = None,
           param: str | None = None) -> Reply:
    """An OpenAI-format error body (vLLM and Together use the same shape)."""
    return Reply(status=status, body={"error": {"message": message, "type": kind, "param": param, "code": code}})


@dataclass(frozen=True)
class Persona:
    """A provider's documented behaviour (its API reference, SDK source and server code), for tests.

    Every reply is `words` words long; a cap below that cuts it (finish_reason "length", Anthropic stop_reason
    "max_tokens"). Reasoning models spend `hidden_reasoning` tokens before the visible answer, inside the cap.
    """

    name: str
    max_n: int | None = None  # n above it: 400 (OpenAI and Together: 128); 1: no `n` at all (Anthropic: 400)
    honours_n: bool = True  # False: one choice whatever `n` asks (Ollama's OpenAI endpoint)
    flagged: str | None = None  # prompts containing it: OpenAI's 400 invalid_prompt
    context_chars: int | None = None  # prompts longer than this (chars ~ tokens here): vLLM's context 400
    reasoning: bool = False  # OpenAI o-series rules: 400 for max_tokens/temperature/top_p; hidden reasoning
    hidden_reasoning: int = 1000
    words: int = 40
    basic_auth: str | None = None  # "user:password" the server requires (a proxy in front of vLLM)
    query_token: str | None = None  # ?token=... the server requires
    refuses_sampling: bool = False  # Anthropic API version 2026-10-21: temperature/top_p are 400


OPENAI = Persona("openai", max_n=128, flagged="FLAGGED")
OPENAI_REASONING = Persona("openai-reasoning", max_n=128, reasoning=True)
ANTHROPIC = Persona("anthropic", max_n=1, refuses_sampling=True, context_chars=2000)
TOGETHER = Persona("together", max_n=128)
VLLM = Persona("vllm", context_chars=2000)
OLLAMA = Persona("ollama", honours_n=False)


def _prompt_text(request: dict) -> str:
    """All message text of a chat request (and Anthropic's system parameter)."""
    parts = [request.get("system") or ""]
    for message in request.get("messages", []):
        content = message.get("content", "")
        parts.append(content if isinstance(content, str) else " ".join(p.get("text", "") for p in content))
    return "\n".join(parts)


def _refusal(persona: Persona, path: str, request: dict, headers: dict) -> Reply | None:
    """The persona's 4xx for this request, or None when it is accepted."""
    lower = {k.lower(): v for k, v in headers.items()}
    if persona.basic_auth and lower.get("authorization") != "Basic " + base64.b64encode(
            persona.basic_auth.encode()).decode():
        return _error(401, "Unauthorized", "authentication_error")
    if persona.query_token and f"token={persona.query_token}" not in path:
        return _error(401, "missing or wrong token", "authentication_error")
    n = int(request.get("n") or 1)
    if persona.max_n == 1 and "n" in request:
        return Reply(status=400, body={"type": "error", "error": {"type": "invalid_request_error",
                                                                   "message": "n: Extra inputs are not permitted"}})
    if persona.max_n and n > persona.max_n:
        return _error(400, f"Invalid 'n': integer above maximum value. Expected a value <= {persona.max_n}, but got "
                           f"{n} instead.", code="integer_above_max_value", param="n")
    if persona.refuses_sampling and ("temperature" in request or "top_p" in request):
        return Reply(status=400, body={"type": "error", "error": {
            "type": "invalid_request_error", "message": "temperature: Extra inputs are not permitted"}})
    if persona.reasoning:
        for name in ("max_tokens", "temperature", "top_p"):
            if name in request:
                hint = " Use 'max_completion_tokens' instead." if name == "max_tokens" else ""
                return _error(400, f"Unsupported parameter: '{name}' is not supported with this model.{hint}",
                              code="unsupported_parameter", param=name)
    text = _prompt_text(request)
    if persona.flagged and persona.flagged in text:
        return _error(400, "Invalid prompt: your prompt was flagged as potentially violating our usage policy. "
                           "Please try again with a different prompt.", code="invalid_prompt")
    if persona.context_chars and len(text) > persona.context_chars and path.split("?")[0].endswith("/messages"):
        return Reply(status=400, body={"type": "error", "error": {
            "type": "invalid_request_error",
            "message": f"prompt is too long: {len(text)} tokens > {persona.context_chars} maximum"}})
    if persona.context_chars and len(text) > persona.context_chars:
        return _error(400, f"This model's maximum context length is {persona.context_chars} tokens. However, your "
                           f"prompt contains {len(text)} input tokens, which exceeds this limit even without any "
                           f"output tokens. Please reduce the length of the input prompt.", "BadRequestError",
                      code=400, param="input_tokens")
    return None


def persona_responder(persona: Persona) -> Callable[[str, dict, int], Reply]:
    """A responder answering as `persona`: its refusals, its n handling, its cut replies."""
    def respond(path: str, request: dict, count: int, headers: dict | None = None) -> Reply:
        refusal = _refusal(persona, path, request, headers or {})
        if refusal:
            return refusal
        cap = request.get("max_completion_tokens", request.get("max_tokens"))
        hidden = persona.hidden_reasoning if persona.reasoning else 0
        visible = persona.words if cap is None else max(0, min(persona.words, cap - hidden))
        cut = visible < persona.words
        n = 1 if not persona.honours_n else int(request.get("n") or 1)
        seed = request.get("seed")
        # the verdict on a final line of its own, as the judge prompt asks (a reply cut short has none)
        texts = [" ".join([f"s{seed}c{i}"] + ["word"] * (persona.words - 2)) for i in range(n)]
        texts = [" ".join(t.split()[:visible]) + ("" if cut else "\nTrue") for t in texts]
        if path.split("?")[0].endswith("/messages"):
            return Reply(body=anthropic_body(request, texts[0], stop_reason="max_tokens" if cut else "end_turn"))
        return Reply(body=openai_body(request, texts, finish_reason="length" if cut else "stop"))
    respond.accepts_headers = True
    return respond


class _QuietServer(ThreadingHTTPServer):
    """A client that hangs up mid-request (a timeout, a cancelled retry) is routine for a real server: no traceback
    on the test process's stderr, which the tests read as the step's console."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class LoopbackServer:
    """Threaded server; `responder(path, request_json, count)` decides each Reply. Records every request."""

    def __init__(self, responder: Callable[[str, dict, int], Reply] = default_responder, batches: Any = None) -> None:
        self.responder = responder
        self.batches = batches  # a loopback_batches.BatchService answering the files/batches endpoints
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms Nagle/delayed-ACK stall

            def log_message(self, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                if outer.batches and outer.batches.serves(self.path):
                    self._reply(outer.batches.handle("GET", self.path, b"", dict(self.headers)))
                    return
                if getattr(outer.responder, "answers_get", False):  # a server whose reads are scripted too (a hub)
                    with outer.lock:
                        outer.requests.append({"path": self.path, "json": {}, "headers": dict(self.headers)})
                        count = len(outer.requests)
                    self._reply(outer.responder(self.path, {}, count))
                    return
                body = json.dumps({"object": "list", "data": [{"id": "loopback", "object": "model"}]}).encode()
                self._send(200, body, {"Content-Type": "application/json"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if outer.batches and outer.batches.serves(self.path):
                    self._reply(outer.batches.handle("POST", self.path, raw, dict(self.headers)))
                    return
                try:
                    request = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    request = {}
                with outer.lock:
                    outer.requests.append({"path": self.path, "json": request, "headers": dict(self.headers)})
                    count = len(outer.requests)
                if getattr(outer.responder, "accepts_headers", False):
                    reply = outer.responder(self.path, request, count, dict(self.headers))
                else:
                    reply = outer.responder(self.path, request, count)
                self._reply(reply)

            def _reply(self, reply: Reply) -> None:
                if reply.delay:
                    time.sleep(reply.delay)
                if isinstance(reply.body, (dict, list)):
                    body = json.dumps(reply.body).encode()
                elif isinstance(reply.body, str):
                    body = reply.body.encode()
                else:
                    body = reply.body or b""
                headers = {"Content-Type": "application/json", **reply.headers}
                try:
                    self._send(reply.status, body, headers)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        ThreadingHTTPServer.daemon_threads = True
        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.request_queue_size = 256
        self.httpd.socket.listen(self.httpd.request_queue_size)  # the socket listened with the default backlog (5)
        # serve_forever looks for a shutdown every poll_interval (default 0.5 s), so each `with` block's exit waited
        # up to that long
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        """Base URL including /v1 (what OpenAI-compatible clients expect)."""
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    @property
    def root(self) -> str:
        """Base URL without /v1 (what the Anthropic client expects)."""
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> "LoopbackServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _serve_until(responder: Callable[[str, dict, int], Reply], urls, stop) -> None:
    """Child-process body of serve_in_child: run a server until `stop` is set."""
    with LoopbackServer(responder) as server:
        urls.put(server.url)
        stop.wait()


@contextmanager
def serve_in_child(responder: Callable[[str, dict, int], Reply]) -> Iterator[str]:
    """Run a LoopbackServer in a separate process (like a real API, it does not share the client's CPU time
    with the client's interpreter lock); yields its /v1 URL. The responder must be a module-level function."""
    context = multiprocessing.get_context("spawn")
    urls, stop = context.Queue(), context.Event()
    process = context.Process(target=_serve_until, args=(responder, urls, stop), daemon=True)
    process.start()
    try:
        yield urls.get(timeout=60)
    finally:
        stop.set()
        process.join(10)
