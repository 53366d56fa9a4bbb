"""Any model litellm can call: ``openai/...``, ``anthropic/...``, ``ollama_chat/...``.

litellm is imported when the first call is made, in a worker thread (the import takes
3-5 s and must not freeze the event loop), and only after
``LITELLM_LOCAL_MODEL_COST_MAP=True`` is set: without it the import fetches a price list
from the internet and retries for seconds when offline. litellm's own retries are off:
:class:`~workbench.backends.hosted.HostedBackend` retries, and only before any text.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import threading
from collections.abc import AsyncGenerator
from typing import Any, ClassVar

from workbench.backends.base import ChatRequest
from workbench.backends.hosted import DUMMY_KEY, HostedBackend, HostedOptions, Piece
from workbench.backends.hosted import piece_from_chunk as _piece
from workbench.backends.openai_compat import request_params

# Providers that run on the user's machine and need no key.
LOCAL_PROVIDERS = frozenset({"ollama", "ollama_chat", "lm_studio", "hosted_vllm", "llamafile"})

_import_lock = threading.Lock()
_FIRST_CALL_IMPORTS = (
    "litellm.litellm_core_utils.default_encoding",  # loads tiktoken's cl100k_base
    "litellm.proxy.openai_files_endpoints.common_utils",
)


def load_litellm() -> Any:
    """Import litellm offline and quiet (idempotent; blocking: call it in a thread)."""
    with _import_lock:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm

        litellm.suppress_debug_info = True  # no "Give Feedback / Get Help" banners on stdout
        litellm.turn_off_message_logging = True  # prompts stay out of litellm's logging
        litellm.disable_hf_tokenizer_download = True  # never download tokenizers
        litellm.telemetry = False  # older versions send usage telemetry unless told not to
        for module in _FIRST_CALL_IMPORTS:
            # litellm imports these lazily in its first call (~0.6 s, measured): do it here,
            # so it is not counted as the model's time to first token.
            with contextlib.suppress(ImportError):
                importlib.import_module(module)
        return litellm


def provider_of(model: str) -> str:
    """The provider prefix of a litellm model id (``openai`` for ``openai/gpt-4o``)."""
    return model.split("/", 1)[0] if "/" in model else "openai"


def _usage_reported(stream: Any) -> bool:
    """Whether the server itself sent usage.

    litellm fills in usage it counted itself when the server sent none; its wrapper keeps
    the raw chunks, which show which it was. Without them, trust the usage.
    """
    chunks = getattr(stream, "chunks", None)
    if not isinstance(chunks, list):
        return True
    return any(getattr(chunk, "usage", None) is not None for chunk in chunks)


class LiteLLMBackend(HostedBackend):
    """Streams chat completions through ``litellm.acompletion``.

    Args:
        options: :class:`Options`; ``model`` is the litellm id (``openai/smollm2``).
        clock: the monotonic clock chunks are stamped with.
    """

    name: ClassVar[str] = "litellm"
    default_api_base: ClassVar[str | None] = None

    class Options(HostedOptions):
        """Options of the ``litellm`` backend (see :class:`HostedOptions`)."""

        provider: str | None = None  # type: ignore[assignment]
        """For messages and pricing; None: the model id's prefix."""

    options: Options

    def where(self) -> str:
        """``MODEL at API_BASE``, or ``MODEL (PROVIDER)`` for the provider's own API."""
        if self.options.api_base:
            return super().where()
        return f"{self.options.model} ({self.provider})"

    @property
    def provider(self) -> str:
        """The provider named in the options, else the model id's prefix."""
        return self.options.provider or provider_of(self.options.model)

    def describe(self) -> dict[str, Any]:
        """The provider, the litellm model id and the API base."""
        return {**super().describe(), "provider": self.provider}

    def availability(self) -> str | None:
        """Why the backend cannot be used now: a hosted provider needs a key."""
        o = self.options
        if o.api_key is None and o.api_base is None and self.provider not in LOCAL_PROVIDERS:
            return f"no API key for {self.provider} (model {o.model})"
        return None

    def _key(self) -> dict[str, str]:
        """The key argument: the key; a dummy for a keyless local server; else nothing,
        so litellm reads the provider's environment variable."""
        if self.options.api_key is not None:
            return {"api_key": self.options.api_key.get_secret_value()}
        return {"api_key": DUMMY_KEY} if self.options.api_base else {}

    async def _prepare(self) -> None:
        self._litellm = await asyncio.to_thread(load_litellm)

    async def _attempt(self, request: ChatRequest) -> AsyncGenerator[Piece, None]:
        litellm = self._litellm
        import httpx  # already loaded by litellm

        o = self.options
        stream = await litellm.acompletion(
            model=o.model,
            messages=request.messages,
            stream=True,
            stream_options={"include_usage": True},
            num_retries=0,
            max_retries=0,
            timeout=httpx.Timeout(o.total_timeout_s, connect=o.connect_timeout_s),
            api_base=o.api_base,
            **self._key(),
            **request_params(request),
        )
        try:
            async for chunk in stream:
                piece = _piece(chunk)
                if piece.usage is not None and not _usage_reported(stream):
                    piece = Piece(piece.text, piece.finish_reason, None, piece.model)
                yield piece
        finally:
            # Also on cancellation: the server stops generating once the socket closes.
            await stream.aclose()
