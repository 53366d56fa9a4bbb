"""What embeds a query: the collection's own function when it runs offline, else llama.cpp.

Chroma records each collection's embedding function by name (``default`` is an ONNX model
that chromadb downloads on first use). Here a recorded function is only ever called when
:data:`OFFLINE_FUNCTIONS` says it can run now without the network; otherwise a local
llama.cpp model embeds the query (``--embed``, or the model recorded by ``rag ingest``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from workbench.embed import Embedder, EmbedderError, load_embedder
from workbench.errors import ValidationError
from workbench.rag.errors import RagError

if TYPE_CHECKING:
    from workbench.config import Settings
    from workbench.rag.index import Index

EMBED_KEY = "workbench:embed"
"""Collection metadata written by ``rag ingest``: the ``--embed`` model that built it."""


def _onnx_ready(config: dict[str, Any]) -> str | None:
    from chromadb.utils.embedding_functions.onnx_mini_lm_l6_v2 import ONNXMiniLM_L6_V2 as Onnx

    folder = Onnx.DOWNLOAD_PATH / Onnx.EXTRACTED_FOLDER_NAME
    if all((folder / f).is_file() for f in ("model.onnx", "tokenizer.json", "config.json")):
        return None
    return "would download its model"


OFFLINE_FUNCTIONS: dict[str, Callable[[dict[str, Any]], str | None]] = {
    "default": _onnx_ready,
    "onnx_mini_lm_l6_v2": _onnx_ready,
}
"""Chroma embedding functions that may run offline: name -> why not now (None: it can)."""


def offline_reason(config: dict[str, Any] | None) -> str | None:
    """None when ``config`` names a function that runs offline now; else why it cannot."""
    if config is None:
        return "no embedding function recorded"
    name = str(config.get("name") or config.get("type") or "unknown")
    check = OFFLINE_FUNCTIONS.get(name) if config.get("type") == "known" else None
    if check is None:
        return f"{name} is not known to run offline"
    reason = check(config.get("config") or {})
    return None if reason is None else f"{name} {reason}"


def query_embedder_note(config: dict[str, Any] | None, metadata: dict[str, Any]) -> str:
    """What embeds a text query when no ``--embed`` is given, or why nothing can."""
    reason = offline_reason(config)
    if reason is None and config is not None:
        return f"the collection's own function ({config.get('name')})"
    if isinstance(metadata.get(EMBED_KEY), str):
        return f"llama.cpp {metadata[EMBED_KEY]} (recorded at ingestion)"
    return f"none offline ({reason}): give --embed MODEL"


class OwnFunction:
    """A collection's own Chroma embedding function, run on the index's thread."""

    def __init__(self, index: Index, config: dict[str, Any]) -> None:
        self._index = index
        self._config = config
        self._fn: Any = None
        self.label = f"the collection's own function ({config.get('name')})"

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        def run() -> list[list[float]]:
            if self._fn is None:
                from chromadb.utils.embedding_functions import known_embedding_functions

                cls = known_embedding_functions[self._config["name"]]
                self._fn = cls.build_from_config(self._config.get("config") or {})
            # Some models embed a query differently from a document: Chroma's embed_query.
            embed = getattr(self._fn, "embed_query", None) or self._fn
            return [[float(x) for x in v] for v in embed(list(texts))]

        try:
            return self._index.call(run, "embedding the query")
        except (ValidationError, RagError) as exc:
            raise EmbedderError(f"{self.label} failed: {exc}") from None


def query_embedder(
    index: Index, collection: str, settings: Settings, embed: str | None = None
) -> Embedder:
    """The embedder for a text query on ``collection``.

    In this order: the model named by ``embed``; the collection's own function when it
    runs offline; the llama.cpp model recorded when ``rag ingest`` built the collection.

    Raises:
        EmbedderError: none of these is available (the message says what to pass).
    """
    info = index.info(collection)
    if embed:
        return load_embedder(settings, embed)
    config = info.embedding_function
    reason = offline_reason(config)
    if reason is None and config is not None:
        return OwnFunction(index, config)
    recorded = info.metadata.get(EMBED_KEY)
    if isinstance(recorded, str):
        return load_embedder(settings, recorded)
    raise EmbedderError(
        f"nothing can embed a text query for collection {collection} offline ({reason}): "
        "give --embed MODEL (smollm2 works out of the box) or search with --like ID"
    )
