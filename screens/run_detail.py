"""One run whole: its messages, output, error, figures and model; run it again from here."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Header, Static, TextArea

from workbench.output import inert, when
from workbench.screens.keybar import KeyBar
from workbench.screens.prompts import plain
from workbench.screens.worker_errors import ReportsWorkerErrors

if TYPE_CHECKING:
    from workbench.screens.app import WorkbenchApp
    from workbench.storage.runs import RunInfo


def say(status: Static, note: str, error: bool) -> None:
    """A status line: a note, or an error in the error colour."""
    status.update(plain(note))
    status.set_class(error, "error-message")


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


class RunScreen(ReportsWorkerErrors, Screen[None]):
    """One run whole: messages, output, error, figures, model. ``r`` runs it again."""

    CSS_PATH = "run_detail.tcss"
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
                yield Static(id="retrieval")
            with Vertical(id="run-result"):
                yield Static(id="error", classes="error-message")
                yield TextArea(id="output", read_only=True, soft_wrap=True)
        yield Static("", id="run-status", classes="hint")
        yield KeyBar()

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
        retrieved = self.query_one("#retrieval", Static)
        retrieved.display = bool(run.retrieval)
        if run.retrieval:
            from workbench.retrieval import describe

            heading = Text("retrieved\n", style="bold underline")
            retrieved.update(heading + Text(inert(describe(run.retrieval, text_chars=400))))
        error = self.query_one("#error", Static)
        error.update(plain(run.error or ""))
        error.display = bool(run.error)
        self.query_one("#output", TextArea).load_text(inert(run.output))

    def _say(self, note: str, error: bool = False) -> None:
        say(self.query_one("#run-status", Static), note, error)

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
