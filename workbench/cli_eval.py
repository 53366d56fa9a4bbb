"""``workbench eval``: run a suite headless, for people and for CI.

Exit status: 0 when the suite holds (its thresholds, or with none every case passes),
1 when a threshold fails or the candidate is worse than ``--baseline`` by more than the
margin, 2 for a suite or set-up error (nothing was called), 130 when cancelled.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

import click

from workbench.clikit import State, echo_json, pass_state

EXIT_FAILED = 1
EXIT_SETUP = 2
EXIT_CANCELLED = 130
_SHOWN_FAILURES = 20


@click.command("eval")
@click.argument("suite", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--resume", "resume", metavar="ID|last", default=None,
              help="Complete an earlier run of this suite: only its missing cells run.")
@click.option("-j", "--concurrency", type=click.IntRange(1, 256), default=None,
              help="Calls in flight per backend (default: the suite's, else 1 local, 8 hosted).")
@click.option("--no-cache", is_flag=True, help="Call the models even for requests made before.")
@click.option("--output", "-o", "output", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write the results to FILE (.json, .csv or .parquet).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON on stdout.")
@click.option("--baseline", metavar="LABEL", default=None,
              help="Also run each stored prompt's version labelled LABEL and fail when the "
                   "candidate is worse by more than the suite's baseline_margin.")
@click.option("--list", "list_only", is_flag=True, help="List recent experiments and exit.")
@pass_state
def eval_cmd(
    state: State,
    suite: Path | None,
    resume: str | None,
    concurrency: int | None,
    no_cache: bool,
    output: Path | None,
    as_json: bool,
    baseline: str | None,
    list_only: bool,
) -> None:
    """Run SUITE (a Workbench suite or a promptfoo config) and grade every output.

    Exit status: 0 the suite holds, 1 a threshold or the baseline check failed,
    2 the suite or the set-up is wrong (no model was called), 130 cancelled.
    """
    from workbench.errors import WorkbenchError

    if list_only:
        _list(state, as_json)
        return
    if suite is None:
        raise click.UsageError("give a SUITE file (or --list)")
    if output is not None and output.suffix.lower() not in (".json", ".csv", ".parquet"):
        raise click.UsageError("--output FILE must end in .json, .csv or .parquet")
    try:
        evaluation = _prepare(state, suite, resume, concurrency, no_cache, baseline)
    except WorkbenchError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_SETUP)
    progress = _Progress(len(evaluation.cells), enabled=sys.stderr.isatty() and not as_json)
    evaluation.on_event = progress.event
    try:
        report = asyncio.run(_run(state, evaluation))
    except (asyncio.CancelledError, KeyboardInterrupt):
        progress.close()
        experiment = getattr(evaluation, "experiment_id", None)
        hint = f"; finish it with: workbench eval {suite} --resume {experiment}" if experiment else ""
        click.echo(f"cancelled{hint}", err=True)
        sys.exit(EXIT_CANCELLED)
    except WorkbenchError as exc:
        progress.close()
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_SETUP)
    progress.close()
    data = report.as_dict()
    if output is not None:
        try:
            write_results(output, data)
        except OSError as exc:
            click.echo(f"Error: cannot write {output}: {exc.strerror or exc}", err=True)
            sys.exit(EXIT_SETUP)
    if as_json:
        echo_json(data)
    else:
        click.echo(render_report(report))
    sys.exit(0 if report.passed else EXIT_FAILED)


def _prepare(
    state: State, path: Path, resume: str | None, concurrency: int | None, no_cache: bool,
    baseline: str | None,
) -> Any:
    from workbench.engine import Engine
    from workbench.evaluate import Evaluation, with_baseline
    from workbench.suite import load_suite

    loaded = load_suite(path, state.settings, lambda: state.store)
    baselines: dict[str, str] = {}
    if baseline is not None:
        loaded, baselines = with_baseline(loaded, state.store, baseline)
    evaluation = Evaluation(
        Engine(state.settings, state.store),
        loaded,
        use_cache=not no_cache,
        concurrency=concurrency,
        resume=resume,
        baselines=baselines,
    )
    evaluation.prepare()  # renders every cell: a missing variable stops here
    return evaluation


async def _run(state: State, evaluation: Any) -> Any:
    from workbench.storage.runs import mark_interrupted

    await asyncio.to_thread(mark_interrupted, state.store)
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    if task is not None:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, task.cancel)
    try:
        return await evaluation.run()
    finally:
        await evaluation.engine.aclose()


class _Progress:
    """A one-line progress bar on stderr (only on a terminal)."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled = total, enabled
        self.done = self.failed = self.cached = 0
        self.shown = False

    def event(self, event: Any) -> None:
        if event.kind in ("started", "chunk"):
            return
        self.done += 1
        self.failed += event.kind == "failed"
        self.cached += event.kind == "cached"
        if self.enabled and (self.done == self.total or self.done % max(1, self.total // 200) == 0):
            width = 30
            filled = int(width * self.done / max(1, self.total))
            extra = f" · {self.cached} cached" if self.cached else ""
            extra += f" · {self.failed} failed" if self.failed else ""
            sys.stderr.write(
                f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}{extra}"
            )
            sys.stderr.flush()
            self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self.shown = False


def _list(state: State, as_json: bool) -> None:
    from workbench.output import table, when
    from workbench.storage.experiments import list_experiments

    found = list_experiments(state.store)
    if as_json:
        echo_json(found)
        return
    if not found:
        click.echo("no experiments yet: run `workbench eval SUITE`")
        return
    click.echo(
        table(
            [[e.id[:12], when(e.created_at), e.status, str(e.cells), e.source] for e in found],
            ["ID", "STARTED", "STATUS", "CELLS", "SUITE"],
        )
    )


def _ms(value: float | None) -> str:
    return f"{value:.0f}" if value is not None else "-"


def render_report(report: Any) -> str:
    """The summary table, the failing cases, the comparisons and the verdict."""
    from workbench.output import inert, table

    lines = []
    if report.suite.description:
        lines.append(inert(report.suite.description))
    rows = []
    for s in report.summaries:
        cost = f"${s.cost_usd:.4f}" if s.cost_usd is not None else "unknown"
        if s.saved_cost_usd:
            cost += f" (saved ${s.saved_cost_usd:.4f})"
        rows.append([
            s.variant, s.model, f"{s.passed}/{s.cases} ({s.pass_rate:.0%})",
            _ms(s.ttft_p50_ms), _ms(s.ttft_p95_ms),
            f"{s.tpot_p50_ms:.1f}" if s.tpot_p50_ms is not None else "-",
            f"{s.output_tokens:.0f}" if s.output_tokens is not None else "-",
            cost, str(s.cached), str(s.errors),
        ])
    lines.append(table(rows, ["VARIANT", "MODEL", "PASS", "TTFT P50", "TTFT P95", "TPOT P50",
                              "OUT TOK", "COST", "CACHED", "ERRORS"]))
    failing = [r for r in report.rows if not r.passed]
    if failing:
        lines.append("")
        lines.append(f"Failing cases ({len(failing)}):")
        for row in failing[:_SHOWN_FAILURES]:
            repeat = f" repeat {row.repeat + 1}" if report.suite.repeats > 1 else ""
            lines.append(inert(f"  {row.variant} · {row.model} · case {row.test_idx}{repeat}: {row.reason}"))
        if len(failing) > _SHOWN_FAILURES:
            lines.append(f"  ... and {len(failing) - _SHOWN_FAILURES} more (see --output or --json)")
    retrieving = [s for s in report.summaries if s.hit_at_k is not None or s.flagged]
    if retrieving:
        lines.append("")
        lines.append("Retrieval (cases naming expected chunks; calls given a chunk that reads "
                     "like an instruction):")
        lines.append(table(
            [[s.variant, s.model, "-" if s.hit_at_k is None else f"{s.hit_at_k:.2f}",
              "-" if s.mrr is None else f"{s.mrr:.2f}", str(s.flagged)] for s in retrieving],
            ["VARIANT", "MODEL", "HIT@K", "MRR", "FLAGGED"],
        ))
        flagged = [r for r in report.rows if r.flagged_chunks]
        for row in flagged[:_SHOWN_FAILURES]:
            lines.append(inert(f"  {row.variant} · case {row.test_idx}: possible prompt injection in "
                               f"{', '.join(row.flagged_chunks)}"))
    if report.comparisons:
        lines.append("")
        lines.extend(inert(c.sentence()) for c in report.comparisons)
    if report.scores:
        from workbench.report import judge_lines

        lines.append("")
        lines.extend(judge_lines(report.scores, report.score_comparisons, report.judge_summary))
    if report.grader_summary:
        from workbench.report import grader_lines

        lines.append("")
        lines.extend(grader_lines(report.grader_summary))
    lines.append("")
    if report.failures:
        lines.append("FAILED:")
        lines.extend(inert(f"  {f}") for f in report.failures)
    else:
        lines.append("PASSED: every variant x model meets the thresholds.")
    lines.append(f"experiment {report.experiment_id}")
    return "\n".join(lines)


def write_results(path: Path, data: dict[str, Any]) -> None:
    """``.json``: the whole report (``results`` holds the rows); ``.csv``/``.parquet``:
    one row per run, ``vars``, ``judge``, ``retrieval`` and ``expected_chunks`` as JSON
    text."""
    import json

    suffix = path.suffix.lower()
    if suffix == ".json":
        # Compact: json's C encoder only runs without indentation (10x faster at 1,000 rows).
        path.write_text(json.dumps(data, ensure_ascii=False) + "\n", encoding="utf-8")
        return
    import pandas as pd

    nested = ("vars", "judge", "retrieval", "expected_chunks")
    rows = [{**row, **{k: json.dumps(row[k], ensure_ascii=False, sort_keys=True)
                       for k in nested if k in row}}
            for row in data["results"]]
    frame = pd.DataFrame(rows)
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
