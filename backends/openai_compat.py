"""Any OpenAI-compatible server: llama.cpp's server, vLLM, LM Studio, Ollama, OpenAI itself.

Talks through the ``openai`` package's ``AsyncOpenAI`` client, imported when a call is
made (``import openai`` costs about 0.6 s, and ``workbench --help`` must not pay it).
The client's own retries are off: :class:`~workbench.backends.hosted.HostedBackend`
retries, and only before any text was yielded.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncGenerator
from typing import Any, ClassVar

from workbench.backends.base import ChatRequest
from workbench.backends.hosted import DUMMY_KEY, HostedBackend, HostedOptions, Piece
from workbench.backends.hosted import piece_from_chunk as _piece

OPENAI_API_BASE = "https://api.openai.com/v1"


def request_params(request: ChatRequest) -> dict[str, Any]:
    """The sampling parameters of ``request`` that are set, by their OpenAI names."""
    params: dict[str, Any] = {
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "seed": request.seed,
        "stop": request.stop,
        "response_format": request.response_format,
    }
    return {name: value for name, value in params.items() if value is not None}


class OpenAICompatBackend(HostedBackend):
    """Streams chat completions from an OpenAI-compatible HTTP API.

    Args:
        options: :class:`Options`; ``model`` is the id the server knows
            (``smollm2``, ``gpt-4o-mini``).
        clock: the monotonic clock chunks are stamped with.
    """

    name: ClassVar[str] = "openai"
    default_api_base: ClassVar[str | None] = OPENAI_API_BASE

    class Options(HostedOptions):
        """Options of the ``openai`` backend (see :class:`HostedOptions`)."""

    options: Options

    def __init__(self, options: Options, **kwargs: Any):
        super().__init__(options, **kwargs)
        self._client: Any = None
        self._prepare_lock = asyncio.Lock()

    def availability(self) -> str | None:
        """Why the backend cannot be used now: OpenAI itself needs a key."""
        if self.options.api_base is None and self.options.api_key is None:
            return (
                f"no API key for {self.options.provider} ({OPENAI_API_BASE}); "
                "set one, or an api_base for a local server"
            )
        return None

    async def _prepare(self) -> None:
        async with self._prepare_lock:  # concurrent first calls must share one client
            if self._client is None:
                self._client = await self._make_client()

    async def _make_client(self) -> Any:
        # Here, not at module import (about 0.6 s), and off the event loop.
        openai = await asyncio.to_thread(importlib.import_module, "openai")
        o = self.options
        key = o.api_key.get_secret_value() if o.api_key is not None else DUMMY_KEY
        return openai.AsyncOpenAI(
            api_key=key,
            base_url=o.api_base or OPENAI_API_BASE,
            max_retries=0,
            # Reads are bounded by our own first-token and total deadlines.
            timeout=openai.Timeout(o.total_timeout_s, connect=o.connect_timeout_s),
        )

    async def _attempt(self, request: ChatRequest) -> AsyncGenerator[Piece, None]:
        stream = await self._client.chat.completions.create(
            model=self.options.model,
            messages=request.messages,
            stream=True,
            stream_options={"include_usage": True},
            **request_params(request),
        )
        try:
            async for chunk in stream:
                yield _piece(chunk)
        finally:
            # Also on cancellation: the server stops generating once the socket closes.
            await stream.close()

    async def close(self) -> None:
        """Close the HTTP client and its connections."""
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()
