"""Text embeddings from a local llama.cpp model, for RAG queries and ingestion.

Any GGUF model can embed: a chat model such as the bundled SmolLM2 gives one vector per
text with mean pooling (without it llama.cpp may return a vector per token). Vectors are
scaled to unit length, so L2 and cosine distances rank the same.

A loaded model is kept for the life of the process (:func:`load_embedder`): loading costs
a fraction of a second to seconds, embedding a short query tens of milliseconds. Nothing
here touches the network; ``llama_cpp`` is imported only when a model is loaded.
"""

from __future__ import annotations

import ctypes
import functools
import math
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from workbench.errors import ValidationError, WorkbenchError

if TYPE_CHECKING:
    from workbench.config import Settings

MIN_CONTEXT = 512
"""Tokens per text an embedder reads at least; longer texts are cut at its context size."""


class EmbedderError(WorkbenchError):
    """An embedding model cannot be loaded or cannot embed."""


class Embedder(Protocol):
    """Turns texts into vectors; ``label`` says which model did it, for people."""

    @property
    def label(self) -> str: ...

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


def unit(vector: Sequence[float]) -> list[float]:
    """``vector`` scaled to length 1 (a zero vector stays zero)."""
    norm = math.sqrt(sum(x * x for x in vector))
    return [float(x) / norm for x in vector] if norm else [float(x) for x in vector]


_CALLBACKS: list[Any] = []  # llama.cpp keeps a raw pointer: the callback must stay alive


@functools.cache
def _quiet_pooling_notice() -> None:
    """Drop llama.cpp's log line about the explicit mean pooling (an "error" it prints to
    stderr, into the TUI too) and pass every other line to llama-cpp-python's logger."""
    import llama_cpp
    from llama_cpp import _logger

    @llama_cpp.llama_log_callback  # type: ignore[misc]
    def callback(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        if b"pooling_type" not in text:
            _logger.llama_log_callback(level, text, user_data)

    _CALLBACKS.append(callback)
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))


class LlamaEmbedder:
    """A GGUF model loaded by llama.cpp in embedding mode (mean pooling)."""

    def __init__(
        self,
        ref: str,
        model_path: str,
        *,
        n_ctx: int = MIN_CONTEXT,
        n_threads: int | None = None,
        n_gpu_layers: int = 0,
    ) -> None:
        import llama_cpp

        _quiet_pooling_notice()
        self.ref = ref
        self.model_path = model_path
        self.n_ctx = n_ctx
        # llama.cpp's context is not thread-safe: one embedding call at a time.
        self._lock = threading.Lock()
        threads = n_threads or os.cpu_count() or 1
        try:
            self._llama = llama_cpp.Llama(
                model_path=model_path,
                embedding=True,
                pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN,
                n_ctx=n_ctx,
                n_batch=n_ctx,
                n_ubatch=n_ctx,
                n_threads=threads,
                n_threads_batch=threads,
                n_gpu_layers=n_gpu_layers,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise EmbedderError(f"cannot load {ref} for embeddings ({model_path}): {exc}") from None
        self.dimension: int = int(self._llama.n_embd())

    @property
    def label(self) -> str:
        name = Path(self.model_path).name
        return f"llama.cpp {self.ref}" + ("" if name == self.ref else f" ({name})")

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One unit vector per text; a text longer than the context is cut at its end."""
        if not texts:
            return []
        with self._lock:
            try:
                vectors: Any = self._llama.embed(list(texts), truncate=True)
            except (ValueError, RuntimeError) as exc:
                raise EmbedderError(f"{self.ref} could not embed: {exc}") from None
        return [unit(v) for v in vectors]


_LOADED: dict[tuple[str, int, int | None, int], LlamaEmbedder] = {}
_LOADING = threading.Lock()


def context_for(chunk_size: int) -> int:
    """A context (tokens) that holds a chunk of ``chunk_size`` characters whole.

    Text averages three to four characters per token; two is a safe floor for prose,
    code and most other scripts, so a chunk is rarely cut.
    """
    need = chunk_size // 2 + 16
    size = MIN_CONTEXT
    while size < need:
        size *= 2
    return size


def load_embedder(settings: Settings, ref: str, *, n_ctx: int = MIN_CONTEXT) -> LlamaEmbedder:
    """The llama.cpp embedder for model reference ``ref``, loaded once per process.

    ``ref`` is what ``--embed`` takes: ``smollm2``, a ``.gguf`` path, or a model configured
    with the ``llama_cpp`` backend.

    Raises:
        ValidationError: ``ref`` names a hosted model (only local models embed here).
        NotFoundError: ``ref`` is unknown.
        EmbedderError: the model file cannot be loaded.
    """
    from workbench.models import resolve_model

    spec = resolve_model(settings, ref)
    if spec.backend != "llama_cpp":
        raise ValidationError(
            f"{ref} is a {spec.backend} model: embeddings come from a local llama.cpp model "
            "(smollm2, a .gguf file, or a configured llama_cpp model)"
        )
    path = str(spec.options["model_path"])
    if not Path(path).is_file():
        raise EmbedderError(f"cannot load {ref} for embeddings: no file {path}")
    threads = spec.options.get("n_threads")
    layers = int(spec.options.get("n_gpu_layers") or 0)
    key = (path, n_ctx, threads, layers)
    with _LOADING:
        if key not in _LOADED:
            _LOADED[key] = LlamaEmbedder(
                ref, path, n_ctx=n_ctx, n_threads=threads, n_gpu_layers=layers
            )
        return _LOADED[key]
