"""The OpenAI files + batches endpoints and Anthropic's Message Batches for the loopback server, per their docs:
status transitions (OpenAI validating -> in_progress -> finalizing -> completed/expired; Anthropic in_progress ->
ended), output and error files / results JSONL, partial failures and expiry."""
from __future__ import annotations

import email.parser
import json
import re
import threading
import time
from typing import Any, Callable

from loopback import Reply

OPENAI_STEPS = ("validating", "in_progress", "finalizing")
FILE_CONTENT = re.compile(r"^/v1/files/([^/?]+)/content")
OPENAI_BATCH = re.compile(r"^/v1/batches/([^/?]+)$")
ANTHROPIC_BATCH = re.compile(r"^/v1/messages/batches/([^/?]+)(/results)?$")


class BatchService:
    """Answers batch requests with `responder` (the live persona) once a batch has been polled through its states.

    fails(i): the i-th request of a batch errors (HTTP 500 line); expire_after: requests from that index on expire;
    hold: while set, batches stay in progress (a driver killed mid-batch; Anthropic's `processing` count goes down
    by one per status check, its other counts stay 0 until the batch ends, as Anthropic reports them). OpenAI only:
    fail_whole: every batch fails validation with these errors (batch.errors.data); enqueued_limit: the
    organisation's batch queue limit in input tokens (the server's count: characters / 4), a batch that would pass it
    fails with token_limit_exceeded.
    """

    def __init__(self, responder: Callable, fails: Callable[[int], bool] = lambda i: False,
                 expire_after: int | None = None, fail_whole: list[dict] | None = None,
                 enqueued_limit: int | None = None) -> None:
        self.responder = responder
        self.fails = fails
        self.expire_after = expire_after
        self.fail_whole = fail_whole
        self.enqueued_limit = enqueued_limit
        self.tokens: dict[str, int] = {}  # OpenAI batch id -> its input tokens
        self.failing: dict[str, list[dict]] = {}  # OpenAI batch id -> the errors it fails validation with
        self.peak_enqueued = 0
        self.hold = threading.Event()
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}
        self.inputs: dict[str, list[dict]] = {}
        self.creations = 0
        self.lock = threading.Lock()

    @staticmethod
    def serves(path: str) -> bool:
        """Whether a path is a files or batches endpoint."""
        path = path.split("?")[0]
        return path.startswith(("/v1/files", "/v1/batches", "/v1/messages/batches"))

    def handle(self, method: str, path: str, raw: bytes, headers: dict) -> Reply:
        """One request to the files or batches endpoints."""
        path = path.split("?")[0]
        with self.lock:
            if method == "POST" and path == "/v1/files":
                return self._upload(raw, headers)
            if method == "POST" and path == "/v1/batches":
                return self._create_openai(json.loads(raw))
            if method == "POST" and path == "/v1/messages/batches":
                return self._create_anthropic(json.loads(raw), headers)
            if match := FILE_CONTENT.match(path):
                return Reply(body=self.files[match.group(1)], headers={"Content-Type": "application/octet-stream"})
            if match := OPENAI_BATCH.match(path):
                return Reply(body=self._advance(match.group(1)))
            if match := ANTHROPIC_BATCH.match(path):
                batch = self._advance(match.group(1))
                if match.group(2):
                    return Reply(body=self.files[batch["id"] + "-results"],
                                 headers={"Content-Type": "application/binary"})
                return Reply(body=batch)
        return Reply(status=404, body={"error": {"message": f"no route {path}", "type": "invalid_request_error"}})

    def _upload(self, raw: bytes, headers: dict) -> Reply:
        """POST /v1/files (multipart: purpose, file) -> a File object."""
        content_type = {k.lower(): v for k, v in headers.items()}["content-type"]
        message = email.parser.BytesParser().parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
        fields = {part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
                  for part in message.get_payload()}
        if fields.get("purpose") != b"batch":
            return Reply(status=400, body={"error": {"message": "purpose must be batch", "type": "invalid_request"}})
        file_id = f"file-{len(self.files) + 1}"
        self.files[file_id] = fields["file"]
        return Reply(body={"id": file_id, "object": "file", "bytes": len(fields["file"]),
                           "created_at": int(time.time()), "filename": "batch.jsonl", "purpose": "batch",
                           "status": "processed"})

    def _create_openai(self, request: dict) -> Reply:
        """POST /v1/batches -> a Batch in status validating."""
        assert request["endpoint"] == "/v1/chat/completions" and request["completion_window"] == "24h"
        lines = [json.loads(line) for line in self.files[request["input_file_id"]].splitlines() if line.strip()]
        self.creations += 1
        batch_id = f"batch_{self.creations}"
        self.inputs[batch_id] = lines
        self.tokens[batch_id] = sum(len(str(m.get("content", ""))) // 4 for line in lines
                                    for m in line["body"]["messages"])
        queued = self._enqueued()
        if self.fail_whole:
            self.failing[batch_id] = self.fail_whole
        elif self.enqueued_limit is not None and queued + self.tokens[batch_id] > self.enqueued_limit:
            self.failing[batch_id] = [{
                "code": "token_limit_exceeded", "line": None, "param": None,
                "message": f"Enqueued token limit reached for {lines[0]['body']['model']} in organization "
                           f"org-loopback. Limit: {self.enqueued_limit:,} enqueued tokens. Please try again once "
                           "some in_progress batches have been completed."}]
        else:
            self.peak_enqueued = max(self.peak_enqueued, queued + self.tokens[batch_id])
        self.batches[batch_id] = {
            "id": batch_id, "object": "batch", "endpoint": request["endpoint"], "errors": None,
            "input_file_id": request["input_file_id"], "completion_window": "24h", "status": "validating",
            "output_file_id": None, "error_file_id": None, "created_at": int(time.time()),
            "request_counts": {"total": len(lines), "completed": 0, "failed": 0}, "metadata": None}
        return Reply(body=self.batches[batch_id])

    def _create_anthropic(self, request: dict, headers: dict) -> Reply:
        """POST /v1/messages/batches -> a MessageBatch in processing_status in_progress."""
        self.creations += 1
        batch_id = f"msgbatch_{self.creations}"
        host = {k.lower(): v for k, v in headers.items()}["host"]
        self.inputs[batch_id] = request["requests"]
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.batches[batch_id] = {
            "id": batch_id, "type": "message_batch", "processing_status": "in_progress", "created_at": now,
            "expires_at": now, "ended_at": None, "archived_at": None, "cancel_initiated_at": None,
            "results_url": None, "request_counts": {"processing": len(request["requests"]), "succeeded": 0,
                                                    "errored": 0, "canceled": 0, "expired": 0},
            "_results": f"http://{host}/v1/messages/batches/{batch_id}/results"}
        return Reply(body=self._public(self.batches[batch_id]))

    def _enqueued(self) -> int:
        """Input tokens of the OpenAI batches not yet ended (what the batch queue limit counts)."""
        return sum(self.tokens[batch_id] for batch_id, batch in self.batches.items()
                   if batch.get("status") in OPENAI_STEPS and batch_id not in self.failing)

    @staticmethod
    def _public(batch: dict) -> dict:
        """The batch without the service's private fields."""
        return {k: v for k, v in batch.items() if not k.startswith("_")}

    def _advance(self, batch_id: str) -> dict:
        """A status check moves the batch one state on (not past in-progress while held); the batch."""
        batch = self.batches[batch_id]
        if "object" in batch:
            status = batch["status"]
            if status == "validating" and batch_id in self.failing:
                batch.update(status="failed", errors={"object": "list", "data": self.failing[batch_id]},
                             failed_at=int(time.time()))
            elif status in OPENAI_STEPS and not (self.hold.is_set() and status == "in_progress"):
                following = OPENAI_STEPS.index(status) + 1
                if following < len(OPENAI_STEPS):
                    batch["status"] = OPENAI_STEPS[following]
                else:
                    self._finish_openai(batch)
            return batch
        if batch["processing_status"] == "in_progress" and not self.hold.is_set():
            self._finish_anthropic(batch)
        elif batch["processing_status"] == "in_progress" and batch["request_counts"]["processing"] > 1:
            batch["request_counts"]["processing"] -= 1  # held: one more request done; the other counts stay 0
        return self._public(batch)

    def _outcomes(self, batch_id: str, path: str, requests: list[tuple[str, dict]]) -> list[tuple[str, Any]]:
        """(custom_id, "expired" | Reply) per request, in order."""
        out = []
        for i, (custom_id, body) in enumerate(requests):
            if self.expire_after is not None and i >= self.expire_after:
                out.append((custom_id, "expired"))
            elif self.fails(i):
                out.append((custom_id, Reply(status=500, body={"error": {"message": "The server had an error",
                                                                          "type": "server_error"}})))
            else:
                out.append((custom_id, self.responder(path, body, i)))
        return out

    def _finish_openai(self, batch: dict) -> None:
        """End an OpenAI batch: output file (200 lines), error file (failed and expired lines)."""
        requests = [(line["custom_id"], line["body"]) for line in self.inputs[batch["id"]]]
        output, errors = [], []
        for i, (custom_id, outcome) in enumerate(self._outcomes(batch["id"], "/v1/chat/completions", requests)):
            line = {"id": f"batch_req_{i}", "custom_id": custom_id, "response": None, "error": None}
            if outcome == "expired":
                line["error"] = {"code": "batch_expired",
                                 "message": "This request could not be executed before the completion window expired."}
                errors.append(line)
                continue
            line["response"] = {"status_code": outcome.status, "request_id": f"req_{i}", "body": outcome.body}
            (output if outcome.status == 200 else errors).append(line)
        for kind, lines in (("output", output), ("error", errors)):
            if lines:
                self.files[f"{batch['id']}-{kind}"] = "".join(json.dumps(x) + "\n" for x in lines).encode()
                batch[f"{kind}_file_id"] = f"{batch['id']}-{kind}"
        batch["status"] = "expired" if self.expire_after is not None else "completed"
        batch["request_counts"] = {"total": len(requests), "completed": len(output), "failed": len(errors)}

    def _finish_anthropic(self, batch: dict) -> None:
        """End an Anthropic batch: results JSONL with succeeded / errored / expired lines."""
        requests = [(item["custom_id"], item["params"]) for item in self.inputs[batch["id"]]]
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        lines = []
        for custom_id, outcome in self._outcomes(batch["id"], "/v1/messages", requests):
            if outcome == "expired":
                result = {"type": "expired"}
            elif outcome.status == 200:
                result = {"type": "succeeded", "message": outcome.body}
            else:
                result = {"type": "errored", "error": {"type": "error", "error": {
                    "type": "api_error", "message": outcome.body["error"]["message"]}}}
            counts[result["type"]] += 1
            lines.append({"custom_id": custom_id, "result": result})
        self.files[batch["id"] + "-results"] = "".join(json.dumps(x) + "\n" for x in lines).encode()
        batch.update(processing_status="ended", request_counts=counts, results_url=batch["_results"],
                     ended_at=batch["created_at"])
