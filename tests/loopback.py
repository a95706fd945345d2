"""A scripted HTTP server on 127.0.0.1 speaking the OpenAI, Together and Anthropic chat formats, for fault tests."""
from __future__ import annotations

import json
import multiprocessing
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


class LoopbackServer:
    """Threaded server; `responder(path, request_json, count)` decides each Reply. Records every request."""

    def __init__(self, responder: Callable[[str, dict, int], Reply] = default_responder) -> None:
        self.responder = responder
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms Nagle/delayed-ACK stall

            def log_message(self, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                body = json.dumps({"object": "list", "data": [{"id": "loopback", "object": "model"}]}).encode()
                self._send(200, body, {"Content-Type": "application/json"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    request = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    request = {}
                with outer.lock:
                    outer.requests.append({"path": self.path, "json": request, "headers": dict(self.headers)})
                    count = len(outer.requests)
                reply = outer.responder(self.path, request, count)
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
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.request_queue_size = 256
        self.httpd.socket.listen(self.httpd.request_queue_size)  # the socket listened with the default backlog (5)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

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
