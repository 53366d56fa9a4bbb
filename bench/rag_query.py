"""RAG query: ``Index.query`` through the workbench vs a raw chromadb ``collection.query``.

Setup, once per invocation, in a temp folder: a plain chromadb ``PersistentClient``
(``Settings(anonymized_telemetry=False)``) builds a collection of ``--chunks`` chunks
(cosine space, as ``rag ingest`` makes them) with synthetic unit vectors of the SmolLM2
embedder's dimension (576; seeded numpy), a short document and a ``group`` metadata field
(``i % 10``) each. The query text is embedded once by the ``smollm2`` embedder
(``load_embedder``); without the demo model a fixed random unit vector stands in, and the
output says so. The builder is closed and its folder copied, so each side has its own:

- workbench: ``open_index(folder)`` (read-only: the index works on its private snapshot
  copy, on its worker thread), then ``index.query(name, vector=v, k=10)``;
- raw: ``chromadb.PersistentClient(copy).get_collection(name).query(query_embeddings=[v],
  n_results=10, include=["documents", "metadatas", "distances"])`` on the calling thread.

Both sides are warmed up and must return the same ids. Each round times ``--queries``
queries per side in blocks of ``--block``, the sides taking turns (the order rotating block
by block, so drift on this shared machine hits both alike); a round's figure per side is
its per-query median, the ratio workbench/raw is taken per round and reported as the
median with min-max over ``--rounds``. A third side, for the diagnosis only, hands the raw
call to the index's worker thread (``index.call``): what the thread hop costs, apart from
the workbench's own Python. A second figure repeats it all with ``where={"group": 3}`` (a
tenth of the chunks match; ``--where-queries`` per side, each ten times dearer).

Usage: python bench/rag_query.py [--chunks 20000] [--rounds 7] [--queries 200]
       [--where-queries 40] [--block 20] [--k 10] [--seed N]
Goal: ratio (workbench / raw) at most 1.1.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from workbench.rag.index import open_index

DIMENSION = 576
NAME = "bench"
QUERY = "How does the lighthouse keeper prepare for the storm?"
WORDS = (
    "lighthouse keeper storm harbour ledger lamp tide rope gull signal fog bell "
    "cliff boat lantern chart compass wave shore night"
).split()


def build(folder: Path, chunks: int, seed: int) -> None:
    """A chromadb folder with ``chunks`` random unit vectors, documents and metadata."""
    import chromadb

    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((chunks, DIMENSION)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    client = chromadb.PersistentClient(
        str(folder), settings=chromadb.Settings(anonymized_telemetry=False)
    )
    col = client.create_collection(
        NAME, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
    )
    step = min(client.get_max_batch_size(), 5000)
    for at in range(0, chunks, step):
        ids = range(at, min(at + step, chunks))
        col.add(
            ids=[f"chunk-{i:06d}" for i in ids],
            embeddings=vectors[at : at + len(ids)],
            documents=[
                f"Chunk {i}: the {WORDS[i % len(WORDS)]} and the {WORDS[(i * 7) % len(WORDS)]}."
                for i in ids
            ],
            metadatas=[
                {"source": f"doc-{i // 50:04d}.md", "chunk": i % 50, "group": i % 10}
                for i in ids
            ],
        )
    assert col.count() == chunks
    client.close()  # type: ignore[attr-defined]  # Client has it, ClientAPI not


def query_vector(seed: int) -> tuple[list[float], str]:
    """The query text embedded by smollm2, or a fixed random unit vector without it."""
    from workbench.config import load_settings
    from workbench.embed import load_embedder
    from workbench.models import demo_model_path

    if demo_model_path() is not None:
        embedder = load_embedder(load_settings(), "smollm2")
        vector = embedder.embed([QUERY])[0]
        assert len(vector) == DIMENSION, len(vector)
        return vector, f"{QUERY!r} embedded once by {embedder.label}"
    rng = np.random.default_rng(seed + 1)
    v = rng.standard_normal(DIMENSION)
    return (v / np.linalg.norm(v)).tolist(), "a fixed random unit vector (no demo model)"


def timed(fn: Callable[[], Any], n: int) -> list[float]:
    """``n`` calls of ``fn``, each one's wall time in microseconds."""
    times = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1e6)
    return times


def compare(label: str, sides: dict[str, Callable[[], Any]], queries: int, args: Any) -> None:
    """Rounds of ``queries`` calls per side in blocks of ``--block``, sides taking turns
    (the order rotating block by block); the first side against the second is the ratio."""
    names = list(sides)
    medians: dict[str, list[float]] = {n: [] for n in names}
    ratios = []
    for r in range(args.rounds):
        times: dict[str, list[float]] = {n: [] for n in names}
        for b in range(0, queries, args.block):
            shift = (r + b // args.block) % len(names)
            for name in names[shift:] + names[:shift]:
                times[name] += timed(sides[name], min(args.block, queries - b))
        for name in names:
            medians[name].append(statistics.median(times[name]))
        ratios.append(medians[names[0]][-1] / medians[names[1]][-1])
    print(f"{label}: {args.rounds} rounds x {queries} queries per side")
    for name in names:
        meds = medians[name]
        print(f"  {name:34} per-query median {statistics.median(meds):8.1f} us "
              f"(round medians {min(meds):.1f}-{max(meds):.1f})")
    ratio = statistics.median(ratios)
    print(f"  ratio {names[0].split()[0]}/{names[1].split()[0]:29} median {ratio:.3f} "
          f"(min {min(ratios):.3f}, max {max(ratios):.3f})  goal <= 1.1: "
          f"{'met' if ratio <= 1.1 else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--queries", type=int, default=200, help="per side per round")
    parser.add_argument("--where-queries", type=int, default=40,
                        help="per side per round, filtered (each costs ~10x more)")
    parser.add_argument("--block", type=int, default=20, help="queries per turn of a side")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=20261126)
    args = parser.parse_args()

    import chromadb

    vector, how = query_vector(args.seed)
    with tempfile.TemporaryDirectory(prefix="bench-rag-query-") as tmp:
        built, copy = Path(tmp) / "built", Path(tmp) / "raw"
        started = time.perf_counter()
        build(built, args.chunks, args.seed)
        shutil.copytree(built, copy)
        print(f"chromadb {chromadb.__version__}; {args.chunks} chunks of {DIMENSION} dims, "
              f"built in {time.perf_counter() - started:.1f} s; query: {how}")
        client = chromadb.PersistentClient(
            str(copy), settings=chromadb.Settings(anonymized_telemetry=False)
        )
        col = client.get_collection(NAME, embedding_function=None)
        with open_index(built) as index:
            for where, queries in ((None, args.queries), ({"group": 3}, args.where_queries)):
                if queries < 1:
                    continue

                def ours(where: Any = where) -> list[str]:
                    result = index.query(NAME, vector=vector, k=args.k, where=where)
                    return [h.id for h in result.hits]

                def raw(where: Any = where) -> list[str]:
                    got = col.query(
                        query_embeddings=[vector],
                        n_results=args.k,
                        where=where,
                        include=["documents", "metadatas", "distances"],
                    )
                    return got["ids"][0]

                def hop(raw: Callable[[], list[str]] = raw) -> list[str]:
                    return index.call(raw, "querying")

                for _ in range(5):  # warm-up: loading the segments, caches
                    ours_ids, raw_ids = ours(), raw()
                assert ours_ids == raw_ids, (ours_ids, raw_ids)
                assert len(ours_ids) == args.k
                label = "no filter" if where is None else f"where={where}"
                sides = {
                    "workbench index.query": ours,
                    "raw collection.query": raw,
                    "(raw query on the index's thread)": hop,
                }
                compare(f"{label}, k={args.k}", sides, queries, args)
            noop = timed(lambda: index.call(lambda: None, "nothing"), 2000)
            print(f"the index's worker thread, a call doing nothing: median "
                  f"{statistics.median(noop):.1f} us")
        client.close()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
