"""An open Chroma index: collections, documents and nearest-neighbour queries.

Every chromadb call runs on the index's own worker thread and is waited for at most
``timeout_s`` (the open, snapshot copy included, too); a call that overruns raises
:class:`IndexTimeoutError` and the index refuses further calls. Collections and their
descriptions are cached, so a query in a session costs one chromadb call.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from workbench.embed import Embedder
from workbench.errors import NotFoundError, ValidationError, WorkbenchError
from workbench.rag.errors import DimensionMismatchError, IndexUnavailableError
from workbench.rag.functions import OwnFunction, offline_reason, query_embedder_note
from workbench.rag.store import (
    DB_FILE,
    DEFAULT_LOCK_WAIT_S,
    Worker,
    check_schema,
    chroma_failure,
    chroma_settings,
    snapshot,
    store_file,
)

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class CollectionInfo:
    """What ``rag collections`` shows of one collection."""

    name: str
    id: str
    count: int
    dimension: int | None
    space: str | None
    metadata: dict[str, Any]
    embedding_function: dict[str, Any] | None
    """The persisted configuration of its embedding function (None: none recorded)."""
    query_embedder: str
    """What embeds a text query without ``--embed``, or why nothing can."""


@dataclass(frozen=True)
class Hit:
    rank: int
    id: str
    distance: float
    metadata: dict[str, Any]
    text: str


@dataclass(frozen=True)
class Chunk:
    id: str
    metadata: dict[str, Any]
    text: str


@dataclass(frozen=True)
class QueryResult:
    collection: str
    embedder: str
    """Which embedder embedded the query (or which stored vector was used)."""
    k: int
    where: dict[str, Any] | None
    hits: list[Hit]
    embed_ms: float
    search_ms: float


class Index:
    """An open Chroma index: a snapshot of a folder, a folder (writable), or a server.

    Use :func:`open_index`; close it (or use it as a context manager) to drop the snapshot.
    """

    def __init__(self, label: str, worker: Worker, timeout_s: float, writable: bool) -> None:
        self.label = label
        self.writable = writable
        self.timeout_s = timeout_s
        self._worker = worker
        self._client: Any = None
        self._snapshot: Path | None = None
        self._collections: dict[str, Any] = {}
        self._infos: dict[str, CollectionInfo] = {}
        self._cleanup: weakref.finalize | None = None

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, fn: Callable[[], T], what: str) -> T:
        """``fn()`` on the index's thread within the time limit, chromadb errors translated."""

        def guarded() -> T:
            try:
                return fn()
            except WorkbenchError:
                raise
            except Exception as exc:
                raise chroma_failure(exc, self.label) from None

        return self._worker.call(guarded, self.timeout_s, f"{what} on {self.label}")

    def close(self) -> None:
        """Close the client (when it still answers) and delete the snapshot."""
        client, self._client = self._client, None
        if client is not None and self._worker.stuck is None:
            with contextlib.suppress(Exception):  # best effort: the snapshot goes anyway
                self._worker.call(client.close, min(self.timeout_s, 10.0), "closing")
        self._worker.stop()
        if self._cleanup is not None:
            self._cleanup()

    # collections

    def collection(self, name: str) -> Any:
        """The chromadb collection ``name``, without an embedding function (cached)."""
        if name not in self._collections:
            try:
                found = self.call(
                    lambda: self._client.get_collection(name, embedding_function=None),
                    f"opening collection {name}",
                )
            except NotFoundError:
                names = ", ".join(self.collection_names()) or "none"
                raise NotFoundError(
                    f"no collection {name!r} in {self.label} (collections: {names})"
                ) from None
            self._collections[name] = found
        return self._collections[name]

    def create_collection(self, name: str, metadata: dict[str, Any], space: str = "l2") -> Any:
        """Create collection ``name`` with no embedding function (a writable index only)."""
        if not self.writable:
            raise ValidationError(f"{self.label} is open read-only")
        col = self.call(
            lambda: self._client.create_collection(
                name,
                embedding_function=None,
                metadata=metadata,
                configuration={"hnsw": {"space": space}},
            ),
            f"creating collection {name}",
        )
        self._collections[name] = col
        return col

    def forget(self, name: str) -> None:
        """Drop what is cached of collection ``name`` (after writing to it)."""
        self._infos.pop(name, None)

    def collection_names(self) -> list[str]:
        return self.call(
            lambda: sorted(c.name for c in self._client.list_collections()), "listing collections"
        )

    def collections(self) -> list[CollectionInfo]:
        """Every collection with its count, dimension, metadata and embedding function."""
        return [self.info(name) for name in self.collection_names()]

    def info(self, name: str) -> CollectionInfo:
        if name not in self._infos:
            col = self.collection(name)
            self._infos[name] = self.call(lambda: _describe(col), f"describing {name}")
        return self._infos[name]

    def own_function(self, name: str) -> Embedder | None:
        """The collection's own embedding function when it can run offline, else None."""
        config = self.info(name).embedding_function
        if config is None or offline_reason(config) is not None:
            return None
        return OwnFunction(self, config)

    # reading

    def documents(
        self,
        name: str,
        *,
        where: dict[str, Any] | None = None,
        ids: Sequence[str] | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> list[Chunk]:
        """A page of chunks (id, metadata, full text), optionally filtered."""
        col = self.collection(name)
        got = self.call(
            lambda: col.get(
                ids=list(ids) if ids else None,
                where=where or None,
                limit=limit,
                offset=offset,
                include=["documents", "metadatas"],
            ),
            f"reading {name}",
        )
        return [
            Chunk(i, dict(m or {}), d or "")
            for i, m, d in zip(got["ids"], got["metadatas"], got["documents"], strict=True)
        ]

    def stored_embedding(self, name: str, chunk_id: str) -> list[float]:
        col = self.collection(name)
        got = self.call(
            lambda: col.get(ids=[chunk_id], include=["embeddings"]), f"reading {chunk_id}"
        )
        if not got["ids"]:
            raise NotFoundError(f"no chunk {chunk_id!r} in collection {name}")
        return [float(x) for x in got["embeddings"][0]]

    def search(
        self,
        name: str,
        embedding: Sequence[float],
        *,
        k: int = 5,
        where: dict[str, Any] | None = None,
        exclude: str | None = None,
    ) -> list[Hit]:
        """The ``k`` nearest chunks to ``embedding`` (``exclude``: an id left out)."""
        col = self.collection(name)
        dimension = self.info(name).dimension
        if dimension is not None and len(embedding) != dimension:
            raise DimensionMismatchError(
                f"the query vector has {len(embedding)} dimensions but collection {name} "
                f"holds {dimension}-dimensional vectors"
            )
        n = k + (1 if exclude else 0)
        got = self.call(
            lambda: col.query(
                query_embeddings=[list(embedding)],
                n_results=n,
                where=where or None,
                include=["documents", "metadatas", "distances"],
            ),
            f"querying {name}",
        )
        rows = zip(
            got["ids"][0],
            got["distances"][0],
            got["metadatas"][0],
            got["documents"][0],
            strict=True,
        )
        kept = [r for r in rows if r[0] != exclude][:k]
        return [
            Hit(i + 1, cid, float(dist), dict(meta or {}), doc or "")
            for i, (cid, dist, meta, doc) in enumerate(kept)
        ]

    def query(
        self,
        name: str,
        *,
        text: str | None = None,
        embedder: Embedder | None = None,
        vector: Sequence[float] | None = None,
        like: str | None = None,
        k: int = 5,
        where: dict[str, Any] | None = None,
    ) -> QueryResult:
        """Search by ``text`` (embedded by ``embedder``), a ``vector``, or chunk ``like``."""
        if k < 1:
            raise ValidationError("k must be at least 1")
        if sum(x is not None for x in (text, vector, like)) != 1:
            raise ValidationError("give exactly one of a query text, a vector or a chunk id")
        started = time.perf_counter()
        if like is not None:
            embedding, label = self.stored_embedding(name, like), f"stored embedding of {like}"
        elif vector is not None:
            embedding, label = [float(x) for x in vector], "the given vector"
        else:
            if embedder is None:
                raise ValidationError("a text query needs an embedder")
            embedding, label = embedder.embed([text or ""])[0], embedder.label
            dimension = self.info(name).dimension
            if dimension is not None and len(embedding) != dimension:
                raise DimensionMismatchError(
                    f"{label} gives {len(embedding)}-dimensional vectors but collection "
                    f"{name} holds {dimension}-dimensional ones: embed the query with the "
                    "model that built the collection (--embed)"
                )
        embedded = time.perf_counter()
        hits = self.search(name, embedding, k=k, where=where, exclude=like)
        done = time.perf_counter()
        return QueryResult(
            name,
            label,
            k,
            where,
            hits,
            embed_ms=round((embedded - started) * 1000, 3),
            search_ms=round((done - embedded) * 1000, 3),
        )


def _describe(col: Any) -> CollectionInfo:
    model = col.get_model()
    config = model.configuration_json or {}
    function = config.get("embedding_function")
    function = json.loads(json.dumps(function, default=str)) if function else None
    dimension, count = model.dimension, col.count()
    if dimension is None and count:  # stores from older Chroma versions may not record it
        got = col.get(limit=1, include=["embeddings"])
        dimension = len(got["embeddings"][0]) if len(got["embeddings"]) else None
    metadata = dict(model.metadata or {})
    space = (config.get("hnsw") or {}).get("space") or (config.get("spann") or {}).get("space")
    return CollectionInfo(
        model.name,
        str(model.id),
        count,
        dimension,
        space,
        metadata,
        function,
        query_embedder_note(function, metadata),
    )


def open_index(
    path: str | Path | None = None,
    *,
    host: str | None = None,
    port: int = 8000,
    writable: bool = False,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    lock_wait_s: float | None = None,
) -> Index:
    """Open a Chroma folder (a snapshot unless ``writable``) or a server (``host``).

    A writable folder that does not exist yet, or is empty, becomes a new store.
    ``lock_wait_s`` (how long to wait for another process's write to end) defaults to
    half of ``timeout_s``, at most 5 s, so a lock is reported as one, not as a timeout.

    Raises:
        IndexUnavailableError: not a store, corrupt, incompatible, locked, server down.
        IndexTimeoutError: opening took longer than ``timeout_s``.
    """
    if (path is None) == (host is None):
        raise ValidationError("give either the path of a Chroma folder or --host/--port")
    wait = min(DEFAULT_LOCK_WAIT_S, timeout_s / 2) if lock_wait_s is None else lock_wait_s
    label = f"{host}:{port}" if host is not None else str(path)
    worker = Worker(f"workbench-rag {label}")
    index = Index(label, worker, timeout_s, writable)
    try:
        if host is not None:
            index._client = index.call(lambda: _connect(index, host, port), "connecting")
        else:
            folder = Path(path).expanduser().absolute()  # type: ignore[arg-type]
            index._client = index.call(
                lambda: _open_folder(index, folder, writable, wait), "opening"
            )
    except BaseException:
        index.close()
        raise
    return index


def _connect(index: Index, host: str, port: int) -> Any:
    import chromadb

    try:
        socket.create_connection((host, port), timeout=min(index.timeout_s, 5.0)).close()
    except OSError as exc:
        raise IndexUnavailableError(
            f"no Chroma server at {host}:{port}: {exc.strerror or exc} (is `chroma run` "
            "serving there?)"
        ) from None
    try:
        return chromadb.HttpClient(host=host, port=port, settings=chroma_settings())
    except Exception as exc:
        raise chroma_failure(exc, index.label) from None


def _open_folder(index: Index, folder: Path, writable: bool, lock_wait_s: float) -> Any:
    import chromadb

    if writable and (not folder.exists() or (folder.is_dir() and not any(folder.iterdir()))):
        target = folder
    else:
        db = store_file(folder)
        if writable:
            target = folder
        else:
            target = snapshot(folder, db, lock_wait_s)
            index._snapshot = target
            index._cleanup = weakref.finalize(index, shutil.rmtree, target.parent, True)
        check_schema(target / DB_FILE, index.label)
    try:
        return chromadb.PersistentClient(str(target), settings=chroma_settings())
    except Exception as exc:
        raise chroma_failure(exc, index.label) from None
