"""Human review: score a grid's outputs per criterion with the keyboard.

One output at a time: the case's variables, the output (inert) and the rubric's criteria.
`↑`/`↓` pick a criterion, a digit sets its score (`+`/`-` step it), `→`/`←` move between
outputs, `n` writes a note. Every score is saved at once. In blind mode the variants'
names are hidden and their order is shuffled per case (seeded, so it is stable) until
every output is scored. Each reviewer (the config's `user.name`) keeps their own scores;
once two or more have scored the same outputs, their agreement per criterion is shown
(Krippendorff's alpha: interval for scales, nominal for pass/fail). When the grid has been
judged on the same rubric (`j` in Compare), the summary shows the judge's weighted scores
too, apart from the reviewer's.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static, TextArea

from workbench.output import inert
from workbench.screens.dialogs import Ask
from workbench.screens.keybar import KeyBar
from workbench.screens.worker_errors import ReportsWorkerErrors

if TYPE_CHECKING:
    from workbench.screens.app import WorkbenchApp


def scored_id(row: Any) -> str:
    """The run a score belongs to: a cache hit's scores go to the run that produced the
    answer, so reviewers of a re-run grid score the same outputs."""
    return getattr(row, "source_run_id", None) or row.run_id


def review_order(rows: list[Any], *, blind: bool, seed: int) -> list[Any]:
    """Outputs by case; within a case, by variant, or shuffled (seeded per case) when blind."""
    by_case: dict[tuple[int, int], list[Any]] = {}
    for row in rows:
        if row.status == "ok":
            by_case.setdefault((row.test_idx, row.repeat), []).append(row)
    ordered = []
    for key in sorted(by_case):
        group = list(by_case[key])
        if blind:
            random.Random(f"{seed}:{key[0]}:{key[1]}").shuffle(group)
        ordered.extend(group)
    return ordered


class ReviewScreen(ReportsWorkerErrors, Screen[None]):
    """Scores the outputs of a grid run on a rubric."""

    CSS_PATH = "review.tcss"
    BINDINGS = [
        Binding("right,l", "move(1)", "Next output", priority=True),
        Binding("left,h", "move(-1)", "Previous", priority=True),
        Binding("plus", "step(1)", "+1", show=False),
        Binding("minus", "step(-1)", "-1", show=False),
        Binding("n", "note", "Note"),
        Binding("b", "blind", "Blind on/off"),
        Binding("escape", "app.pop_screen", "Back"),
        *[Binding(str(d), f"score({d})", str(d), show=False) for d in range(10)],
    ]

    app: WorkbenchApp

    def __init__(self, rows: list[Any], rubric: Any, *, blind: bool = True, seed: int = 0,
                 judge: str | None = None):
        super().__init__()
        self.rows, self.rubric_info, self.rubric = rows, rubric, rubric.rubric
        self.judge = judge
        """The model that judged ``rows`` on this rubric (their ``judge`` verdicts), if any."""
        self.blind, self.seed = blind, seed
        self.order = review_order(rows, blind=blind, seed=seed)
        self.position = 0
        self.mine: dict[tuple[str, str], int | None] = {}
        self.notes: dict[tuple[str, str], str] = {}
        self.others: dict[tuple[str, str, str], int | None] = {}

    @property
    def reviewer(self) -> str:
        return self.app.settings.user.name

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="where")
        with Horizontal(id="review-body"):
            with Vertical(id="left"):
                yield Static("", id="vars")
                yield TextArea("", read_only=True, soft_wrap=True, id="output")
            with Vertical(id="right"):
                yield DataTable(id="criteria", cursor_type="row")
                yield Static("", id="note", classes="hint")
                yield Static("", id="summary")
        yield Static("", id="status", classes="hint")
        yield KeyBar()

    def on_mount(self) -> None:
        table = self.query_one("#criteria", DataTable)
        for label, width in (("criterion", 16), ("scale", 9), ("score", 6)):
            table.add_column(label, width=width, key=label)
        table.add_column("what the scores mean", key="meaning")
        for c in self.rubric.judged:
            table.add_row(c.name, c.scale, "", Text(inert(c.description.strip())), key=c.name)
        table.focus()
        self.load_scores()
        self.show()

    # --- data -------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="scores", exit_on_error=False)
    def load_scores(self) -> None:
        from workbench.storage.rubrics import scores_for

        try:
            found = scores_for(self.app.store(), [scored_id(r) for r in self.order], self.rubric_info.id)
        except Exception as exc:
            self.app.call_from_thread(self.status, f"cannot read scores: {exc}", True)
            return

        def apply() -> None:
            for s in found:
                if s.reviewer == self.reviewer:
                    self.mine[(s.run_id, s.criterion)] = s.value
                    self.notes[(s.run_id, s.criterion)] = s.note
                self.others[(s.run_id, s.criterion, s.reviewer)] = s.value
            self.show()

        self.app.call_from_thread(apply)

    @work(thread=True, group="save", exit_on_error=False)
    def save(self, run_id: str, criterion: str, value: int | None, note: str) -> None:
        from workbench.storage.rubrics import set_score

        try:
            set_score(self.app.store(), run_id, self.rubric_info.id, criterion, self.reviewer,
                      value, note)
        except Exception as exc:
            self.app.call_from_thread(self.status, f"score NOT saved: {exc}", True)

    # --- display ----------------------------------------------------------------------

    def current(self) -> Any:
        return self.order[self.position] if self.order else None

    def criterion(self) -> Any:
        table = self.query_one("#criteria", DataTable)
        if not self.rubric.judged:
            return None
        return self.rubric.judged[min(table.cursor_row, len(self.rubric.judged) - 1)]

    def done(self) -> bool:
        return all(
            self.mine.get((scored_id(r), c.name)) is not None for r in self.order for c in self.rubric.judged
        )

    def show(self) -> None:
        row = self.current()
        if row is None:
            self.status("nothing to review: no output of the grid succeeded", True)
            return
        hidden = self.blind and not self.done()
        case_rows = [r for r in self.order if (r.test_idx, r.repeat) == (row.test_idx, row.repeat)]
        slot = case_rows.index(row)
        who = f"output {chr(ord('A') + slot)}" if hidden else f"{row.variant} · {row.model}"
        self.query_one("#where", Static).update(Text(inert(
            f"case {row.test_idx + 1} · {who} · {self.position + 1} of {len(self.order)}"
            + (" · blind" if hidden else ""))))
        self.query_one("#vars", Static).update(Text(inert(
            "  ".join(f"{k}={v}" for k, v in row.vars.items()))))
        self.query_one("#output", TextArea).load_text(inert(row.output))
        table = self.query_one("#criteria", DataTable)
        for c in self.rubric.judged:
            value = self.mine.get((scored_id(row), c.name))
            table.update_cell(c.name, "score", "" if value is None else str(value))
        criterion = self.criterion()
        note = self.notes.get((scored_id(row), criterion.name), "") if criterion else ""
        self.query_one("#note", Static).update(Text(inert(f"note: {note}" if note else "")))
        self.status(self._progress())
        hidden_summary = self.blind and not self.done()
        self.query_one("#summary", Static).update(
            Text("summary shown when the blind review is done") if hidden_summary
            else Text(inert(self.summary())))

    def summary(self) -> str:
        """This reviewer's weighted scores per variant (mean, bootstrap 95% interval), and
        each variant compared with the first on the cases both have scores for: the same
        statistics, and the same weighted score, as ``workbench eval``'s."""
        means, comparisons = self._weighted(self.scored_rows())
        automatic = [c.name for c in self.rubric.criteria if c.automatic]
        if means and automatic:
            means.append(f"(weighted with {', '.join(automatic)}, scored by their assertions)")
        lines = means + comparisons
        judged = [r for r in self.rows if getattr(r, "judge", None)] if self.judge else []
        if judged:
            lines.append(f"judge {self.judge} (not a reviewer; its details are in Compare):")
            means, comparisons = self._weighted(judged)
            lines += means + comparisons
        return "\n".join(lines)

    def _weighted(self, rows: list[Any]) -> tuple[list[str], list[str]]:
        """Weighted scores per column, and the paired comparisons, with eval's code."""
        from workbench.report import compare_columns, comparison_pairs, score_summary

        means = [
            f"{s['variant']} · {s['model']}: {s['mean']:.2f} [{s['ci_low']:.2f}, {s['ci_high']:.2f}] "
            f"over {s['n']} cases"
            for s in score_summary(self.rubric, rows)
            if s["criterion"] == "weighted" and s["n"]
        ]
        heading, pairs = comparison_pairs(self.rows)
        found = compare_columns(rows, pairs)
        return means, ([heading] + [c["sentence"] for c in found] if found else [])

    def scored_rows(self) -> list[Any]:
        """The outputs this reviewer has scored on every criterion, each with a ``judge``
        verdict as ``workbench eval`` makes one: the scores (automatic criteria scored by
        their assertions) and the weighted mean over all criteria."""
        from dataclasses import replace

        from workbench.rubrics import automatic_scorer

        score_automatic = automatic_scorer(self.rubric)
        scored = []
        for row in self.order:
            mine = {c.name: self.mine.get((scored_id(row), c.name)) for c in self.rubric.judged}
            if any(v is None for v in mine.values()):
                continue
            automatic = score_automatic(row.output, getattr(row, "metrics", None))
            scores = {**mine, **automatic}
            scored.append(replace(row, judge={
                "model": self.reviewer, "scores": scores, "automatic": automatic,
                "weighted": self.rubric.weighted(scores)}))  # type: ignore[arg-type]
        return scored

    def _progress(self) -> str:
        total = len(self.order) * len(self.rubric.judged)
        scored = sum(1 for v in self.mine.values() if v is not None)
        text = f"{self.reviewer}: {scored} of {total} scores"
        if self.done() and self.blind:
            text += " · review done: names shown"
        agreement = self.agreement()
        if agreement:
            text += " · agreement (Krippendorff's alpha): " + ", ".join(
                f"{name} {alpha:.2f}" for name, alpha in agreement.items())
        return text

    def agreement(self) -> dict[str, float]:
        """Per criterion, alpha over outputs two or more reviewers scored."""
        import math

        from workbench.agreement import krippendorff_alpha

        reviewers = {key[2] for key in self.others} | {self.reviewer}
        found = {}
        for c in self.rubric.judged:
            units = []
            for row in self.order:
                ratings = [self.mine.get((scored_id(row), c.name)) if who == self.reviewer
                           else self.others.get((scored_id(row), c.name, who)) for who in sorted(reviewers)]
                if sum(v is not None for v in ratings) >= 2:
                    units.append(ratings)
            if len(reviewers) < 2 or not units:
                continue
            level = "nominal" if c.scale == "pass-fail" else "interval"
            try:
                alpha = krippendorff_alpha(units, level=level)
            except ValueError:
                continue
            if not math.isnan(alpha):
                found[c.name] = alpha
        return found

    def status(self, text: str, error: bool = False) -> None:
        line = self.query_one("#status", Static)
        line.update(Text(inert(text)))
        line.set_class(error, "error-message")

    @on(DataTable.RowHighlighted, "#criteria")
    def _criterion_moved(self) -> None:
        if self.is_mounted and self.order:
            self.show()

    # --- actions ----------------------------------------------------------------------

    def action_move(self, step: int) -> None:
        if self.order:
            self.position = max(0, min(len(self.order) - 1, self.position + step))
            self.show()

    def action_score(self, digit: int) -> None:
        self._set(digit)

    def action_step(self, step: int) -> None:
        row, criterion = self.current(), self.criterion()
        if row is None or criterion is None:
            return
        value = self.mine.get((scored_id(row), criterion.name))
        low, high = criterion.bounds
        self._set(max(low, min(high, (value if value is not None else low - step) + step)))

    def _set(self, value: int) -> None:
        row, criterion = self.current(), self.criterion()
        if row is None or criterion is None:
            return
        low, high = criterion.bounds
        if not low <= value <= high:
            self.status(f"{criterion.name} is scored {low} to {high}", True)
            return
        was_done = self.done()
        self.mine[(scored_id(row), criterion.name)] = value
        note = self.notes.get((scored_id(row), criterion.name), "")
        self.save(scored_id(row), criterion.name, value, note)
        if self.done() and not was_done and self.blind:
            self.order = review_order(self.rows, blind=False, seed=self.seed)
            self.position = 0
        self.show()

    def action_note(self) -> None:
        row, criterion = self.current(), self.criterion()
        if row is None or criterion is None:
            return

        def written(text: str | None) -> None:
            if text is None:
                return
            self.notes[(scored_id(row), criterion.name)] = text
            self.save(scored_id(row), criterion.name, self.mine.get((scored_id(row), criterion.name)), text)
            self.show()

        self.app.push_screen(Ask(f"Note on {criterion.name}",
                                 value=self.notes.get((scored_id(row), criterion.name), "")), written)

    def action_blind(self) -> None:
        if self.blind and not self.done():
            self.status("blind until every output is scored", True)
            return
        self.blind = not self.blind
        current = self.current()
        self.order = review_order(self.rows, blind=self.blind and not self.done(), seed=self.seed)
        self.position = self.order.index(current) if current in self.order else 0
        self.show()
