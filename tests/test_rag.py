"""RAG indexes: real chromadb stores made by plain chromadb code, inspected through the CLI.

Every store here is built by chromadb itself (never by the workbench) with explicit
embeddings: deterministic vectors, or SmolLM2 vectors computed with llama.cpp directly.
Chroma's default embedding function is never called (it would download a model).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from workbench.cli import cli
from workbench.errors import WorkbenchError
from workbench.models import demo_model_path

chromadb = pytest.importorskip("chromadb")
from chromadb.config import Settings  # noqa: E402

DIM = 4
FACTS = {
    "paris": "Paris is the capital of France, famous for the Eiffel Tower.",
    "photo": "Photosynthesis turns sunlight into chemical energy inside green plants.",
    "market": "The stock market fell sharply on Tuesday after weak bank earnings.",
    "cats": "Cats sleep for most of the day and hunt at night.",
}
needs_model = pytest.mark.skipif(demo_model_path() is None, reason="needs the demo extra")


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def ok(*args: str) -> Result:
    result = run(*args)
    assert result.exit_code == 0, result.output
    return result


def fails(*args: str) -> str:
    """The error line of a command that must fail cleanly: exit 1, no traceback."""
    result = run(*args)
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert result.output.startswith("Error: "), result.output
    return result.output


def digest(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (and every empty folder) with its SHA-256."""
    found = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_file():
            found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        elif path.is_dir() and not any(path.iterdir()):
            found[rel] = "empty folder"
    return found


def client(path: Path) -> Any:
    return chromadb.PersistentClient(str(path), settings=Settings(anonymized_telemetry=False))


def vector(i: int) -> list[float]:
    """Distinct, deterministic vectors: v_i is nearest to itself, then to v_(i±1)."""
    return [float(i), float(i % 3), 1.0, float(i) / 10]


def build_store(path: Path) -> Path:
    """Two collections made by plain chromadb: explicit vectors, and a default-function one."""
    c = client(path)
    col = c.create_collection("vectors", metadata={"topic": "demo"}, embedding_function=None)
    col.add(
        ids=[f"v{i}" for i in range(10)],
        embeddings=[vector(i) for i in range(10)],
        documents=[f"document number {i}" for i in range(10)],
        metadatas=[{"group": "even" if i % 2 == 0 else "odd", "i": i} for i in range(10)],
    )
    # Chroma's default function (ONNX, downloaded on first use): vectors given explicitly.
    notes = c.create_collection("notes")
    notes.add(ids=["n1"], embeddings=[[0.1] * 384], documents=["a note"])
    c.close()
    return path


@pytest.fixture(autouse=True)
def no_onnx_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chroma's default function finds no downloaded model, whatever this machine holds."""
    from chromadb.utils.embedding_functions.onnx_mini_lm_l6_v2 import ONNXMiniLM_L6_V2

    monkeypatch.setattr(ONNXMiniLM_L6_V2, "DOWNLOAD_PATH", tmp_path / "no-onnx-model")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_store(tmp_path_factory.mktemp("rag") / "store")


@pytest.fixture
def copy_of(tmp_path: Path, store: Path) -> Iterator[Path]:
    """A private copy of the store, for tests that break it."""
    dest = tmp_path / "copy"
    shutil.copytree(store, dest)
    yield dest


# --- collections, documents, queries ----------------------------------------------------


def test_collections_text_and_json_leave_the_folder_unchanged(store: Path) -> None:
    before = digest(store)
    text = ok("rag", "collections", str(store)).output
    assert "vectors" in text and "notes" in text and '{"topic": "demo"}' in text
    assert "default would download its model" in text
    data = {c["name"]: c for c in json.loads(ok("rag", "collections", str(store), "--json").stdout)}
    assert data["vectors"]["count"] == 10 and data["vectors"]["dimension"] == DIM
    assert data["vectors"]["metadata"] == {"topic": "demo"}
    assert data["notes"]["embedding_function"]["name"] == "default"
    assert data["notes"]["dimension"] == 384
    assert set(data["vectors"]) >= {
        "name",
        "count",
        "dimension",
        "metadata",
        "space",
        "embedding_function",
        "query_embedder",
    }
    assert digest(store) == before


def test_query_by_vector_with_k_and_where(store: Path) -> None:
    before = digest(store)
    args = ["rag", "query", str(store), "vectors", "--vector", json.dumps(vector(4))]
    data = json.loads(ok(*args, "-k", "3", "--json").stdout)
    assert data["embedder"] == "the given vector" and data["k"] == 3
    hits = data["hits"]
    assert [h["rank"] for h in hits] == [1, 2, 3]
    assert hits[0]["id"] == "v4" and hits[0]["distance"] == pytest.approx(0.0, abs=1e-6)
    assert hits[0]["metadata"] == {"group": "even", "i": 4}
    assert hits[0]["text"] == "document number 4"
    assert [h["distance"] for h in hits] == sorted(h["distance"] for h in hits)
    odd = json.loads(ok(*args, "-k", "2", "--where", '{"group": "odd"}', "--json").stdout)
    assert [h["metadata"]["group"] for h in odd["hits"]] == ["odd", "odd"]
    assert odd["where"] == {"group": "odd"}
    text = ok(*args, "-k", "1").output
    assert "query embedded by: the given vector" in text and "v4" in text
    assert "document number 4" in text
    assert digest(store) == before


def test_more_like_this_leaves_out_the_chunk_itself(store: Path) -> None:
    data = json.loads(
        ok("rag", "query", str(store), "vectors", "--like", "v5", "-k", "2", "--json").stdout
    )
    assert data["embedder"] == "stored embedding of v5"
    assert [h["id"] for h in data["hits"]] == ["v4", "v6"]  # v5 itself is left out
    assert "no chunk 'nope'" in fails("rag", "query", str(store), "vectors", "--like", "nope")


def test_documents_pages_filters_and_ids(store: Path) -> None:
    page = json.loads(
        ok(
            "rag", "documents", str(store), "vectors", "--limit", "3", "--offset", "2", "--json"
        ).stdout
    )
    assert len(page) == 3 and all(set(c) == {"id", "metadata", "text"} for c in page)
    even = json.loads(
        ok(
            "rag", "documents", str(store), "vectors", "--where", '{"group": "even"}', "--json"
        ).stdout
    )
    assert sorted(c["id"] for c in even) == ["v0", "v2", "v4", "v6", "v8"]
    one = ok("rag", "documents", str(store), "vectors", "--id", "v7").output
    assert "v7" in one and "document number 7" in one and '"i": 7' in one


def test_usage_errors(store: Path) -> None:
    assert "no collection 'nope'" in fails("rag", "query", str(store), "nope", "--vector", "[1]")
    assert "vectors" in fails("rag", "query", str(store), "nope", "--vector", "[1]")
    dims = fails("rag", "query", str(store), "vectors", "--vector", "[1, 2]")
    assert "2 dimensions" in dims and "4-dimensional" in dims
    assert run("rag", "query", str(store), "vectors").exit_code == 2  # no TEXT/--like/--vector
    assert (
        run(
            "rag", "query", str(store), "vectors", "--vector", "[1,2,3,4]", "--where", "[1]"
        ).exit_code
        == 2
    )
    bad_where = fails(
        "rag",
        "query",
        str(store),
        "vectors",
        "--vector",
        "[1,2,3,4]",
        "--where",
        '{"group": {"$bogus": 1}}',
    )
    assert "Error: " in bad_where
    assert "--embed" in fails("rag", "query", str(store), "notes", "what is a note")


def test_a_session_leaves_every_byte_and_removes_its_snapshot(store: Path) -> None:
    from workbench.rag import open_index

    before = digest(store)
    with open_index(store) as index:
        snapshot = index._snapshot
        assert snapshot is not None and snapshot.is_dir()
        for _ in range(3):
            assert [i.name for i in index.collections()] == ["notes", "vectors"]
            result = index.query("vectors", vector=vector(2), k=2)
            assert result.hits[0].id == "v2"
            assert index.documents("vectors", ids=["v1"])[0].text == "document number 1"
    assert not snapshot.exists()
    assert digest(store) == before
    with pytest.raises(WorkbenchError, match="closed"):
        index.collections()


# --- folders that cannot be opened -------------------------------------------------------


def test_not_a_chroma_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert "not a Chroma store" in fails("rag", "collections", str(tmp_path / "empty"))
    assert digest(tmp_path / "empty") == {}
    (tmp_path / "file.txt").write_text("hello")
    assert "not a folder" in fails("rag", "collections", str(tmp_path / "file.txt"))
    assert "does not exist" in fails("rag", "collections", str(tmp_path / "missing"))
    old = tmp_path / "old"
    old.mkdir()
    (old / "chroma-collections.parquet").write_bytes(b"PAR1")
    assert "Chroma < 0.4" in fails("rag", "collections", str(old))


def test_random_bytes_and_another_sqlite_database(tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "chroma.sqlite3").write_bytes(os.urandom(8192))
    assert "not a SQLite database" in fails("rag", "collections", str(junk))
    other = tmp_path / "other"
    other.mkdir()
    with sqlite3.connect(other / "chroma.sqlite3") as conn:
        conn.execute("CREATE TABLE t (x)")
    conn.close()
    before = digest(other)
    assert "not a Chroma store" in fails("rag", "collections", str(other))
    assert digest(other) == before


def test_corrupt_sqlite(copy_of: Path) -> None:
    db = copy_of / "chroma.sqlite3"
    data = bytearray(db.read_bytes())
    data[100:4096] = os.urandom(3996)  # the first page: the schema
    db.write_bytes(bytes(data))
    before = digest(copy_of)
    assert "corrupt" in fails("rag", "collections", str(copy_of))
    assert digest(copy_of) == before


def test_a_store_from_a_newer_or_different_chroma(copy_of: Path) -> None:
    with sqlite3.connect(copy_of / "chroma.sqlite3") as conn:
        conn.execute(
            "INSERT INTO migrations VALUES ('sysdb', 999, '00999-future.sqlite.sql', "
            "'SELECT 1', 'x')"
        )
    conn.close()
    message = fails("rag", "collections", str(copy_of))
    assert "newer Chroma" in message and "sysdb v999" in message
    with sqlite3.connect(copy_of / "chroma.sqlite3") as conn:
        conn.execute("DELETE FROM migrations WHERE version = 999")
        conn.execute("UPDATE migrations SET hash = 'changed' WHERE dir = 'sysdb' AND version = 1")
    conn.close()
    assert "incompatible Chroma" in fails("rag", "collections", str(copy_of))


def test_an_unfinished_write_is_refused_not_rolled_back(copy_of: Path) -> None:
    (copy_of / "chroma.sqlite3-journal").write_bytes(b"\xd9\xd5\x05\xf9\x20\xa1\x63\xd7" * 64)
    before = digest(copy_of)
    assert "unfinished write" in fails("rag", "collections", str(copy_of))
    assert digest(copy_of) == before


def test_a_folder_locked_by_another_process(copy_of: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            f"c = sqlite3.connect({str(copy_of / 'chroma.sqlite3')!r}, isolation_level=None)\n"
            "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(30)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        message = fails("rag", "collections", str(copy_of), "--timeout", "2")
        assert "locked by another process" in message
        assert time.monotonic() - started < 10
    finally:
        holder.kill()
        holder.wait()
    ok("rag", "collections", str(copy_of))  # and readable once the writer is gone


def test_a_write_in_progress_is_neither_seen_nor_waited_for(copy_of: Path) -> None:
    db = copy_of / "chroma.sqlite3"
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, time\n"
            f"c = sqlite3.connect({str(db)!r}, isolation_level=None)\n"
            "c.execute('BEGIN IMMEDIATE')\n"
            "c.execute(\"UPDATE collections SET name = 'renamed' WHERE name = 'vectors'\")\n"
            "print('writing', flush=True); time.sleep(30)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
        assert (copy_of / "chroma.sqlite3-journal").exists()
        data = json.loads(ok("rag", "collections", str(copy_of), "--json").stdout)
        assert sorted(c["name"] for c in data) == ["notes", "vectors"]
    finally:
        writer.kill()
        writer.wait()


# --- servers -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_server_that_is_down_or_silent() -> None:
    port = _free_port()
    message = fails("rag", "collections", "--host", "127.0.0.1", "--port", str(port))
    assert f"no Chroma server at 127.0.0.1:{port}" in message
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        started = time.monotonic()
        message = fails(
            "rag",
            "collections",
            "--host",
            "127.0.0.1",
            "--port",
            str(silent.getsockname()[1]),
            "--timeout",
            "1",
        )
        assert "took longer than 1 s" in message
        assert time.monotonic() - started < 10


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory, store: Path) -> Iterator[int]:
    """``chroma run`` on a copy of the store, on a free loopback port."""
    exe = shutil.which("chroma", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("no chroma executable")
    data = tmp_path_factory.mktemp("server") / "store"
    shutil.copytree(store, data)
    port = _free_port()
    proc = subprocess.Popen(
        [exe, "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.skip("chroma run did not start")
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_chroma_server(chroma_server: int, tmp_path: Path) -> None:
    server = ["--host", "127.0.0.1", "--port", str(chroma_server)]
    data = json.loads(ok("rag", "collections", *server, "--json").stdout)
    assert {c["name"]: c["count"] for c in data} == {"notes": 1, "vectors": 10}
    hits = json.loads(
        ok(
            "rag",
            "query",
            *server,
            "vectors",
            "--vector",
            json.dumps(vector(7)),
            "-k",
            "1",
            "--json",
        ).stdout
    )["hits"]
    assert hits[0]["id"] == "v7"
    assert run("rag", "query", *server).exit_code == 2  # COLLECTION is missing
    if demo_model_path() is not None:  # ingestion writes to a server too
        docs = tmp_path / "docs"
        docs.mkdir()
        (docs / "cats.md").write_text(FACTS["cats"])
        ok("rag", "ingest", str(docs), *server, "--collection", "kb2")
        found = ok("rag", "query", *server, "kb2", "Which animal sleeps all day?", "--json")
        assert json.loads(found.stdout)["hits"][0]["text"] == FACTS["cats"]


# --- text queries: the collection's own function, llama.cpp ------------------------------


def test_the_collections_own_function_when_it_runs_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
    from chromadb.utils.embedding_functions import register_embedding_function

    from workbench import rag

    class Letters(EmbeddingFunction[Documents]):
        """Counts of a, e, i, o: enough to tell texts apart, offline and at once."""

        def __init__(self) -> None:
            pass

        def __call__(self, input: Documents) -> Embeddings:
            import numpy as np

            return [np.array([t.count(c) + 1.0 for c in "aeio"], dtype=np.float32) for t in input]

        @staticmethod
        def name() -> str:
            return "workbench_test_letters"

        @staticmethod
        def build_from_config(config: dict[str, Any]) -> Letters:
            return Letters()

        def get_config(self) -> dict[str, Any]:
            return {}

    register_embedding_function(Letters)
    c = client(tmp_path / "own")
    col = c.create_collection("letters", embedding_function=Letters())
    col.add(ids=["a", "o"], documents=["aaaa", "oooo"])
    c.close()
    where = str(tmp_path / "own")
    assert "not known to run offline" in fails("rag", "query", where, "letters", "aaa")
    monkeypatch.setitem(rag.OFFLINE_FUNCTIONS, "workbench_test_letters", lambda config: None)
    data = json.loads(ok("rag", "query", where, "letters", "aaa", "-k", "1", "--json").stdout)
    assert data["embedder"] == "the collection's own function (workbench_test_letters)"
    assert data["hits"][0]["id"] == "a"


@pytest.fixture(scope="module")
def facts_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A collection embedded with SmolLM2 through llama.cpp directly, stored by chromadb."""
    import llama_cpp

    llm = llama_cpp.Llama(
        str(demo_model_path()),
        embedding=True,
        n_ctx=512,
        n_batch=512,
        pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN,
        verbose=False,
    )
    path = tmp_path_factory.mktemp("facts") / "store"
    c = client(path)
    col = c.create_collection(
        "facts", embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
    )
    col.add(
        ids=list(FACTS),
        documents=list(FACTS.values()),
        embeddings=llm.embed(list(FACTS.values())),
        metadatas=[{"topic": key} for key in FACTS],
    )
    c.close()
    llm.close()
    return path


@needs_model
def test_a_text_query_embedded_by_llama_cpp(facts_store: Path, store: Path) -> None:
    before = digest(facts_store)
    args = ["rag", "query", str(facts_store), "facts", "Which city is the capital of France?"]
    assert "--embed MODEL" in fails(*args)
    data = json.loads(ok(*args, "--embed", "smollm2", "-k", "2", "--json").stdout)
    assert "smollm2" in data["embedder"] and "llama.cpp" in data["embedder"]
    assert data["hits"][0]["id"] == "paris"
    assert set(data["hits"][0]) == {"rank", "id", "distance", "metadata", "text"}
    assert "query embedded by: llama.cpp smollm2" in ok(*args, "--embed", "smollm2").output
    mismatch = fails("rag", "query", str(store), "vectors", "hello", "--embed", "smollm2")
    assert "576-dimensional" in mismatch and "4-dimensional" in mismatch
    assert digest(facts_store) == before


# --- ingestion ---------------------------------------------------------------------------


def test_chunks_cover_the_text_prefer_breaks_and_overlap() -> None:
    from workbench.rag import chunk_spans

    first = "The first paragraph has enough words to pass half a chunk."
    text = first + "\n\n" + "A sentence here. " * 12 + "\n\nlast words"
    spans = list(chunk_spans(text, 80, 20))
    assert all(0 < hi - lo <= 80 for lo, hi in spans)
    assert spans[0] == (0, len(first))  # the paragraph break beats the sentence break
    assert all(text[hi - 1] == "." for lo, hi in spans[1:-1])  # then sentence breaks
    assert all(b[0] < a[1] for a, b in itertools.pairwise(spans[1:]))  # they overlap
    covered = set().union(*(range(lo, hi) for lo, hi in spans))
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())
    assert list(chunk_spans("x" * 1000, 100, 99))  # a large overlap still ends
    assert len(list(chunk_spans("word " * 400, 100, 0))) <= 21


def test_ids_come_from_source_and_text(tmp_path: Path) -> None:
    from workbench.rag import read_pieces

    (tmp_path / "a.md").write_text("Same text.\n\nSame text.\n\nOther text.")
    (tmp_path / "b.txt").write_text("Same text.")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "c.md").write_text("skipped")
    (tmp_path / "d.py").write_text("skipped")
    sources, pieces = read_pieces(tmp_path, 12, 0)
    assert sources == ["a.md", "b.txt"]
    assert [(p.source, p.text) for p in pieces] == [
        ("a.md", "Same text."),
        ("a.md", "Other text."),
        ("b.txt", "Same text."),
    ]
    assert pieces[0].id != pieces[2].id  # same text, other file
    assert pieces == read_pieces(tmp_path, 12, 0)[1]
    assert pieces[1].metadata == {"source": "a.md", "chunk": 2, "start": 24, "end": 35,
                                  "folder": str(tmp_path.resolve())}


@needs_model
def test_a_changed_file_leaves_no_stale_chunks_and_prune_mirrors_the_folder(tmp_path: Path) -> None:
    docs, into = tmp_path / "docs", tmp_path / "index"
    docs.mkdir()
    (docs / "france.md").write_text(FACTS["paris"] + "\n\n" + FACTS["cats"] + "\n")
    (docs / "plants.txt").write_text(FACTS["photo"])
    args = ["rag", "ingest", str(docs), "--into", str(into), "--collection", "kb1",
            "--chunk-size", "80", "--overlap", "0", "--json"]
    assert json.loads(ok(*args).stdout)["added"] == 3

    def stored() -> dict[str, tuple[str, int]]:
        from workbench.rag import open_index

        with open_index(into) as index:
            got = index.collection("kb1").get(include=["documents", "metadatas"])
        return {doc: (meta["source"], meta["chunk"])
                for doc, meta in zip(got["documents"], got["metadatas"], strict=True)}

    # The cats paragraph is rewritten and moved to the front: the old text goes, the
    # Paris chunk stays (no new embedding) with its new position.
    (docs / "france.md").write_text(FACTS["market"] + "\n\n" + FACTS["paris"] + "\n")
    again = json.loads(ok(*args).stdout)
    assert (again["added"], again["existing"], again["moved"], again["removed"]) == (1, 2, 1, 1)
    assert stored() == {FACTS["market"]: ("france.md", 0), FACTS["paris"]: ("france.md", 1),
                        FACTS["photo"]: ("plants.txt", 0)}
    # A file gone from the folder: its chunks stay unless asked to prune.
    (docs / "plants.txt").unlink()
    assert json.loads(ok(*args).stdout)["removed"] == 0
    assert FACTS["photo"] in stored()
    pruned = ok(*args[:-1], "--prune").output
    assert "1 stale removed" in pruned
    assert set(stored()) == {FACTS["market"], FACTS["paris"]}
    # Another folder's files of the same names are its own: neither ingest nor prune touches
    # what the first folder brought.
    other = tmp_path / "other"
    other.mkdir()
    (other / "france.md").write_text(FACTS["cats"])
    into_other = ["rag", "ingest", str(other), *args[3:-1], "--prune", "--json"]
    assert json.loads(ok(*into_other).stdout)["removed"] == 0
    assert stored() == {FACTS["market"]: ("france.md", 0), FACTS["paris"]: ("france.md", 1),
                        FACTS["cats"]: ("france.md", 0)}
    # An empty folder with --prune would delete everything it brought: refused.
    (other / "france.md").unlink()
    assert "no .txt or .md files under" in fails("rag", "ingest", str(other), *args[3:-1], "--prune")
    assert FACTS["cats"] in stored()


@needs_model
def test_ingest_twice_adds_no_duplicates_and_finds_the_chunk(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "france.md").write_text(FACTS["paris"] + "\n\n" + FACTS["cats"] + "\n")
    (docs / "sub" / "plants.txt").write_text(FACTS["photo"])
    (docs / "markets.txt").write_text(FACTS["market"])
    into = tmp_path / "index"
    args = [
        "rag",
        "ingest",
        str(docs),
        "--into",
        str(into),
        "--collection",
        "kb1",
        "--chunk-size",
        "80",
        "--overlap",
        "10",
        "--batch",
        "2",
        "--json",
    ]
    first = json.loads(ok(*args).stdout)
    assert first["files"] == 3 and first["chunks"] == 4
    assert first["added"] == 4 and first["existing"] == 0
    second = json.loads(ok(*args).stdout)
    assert second["added"] == 0 and second["existing"] == 4
    info = json.loads(ok("rag", "collections", str(into), "--json").stdout)[0]
    assert info["count"] == 4 and info["dimension"] == 576
    assert info["metadata"] == {"workbench:embed": "smollm2"}
    assert "recorded at ingestion" in info["query_embedder"]
    data = json.loads(
        ok(
            "rag",
            "query",
            str(into),
            "kb1",
            "What turns sunlight into energy?",
            "-k",
            "1",
            "--json",
        ).stdout
    )
    hit = data["hits"][0]
    assert hit["metadata"]["source"] == "sub/plants.txt" and hit["text"] == FACTS["photo"]
    assert set(hit["metadata"]) == {"source", "chunk", "start", "end", "folder"}
    assert hit["metadata"]["folder"] == str(docs.resolve())
    other = fails(
        "rag",
        "ingest",
        str(docs),
        "--into",
        str(into),
        "--collection",
        "kb1",
        "--embed",
        str(demo_model_path()),
    )
    assert "built with --embed smollm2" in other
    text = ok(*args[:-1]).output
    assert "0 added, 4 already there" in text
