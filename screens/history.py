"""The run history: every run, newest first, filtered in SQL; open one whole or run it again."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Header, Input, Static

from workbench.output import when
from workbench.screens.keybar import KeyBar
from workbench.screens.prompts import plain
from workbench.screens.run_detail import RunScreen, say
from workbench.screens.worker_errors import ReportsWorkerErrors

if TYPE_CHECKING:
    from workbench.screens.app import WorkbenchApp
    from workbench.storage.runs import RunInfo

FILTER_KEYS = ("prompt", "version", "model", "label", "status", "since")
LIMIT = 200
HISTORY_HELP = """\
## History
The newest 200 runs that match the filter, newest first.

**/** filters with `key:value` tokens, all of which must hold (Enter applies, Esc clears):
`prompt:NAME` `version:NAME@N` `model:NAME` `label:LABEL` (runs of the version it points
to now) `status:ok|error|partial|cancelled|running|interrupted` `since:YYYY-MM-DD` (UTC),
e.g. `prompt:support status:error since:2026-11-01`.

**Enter** (or a click on the selected row) opens a run, Esc goes back (and stops a re-run
on its way). **r** calls the run's model again with the same messages and parameters.
"""


def parse_filter(text: str) -> dict[str, Any]:
    """The filters a query names, as keyword arguments of ``query_runs``.

    Raises:
        ValueError: a token that is not ``key:value`` with a known key, or a bad date.
    """
    filters: dict[str, Any] = {}
    for token in text.split():
        key, sep, value = token.partition(":")
        if not sep or not value or key not in FILTER_KEYS:
            known = ", ".join(f"{k}:" for k in FILTER_KEYS)
            raise ValueError(f"cannot read {token!r}: write key:value, the key one of {known}")
        if key == "since":
            try:
                filters[key] = date.fromisoformat(value)
            except ValueError:
                raise ValueError(f"since:{value}: write the date as YYYY-MM-DD") from None
        else:
            filters[key] = value
    return filters


def _first_line(run: RunInfo) -> Text:
    text = run.output.strip() or (f"error: {run.error}" if run.error else "")
    return plain(text.split("\n", 1)[0][:300])


def _figures(run: RunInfo) -> tuple[str, str, str]:
    """TTFT, tokens out and cost as the list shows them; unknown is a dash, never 0."""
    m = run.metrics
    ttft = "—" if m["ttft_ms"] is None else f"{m['ttft_ms']:.0f} ms"
    tokens = "—" if m["output_tokens"] is None else str(m["output_tokens"])
    tokens = "~" + tokens if m["tokens_estimated"] and tokens != "—" else tokens
    cost = "—" if m["cost_usd"] is None else f"${m['cost_usd']:.4f}"
    return ttft, tokens, "free" if str(m["cost_source"]).startswith("free") else cost


class RunTable(DataTable[Any]):
    """The runs, with Enter shown in the footer as what it does here."""

    BINDINGS = [Binding("enter", "select_cursor", "Open")]


class HistoryScreen(ReportsWorkerErrors, Screen[None]):
    """Lists runs; the filter bar narrows them, Enter opens one, ``r`` runs it again."""

    CSS_PATH = "history.tcss"
    HELP = HISTORY_HELP
    BINDINGS = [
        Binding("slash", "filter", "Filter"),
        Binding("r", "rerun", "Re-run"),
        Binding("ctrl+r", "refresh", "Refresh"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("q", "app.quit", "Quit", show=False),  # ^q Quit is in the bar already
    ]
    COLUMNS = (("when", 20), ("status", 11), ("prompt", 18), ("model", 16), ("TTFT", 7),
               ("out", 5), ("cost", 7), ("cache", 5))

    app: WorkbenchApp

    def __init__(self) -> None:
        super().__init__()
        self._runs: dict[str, RunInfo] = {}
        self._refs: dict[str, str] = {}
        self._filters: dict[str, Any] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="filter (/): prompt:NAME version:NAME@N model:M label:L "
                    "status:S since:YYYY-MM-DD", id="filter")
        yield RunTable(id="runs", cursor_type="row", zebra_stripes=True)
        yield Static("loading...", id="status", classes="hint")
        yield KeyBar()

    def on_mount(self) -> None:
        table = self.query_one("#runs", DataTable)
        for label, width in self.COLUMNS:  # fixed widths: columns stay put as rows arrive
            table.add_column(label, width=width)
        table.add_column("output")
        table.focus()

    def on_screen_resume(self) -> None:
        """Fresh on every visit: runs made elsewhere (or just re-run) show up."""
        self.load_runs()

    def action_refresh(self) -> None:
        self.load_runs()

    def action_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_clear_filter(self) -> None:
        self.query_one("#filter", Input).value = ""
        self._apply_filter()

    def action_help(self) -> None:
        if self.query("HelpPanel"):
            self.app.action_hide_help_panel()
        else:
            self.app.action_show_help_panel()

    @on(Input.Submitted, "#filter")
    def _apply_filter(self) -> None:
        try:
            self._filters = parse_filter(self.query_one("#filter", Input).value)
        except ValueError as exc:
            self._show_error(exc)
            return
        self.query_one("#runs", DataTable).focus()
        self.load_runs()

    @work(thread=True, exclusive=True, group="history", exit_on_error=False)
    def load_runs(self) -> None:
        """Query the runs off the UI thread."""
        from workbench.storage import runs

        filters = dict(self._filters)
        try:
            store = self.app.store()
            found = runs.query_runs(store, **filters, limit=LIMIT)
            ids = (r.prompt_version_id for r in found if r.prompt_version_id)
            refs = runs.version_refs(store, ids)
        except Exception as exc:  # shown to the user; the app keeps running
            self.app.call_from_thread(self._show_error, exc)
            return
        self.app.call_from_thread(self._show_runs, found, refs, filters)

    def _ref(self, run: RunInfo) -> str:
        vid = run.prompt_version_id
        return "inline" if vid is None else self._refs.get(vid, vid[:12])

    def _show_runs(self, found: list[RunInfo], refs: dict[str, str], filters: dict) -> None:
        table = self.query_one("#runs", DataTable)
        selected = self._selected()
        self._runs, self._refs = {r.id: r for r in found}, refs
        table.clear()
        for run in found:
            cached = "hit" if run.cached_from else ""
            table.add_row(when(run.created_at), run.status, plain(self._ref(run)),
                          plain(run.model), *_figures(run), cached, _first_line(run), key=run.id)
        if selected is not None and selected.id in self._runs:
            table.move_cursor(row=table.get_row_index(selected.id))
        count = f"{len(found)} run" + ("s" if len(found) != 1 else "")
        count = f"the newest {LIMIT} runs" if len(found) == LIMIT else count
        if found:
            note = f"{count}, newest first" + ("  ·  filtered" if filters else "")
        elif filters:
            note = "no run matches the filter (Esc clears it)"
        else:
            note = "no runs yet: run a prompt (`workbench run`) or an eval, and they show here"
        self._say(note)

    def _say(self, note: str, error: bool = False) -> None:
        say(self.query_one("#status", Static), note, error)

    def _show_error(self, exc: Exception) -> None:
        self._say(f"error: {exc}", error=True)  # the app keeps running

    def _selected(self) -> RunInfo | None:
        table = self.query_one("#runs", DataTable)
        if table.row_count == 0:
            return None
        return self._runs.get(table.ordered_rows[table.cursor_row].key.value or "")

    @on(DataTable.RowSelected, "#runs")
    def _row_selected(self) -> None:  # Enter on the table, or a click on the selected row
        self._open(rerun=False)

    def action_rerun(self) -> None:
        self._open(rerun=True)

    def _open(self, rerun: bool) -> None:
        run = self._selected()
        if run is None:
            self._say("no run selected", error=True)
            return
        self.app.push_screen(RunScreen(run, self._ref(run), self.load_runs, rerun=rerun))
