"""``workbench rag``: inspect Chroma indexes read-only, and ingest text into one.

Every command takes the index as PATH (a Chroma folder, opened as a private snapshot so it
is never changed) or as ``--host``/``--port`` (a Chroma server) instead of PATH.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from workbench.clikit import State, echo_json, pass_state
from workbench.output import compact_json

if TYPE_CHECKING:
    from workbench.rag import Index

_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
_DEFAULT_TIMEOUT_S = 30.0  # workbench.rag.DEFAULT_TIMEOUT_S, without importing it for --help


def _index_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option(
        "--timeout",
        "timeout_s",
        type=click.FloatRange(min=0.1),
        default=_DEFAULT_TIMEOUT_S,
        show_default=True,
        help="Seconds any one call to the index may take.",
    )(fn)
    fn = click.option(
        "--port",
        type=click.IntRange(1, 65535),
        default=8000,
        show_default=True,
        help="Port of the Chroma server given by --host.",
    )(fn)
    fn = click.option(
        "--host", default=None, help="A Chroma server instead of PATH (with --port)."
    )(fn)
    return fn


def _split(
    args: tuple[str, ...], host: str | None, names: list[str], required: int
) -> tuple[str | None, list[str]]:
    """PATH (None with --host) and the other positional arguments."""
    if host is None:
        if not args:
            raise click.UsageError("missing PATH (a Chroma folder), or give --host and --port")
        path, rest = args[0], list(args[1:])
    else:
        path, rest = None, list(args)
    if not required <= len(rest) <= len(names):
        where = "PATH" if host is None else "--host/--port"
        expected = " ".join(names[:required] + [f"[{n}]" for n in names[required:]])
        raise click.UsageError(
            f"expected {expected or 'nothing'} after {where} (quote a TEXT with spaces)"
        )
    return path, rest


@contextmanager
def _opened(
    path: str | None, host: str | None, port: int, timeout_s: float, writable: bool = False
) -> Iterator[Index]:
    from workbench.rag import open_index

    index = open_index(path, host=host, port=port, writable=writable, timeout_s=timeout_s)
    try:
        yield index
    finally:
        index.close()


def _json_option(text: str | None, name: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint=name) from None


def _where(text: str | None) -> dict[str, Any] | None:
    value = _json_option(text, "--where")
    if value is not None and not isinstance(value, dict):
        raise click.BadParameter('a JSON object, such as {"source": "a.md"}', param_hint="--where")
    return value


@click.group()
def rag() -> None:
    """Inspect Chroma indexes (read-only) and ingest text into them."""


@rag.command("open")
@click.argument("args", nargs=-1, metavar="[PATH]")
@click.option("--embed", default=None, metavar="MODEL",
              help="The model that embeds text queries when a collection's own function "
                   "cannot run offline (smollm2 works out of the box).")
@_index_options
@pass_state
def rag_open(state: State, args: tuple[str, ...], host: str | None, port: int, timeout_s: float,
             embed: str | None) -> None:
    """Inspect PATH (a Chroma folder, read-only) or a server in the app: collections,
    chunks page by page with filters, queries by text or "more like this"."""
    path, _ = _split(args, host, [], 0)
    from workbench.start import open_app

    open_app(state.settings, rag={"path": path, "host": host, "port": port, "embed": embed,
                                  "timeout_s": timeout_s}).run()


@rag.command("collections")
@click.argument("args", nargs=-1, metavar="[PATH]")
@_index_options
@_JSON
def collections_cmd(
    args: tuple[str, ...], host: str | None, port: int, timeout_s: float, as_json: bool
) -> None:
    """List the collections of the Chroma index at PATH: name, count, dimension, distance
    space, metadata, embedding function, and what would embed a text query."""
    from workbench.output import table

    path, _ = _split(args, host, [], 0)
    with _opened(path, host, port, timeout_s) as index:
        infos = index.collections()
    if as_json:
        echo_json([info.__dict__ for info in infos])
        return
    if not infos:
        click.echo("no collections")
        return
    rows = [
        [
            i.name,
            str(i.count),
            str(i.dimension or "-"),
            i.space or "-",
            _function(i.embedding_function),
            compact_json(i.metadata),
            i.query_embedder,
        ]
        for i in infos
    ]
    click.echo(
        table(
            rows,
            ["NAME", "COUNT", "DIM", "SPACE", "EMBEDDING FUNCTION", "METADATA", "TEXT QUERIES"],
        )
    )


def _function(config: dict[str, Any] | None) -> str:
    if not config:
        return "none"
    name = str(config.get("name") or config.get("type") or "?")
    return f"{name} {compact_json(config.get('config'))}".strip()


@rag.command("query")
@click.argument("args", nargs=-1, metavar="[PATH] COLLECTION [TEXT]")
@click.option(
    "-k",
    "k",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="How many chunks to return.",
)
@click.option("--where", "where_text", metavar="JSON", help="A Chroma metadata filter.")
@click.option(
    "--embed",
    "embed",
    metavar="MODEL",
    default=None,
    help="A local llama.cpp model that embeds TEXT (smollm2, a .gguf file, ...).",
)
@click.option(
    "--like",
    metavar="ID",
    default=None,
    help="More like this: search with the stored vector of chunk ID.",
)
@click.option(
    "--vector",
    "vector_text",
    metavar="JSON",
    default=None,
    help="Search with this vector (a JSON list of numbers).",
)
@_index_options
@_JSON
@pass_state
def query_cmd(
    state: State,
    args: tuple[str, ...],
    k: int,
    where_text: str | None,
    embed: str | None,
    like: str | None,
    vector_text: str | None,
    host: str | None,
    port: int,
    timeout_s: float,
    as_json: bool,
) -> None:
    """Find the K chunks of COLLECTION nearest to TEXT (or to --like ID, or --vector).

    TEXT is embedded by --embed MODEL when given; otherwise by the collection's own
    embedding function when it can run offline, or by the model that `rag ingest` recorded.
    The output says which.
    """
    from workbench.rag import query_embedder

    path, rest = _split(args, host, ["COLLECTION", "TEXT"], 1)
    name, text = rest[0], (rest[1] if len(rest) > 1 else None)
    vector = _json_option(vector_text, "--vector")
    if vector is not None and not (
        isinstance(vector, list) and vector and all(isinstance(x, int | float) for x in vector)
    ):
        raise click.BadParameter("a JSON list of numbers", param_hint="--vector")
    if sum(x is not None for x in (text, like, vector)) != 1:
        raise click.UsageError("give exactly one of TEXT, --like ID or --vector JSON")
    where = _where(where_text)
    with _opened(path, host, port, timeout_s) as index:
        embedder = query_embedder(index, name, state.settings, embed) if text is not None else None
        result = index.query(
            name, text=text, embedder=embedder, vector=vector, like=like, k=k, where=where
        )
    if as_json:
        echo_json(
            {"index": index.label, **result.__dict__, "hits": [h.__dict__ for h in result.hits]}
        )
        return
    _print_hits(result)


def _print_hits(result: Any) -> None:
    from workbench.output import to_terminal

    click.echo(to_terminal(f"query embedded by: {result.embedder}"))
    if not result.hits:
        click.echo("no chunks found")
    for hit in result.hits:
        click.echo(
            to_terminal(
                f"\n#{hit.rank}  {hit.distance:.4f}  {hit.id}  {compact_json(hit.metadata)}".rstrip()
            )
        )
        click.echo(to_terminal(_indent(hit.text)))


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines()) or "    (no text)"


@rag.command("documents")
@click.argument("args", nargs=-1, metavar="[PATH] COLLECTION")
@click.option("--where", "where_text", metavar="JSON", help="A Chroma metadata filter.")
@click.option("--id", "ids", multiple=True, metavar="ID", help="Only this chunk (repeat).")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True)
@_index_options
@_JSON
def documents_cmd(
    args: tuple[str, ...],
    where_text: str | None,
    ids: tuple[str, ...],
    limit: int,
    offset: int,
    host: str | None,
    port: int,
    timeout_s: float,
    as_json: bool,
) -> None:
    """Page through the chunks of COLLECTION: id, metadata and full text."""
    from workbench.output import to_terminal

    path, rest = _split(args, host, ["COLLECTION"], 1)
    where = _where(where_text)
    with _opened(path, host, port, timeout_s) as index:
        chunks = index.documents(rest[0], where=where, ids=ids, limit=limit, offset=offset)
    if as_json:
        echo_json([c.__dict__ for c in chunks])
        return
    for n, chunk in enumerate(chunks):
        click.echo(
            to_terminal(
                f"{'' if n == 0 else chr(10)}{chunk.id}  {compact_json(chunk.metadata)}".rstrip()
            )
        )
        click.echo(to_terminal(_indent(chunk.text)))
    if not chunks:
        click.echo("no chunks")


@rag.command("ingest")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--into",
    "into",
    metavar="PATH",
    default=None,
    help="The Chroma folder to write (created when missing).",
)
@click.option("--collection", required=True, help="The collection (created when missing).")
@click.option(
    "--embed",
    default="smollm2",
    show_default=True,
    metavar="MODEL",
    help="The local llama.cpp model that embeds the chunks.",
)
@click.option(
    "--chunk-size",
    type=click.IntRange(min=50),
    default=1000,
    show_default=True,
    help="Characters per chunk at most.",
)
@click.option(
    "--overlap",
    type=click.IntRange(min=0),
    default=200,
    show_default=True,
    help="Characters shared by neighbouring chunks (half a chunk at most).",
)
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    default=32,
    show_default=True,
    help="Chunks embedded and added per call.",
)
@click.option(
    "--prune",
    is_flag=True,
    help="Also delete the chunks of files no longer in FOLDER (the collection mirrors it).",
)
@_index_options
@_JSON
@pass_state
def ingest_cmd(
    state: State,
    folder: Path,
    into: str | None,
    collection: str,
    embed: str,
    chunk_size: int,
    overlap: int,
    batch: int,
    prune: bool,
    host: str | None,
    port: int,
    timeout_s: float,
    as_json: bool,
) -> None:
    """Chunk the .txt and .md files under FOLDER, embed them and add them to COLLECTION.

    Chunk ids come from the source path and text, so running it again adds only what is
    new, and an interrupted run resumes. The chunks of a changed file that it no longer has
    are deleted; --prune deletes those of files no longer in FOLDER too.
    """
    from workbench.embed import context_for, load_embedder
    from workbench.rag import ingest

    if (into is None) == (host is None):
        raise click.UsageError("give either --into PATH or --host/--port")
    if overlap >= chunk_size:
        raise click.BadParameter("must be smaller than --chunk-size", param_hint="--overlap")
    embedder = load_embedder(state.settings, embed, n_ctx=context_for(chunk_size))
    with _opened(into, host, port, timeout_s, writable=True) as index, _Progress() as bar:
        report = ingest(
            index,
            folder,
            collection,
            embedder,
            embed_ref=embed,
            chunk_size=chunk_size,
            overlap=overlap,
            batch=batch,
            prune=prune,
            progress=bar,
        )
    if as_json:
        echo_json(report.__dict__)
        return
    click.echo(
        f"{report.collection}: {report.files} files, {report.chunks} chunks, "
        f"{report.added} added, {report.existing} already there, {report.removed} stale removed "
        f"({report.embedder}, {report.seconds:.1f} s)"
    )


class _Progress:
    """A progress bar on stderr when it is a terminal; nothing otherwise."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._done = 0

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.render_finish()

    def __call__(self, done: int, total: int) -> None:
        if not sys.stderr.isatty():
            return
        if self._bar is None:
            self._bar = click.progressbar(length=total, label="Embedding", file=sys.stderr)
        self._bar.update(done - self._done)
        self._done = done
