"""Loopback servers that speak the Anthropic Messages API and OpenAI Chat Completions.

Each server binds 127.0.0.1 on a free port, records every request, and answers from a script
(a queue of ``Reply``): error statuses (529/500/429...), delays longer than the client timeout,
SSE error events mid-stream, then success. Successful streams send the answer in several
deltas, exactly in the wire format of the real APIs, so the official SDKs parse them.

Fixtures ``anthropic_server`` and ``openai_server`` yield a started server. To use them, import
``anthropic_server_fixture`` / ``openai_server_fixture`` into a test module (pytest registers them
under the short names) and ask for ``anthropic_server`` / ``openai_server``.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import pytest
from PIL import Image

from vistarag.agent.blobs import BlobStore
from vistarag.agent.settings import Settings
from vistarag.agent.types import Hit

Provider = Literal["anthropic", "openai"]
DEFAULT_ANSWER = "The warranty lasts 24 months [1]. The diagram shows the pump layout [2]."

_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_OPENAI_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    404: "invalid_request_error",
    429: "requests",
    500: "server_error",
    503: "server_error",
}


@dataclass
class Reply:
    """One scripted answer. The default is a successful answer with the server's text."""

    status: int = 200
    text: str | None = None
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    error_type: str | None = None
    stream_error_after: int | None = None  # send this many deltas, then an SSE error event
    tool_calls: list[tuple[str, dict[str, Any]]] | None = None  # answer with these tool calls


@dataclass
class Recorded:
    """One request as the server received it."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]


def split_tokens(text: str) -> list[str]:
    """Word-sized deltas (``"The "``, ``"warranty "``...) that join back to ``text``."""
    return re.findall(r"\S+\s*|\s+", text) or [text]


class FakeLLMServer:
    """A threaded HTTP server for one provider; use as a context manager."""

    def __init__(self, provider: Provider, answer: str = DEFAULT_ANSWER) -> None:
        self.provider = provider
        self.answer = answer
        self.requests: list[Recorded] = []
        self.script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """What to pass as the SDK's ``base_url`` (the OpenAI SDK expects the ``/v1`` prefix)."""
        root = f"http://127.0.0.1:{self.port}"
        return root if self.provider == "anthropic" else f"{root}/v1"

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [r.body for r in self.requests]

    def queue(self, *replies: Reply) -> FakeLLMServer:
        """Append scripted replies; once the queue is empty every request succeeds."""
        self.script.extend(replies)
        return self

    def next_reply(self) -> Reply:
        with self._lock:
            return self.script.popleft() if self.script else Reply()

    def record(self, rec: Recorded) -> None:
        with self._lock:
            self.requests.append(rec)

    def wait(self, seconds: float) -> None:
        """Sleep, but wake at once when the server stops."""
        self._stop.wait(seconds)

    def start(self) -> FakeLLMServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _sse(event: str | None, data: dict[str, Any] | str) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


def _anthropic_message(model: str, text: str) -> dict[str, Any]:
    return {
        "id": "msg_fake_1",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 42, "output_tokens": len(split_tokens(text))},
    }


def anthropic_events(model: str, text: str, error_after: int | None = None) -> Iterator[bytes]:
    """The SSE events of a streamed Messages API answer (optionally broken by an error)."""
    start = _anthropic_message(model, "")
    start.update(content=[], stop_reason=None, usage={"input_tokens": 42, "output_tokens": 1})
    yield _sse("message_start", {"type": "message_start", "message": start})
    yield _sse(
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    )
    yield _sse("ping", {"type": "ping"})
    for i, token in enumerate(split_tokens(text)):
        if error_after is not None and i >= error_after:
            err = {"type": "overloaded_error", "message": "Overloaded"}
            yield _sse("error", {"type": "error", "error": err})
            return
        delta = {"type": "text_delta", "text": token}
        yield _sse(
            "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
        )
    yield _sse("content_block_stop", {"type": "content_block_stop", "index": 0})
    yield _sse(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": len(split_tokens(text))},
        },
    )
    yield _sse("message_stop", {"type": "message_stop"})


def anthropic_tool_events(model: str, calls: list[tuple[str, dict[str, Any]]]) -> Iterator[bytes]:
    """A streamed Messages API answer that calls tools (input JSON sent in two deltas each)."""
    start = _anthropic_message(model, "")
    start.update(content=[], stop_reason=None, usage={"input_tokens": 42, "output_tokens": 1})
    yield _sse("message_start", {"type": "message_start", "message": start})
    for i, (name, args) in enumerate(calls):
        block = {"type": "tool_use", "id": f"toolu_{i}", "name": name, "input": {}}
        yield _sse("content_block_start",
                   {"type": "content_block_start", "index": i, "content_block": block})
        raw = json.dumps(args)
        for part in (raw[: len(raw) // 2], raw[len(raw) // 2 :]):
            delta = {"type": "input_json_delta", "partial_json": part}
            yield _sse("content_block_delta",
                       {"type": "content_block_delta", "index": i, "delta": delta})
        yield _sse("content_block_stop", {"type": "content_block_stop", "index": i})
    yield _sse("message_delta", {"type": "message_delta",
                                 "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                                 "usage": {"output_tokens": 20}})
    yield _sse("message_stop", {"type": "message_stop"})


def _anthropic_tool_message(model: str, calls: list[tuple[str, dict[str, Any]]]) -> dict:
    message = _anthropic_message(model, "")
    message["content"] = [{"type": "tool_use", "id": f"toolu_{i}", "name": name, "input": args}
                          for i, (name, args) in enumerate(calls)]
    message["stop_reason"] = "tool_use"
    return message


def openai_tool_events(model: str, calls: list[tuple[str, dict[str, Any]]]) -> Iterator[bytes]:
    """A streamed chat completion that calls tools (arguments sent in two deltas each)."""
    yield _sse(None, _openai_chunk(model, {"role": "assistant", "content": None}, None))
    for i, (name, args) in enumerate(calls):
        raw = json.dumps(args)
        head = {"index": i, "id": f"call_{i}", "type": "function",
                "function": {"name": name, "arguments": raw[: len(raw) // 2]}}
        yield _sse(None, _openai_chunk(model, {"tool_calls": [head]}, None))
        tail = {"index": i, "function": {"arguments": raw[len(raw) // 2 :]}}
        yield _sse(None, _openai_chunk(model, {"tool_calls": [tail]}, None))
    yield _sse(None, _openai_chunk(model, {}, "tool_calls"))
    yield _sse(None, "[DONE]")


def _openai_tool_completion(model: str, calls: list[tuple[str, dict[str, Any]]]) -> dict:
    completion = _openai_completion(model, "")
    completion["choices"][0]["message"] = {
        "role": "assistant", "content": None,
        "tool_calls": [{"id": f"call_{i}", "type": "function",
                        "function": {"name": name, "arguments": json.dumps(args)}}
                       for i, (name, args) in enumerate(calls)],
    }
    completion["choices"][0]["finish_reason"] = "tool_calls"
    return completion


def _openai_chunk(model: str, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake1",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def openai_events(model: str, text: str, error_after: int | None = None) -> Iterator[bytes]:
    """The ``data:`` lines of a streamed chat completion, ending with ``data: [DONE]``."""
    yield _sse(None, _openai_chunk(model, {"role": "assistant", "content": ""}, None))
    for i, token in enumerate(split_tokens(text)):
        if error_after is not None and i >= error_after:
            yield _sse(None, {"error": {"message": "upstream overloaded", "type": "server_error"}})
            return
        yield _sse(None, _openai_chunk(model, {"content": token}, None))
    yield _sse(None, _openai_chunk(model, {}, "stop"))
    yield _sse(None, "[DONE]")


def _openai_completion(model: str, text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake1",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49},
    }


def _make_handler(server: FakeLLMServer) -> type[BaseHTTPRequestHandler]:
    paths = {"anthropic": "/v1/messages", "openai": "/v1/chat/completions"}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # the connection closes after each response

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def _send_json(self, status: int, payload: dict[str, Any], headers: dict[str, str]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _error_body(self, reply: Reply) -> dict[str, Any]:
            if server.provider == "anthropic":
                kind = reply.error_type or _ANTHROPIC_ERROR_TYPES.get(reply.status, "api_error")
                return {"type": "error", "error": {"type": kind, "message": f"fake {kind}"}}
            kind = reply.error_type or _OPENAI_ERROR_TYPES.get(reply.status, "server_error")
            return {"error": {"message": f"fake {kind}", "type": kind, "param": None, "code": None}}

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                body = {"_raw": raw.decode("utf-8", "replace")}
            headers = {k.lower(): v for k, v in self.headers.items()}
            server.record(Recorded(self.path, headers, body))
            reply = server.next_reply()
            # A client that timed out has gone away; writing to it fails, which is fine.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._answer(body, reply)

        def _answer(self, body: dict[str, Any], reply: Reply) -> None:
            if reply.delay_s:
                server.wait(reply.delay_s)
            if self.path != paths[server.provider]:
                self._send_json(404, {"error": {"message": f"no route {self.path}"}}, {})
                return
            if reply.status != 200:
                # The SDKs honour retry-after-ms: keep their backoff short in tests.
                headers = reply.headers or {"retry-after-ms": "20"}
                self._send_json(reply.status, self._error_body(reply), headers)
                return
            model = str(body.get("model", "fake-model"))
            text = server.answer if reply.text is None else reply.text
            if reply.tool_calls:
                self._tool_calls(body, model, reply.tool_calls)
                return
            if not body.get("stream"):
                payload = (
                    _anthropic_message(model, text)
                    if server.provider == "anthropic"
                    else _openai_completion(model, text)
                )
                self._send_json(200, payload, reply.headers)
                return
            events = anthropic_events if server.provider == "anthropic" else openai_events
            self._stream(events(model, text, reply.stream_error_after), reply.headers)

        def _stream(self, chunks: Iterator[bytes], headers: dict[str, str]) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            for chunk in chunks:
                self.wfile.write(chunk)
                self.wfile.flush()

        def _tool_calls(self, body: dict[str, Any], model: str, calls: list) -> None:
            anthropic = server.provider == "anthropic"
            if body.get("stream"):
                events = anthropic_tool_events if anthropic else openai_tool_events
                self._stream(events(model, calls), {})
                return
            payload = (_anthropic_tool_message if anthropic else _openai_tool_completion)(
                model, calls)
            self._send_json(200, payload, {})

    return Handler


def make_settings(**overrides: Any) -> Settings:
    """Settings that ignore the environment's keys and ``.env``; tiny timeouts by default."""
    values: dict[str, Any] = {
        "synthesizer": "auto",
        "anthropic_api_key": None,
        "anthropic_base_url": None,
        "openai_api_key": None,
        "openai_base_url": None,
        "llm_timeout_s": 5.0,
        "llm_max_retries": 2,
        "max_image_side_px": 64,
        "max_context_images": 4,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def text_hit(n: int, text: str, *, doc: str = "report", page: int | None = 3) -> Hit:
    """A text hit from ``/x/<doc>.pdf``."""
    return Hit(
        id=f"h{n}",
        score=1.0 / n,
        modality="text",
        doc_id=doc,
        source=f"/x/{doc}.pdf",
        page=page,
        text=text,
    )


def image_hit(n: int, blob: str, *, doc: str = "manual", page: int = 5, text: str = "") -> Hit:
    """A rendered-page hit whose image is the blob ``blob``."""
    return Hit(
        id=f"h{n}",
        score=1.0 / n,
        modality="page",
        doc_id=doc,
        source=f"/x/{doc}.pdf",
        page=page,
        text=text,
        blob=blob,
    )


def store_image(blobs: BlobStore, color: tuple[int, int, int], size: tuple[int, int]) -> str:
    """Store a solid-colour image and return its blob reference."""
    return blobs.put_image(Image.new("RGB", size, color))


def decode_image(data_b64: str) -> Image.Image:
    """Decode base64 image data (raises if it is not a valid image)."""
    img = Image.open(io.BytesIO(base64.b64decode(data_b64, validate=True)))
    img.load()
    return img


def is_color(img: Image.Image, color: tuple[int, int, int], tol: int = 12) -> bool:
    """Whether the centre pixel of ``img`` is close to ``color`` (lossy formats tolerated)."""
    px = img.convert("RGB").getpixel((img.width // 2, img.height // 2))
    return all(abs(int(a) - b) <= tol for a, b in zip(px, color, strict=True))  # type: ignore[arg-type]


class SleepRecorder:
    """A ``sleep`` for ``RetryPolicy`` that records the delays and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture(name="anthropic_server")
def anthropic_server_fixture() -> Iterator[FakeLLMServer]:
    """A started fake Anthropic Messages API server."""
    with FakeLLMServer("anthropic") as srv:
        yield srv


@pytest.fixture(name="openai_server")
def openai_server_fixture() -> Iterator[FakeLLMServer]:
    """A started fake OpenAI Chat Completions server."""
    with FakeLLMServer("openai") as srv:
        yield srv
