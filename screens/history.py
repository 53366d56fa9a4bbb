"""The run history: every run, newest first, filtered in SQL; open one whole or run it again."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Header, Input, Static, TextArea

from workbench.output import inert, when
from workbench.screens.prompts import plain

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


def _say(status: Static, note: str, error: bool) -> None:
    """A status line: a note, or an error in the error colour."""
    status.update(plain(note))
    status.set_class(error, "error-message")


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


class HistoryScreen(Screen[None]):
    """Lists runs; the filter bar narrows them, Enter opens one, ``r`` runs it again."""

    CSS_PATH = "history.tcss"
    HELP = HISTORY_HELP
    BINDINGS = [
        Binding("slash", "filter", "Filter"),
        Binding("r", "rerun", "Re-run"),
        Binding("ctrl+r", "refresh", "Refresh"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("q", "app.quit", "Quit"),
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
        yield Footer()

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
        _say(self.query_one("#status", Static), note, error)

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


def _facts(run: RunInfo, ref: str) -> Text:
    """Everything known about a run but its messages and output, inert."""
    rows: list[tuple[str, str]] = [
        ("run", run.id), ("status", run.status), ("started", when(run.created_at)),
        ("finished", when(run.finished_at) if run.finished_at else "—"),
        ("prompt", ref), ("model", run.model), ("backend", run.backend),
    ]
    if run.experiment_id:
        rows.append(("experiment", f"{run.experiment_id} cell {run.cell or '?'}"))
    if run.cached_from:
        rows.append(("cached from", f"{run.cached_from} (no model was called)"))
    rows += [(k, _metric(k, v)) for k, v in run.metrics.items()]
    for name, data in (("params", run.params), ("variables", run.variables),
                       ("model info", run.model_info)):
        rows.append((name, json.dumps(data, ensure_ascii=False, default=str)))
    if run.template is not None:
        rows.append(("template", json.dumps(run.template, ensure_ascii=False, default=str)))
    text = Text()
    for key, value in rows:
        text.append(f"{key:<17}", style="bold")
        text.append(inert(value) + "\n")
    return text


def _metric(name: str, value: Any) -> str:
    if value is None:
        return "—"
    if name == "cost_usd":
        return f"${value:.6f}"
    if isinstance(value, float):
        return f"{value:,.2f}" + (" ms" if name.endswith("_ms") else "")
    return str(value)


def _messages(messages: list[dict[str, Any]]) -> Text:
    text = Text()
    text.append("messages\n", style="bold underline")
    for message in messages:
        text.append(inert(str(message.get("role", "?"))) + "\n", style="bold reverse")
        text.append(inert(str(message.get("content", ""))) + "\n\n")
    return text


class RunScreen(Screen[None]):
    """One run whole: messages, output, error, figures, model. ``r`` runs it again."""

    CSS_PATH = "history.tcss"
    BINDINGS = [Binding("escape", "app.pop_screen", "Back"), Binding("r", "rerun", "Re-run")]

    app: WorkbenchApp

    def __init__(self, run: RunInfo, ref: str, on_recorded: Callable[[], object],
                 *, rerun: bool = False) -> None:
        super().__init__()
        self.run, self.ref = run, ref
        self._on_recorded = on_recorded
        self._rerun_at_start = rerun
        self._pending: list[str] = []
        self._flush_timer: Timer | None = None
        self._busy = False

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="run-body"):
            with VerticalScroll(id="run-info"):
                yield Static(id="facts")
                yield Static(id="messages")
            with Vertical(id="run-result"):
                yield Static(id="error", classes="error-message")
                yield TextArea(id="output", read_only=True, soft_wrap=True)
        yield Static("", id="run-status", classes="hint")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#run-info").border_title = "run"
        self.query_one("#output").border_title = "output"
        self._show(self.run)
        self.query_one("#output", TextArea).focus()
        if self._rerun_at_start:
            self.action_rerun()

    def _show(self, run: RunInfo) -> None:
        self.run = run
        self.sub_title = f"run {run.id}"
        self.query_one("#facts", Static).update(_facts(run, self.ref))
        self.query_one("#messages", Static).update(_messages(run.messages))
        error = self.query_one("#error", Static)
        error.update(plain(run.error or ""))
        error.display = bool(run.error)
        self.query_one("#output", TextArea).load_text(inert(run.output))

    def _say(self, note: str, error: bool = False) -> None:
        _say(self.query_one("#run-status", Static), note, error)

    def action_rerun(self) -> None:
        if self._busy:
            self._say("a re-run is already on its way")
            return
        self.rerun()

    @work(exclusive=True, group="rerun", exit_on_error=False)
    async def rerun(self) -> None:
        """Call the run's model again with its messages and parameters; stream the answer."""
        from workbench.models import resolve_model
        from workbench.storage.runs import get_run

        run = self.run
        try:
            spec = resolve_model(self.app.settings, run.model)
        except Exception as exc:
            self._say(f"cannot re-run: model {run.model!r} cannot be used any more: {exc}", True)
            return
        # Exactly the parameters the run sent, not the model's current defaults.
        spec = dataclasses.replace(spec, params={})
        self._busy = True
        self.query_one("#output", TextArea).load_text("")
        self.query_one("#error", Static).display = False
        self._say(f"re-running on {run.model}...")
        try:
            engine = await asyncio.to_thread(self.app.engine)  # may open the store
            result = await engine.run(
                spec, run.messages, run.params, prompt_version_id=run.prompt_version_id,
                template=run.template, variables=run.variables, on_chunk=self._chunk,
            )
            self._flush()
            new = await asyncio.to_thread(get_run, engine.store, result.run_id)
        except Exception as exc:  # shown to the user; the app keeps running
            self._say(f"re-run failed: {exc}", error=True)
            return
        finally:
            self._busy = False
            self._on_recorded()  # the list shows the new run (a cancelled one too)
        self._show(new)
        self._say(f"re-run of {run.id} recorded: {new.status}", error=new.status != "ok")

    def _chunk(self, text: str) -> None:
        # Chunks are appended in batches: one edit per frame, not one per token.
        self._pending.append(text)
        if self._flush_timer is None:
            self._flush_timer = self.set_timer(1 / 30, self._flush)

    def _flush(self) -> None:
        if self._flush_timer is not None:
            self._flush_timer.stop()
            self._flush_timer = None
        if self._pending:
            output = self.query_one("#output", TextArea)
            output.insert(inert("".join(self._pending)), output.document.end)
            self._pending.clear()
            output.scroll_end(animate=False)
