"""A RAG index, inspected: its collections, their chunks (paged, filtered), and what a query
retrieves. Read-only: a folder is searched through a private snapshot, never written.

Every call to the index runs in a worker with the index's time limit, so a locked folder,
a server that is down or a broken collection shows its reason on the status line and the
app goes on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Header, Input, Static

from workbench.output import compact_json, inert
from workbench.screens.dialogs import Ask, Show
from workbench.screens.keybar import KeyBar
from workbench.screens.prompts import plain
from workbench.screens.worker_errors import ReportsWorkerErrors

if TYPE_CHECKING:
    from workbench.rag import Index
    from workbench.screens.app import WorkbenchApp

PAGE = 50
PREVIEW = 120


@dataclass(frozen=True)
class RagTarget:
    """What to open: a Chroma folder, or a server."""

    path: str | None = None
    host: str | None = None
    port: int = 8000
    embed: str | None = None
    """The model that embeds text queries when a collection's own function cannot."""
    timeout_s: float = 30.0

    @property
    def label(self) -> str:
        return self.path if self.path is not None else f"{self.host}:{self.port}"


def _preview(text: str) -> Text:
    flat = " ".join(text.split())
    return plain(flat[: PREVIEW - 1] + "…" if len(flat) > PREVIEW else flat)


class RagScreen(ReportsWorkerErrors, Screen[None]):
    """Collections on the left; the selected one's chunks, and a query's hits, on the right."""

    CSS_PATH = "rag.tcss"
    BINDINGS = [
        Binding("slash", "focus_query", "Query"),
        Binding("w", "focus_where", "Filter"),
        Binding("n", "page(1)", "Next page"),
        Binding("p", "page(-1)", "Previous page"),
        Binding("k", "set_k", "Set k"),
        Binding("l", "like", "More like this"),
        Binding("escape", "back", "Back"),
    ]

    app: WorkbenchApp

    def __init__(self, target: RagTarget) -> None:
        super().__init__()
        self.target = target
        self._index: Index | None = None
        self._collection: str | None = None
        self._start = 0
        self._k = 5
        self._where: dict[str, Any] | None = None
        self._chunks: dict[str, Any] = {}
        self._embedders: dict[str, Any] = {}
        self._asked = {"documents": 0, "hits": 0}
        """The newest request of each kind: an older answer arriving late is dropped
        (thread workers cannot be stopped, so pages or queries may finish out of order)."""

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="rag-body"):
            yield DataTable(id="collections", cursor_type="row")
            with Vertical(id="rag-right"):
                yield Static(id="info")
                yield Input(placeholder='filter chunks (w): a Chroma where, e.g. {"source": "a.md"}',
                            id="where")
                yield DataTable(id="documents", cursor_type="row", zebra_stripes=True)
                yield Input(placeholder="query (/): text to search for; l: more like the selected chunk",
                            id="query")
                yield DataTable(id="hits", cursor_type="row")
        yield Static("opening...", id="status", classes="hint")
        yield KeyBar()

    def on_mount(self) -> None:
        self.sub_title = f"RAG · {self.target.label}"
        for table, columns, last in (
                ("#collections", (("collection", 18), ("count", 7), ("dim", 5)), "metadata"),
                ("#documents", (("id", 18), ("metadata", 24)), "text"),
                ("#hits", (("rank", 4), ("id", 18), ("distance", 9)), "text")):
            grid = self.query_one(table, DataTable)
            for label, width in columns:
                grid.add_column(label, width=width)
            grid.add_column(last)
        self.query_one("#collections").border_title = "collections"
        self.query_one("#documents").border_title = "chunks"
        self.query_one("#hits").border_title = "query"
        self.query_one("#collections", DataTable).focus()
        self.open()

    def on_unmount(self) -> None:
        if self._index is not None:
            self._index.close()
        for embedder in self._embedders.values():
            close = getattr(embedder, "close", None)
            if close is not None:
                close()

    def status(self, text: str, error: bool = False) -> None:
        line = self.query_one("#status", Static)
        line.update(Text(inert(" ".join(text.split()))))
        line.set_class(error, "error-message")

    # --- the index ----------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="rag", exit_on_error=False)
    def open(self) -> None:
        from workbench.rag import open_index

        target = self.target
        try:
            self._index = open_index(target.path, host=target.host, port=target.port,
                                    timeout_s=target.timeout_s)
            infos = self._index.collections()
        except Exception as exc:  # not a store, locked, incompatible, server down: said
            self.app.call_from_thread(self.status, f"cannot open {target.label}: {exc}", True)
            return
        self.app.call_from_thread(self._show_collections, infos)

    def _show_collections(self, infos: list[Any]) -> None:
        self._infos = {info.name: info for info in infos}
        table = self.query_one("#collections", DataTable)
        table.clear()
        for info in infos:
            table.add_row(plain(info.name), str(info.count),
                          str(info.dimension) if info.dimension is not None else "-",
                          plain(compact_json(info.metadata)), key=info.name)
        count = f"{len(infos)} collection" + ("s" if len(infos) != 1 else "")
        self.status(f"{self.target.label}: {count} (read-only)" if infos else
                    f"{self.target.label}: no collections")

    @on(DataTable.RowHighlighted, "#collections")
    def _collection_chosen(self, event: DataTable.RowHighlighted) -> None:
        name = event.row_key.value
        if name is None or name == self._collection:
            return
        self._collection, self._start = name, 0
        info = self._infos[name]
        self.query_one("#info", Static).update(Text(inert(
            f"{info.name} · {info.count} chunks · dimension {info.dimension or '?'} · "
            f"space {info.space or '?'}\nmetadata {compact_json(info.metadata) or '{}'}\n"
            f"embedding function {compact_json(info.embedding_function) or 'none recorded'}\n"
            f"text queries embedded by: {self.target.embed or info.query_embedder}")))
        self.query_one("#hits", DataTable).clear()
        self.load_documents()

    def load_documents(self) -> None:
        self._asked["documents"] += 1
        self._load_documents(self._asked["documents"], self._collection, self._where, self._start)

    @work(thread=True, group="rag", exit_on_error=False)
    def _load_documents(self, asked: int, collection: str | None, where: Any, start: int) -> None:
        if self._index is None or collection is None:
            return
        try:
            chunks = self._index.documents(collection, where=where, limit=PAGE, offset=start)
        except Exception as exc:
            self.app.call_from_thread(self.status, f"cannot read {collection}: {exc}", True)
            return
        self.app.call_from_thread(self._show_documents, chunks, asked)

    def _show_documents(self, chunks: list[Any], asked: int) -> None:
        if asked != self._asked["documents"]:
            return  # a newer page was asked for
        table = self.query_one("#documents", DataTable)
        table.clear()
        for chunk in chunks:
            self._chunks[chunk.id] = chunk
            table.add_row(plain(chunk.id), plain(compact_json(chunk.metadata)), _preview(chunk.text),
                          key=chunk.id)
        shown = f"chunks {self._start + 1}-{self._start + len(chunks)}" if chunks else "no chunks"
        filtered = f" where {compact_json(self._where)}" if self._where else ""
        self.status(f"{self._collection}: {shown}{filtered} · n/p pages · Enter shows a chunk")

    # --- actions ------------------------------------------------------------------------

    def action_focus_query(self) -> None:
        self.query_one("#query", Input).focus()

    def action_focus_where(self) -> None:
        self.query_one("#where", Input).focus()

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    def action_page(self, step: int) -> None:
        if self._collection is None:
            return
        self._start = max(0, self._start + step * PAGE)
        self.load_documents()

    def action_set_k(self) -> None:
        def chosen(text: str | None) -> None:
            if text is None:
                return
            if not text.isdigit() or int(text) < 1:
                self.status(f"k must be a whole number of at least 1, not {text!r}", True)
                return
            self._k = int(text)
            self.status(f"queries return the {self._k} nearest chunks")

        self.app.push_screen(Ask("How many chunks should a query return (k)?", value=str(self._k)),
                             chosen)

    @on(Input.Submitted, "#where")
    def _where_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        try:
            where = json.loads(text) if text else None
            if where is not None and not isinstance(where, dict):
                raise ValueError("a JSON object, such as {\"source\": \"a.md\"}")
        except ValueError as exc:
            self.status(f"filter: {exc}", True)
            return
        self._where, self._start = where, 0
        self.load_documents()
        self.query_one("#documents", DataTable).focus()

    @on(Input.Submitted, "#query")
    def _query_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self.status(f"searching {self._collection}...")
            self.search(text=event.value.strip())

    def action_like(self) -> None:
        table = self.query_one("#hits" if self.focused is self.query_one("#hits") else "#documents",
                               DataTable)
        if not table.row_count:
            self.status("select a chunk first (in the chunks or the query table)", True)
            return
        row_key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        self.search(like=str(row_key.value))

    def search(self, text: str | None = None, like: str | None = None) -> None:
        self._asked["hits"] += 1
        self._search(self._asked["hits"], text, like)

    @work(thread=True, group="rag-query", exit_on_error=False)
    def _search(self, asked: int, text: str | None, like: str | None) -> None:
        if self._index is None or self._collection is None:
            self.app.call_from_thread(self.status, "choose a collection first", True)
            return
        try:
            embedder = None
            if text is not None:
                embedder = self._embedders.get(self._collection)
                if embedder is None:
                    from workbench.rag import query_embedder

                    embedder = query_embedder(self._index, self._collection, self.app.settings,
                                              self.target.embed)
                    self._embedders[self._collection] = embedder
            result = self._index.query(self._collection, text=text, embedder=embedder, like=like,
                                      k=self._k, where=self._where)
        except Exception as exc:
            self.app.call_from_thread(self.status, f"query failed: {exc}", True)
            return
        self.app.call_from_thread(self._show_hits, result, asked)

    def _show_hits(self, result: Any, asked: int) -> None:
        from workbench.retrieval import injection_flags

        if asked != self._asked["hits"]:
            return  # a newer query was asked for
        table = self.query_one("#hits", DataTable)
        table.clear()
        flagged = 0
        for hit in result.hits:
            self._chunks[hit.id] = hit
            flags = injection_flags(hit.text)
            flagged += bool(flags)
            text = _preview(hit.text)
            if flags:
                text = Text("! ", style="bold") + text
            table.add_row(str(hit.rank), plain(hit.id), f"{hit.distance:.4f}", text, key=hit.id)
        warning = f" · ! {flagged} chunk(s) read like instructions to a model" if flagged else ""
        self.status(f"{len(result.hits)} hits · query embedded by: {result.embedder} · "
                    f"{result.embed_ms:.0f} ms to embed, {result.search_ms:.0f} ms to search"
                    f"{warning}", error=bool(flagged))

    @on(DataTable.RowSelected, "#documents")
    @on(DataTable.RowSelected, "#hits")
    def _open_chunk(self, event: DataTable.RowSelected) -> None:
        from workbench.retrieval import injection_flags

        chunk = self._chunks.get(str(event.row_key.value))
        if chunk is None:
            return
        flags = injection_flags(chunk.text)
        warning = "".join(f"! possible prompt injection: {f}\n" for f in flags)
        self.app.push_screen(Show(
            f"{self._collection} · {chunk.id}",
            f"{warning}metadata: {compact_json(chunk.metadata) or '{}'}\n\n{chunk.text}"))

