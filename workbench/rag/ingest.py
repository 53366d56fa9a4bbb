"""``rag ingest``: chunk text and Markdown files, embed them locally, add them in batches.

A chunk's id is the SHA-256 of its source path and text, so a second run adds nothing that
is already stored and an interrupted run resumes where it stopped: each batch first asks
which of its ids are stored and embeds only the others (embedding is the slow part).

A file that changed since the last run leaves no stale text behind: once the new chunks are
in, the chunks of each ingested file that it no longer has are deleted, and a chunk that
moved within its file gets its new position. With ``prune``, the chunks of files no longer
in the folder go too (the collection then mirrors the folder). Each chunk records the folder
it was ingested from (``folder``, its absolute path): chunks another folder brought, or that
other tools added, are never touched.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from workbench.embed import Embedder
from workbench.errors import NotFoundError, ValidationError
from workbench.rag.errors import DimensionMismatchError
from workbench.rag.functions import EMBED_KEY
from workbench.rag.index import Index

TEXT_SUFFIXES = (".txt", ".md", ".markdown")
_BREAKS = ("\n\n", "\n", ". ", "! ", "? ", "; ", ", ", " ")


@dataclass(frozen=True)
class Piece:
    """A chunk of a source file, with its id (from its source and text) and offsets."""

    id: str
    source: str
    index: int
    start: int
    end: int
    text: str
    folder: str = ""
    """The absolute path of the folder the source was ingested from."""

    @property
    def metadata(self) -> dict[str, Any]:
        return {"source": self.source, "chunk": self.index, "start": self.start, "end": self.end,
                "folder": self.folder}


@dataclass
class IngestReport:
    collection: str
    embedder: str
    files: int = 0
    chunks: int = 0
    added: int = 0
    existing: int = 0
    moved: int = 0
    """Chunks already there whose position in their file changed (metadata updated)."""
    removed: int = 0
    """Chunks deleted: text an ingested file no longer has (and with ``prune``, the chunks
    of files no longer in the folder)."""
    seconds: float = 0.0
    sources: list[str] = field(default_factory=list)


def chunk_spans(text: str, size: int, overlap: int) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of chunks of at most ``size`` characters, overlapping by about
    ``overlap`` (at most half a chunk); a chunk ends at a paragraph, line, sentence or word
    break when one lies in its second half, and the overlap starts at a word. Whitespace at
    either end of a chunk is left out."""
    if size < 1 or not 0 <= overlap < size:
        raise ValidationError("chunk size must be at least 1 and overlap in [0, chunk size)")
    start, n = 0, len(text)
    while start < n:
        end = min(start + size, n)
        if end < n:
            for mark in _BREAKS:
                cut = text.rfind(mark, start + size // 2, end)
                if cut > 0:
                    end = cut + len(mark)
                    break
        lo, hi = start, end
        while lo < hi and text[lo].isspace():
            lo += 1
        while hi > lo and text[hi - 1].isspace():
            hi -= 1
        if hi > lo:
            yield lo, hi
        if end >= n:
            return
        nxt = max(end - overlap, start + (end - start + 1) // 2)  # overlap: half at most
        space = text.find(" ", nxt, end)  # start the overlap at a word
        start = space + 1 if overlap and space != -1 else nxt


def read_pieces(folder: Path, size: int, overlap: int) -> tuple[list[str], list[Piece]]:
    """The text files under ``folder`` (sorted, hidden folders skipped) and their chunks."""
    if not folder.is_dir():
        raise ValidationError(f"{folder} is not a folder")
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in TEXT_SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    pieces: list[Piece] = []
    root = str(folder.resolve())
    for path in files:
        source = path.relative_to(folder).as_posix()
        text = path.read_text(encoding="utf-8", errors="replace")
        seen: set[str] = set()
        for i, (lo, hi) in enumerate(chunk_spans(text, size, overlap)):
            body = text[lo:hi]
            cid = hashlib.sha256(f"{source}\x00{body}".encode()).hexdigest()
            if cid not in seen:  # the same text twice in one file is stored once
                seen.add(cid)
                pieces.append(Piece(cid, source, i, lo, hi, body, root))
    return [p.relative_to(folder).as_posix() for p in files], pieces


def ingest(
    index: Index,
    folder: Path,
    collection: str,
    embedder: Embedder,
    *,
    embed_ref: str,
    chunk_size: int = 1000,
    overlap: int = 200,
    batch: int = 32,
    prune: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> IngestReport:
    """Chunk the .txt and .md files under ``folder``, embed and add the chunks not yet there.

    Ids come from each chunk's source path and text, so a second run adds nothing that
    is already stored and an interrupted run resumes. Then the chunks of these files that
    they no longer have are deleted (with ``prune``, also those of files no longer in the
    folder). ``progress(done, total)`` follows the chunks.

    Raises:
        ValidationError: the index is read-only, the collection was built with another
            embedding model, or ``prune`` was asked of a folder with no text files.
        DimensionMismatchError: the model's vectors do not fit the collection.
    """
    if not index.writable:
        raise ValidationError(f"{index.label} is open read-only")
    if batch < 1:
        raise ValidationError("batch must be at least 1")
    started = time.perf_counter()
    sources, pieces = read_pieces(folder, chunk_size, overlap)
    if prune and not sources:
        raise ValidationError(f"no .txt or .md files under {folder}: with --prune every chunk "
                              "ingested from it would be deleted; nothing was changed")
    col = _target_collection(index, collection, embed_ref)
    report = IngestReport(collection, embedder.label, len(sources), len(pieces), sources=sources)
    dimension = index.info(collection).dimension
    for at in range(0, len(pieces), batch):
        group = pieces[at : at + batch]
        dimension = _add_new(index, col, group, embedder, dimension, report)
        if progress is not None:
            progress(min(at + batch, len(pieces)), len(pieces))
    root = str(folder.resolve())
    _remove_stale(index, col, root, sources, {p.id for p in pieces}, prune, report)
    index.forget(collection)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _add_new(
    index: Index,
    col: Any,
    group: list[Piece],
    embedder: Embedder,
    dimension: int | None,
    report: IngestReport,
) -> int | None:
    """Embed and add the pieces of ``group`` not stored yet; the collection's dimension."""
    got = index.call(partial(col.get, ids=[p.id for p in group], include=["metadatas"]),
                     "checking ids")
    there = dict(zip(got["ids"], got["metadatas"] or [None] * len(got["ids"]), strict=True))
    new = [p for p in group if p.id not in there]
    report.existing += len(group) - len(new)
    moved = [p for p in group if p.id in there and there[p.id] != p.metadata]
    if moved:
        index.call(partial(col.update, ids=[p.id for p in moved],
                           metadatas=[p.metadata for p in moved]), f"updating {len(moved)} chunks")
        report.moved += len(moved)
    if not new:
        return dimension
    vectors = embedder.embed([p.text for p in new])
    if dimension is not None and len(vectors[0]) != dimension:
        raise DimensionMismatchError(
            f"{embedder.label} gives {len(vectors[0])}-dimensional vectors but "
            f"collection {report.collection} holds {dimension}-dimensional ones"
        )
    add = partial(
        col.add,
        ids=[p.id for p in new],
        embeddings=vectors,
        documents=[p.text for p in new],
        metadatas=[p.metadata for p in new],
    )
    index.call(add, f"adding {len(new)} chunks")
    report.added += len(new)
    return len(vectors[0])


DELETE_BATCH = 1000


def _remove_stale(index: Index, col: Any, root: str, sources: list[str], current: set[str],
                  prune: bool, report: IngestReport) -> None:
    """Delete the chunks ingested from ``root`` whose id is not in ``current``: of the files in
    ``sources`` (their text changed), and with ``prune`` of any file (gone from the folder).
    Chunks without a ``folder`` (another tool's, or ingested before it was recorded) stay."""
    if not prune and not sources:
        return
    where: dict[str, Any] = {"folder": root}
    if not prune:
        where = {"$and": [where, {"source": {"$in": sources}}]}
    got = index.call(partial(col.get, where=where, include=[]), "listing chunks")
    stale = [cid for cid in got["ids"] if cid not in current]
    for at in range(0, len(stale), DELETE_BATCH):
        part = stale[at : at + DELETE_BATCH]
        index.call(partial(col.delete, ids=part), f"deleting {len(part)} stale chunks")
    report.removed += len(stale)


def _target_collection(index: Index, name: str, embed_ref: str) -> Any:
    """Collection ``name``, created for ``embed_ref`` (cosine space) when missing."""
    try:
        info = index.info(name)
    except NotFoundError:
        return index.create_collection(name, {EMBED_KEY: embed_ref}, space="cosine")
    recorded = info.metadata.get(EMBED_KEY)
    if recorded is not None and recorded != embed_ref:
        raise ValidationError(
            f"collection {name} was built with --embed {recorded}; ingest with the same model "
            "or into another collection"
        )
    return index.collection(name)
