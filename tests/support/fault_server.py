"""A scriptable OpenAI-compatible chat server on 127.0.0.1 that misbehaves on request.

A real HTTP peer (``http.server`` in a background thread), so the hosted backends are
tested through their real HTTP clients: sockets, SSE parsing, status codes, headers.
One :class:`Scenario` at a time decides how ``POST /v1/chat/completions`` answers:

``ok``            ``chunks`` content chunks, ``delay_s`` apart; the last chunk carries usage.
``no_usage``      the same, without any usage.
``rate_limit``    the first ``times`` requests get 429 with ``Retry-After``, then ``ok``.
``server_error``  the first ``times`` requests get 500 (``times=None``: all), then ``ok``.
``not_found``     404 "model not found".
``stall``         status and headers at once, then nothing for ``stall_s``, then ``ok``.
``drop``          ``drop_after`` chunks, then the socket is reset mid-body.
``invalid_json``  one good chunk, then ``data: {not json``.
``unauthorized``  401 whose JSON error quotes the Authorization header back (plain,
                  URL-encoded and base64), to prove callers redact it.
``no_json_schema`` 400 "response_format of type json_schema is not supported" to a request
                  asking for one (as several OpenAI-compatible servers answer), else ``ok``.

With ``reply`` set, ``ok`` streams that exact text (one chunk) instead of ``chunks`` tokens.

Every request's headers and body are kept in :attr:`FaultServer.requests`, and for every
content chunk ``time.perf_counter()`` right after the write in :attr:`FaultServer.sent_at`
(one list per request), so measured TTFT/TPOT can be checked against what was sent.
Streams use chunked transfer encoding: a reset mid-body is then a protocol error the
client must notice, not a quietly shorter body.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import struct
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Scenario:
    """How the server answers; see the module docstring for the kinds."""

    kind: str = "ok"
    chunks: int = 5
    delay_s: float = 0.0
    text: str = "tok"
    """Chunk ``i`` carries ``f"{text}{i} "``."""
    times: int | None = 1
    retry_after: str | None = "0.3"
    stall_s: float = 1.0
    drop_after: int = 2
    prompt_tokens: int = 7
    reply: str | None = None
    """The whole answer, sent as one chunk (a judge's JSON, say)."""


@dataclass
class Recorded:
    """One request as the server saw it."""

    path: str
    headers: dict[str, str]
    """Names in lower case."""
    body: dict[str, Any] | None
    at: float = field(default_factory=time.perf_counter)


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FaultServer:
    """The server; use as a context manager or call :meth:`start` / :meth:`stop`.

    Args:
        scenario: the initial scenario; assign :attr:`scenario` to change it.
    """

    def __init__(self, scenario: Scenario | None = None):
        self._scenario = scenario or Scenario()
        self._answered = 0
        self.requests: list[Recorded] = []
        self.sent_at: list[list[float]] = []
        self.disconnects = 0
        """Streams the client closed before the server finished writing."""
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def scenario(self) -> Scenario:
        """What the server does now; setting it restarts the ``times`` count."""
        return self._scenario

    @scenario.setter
    def scenario(self, value: Scenario) -> None:
        with self._lock:
            self._scenario, self._answered = value, 0

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``, what clients take as their API base."""
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def start(self) -> FaultServer:
        handler = type("Handler", (_Handler,), {"fault": self})
        self._httpd = _Server(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes stalled handlers
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _record(self, recorded: Recorded) -> tuple[Scenario, int, list[float]]:
        """Store a request; returns the scenario, the request's number under it (1-based)
        and its chunk-times list."""
        with self._lock:
            self.requests.append(recorded)
            times: list[float] = []
            self.sent_at.append(times)
            self._answered += 1
            return self._scenario, self._answered, times


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up mid-stream is what these tests do on purpose: stay quiet."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # chunked encoding needs it
    fault: FaultServer

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output clean."""

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            self._json(200, {"object": "list", "data": [{"id": "fault", "object": "model"}]})
        else:
            self._json(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        recorded = Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        sc, number, sent = self.fault._record(recorded)
        model = (body or {}).get("model", "fault")
        early = sc.times is None or number <= sc.times
        if sc.kind == "rate_limit" and early:
            headers = {"Retry-After": sc.retry_after} if sc.retry_after is not None else {}
            self._json(429, _error("Rate limit reached", "rate_limit_exceeded"), headers)
        elif sc.kind == "server_error" and early:
            self._json(500, _error("The server had an error", "server_error"))
        elif sc.kind == "not_found":
            self._json(404, _error(f"The model `{model}` does not exist", "model_not_found"))
        elif sc.kind == "unauthorized":
            auth = self.headers.get("Authorization", "")
            key = auth.removeprefix("Bearer ")
            echoed = (
                f"Incorrect API key provided: {auth} "
                f"(as sent: {urllib.parse.quote(key, safe='')} "
                f"{base64.b64encode(key.encode()).decode()})"
            )
            self._json(401, _error(echoed, "invalid_api_key"))
        elif sc.kind == "no_json_schema" and _format_type(body) == "json_schema":
            message = (
                "Invalid parameter: 'response_format' of type 'json_schema' is not supported "
                "with this model."
            )
            self._json(400, _error(message, "invalid_request_error"))
        else:
            self._stream(sc, model, sent, with_usage=sc.kind != "no_usage")

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, sc: Scenario, model: str, sent: list[float], *, with_usage: bool) -> None:
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.flush()
        if sc.kind == "stall" and self.fault._stopping.wait(sc.stall_s):
            return
        base = {
            "id": "chatcmpl-fault",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
        }
        try:
            self._event({**base, "choices": [_choice({"role": "assistant", "content": ""})]})
            pieces = [f"{sc.text}{i} " for i in range(sc.chunks)]
            if sc.reply is not None:
                pieces = [sc.reply]
            for i, piece in enumerate(pieces):
                if sc.kind == "drop" and i == sc.drop_after:
                    return self._reset()
                if sc.kind == "invalid_json" and i == 1:
                    self._write(b"data: {not json\n\n")
                    return self._end()
                if i and sc.delay_s:
                    time.sleep(sc.delay_s)
                self._event({**base, "choices": [_choice({"content": piece})]})
                sent.append(time.perf_counter())
            self._event({**base, "choices": [_choice({}, "stop")]})
            if with_usage:
                usage = {
                    "prompt_tokens": sc.prompt_tokens,
                    "completion_tokens": len(pieces),
                    "total_tokens": sc.prompt_tokens + len(pieces),
                }
                self._event({**base, "choices": [], "usage": usage})
            self._write(b"data: [DONE]\n\n")
            self._end()
        except (BrokenPipeError, ConnectionResetError):
            with self.fault._lock:
                self.fault.disconnects += 1

    def _event(self, payload: dict[str, Any]) -> None:
        self._write(b"data: " + json.dumps(payload).encode() + b"\n\n")

    def _write(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _end(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _reset(self) -> None:
        """Close abruptly: RST (linger 0), no terminating chunk."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()


def _format_type(body: Any) -> Any:
    """The ``type`` of a request's ``response_format`` (None without one)."""
    fmt = body.get("response_format") if isinstance(body, dict) else None
    return fmt.get("type") if isinstance(fmt, dict) else None


def _choice(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}


def _error(message: str, code: str) -> dict[str, Any]:
    return {
        "error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}
    }
