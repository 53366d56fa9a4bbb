"""The one small interface every model backend implements, and how backends are found.

A backend turns a :class:`ChatRequest` into a stream of :class:`Chunk` objects, each
stamped with the monotonic clock it was given, then one :class:`Done` with the token
counts and whatever the backend knows about the model. The engine measures; backends
only report what happened and when.

Backends register under the entry-point group ``workbench.backends``; the built-ins
register the same way. Discovery reads names only: a backend's module is imported when
it is chosen, and a plugin that fails to import is a warning, never a crash.
"""

from __future__ import annotations

import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from workbench.errors import WorkbenchError

Clock = Callable[[], float]
"""Seconds on a monotonic clock; ``time.perf_counter`` unless a test injects another."""

ENTRY_POINT_GROUP = "workbench.backends"


class BackendError(WorkbenchError):
    """A model call failed. The message names the model and the cause, never a secret.

    Attributes:
        kind: one of ``auth``, ``rate_limited``, ``timeout``, ``connection``, ``server``,
            ``bad_response``, ``model_missing``, ``model_corrupt``, ``config``.
        retry_after_s: for ``rate_limited`` and ``server``: how long the server asked to wait.
    """

    def __init__(self, message: str, *, kind: str, retry_after_s: float | None = None):
        super().__init__(message)
        self.kind = kind
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion: rendered messages and sampling parameters."""

    messages: list[dict[str, str]]
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: list[str] | None = None
    response_format: dict[str, Any] | None = None
    """OpenAI style: ``{"type": "json_object"}`` or ``{"type": "json_schema", ...}``."""
    grammar: str | None = None
    """A GBNF grammar the output must follow (backends with ``supports_grammar``)."""


@dataclass(frozen=True)
class Chunk:
    """Text as it arrived, and when (on the backend's clock)."""

    text: str
    at: float


@dataclass(frozen=True)
class Done:
    """The end of a stream: token counts (None when unknown) and model facts."""

    input_tokens: int | None
    output_tokens: int | None
    tokens_estimated: bool = False
    finish_reason: str | None = None
    model_info: dict[str, Any] = field(default_factory=dict)


class Backend(ABC):
    """A way to call models. Subclasses set the class attributes and implement ``stream``.

    Args:
        options: the backend's validated options.
        clock: the monotonic clock chunks are stamped with.
    """

    name: ClassVar[str]
    local: ClassVar[bool] = False
    """Runs on this machine (costed per hour of wall time, not per token)."""
    supports_grammar: ClassVar[bool] = False
    supports_json_schema: ClassVar[bool] = False
    max_concurrency: ClassVar[int] = 8
    free: ClassVar[bool] = False
    """Calls no billed model (``echo``): every call costs exactly 0."""
    """How many calls may run at once (a local model runs one at a time)."""

    class Options(BaseModel):
        """Backend options; unknown keys are an error."""

        model_config = ConfigDict(extra="forbid")

    def __init__(self, options: Options, *, clock: Clock = time.perf_counter):
        self.options = options
        self.clock = clock

    @abstractmethod
    def stream(self, request: ChatRequest) -> AsyncIterator[Chunk | Done]:
        """Yield chunks as they arrive, then exactly one :class:`Done`.

        Cancelling the consuming task stops generation between tokens.

        Raises:
            BackendError: the call failed (before or after some chunks).
        """

    async def prepare(self) -> None:
        """Get ready for calls (load the model, import and build the client).

        The engine awaits this before it starts timing a call, so a first call's TTFT
        measures the model, not the set-up.
        """

    def availability(self) -> str | None:
        """None when the backend can be used now, else why not (cheap; no model call)."""
        return None

    def describe(self) -> dict[str, Any]:
        """What identifies the model: file hash and size, or the provider's model id."""
        return {}

    def identity(self) -> dict[str, Any]:
        """What makes two calls to this model give the same answer, for the request
        cache: the same before and after the model is loaded (``describe`` may learn
        more facts on loading). Default: ``describe()``."""
        return self.describe()

    async def close(self) -> None:
        """Release connections and models."""


def available_backends() -> dict[str, Any]:
    """Backend names to their entry points (nothing is imported)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load_backend(name: str) -> type[Backend]:
    """Import and return the backend class registered as ``name``.

    Raises:
        BackendError: no such backend, or its plugin is broken.
    """
    found = available_backends()
    if name not in found:
        known = ", ".join(sorted(found)) or "none"
        raise BackendError(f"unknown backend {name!r} (installed: {known})", kind="config")
    try:
        cls = found[name].load()
    except Exception as exc:  # a broken plugin must not take the app down
        warnings.warn(f"backend plugin {name!r} failed to load: {exc}", stacklevel=2)
        raise BackendError(f"backend {name!r} failed to load: {exc}", kind="config") from None
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise BackendError(f"backend {name!r} is not a workbench Backend", kind="config")
    return cls
