"""RAG indexes in Chroma: read-only inspection (collections, documents, queries), ingestion.

- :mod:`workbench.rag.store`: how a folder is opened without changing a byte (a snapshot
  copied under SQLite's shared lock) and how every chromadb call gets a time limit.
- :mod:`workbench.rag.index`: :func:`open_index` and :class:`Index` (collections,
  documents, queries by text, vector or "more like this").
- :mod:`workbench.rag.functions`: which embedder embeds a text query.
- :mod:`workbench.rag.ingest`: chunking and resumable, batched ingestion (the only writer).

Importing this package is cheap: chromadb and llama_cpp load when an index or a model opens.
"""

from __future__ import annotations

from workbench.rag.errors import (
    DimensionMismatchError,
    IndexLockedError,
    IndexTimeoutError,
    IndexUnavailableError,
    RagError,
)
from workbench.rag.functions import EMBED_KEY, OFFLINE_FUNCTIONS, query_embedder
from workbench.rag.index import (
    DEFAULT_TIMEOUT_S,
    Chunk,
    CollectionInfo,
    Hit,
    Index,
    QueryResult,
    open_index,
)
from workbench.rag.ingest import IngestReport, Piece, chunk_spans, ingest, read_pieces

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "EMBED_KEY",
    "OFFLINE_FUNCTIONS",
    "Chunk",
    "CollectionInfo",
    "DimensionMismatchError",
    "Hit",
    "Index",
    "IndexLockedError",
    "IndexTimeoutError",
    "IndexUnavailableError",
    "IngestReport",
    "Piece",
    "QueryResult",
    "RagError",
    "chunk_spans",
    "ingest",
    "open_index",
    "query_embedder",
    "read_pieces",
]
