"""Judging a Compare grid: a judge model scores every output of the grid on a stored rubric.

`j` asks for the judge (any model the Models screen lists) and the rubric (the one the grid
was reviewed with comes first), then judges every successful output with ``workbench
eval``'s code (:func:`workbench.judge.judge_rows`): recorded as eval records them,
grammar-constrained on llama.cpp, a JSON Schema on hosted models, and an answer that
cannot be used kept as a judge error with its raw text, never as a score. The status line
counts the verdicts; Esc cancels (the judgements made so far stay recorded). The panel
under the grid then shows the judge's scores per variant and criterion with their
intervals, the paired comparisons and the judge's own calls, as ``workbench eval`` prints
them (:func:`workbench.report.judge_lines`); each cell shows the judge's weighted score.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from workbench.output import inert
from workbench.screens.dialogs import Pick

if TYPE_CHECKING:
    from textual.screen import Screen

    from workbench.report import Row
    from workbench.screens.app import WorkbenchApp
    from workbench.storage.rubrics import RubricInfo

    _Host = Screen[None]
else:
    _Host = object


def cell_text(row: Row) -> str:
    """A grid cell: pass or fail (or why it did not run), and once judged the judge's
    weighted score (0..1) or its error."""
    mark = "✓ pass" if row.passed else ("✗ " + row.status if row.status != "ok" else "✗ fail")
    mark += " (cached)" if row.cached else ""
    verdict = row.judge
    if verdict and verdict.get("scores") is None:
        mark += " · J error"
    elif verdict and verdict.get("weighted") is not None:
        mark += f" · J {verdict['weighted']:.2f}"
    return mark


def judge_verdict(row: Row) -> str:
    """The judge's verdict on one output, for its cell's detail view."""
    verdict = row.judge
    if not verdict:
        return ""
    who = f"judge {verdict.get('model')}"
    if verdict.get("scores") is None:
        error = verdict.get("error") or {}
        return f"{who}: error: {error.get('message', '')}\nraw answer: {error.get('raw', '')}"
    scores = ", ".join(f"{k} {v}" for k, v in verdict["scores"].items())
    weighted = verdict.get("weighted")
    return (f"{who}: {scores}" + ("" if weighted is None else f" (weighted {weighted:.2f})")
            + (f": {verdict.get('reason')}" if verdict.get("reason") else ""))


def judge_summary(model: str, rubric: RubricInfo, rows: Sequence[Row]) -> str:
    """What the judge found over the grid: the same figures and text as ``workbench eval``
    (scores with bootstrap intervals, each variant against the first, the judge's calls)."""
    from workbench.report import compare_columns, comparison_pairs, judge_figures, judge_lines, score_summary

    _heading, pairs = comparison_pairs(list(rows))  # each variant against the first
    comparisons = compare_columns(rows, pairs)
    lines = [f"Judge {model} on {rubric.ref}: the judge's scores, apart from reviewers'"]
    lines += judge_lines(score_summary(rubric.rubric, rows), comparisons, judge_figures(rows))
    return "\n".join(lines)


class GridJudging(_Host):
    """Compare's judging (a mixin: the screen has the grid's ``report``, a ``status``
    line, a ``#grid`` table and a ``#judge-summary`` panel)."""

    app: WorkbenchApp
    report: Any
    reviewed: RubricInfo | None
    """The rubric the grid was last reviewed with (offered first)."""
    judgement: tuple[str, RubricInfo] | None
    """The judge model and rubric the grid's rows were last judged with."""

    if TYPE_CHECKING:  # the screen's own

        def status(self, text: str, error: bool = False) -> None: ...

    def _busy(self, group: str) -> bool:
        return any(w.group == group and w.is_running for w in self.workers)

    def action_judge(self) -> None:
        if self.report is None:
            self.status("run a dataset first (Ctrl+G), then judge its outputs", error=True)
        elif self._busy("compare"):
            self.status("the grid is still running: judge it once it is done", error=True)
        elif self._busy("judge"):
            self.status("already judging · Esc cancels", error=True)
        else:
            self._choose_judge()

    def _rubric_choices(self) -> dict[str, RubricInfo] | None:
        """The stored rubrics by reference (in a worker thread); None, said on the status
        line, when there are none or they cannot be read."""
        from workbench.storage.rubrics import list_rubrics

        try:
            found = {r.ref: r for r in list_rubrics(self.app.store())}
        except Exception as exc:
            self.app.call_from_thread(self.status, f"cannot list rubrics: {exc}", True)
            return None
        if not found:
            self.app.call_from_thread(
                self.status, "no rubrics: store one with `workbench rubrics commit FILE -m MESSAGE`",
                True)
            return None
        return found

    def _paint_cells(self, rows: Sequence[Row]) -> None:
        grid = self.query_one("#grid", DataTable)
        for row in rows:
            grid.update_cell(str(row.test_idx), f"{row.variant}\x00{row.model}", cell_text(row))

    @work(thread=True, exit_on_error=False)
    def _choose_judge(self) -> None:
        from workbench.models import listed_models

        try:
            models = [m.name for m in listed_models(self.app.settings)]
        except Exception as exc:
            self.app.call_from_thread(self.status, f"cannot judge: {exc}", True)
            return
        if (rubrics := self._rubric_choices()) is None:
            return
        options = dict(rubrics)
        if self.reviewed is not None and self.reviewed.ref in rubrics:
            del options[self.reviewed.ref]
            options = {f"{self.reviewed.ref} (this grid's review)": self.reviewed, **options}

        def model_chosen(model: str | None) -> None:
            if model:
                self.app.push_screen(Pick(f"Judge with {model} on which rubric?", list(options)),
                                     lambda ref: rubric_chosen(model, ref))

        def rubric_chosen(model: str, ref: str | None) -> None:
            if ref:
                self._judge_grid(model, options[ref])

        self.app.call_from_thread(self.app.push_screen, Pick("Judge with which model?", models),
                                  model_chosen)

    @work(exclusive=True, group="judge", exit_on_error=False)
    async def _judge_grid(self, model: str, rubric: RubricInfo) -> None:
        import asyncio

        from workbench.judge import judge_rows
        from workbench.models import resolve_model

        report = self.report
        if not rubric.rubric.judged:
            self.status(f"{rubric.ref} has nothing for a judge: every criterion is scored by an "
                        "assertion", error=True)
            return
        total = sum(r.status == "ok" for r in report.rows)
        done, errors = 0, 0

        def on_judged(row: Row) -> None:
            nonlocal done, errors
            done += 1
            errors += (row.judge or {}).get("scores") is None
            self.status(f"judging with {model} on {rubric.ref}: {done} of {total}"
                        + (f", {errors} judge errors" if errors else "") + " · Esc cancels")

        self.status(f"judging {total} outputs with {model} on {rubric.ref} · Esc cancels")
        try:
            spec = resolve_model(self.app.settings, model)
            engine = await asyncio.to_thread(self.app.engine)
            rows = await judge_rows(engine, spec, rubric.rubric, rubric.id, report.rows,
                                    on_judged=on_judged)
        except asyncio.CancelledError:
            self.status(f"judging cancelled after {done} of {total}: "
                        "the judgements made are recorded")
            raise
        except Exception as exc:  # a model that cannot be resolved or built, the store
            self.status(f"cannot judge with {model}: {exc}", error=True)
            return
        if self.report is report:  # not a newer grid meanwhile
            report.rows = rows
            self.judgement = (model, rubric)
            self._show_judgement(model, rubric, rows)

    def _show_judgement(self, model: str, rubric: RubricInfo, rows: list[Row]) -> None:
        self._paint_cells([row for row in rows if row.judge is not None])
        summary = judge_summary(model, rubric, rows)
        self.query_one("#judge-summary", Static).update(Text(inert(summary)))
        box = self.query_one("#judge-box", VerticalScroll)
        box.display = True
        box.scroll_home(animate=False)
        verdicts = [r.judge for r in rows if r.judge is not None]
        failed = [v for v in verdicts if v.get("scores") is None]
        reused = sum(1 for v in verdicts if v.get("reused"))
        text = (f"judged {len(verdicts)} outputs with {model} on {rubric.ref}: "
                f"{len(verdicts) - len(failed)} scored")
        if reused:
            text += f" ({reused} reused from earlier judgements)"
        if failed:
            text += (f", {len(failed)} judge errors (recorded, no score): "
                     f"{(failed[0].get('error') or {}).get('message', '')}")
        self.status(text + " · Enter on a cell shows its verdict", error=bool(failed))
