"""Compare: run the editor's variants side by side, on one input or over a dataset.

One input: a pane per variant x model streams its answer with live TTFT, TPOT, tokens/s,
tokens and cost, and a sparkline of the token rate. A dataset: a progress bar, then a grid
of cases x variants with pass/fail from the dataset's checks and the summary table; Enter
on a cell shows its output and figures. Esc cancels (the runs are recorded as cancelled);
a failed pane shows its error and the others go on. `v` reviews the grid's outputs by hand
(screens/review.py), `j` has a judge model score them (screens/judging.py).

Text is appended to each pane in batches a few times a second (a read-only TextArea:
appending does not re-render what is already there), so fast streams stay cheap.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, HorizontalScroll, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Header, ProgressBar, Sparkline, Static

from workbench.output import inert
from workbench.screens.dialogs import Pick, Show
from workbench.screens.judging import GridJudging, judge_verdict
from workbench.screens.keybar import KeyBar
from workbench.screens.streamview import StreamView
from workbench.screens.worker_errors import ReportsWorkerErrors

if TYPE_CHECKING:
    from workbench.experiment import Cell, Event
    from workbench.screens.app import WorkbenchApp

TICK_S = 0.04
"""How often one pane's streamed text reaches the screen: 25 frames a second, each
repainting one pane (a pane that scrolls repaints every visible line)."""
RATE_BUCKET_S = 0.25


class StreamPane(Vertical):
    """One variant x model: its streamed text, live figures and token-rate sparkline."""

    def __init__(self, title: str, clock: Any = time.perf_counter,
                 retrieval: list[dict[str, Any]] | None = None):
        super().__init__(classes="pane")
        self.title_text = title
        self.clock = clock
        self.retrieval = retrieval or []
        """What retrieval gave this output (shown under its title)."""
        self.pending: list[str] = []
        self.started_at: float | None = None
        self.first_at: float | None = None
        self.chunks = 0
        self.last_at: float | None = None
        self.buckets: list[float] = [0.0]
        self.final: str | None = None
        self._rate_shown = 0
        """Closed rate buckets on the sparkline (not ``_closed``: Textual's pumps use that)."""

    def compose(self) -> ComposeResult:
        yield Static(Text(inert(self.title_text), style="bold"), classes="pane-title")
        if self.retrieval:
            from workbench.retrieval import brief

            flagged = any(h["flags"] for item in self.retrieval for h in item["hits"])
            yield Static(Text(inert(brief(self.retrieval))),
                         classes="chunks hint" + (" error-message" if flagged else ""))
        yield StreamView(classes="stream")
        yield Sparkline([0.0], classes="rate")
        yield Static("waiting", classes="figures hint")

    def start(self) -> None:
        self.started_at = self.clock()

    def add(self, text: str) -> None:
        now = self.clock()
        if self.first_at is None:
            self.first_at = now
        self.last_at = now
        self.chunks += 1
        if self.started_at is not None:
            bucket = int((now - self.started_at) / RATE_BUCKET_S)
            while len(self.buckets) <= bucket:
                self.buckets.append(0.0)
            self.buckets[bucket] += 1 / RATE_BUCKET_S
        self.pending.append(text)

    def flush(self) -> None:
        if not self.pending:
            return
        text, self.pending = inert("".join(self.pending)), []
        self.query_one(".stream", StreamView).append(text)
        if len(self.buckets) - 1 != self._rate_shown:  # a rate bucket closed: 4 times a second
            self._rate_shown = len(self.buckets) - 1
            self.query_one(".rate", Sparkline).data = self.buckets[:-1] or [0.0]
        if self.final is None:  # one line, always: no layout pass needed
            self.query_one(".figures", Static).update(Text(self._live()), layout=False)

    def _live(self) -> str:
        if self.started_at is None or self.first_at is None:
            return "waiting for the first token"
        ttft = (self.first_at - self.started_at) * 1000
        # From chunk times only: reading the clock here would make the figures depend on
        # how often the screen refreshed.
        elapsed = (self.last_at or self.first_at) - self.first_at
        rate = (self.chunks - 1) / elapsed if elapsed > 0 and self.chunks > 1 else 0.0
        return f"ttft {ttft:.0f} ms · {rate:.1f} tok/s · {self.chunks} chunks · streaming"

    def finish(self, result: Any) -> None:
        self.flush()
        self.query_one(".rate", Sparkline).data = list(self.buckets)  # the last bucket too
        m = result.metrics

        def num(value: float | None, fmt: str, unit: str) -> str:
            return f"{value:{fmt}}{unit}" if value is not None else "?"

        cost = f"${m.cost_usd:.5f}" if m.cost_usd is not None else "cost unknown"
        self.final = (
            f"{result.status} · ttft {num(m.ttft_ms, '.0f', ' ms')} · tpot "
            f"{num(m.tpot_ms, '.1f', ' ms')} · {num(m.tokens_per_s, '.1f', ' tok/s')} · "
            f"{m.input_tokens if m.input_tokens is not None else '?'} in / "
            f"{m.output_tokens if m.output_tokens is not None else '?'} out · {cost}"
        )
        figures = self.query_one(".figures", Static)
        figures.update(Text(inert(self.final)))
        if result.status != "ok":
            figures.update(Text(inert(f"{self.final}\n{result.error}")))
            figures.set_class(True, "error-message")


class CompareScreen(GridJudging, ReportsWorkerErrors, Screen[None]):
    """Variants x models, streamed side by side, or graded over a dataset."""

    CSS_PATH = "compare.tcss"
    BINDINGS = [
        Binding("ctrl+r", "run_single", "Run"),
        Binding("ctrl+g", "run_dataset", "Run dataset"),
        Binding("escape", "cancel", "Cancel"),
        Binding("v", "review", "Review"),
        Binding("j", "judge", "Judge"),
    ]

    app: WorkbenchApp

    def __init__(self) -> None:
        super().__init__()
        self.panes: dict[str, StreamPane] = {}
        self.report: Any = None
        self.reviewed = None
        self.judgement = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield HorizontalScroll(id="panes")
        with Vertical(id="grid-box"):
            yield ProgressBar(id="progress", show_eta=False)
            with Horizontal(id="grid-row"):
                yield DataTable(id="grid", cursor_type="cell")
                yield DataTable(id="summary", cursor_type="row")
            with VerticalScroll(id="judge-box"):
                yield Static("", id="judge-summary")
        yield Static("Ctrl+R runs the editor's variants on their variable values; "
                     "Ctrl+G over a dataset", id="status", classes="hint")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#grid-box").display = False
        self.query_one("#judge-box").display = False
        self._turn = 0
        self.set_interval(TICK_S, self._flush)

    def _flush(self) -> None:
        # One pane per tick, the next in turn with text waiting: a frame then repaints one
        # pane, not all of them, so a key press never waits behind all of them, and the
        # event loop (the streams' loop too) is left free most of the time.
        panes = list(self.panes.values())
        for step in range(1, len(panes) + 1):
            turn = (self._turn + step) % len(panes)
            if panes[turn].pending:
                self._turn = turn
                panes[turn].flush()
                return

    def status(self, text: str, error: bool = False) -> None:
        line = self.query_one("#status", Static)
        line.update(Text(inert(text)))
        line.set_class(error, "error-message")

    # --- building the experiment --------------------------------------------------------

    def _variants_and_models(self) -> tuple[list[Any], list[Any]] | None:
        from workbench.experiment import Variant
        from workbench.models import resolve_model

        drafts = self.app.workspace.variants
        if not drafts:
            self.status("no variants: write them in the editor (F2) first", error=True)
            return None
        variants, models, seen = [], [], set()
        for draft in drafts:
            try:
                content = draft.content()
            except Exception as exc:
                self.status(f"{draft.name}: {exc}", error=True)
                return None
            params = content.params.model_dump(exclude_none=True, exclude={"model"})
            try:
                from workbench.retrieval import parse_bindings

                bindings = parse_bindings(draft.retrieval or None, draft.name)
            except Exception as exc:
                self.status(str(exc), error=True)
                return None
            variants.append(Variant(draft.name, content.messages, {}, params,
                                    draft.base_version_id if not draft.unsaved else None,
                                    draft.name, bindings))
            if draft.model not in seen:
                seen.add(draft.model)
                try:
                    models.append(resolve_model(self.app.settings, draft.model))
                except Exception as exc:
                    self.status(f"{draft.name}: model {draft.model}: {exc}", error=True)
                    return None
        return variants, models

    # --- one input ----------------------------------------------------------------------

    def action_run_single(self) -> None:
        self.run_single()

    def run_single(self) -> None:
        found = self._variants_and_models()
        if found is None:
            return
        variants, models = found
        values = [dict(draft.values) for draft in self.app.workspace.variants]
        if any(v.retrieval for v in variants):
            self.status("retrieving context for the variants that bind variables to an index...")
        self._run_single(variants, models, values)

    def _plan_single(self, variants: list[Any], models: list[Any],
                     values: list[dict[str, Any]]) -> list[Cell]:
        """Each variant on its own values (retrieving first where it binds variables)."""
        from workbench.experiment import plan
        from workbench.retrieval import retriever_for

        with retriever_for(variants, self.app.settings) as retriever:
            cells: list[Cell] = []
            for variant, case in zip(variants, values, strict=True):
                cells += plan([variant], models, [case], retriever=retriever)
            return cells

    @staticmethod
    def _key(cell: Cell) -> str:
        return f"{cell.variant.label}\x00{cell.model.name}"

    @work(exclusive=True, group="compare", exit_on_error=False)
    async def _run_single(self, variants: list[Any], models: list[Any],
                          values: list[dict[str, Any]]) -> None:
        import asyncio

        try:  # off the event loop: retrieval embeds queries and searches indexes
            cells = await asyncio.to_thread(self._plan_single, variants, models, values)
        except Exception as exc:  # a template, a missing variable, an index, an embedder
            self.status(str(exc), error=True)
            return
        self.query_one("#grid-box").display = False
        box = self.query_one("#panes", HorizontalScroll)
        box.display = True
        await box.remove_children()
        self.panes = {self._key(c): StreamPane(f"{c.variant.label} · {c.model.name}", self.app.clock,
                                               [r.as_dict() for r in c.retrieved])
                      for c in cells}
        await box.mount_all(self.panes.values())
        self.status(f"running {len(cells)} streams · Esc cancels")
        await self._run_cells(cells)

    async def _run_cells(self, cells: Sequence[Cell]) -> None:
        import asyncio

        from workbench.experiment import run_cells

        def on_event(event: Event) -> None:
            pane = self.panes.get(self._key(event.cell))
            if pane is None:
                return
            if event.kind == "started":
                pane.start()
            elif event.kind == "chunk":
                pane.add(event.text)
            elif event.result is not None:
                pane.finish(event.result)

        try:
            engine = await asyncio.to_thread(self.app.engine)
            results = await run_cells(engine, cells, on_event=on_event)
        except asyncio.CancelledError:
            self.status("cancelled: the runs are recorded as cancelled")
            raise
        except Exception as exc:
            self.status(f"cannot run: {exc}", error=True)
            return
        failed = sum(r.status != "ok" for r in results)
        self.status(f"done: {len(results) - failed} ok, {failed} failed · runs are in History (F4)")

    def action_cancel(self) -> None:
        for worker in self.workers:
            if worker.group in ("compare", "judge") and worker.is_running:
                worker.cancel()

    # --- a dataset ----------------------------------------------------------------------

    def action_run_dataset(self) -> None:
        self._choose_dataset()

    @work(thread=True, exit_on_error=False)
    def _choose_dataset(self) -> None:
        from workbench.storage.datasets import list_datasets

        try:
            names = [d.name for d in list_datasets(self.app.store())]
        except Exception as exc:
            self.app.call_from_thread(self.status, f"cannot list datasets: {exc}", True)
            return
        if not names:
            self.app.call_from_thread(
                self.status, "no datasets: import one with `workbench datasets import FILE --name NAME`",
                True)
            return

        def chosen(name: str | None) -> None:
            if name:
                self.app.workspace.dataset = name
                self.run_dataset(name)

        self.app.call_from_thread(self.app.push_screen, Pick("Run over which dataset?", names), chosen)

    def run_dataset(self, name: str) -> None:
        found = self._variants_and_models()
        if found is None:
            return
        self.query_one("#panes").display = False
        self.query_one("#grid-box").display = True
        self._run_dataset(name, *found)

    @work(exclusive=True, group="compare", exit_on_error=False)
    async def _run_dataset(self, name: str, variants: list[Any], models: list[Any]) -> None:
        import asyncio

        from workbench.evaluate import Evaluation
        from workbench.storage.datasets import get_dataset
        from workbench.suite import Suite, TestCase, expected_checks, fingerprint, model_identity

        try:
            engine = await asyncio.to_thread(self.app.engine)
            dataset = await asyncio.to_thread(get_dataset, engine.store, name)
            cases = tuple(
                TestCase(dict(c.vars), tuple(expected_checks(c.expected, f"{name}: case {i + 1}")),
                         where=f"{name}: case {i + 1}")
                for i, c in enumerate(dataset.cases)
            )
            suite = Suite(
                source=f"app: dataset {name}", description=f"{len(variants)} variants on {name}",
                variants=tuple(variants), models=tuple(models), cases=cases,
                fingerprint=fingerprint([[v.label, [m.model_dump() for m in v.messages], v.params]
                                         for v in variants] + [model_identity(m) for m in models]
                                        + [[c.vars] for c in cases]),
            )
            evaluation = Evaluation(engine, suite)
            cells = await asyncio.to_thread(evaluation.prepare)  # retrieval embeds queries
        except Exception as exc:
            self.status(f"cannot run {name}: {exc}", error=True)
            return
        self._grid_start(suite, len(cells))
        progress = self.query_one("#progress", ProgressBar)

        def on_event(event: Event) -> None:
            if event.kind in ("finished", "failed", "cached"):
                progress.advance(1)

        evaluation.on_event = on_event
        try:
            report = await evaluation.run()
        except asyncio.CancelledError:
            self.status("cancelled: finished runs are kept; run again to complete")
            raise
        except Exception as exc:
            self.status(f"cannot run {name}: {exc}", error=True)
            return
        self._grid_show(report)

    def _grid_start(self, suite: Any, total: int) -> None:
        grid = self.query_one("#grid", DataTable)
        grid.clear(columns=True)
        grid.add_column("case", width=6, key="case")
        for v in suite.variants:
            for m in suite.models:
                grid.add_column(Text(inert(f"{v.label} · {m.name}")), width=18, key=f"{v.label}\x00{m.name}")
        for i in range(len(suite.cases)):
            grid.add_row(str(i), *["…"] * (len(suite.variants) * len(suite.models)), key=str(i))
        self.query_one("#progress", ProgressBar).update(total=total, progress=0)
        self.status(f"running {total} calls over {suite.source.removeprefix('app: ')} · Esc cancels")

    def _grid_show(self, report: Any) -> None:
        self.report, self.judgement = report, None
        self.query_one("#judge-box").display = False
        self._paint_cells(report.rows)
        summary = self.query_one("#summary", DataTable)
        summary.clear(columns=True)
        summary.add_columns("variant", "model", "pass", "ttft p50", "cost")
        for s in report.summaries:
            cost = f"${s.cost_usd:.4f}" if s.cost_usd is not None else "unknown"
            summary.add_row(Text(inert(s.variant)), Text(inert(s.model)),
                            f"{s.passed}/{s.cases}", f"{s.ttft_p50_ms:.0f}" if s.ttft_p50_ms else "-",
                            cost)
        sentences = " ".join(c.sentence() for c in report.comparisons)
        self.status(sentences or "done")
        grid = self.query_one("#grid", DataTable)
        grid.focus()
        grid.move_cursor(row=0, column=1)

    @on(DataTable.CellSelected, "#grid")
    def _open_cell(self, event: DataTable.CellSelected) -> None:
        """Enter (or a click) on a grid cell: its output, verdict and figures."""
        if self.report is None:
            return
        row_key, column_key = event.cell_key.row_key, event.cell_key.column_key
        if column_key.value == "case":  # the case number: its first variant's cell
            column_key = list(self.query_one("#grid", DataTable).columns)[1]
        for row in self.report.rows:
            if str(row.test_idx) == row_key.value and f"{row.variant}\x00{row.model}" == column_key.value:
                figures = ", ".join(f"{k} {v}" for k, v in row.metrics.items() if v is not None)
                verdict = "pass" if row.passed else f"fail: {row.reason}"
                retrieved = ""
                if row.retrieval:
                    from workbench.retrieval import describe

                    retrieved = f"\n\nretrieved:\n{describe(row.retrieval, text_chars=400)}"
                judged = f"\n\n{judge_verdict(row)}" if row.judge else ""
                self.app.push_screen(Show(
                    f"{row.variant} · {row.model} · case {row.test_idx}",
                    f"{verdict}\n\nvariables: {row.vars}\n\n{row.output}\n\n{figures}{retrieved}"
                    + judged))
                return

    # --- human review -----------------------------------------------------------------

    def action_review(self) -> None:
        if self.report is None:
            self.status("run a dataset first (Ctrl+G), then review its outputs", error=True)
            return
        self._choose_rubric()

    @work(thread=True, exit_on_error=False)
    def _choose_rubric(self) -> None:
        if (found := self._rubric_choices()) is None:
            return

        def chosen(ref: str | None) -> None:
            if ref:
                from workbench.screens.review import ReviewScreen

                self.reviewed = found[ref]
                judge = self.judgement[0] if self.judgement and \
                    self.judgement[1].id == found[ref].id else None
                self.app.push_screen(ReviewScreen(self.report.rows, found[ref], blind=True,
                                                  seed=int(self.report.experiment_id[:8], 16),
                                                  judge=judge))

        self.app.call_from_thread(self.app.push_screen,
                                  Pick("Review with which rubric? (blind)", list(found)), chosen)
