"""What the hosted-model backends (``openai``, ``litellm``) share.

Options, the retry loop with its deadlines, and the turning of a client library's
exception into a :class:`BackendError` with a kind and a message that names the model
and the cause, never the key. A subclass only opens one attempt and hands back each
stream chunk as a :class:`Piece`.

Retries happen only before the first chunk was yielded: once text went out, a retry
would duplicate it, so a later failure is raised as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import random
import time
from abc import abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import Field, SecretStr

from workbench.backends.base import Backend, BackendError, ChatRequest, Chunk, Done
from workbench.backends.token_estimate import encoding, estimate_tokens
from workbench.keys import redact

RETRYABLE = frozenset({"rate_limited", "server", "connection"})
DUMMY_KEY = "sk-no-key"
"""Sent when no key is set: local servers (llama.cpp, vLLM, Ollama) ignore it."""

_TIMEOUT_NAMES = {
    "APITimeoutError",
    "Timeout",
    "TimeoutException",
    "ReadTimeout",
    "ConnectTimeout",
    "PoolTimeout",
    "SocketTimeoutError",
    "ServerTimeoutError",
    "ConnectionTimeoutError",
}
_REFUSED_NAMES = {"ConnectError", "ClientConnectorError", "ConnectionRefusedError"}
_DROPPED_NAMES = {
    "RemoteProtocolError",
    "ReadError",
    "WriteError",
    "NetworkError",
    "ClientPayloadError",
    "ClientOSError",
    "ServerDisconnectedError",
    "ConnectionError",
    "ProtocolError",
}


class HostedOptions(Backend.Options):
    """Options of a hosted-model backend."""

    model: str
    """The model id sent to the server (``smollm2``, ``gpt-4o-mini``, ``openai/...``)."""
    api_base: str | None = None
    """The server's API base (``http://127.0.0.1:8080/v1``); None: the provider's own."""
    api_key: SecretStr | None = None
    """Filled by the engine from the keyring or the environment."""
    provider: str = "openai"
    """For messages and pricing."""
    connect_timeout_s: float = Field(5, gt=0)
    first_token_timeout_s: float = Field(60, gt=0)
    """Per attempt: from sending the request to the first text."""
    total_timeout_s: float = Field(600, gt=0)
    """The whole call, retries and waits included."""
    max_retries: int = Field(3, ge=0)
    backoff_s: float = Field(0.5, ge=0)
    """The first wait before a retry; it doubles each time (unless Retry-After says)."""
    max_backoff_s: float = Field(30, ge=0)
    """No wait is longer, whatever Retry-After asks for."""


@dataclass(frozen=True)
class Piece:
    """One stream chunk as the base class needs it."""

    text: str = ""
    finish_reason: str | None = None
    usage: tuple[int | None, int | None] | None = None
    model: str | None = None


class Failure(Exception):
    """An attempt failed: the kind, why (plain words), and what the server said."""

    def __init__(self, kind: str, cause: str, detail: str = "", retry_after_s: float | None = None):
        super().__init__(cause)
        self.kind, self.cause, self.detail, self.retry_after_s = kind, cause, detail, retry_after_s


def piece_from_chunk(chunk: Any) -> Piece:
    """A :class:`Piece` from an OpenAI-style chunk object (openai's or litellm's)."""
    text, finish = "", None
    for choice in getattr(chunk, "choices", None) or ():
        delta = getattr(choice, "delta", None)
        text += getattr(delta, "content", None) or ""
        finish = finish or getattr(choice, "finish_reason", None)
    usage = getattr(chunk, "usage", None)
    counts = None
    if usage is not None:
        counts = (getattr(usage, "prompt_tokens", None), getattr(usage, "completion_tokens", None))
    return Piece(text, finish, counts, getattr(chunk, "model", None))


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    with contextlib.suppress(ValueError):
        return max(0.0, float(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, what it wraps (litellm's ``original_exception``) and its causes."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [
            getattr(current, "original_exception", None),
            current.__cause__,
            current.__context__,
        ]


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    if not isinstance(status, int):
        status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def _retry_after(exc: BaseException) -> float | None:
    for holder in (getattr(exc, "response", None), exc):
        for attr in ("headers", "litellm_response_headers"):
            headers: Any = getattr(holder, attr, None)
            if not hasattr(headers, "get"):
                continue
            with contextlib.suppress(ValueError, TypeError):
                if (ms := headers.get("retry-after-ms")) is not None:
                    return max(0.0, float(ms) / 1000)
            if (seconds := parse_retry_after(headers.get("retry-after"))) is not None:
                return seconds
    return None


def _server_said(chain: list[BaseException]) -> str:
    """The server's own error message where a client kept it (openai keeps the JSON body;
    litellm wraps that exception), else the first exception's text."""
    for exc in chain:
        body = getattr(exc, "body", None)
        if isinstance(body, dict):
            inner = body.get("error", body)
            message = inner.get("message") if isinstance(inner, dict) else inner
            if isinstance(message, str) and message:
                return message
    return str(chain[0]) or type(chain[0]).__name__


def classify(exc: BaseException) -> Failure:
    """Map an exception from openai, litellm, httpx or aiohttp to a :class:`Failure`.

    Transport trouble is looked for first: litellm reports a refused connection as an
    ``InternalServerError`` with a made-up status 500.
    """
    chain = list(_chain(exc))
    names = {cls.__name__ for e in chain for cls in type(e).__mro__}
    if any(isinstance(e, json.JSONDecodeError) for e in chain):
        bad = next(e for e in chain if isinstance(e, json.JSONDecodeError))
        return Failure("bad_response", "invalid JSON in the response", str(bad))
    if names & _TIMEOUT_NAMES or any(isinstance(e, TimeoutError) for e in chain):
        if "ConnectTimeout" in names:
            return Failure("timeout", "could not connect in time")
        return Failure("timeout", "the server did not answer in time")
    if names & _REFUSED_NAMES:
        return Failure("connection", "could not connect (connection refused)")
    if names & _DROPPED_NAMES:
        return Failure("connection", "the connection was closed before the answer was complete")
    for e in chain:
        if (status := _status(e)) is not None and type(e).__name__ != "MidStreamFallbackError":
            return _by_status(status, _server_said(chain), _retry_after(e))
    if "APIConnectionError" in names:
        return Failure("connection", "connection error", _server_said(chain))
    return Failure("bad_response", "unexpected reply", f"{type(exc).__name__}: {exc}")


def _by_status(status: int, said: str, retry_after: float | None) -> Failure:
    if status in (401, 403):
        return Failure("auth", f"authentication failed (HTTP {status})", said)
    if status == 404:
        return Failure("model_missing", "model not found (HTTP 404)", said)
    if status == 408:
        return Failure("timeout", "the server timed out (HTTP 408)", said)
    if status == 429:
        return Failure("rate_limited", "rate limited (HTTP 429)", said, retry_after)
    if status >= 500:
        return Failure("server", f"server error (HTTP {status})", said, retry_after)
    return Failure("config", f"request refused (HTTP {status})", said)


@dataclass
class _Progress:
    yielded: bool = False


class HostedBackend(Backend):
    """A model behind an HTTP API; subclasses implement :meth:`_attempt`."""

    local: ClassVar[bool] = False
    supports_json_schema: ClassVar[bool] = True
    max_concurrency: ClassVar[int] = 8
    default_api_base: ClassVar[str | None] = None
    options: HostedOptions

    @abstractmethod
    def _attempt(self, request: ChatRequest) -> AsyncGenerator[Piece, None]:
        """One request: yield each chunk as a :class:`Piece`; close the HTTP stream on exit."""

    async def prepare(self) -> None:
        """Import the client library and build the client, before any timer starts."""
        await self._prepare()

    async def _prepare(self) -> None:
        """Import the client library (seconds, in a thread): before any deadline starts."""

    def where(self) -> str:
        """``MODEL at API_BASE``: how messages name the model."""
        return f"{self.options.model} at {self.options.api_base or self.default_api_base}"

    def _secrets(self) -> list[str]:
        key = self.options.api_key
        return [key.get_secret_value()] if key is not None else []

    def describe(self) -> dict[str, Any]:
        """The provider, the model id and the API base."""
        o = self.options
        return {"provider": o.provider, "model": o.model, "api_base": o.api_base}

    def error(self, failure: Failure, retries: int) -> BackendError:
        """The user-facing error: model, cause, retries, what the server said; redacted."""
        text = f"{self.where()}: {failure.cause}"
        if retries:
            text += f" after {retries} {'retry' if retries == 1 else 'retries'}"
        if failure.detail:
            detail = " ".join(failure.detail.split())
            text += f" ({detail[:300]}{'...' if len(detail) > 300 else ''})"
        return BackendError(
            redact(text, self._secrets()), kind=failure.kind, retry_after_s=failure.retry_after_s
        )

    def _wait(self, retries: int, retry_after: float | None) -> float:
        o = self.options
        if retry_after is not None:
            return min(retry_after, o.max_backoff_s)
        # Jitter keeps parallel calls that failed together from retrying in lockstep.
        return min(o.max_backoff_s, o.backoff_s * 2**retries * random.uniform(1.0, 1.25))

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk | Done]:
        """Yield chunks, then one :class:`Done`; retry failures that come before any text."""
        if request.grammar is not None:
            raise BackendError(
                f"{self.where()}: GBNF grammars are not supported by the {self.name} backend",
                kind="config",
            )
        await self._prepare()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.total_timeout_s
        retries = 0
        while True:
            progress = _Progress()
            try:
                async with contextlib.aclosing(self._run(request, deadline, progress)) as items:
                    async for item in items:
                        yield item
                return
            except Failure as caught:
                failure = caught
            # Raised outside the except block, so the error carries no __context__: the
            # client's exception may quote the key (a server echoing it back).
            retryable = failure.kind in RETRYABLE and not progress.yielded
            if not retryable or retries >= self.options.max_retries:
                raise self.error(failure, retries)
            wait = self._wait(retries, failure.retry_after_s)
            if loop.time() + wait >= deadline:
                failure.cause += f" (no time left for a retry in {wait:g} s)"
                raise self.error(failure, retries)
            retries += 1
            await asyncio.sleep(wait)

    async def _run(
        self, request: ChatRequest, deadline: float, progress: _Progress
    ) -> AsyncGenerator[Chunk | Done, None]:
        """One attempt under the first-token and total deadlines."""
        loop = asyncio.get_running_loop()
        first_deadline = loop.time() + self.options.first_token_timeout_s
        parts: list[str] = []
        finish: str | None = None
        usage: tuple[int | None, int | None] | None = None
        model: str | None = None
        async with contextlib.aclosing(self._attempt(request)) as pieces:
            while True:
                waiting_first = not progress.yielded and first_deadline < deadline
                limit = first_deadline if waiting_first else deadline
                timer = asyncio.timeout_at(limit)
                try:
                    async with timer:
                        piece = await anext(pieces)
                except Exception as exc:
                    # A client that turns the timer's cancellation into something else,
                    # even a quiet end of the stream, has still run out of time.
                    if timer.expired():
                        raise self._timed_out(waiting_first) from None
                    if isinstance(exc, StopAsyncIteration):
                        break
                    raise classify(exc) from None
                at = self.clock()  # the moment the chunk arrived, before any work on it
                finish = piece.finish_reason or finish
                usage = piece.usage or usage
                model = piece.model or model
                if piece.text:
                    parts.append(piece.text)
                    progress.yielded = True
                    yield Chunk(piece.text, at=at)
        if finish is None and usage is None:
            # A clean close without finish_reason or usage is a cut-off answer, not a result.
            raise Failure("connection", "the stream ended before the answer was complete")
        yield await self._done(request, "".join(parts), finish, usage, model)

    def _timed_out(self, first: bool) -> Failure:
        o = self.options
        if first:
            return Failure("timeout", f"no first token within {o.first_token_timeout_s:g} s")
        return Failure("timeout", f"the call took longer than {o.total_timeout_s:g} s")

    async def _done(
        self,
        request: ChatRequest,
        text: str,
        finish: str | None,
        usage: tuple[int | None, int | None] | None,
        model: str | None,
    ) -> Done:
        counted_in, counted_out = usage or (None, None)
        estimated = counted_in is None or counted_out is None
        if estimated:
            if encoding.cache_info().currsize:  # vocabulary loaded: counting takes microseconds
                guess_in, guess_out = estimate_tokens(request.messages, text)
            else:  # the first estimate loads a vocabulary (under a second): off the loop
                guess_in, guess_out = await asyncio.to_thread(
                    estimate_tokens, request.messages, text
                )
            counted_in = guess_in if counted_in is None else counted_in
            counted_out = guess_out if counted_out is None else counted_out
        info = {**self.describe(), "served_model": model}
        return Done(counted_in, counted_out, estimated, finish, info)
