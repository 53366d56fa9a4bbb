"""Running a suite: plan every cell, answer what the cache can, run the rest, grade every
output, and summarise per variant x model with the statistics to compare variants.

The same code drives ``workbench eval`` and the app. The experiment is recorded first;
each run is committed as it finishes (cache hits in one transaction before any model is
called), so a killed evaluation loses no finished run and ``resume`` runs only the cells
without one.

The cache: a cell whose request (the model's identity, the rendered messages, the
parameters and seed) matches an earlier successful run reuses that run's answer and
timings at no cost, and is marked ``cached``. Cells meant to sample are never answered
from the cache: with ``repeats`` above 1, unless the temperature is 0.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from workbench.assertions import Observation
from workbench.engine import Engine
from workbench.errors import ValidationError
from workbench.experiment import Cell, Event, Variant, plan, run_cells
from workbench.report import (  # noqa: F401 - Comparison and Summary: re-exported
    Comparison,
    Report,
    Row,
    Summary,
    compare_pass_rates,
    grader_figures,
    judge_figures,
    score_statistics,
    summarise,
)
from workbench.suite import Suite
from workbench.storage import experiments
from workbench.storage.runs import RunInfo

# --- running ------------------------------------------------------------------------------


def samples(suite: Suite, params: dict[str, Any]) -> bool:
    """Whether a cell is meant to sample (and so bypasses the cache)."""
    return suite.repeats > 1 and params.get("temperature") != 0


@dataclass
class Evaluation:
    """One evaluation of a suite (new, or resuming an experiment).

    Args:
        engine: makes and records the calls.
        suite: what to run.
        use_cache: answer identical requests from earlier runs.
        concurrency: calls in flight per backend (default: the suite's, else the backend's).
        resume: an experiment id, or ``last`` (the newest experiment of this suite: the
            same cells, else the same file): run only its unsettled cells.
        comparisons: pairs of variant labels to compare (default: each against the first).
        baselines: candidate label -> baseline label, for ``--baseline``.
        on_event: progress (started, chunk, finished, failed; ``cached`` for cache hits).
    """

    engine: Engine
    suite: Suite
    use_cache: bool = True
    concurrency: int | None = None
    resume: str | None = None
    comparisons: Sequence[tuple[str, str]] | None = None
    baselines: dict[str, str] = field(default_factory=dict)
    on_event: Callable[[Event], None] | None = None
    cells: list[Cell] = field(default_factory=list)
    experiment_id: str | None = None
    """Set once the experiment is recorded (or found, when resuming)."""
    graded: dict[str, dict[int, tuple[bool, str]]] = field(default_factory=dict, repr=False)
    """Verdicts of model-graded checks by cell key, then ``id(check)``."""
    grader_calls: list[dict[str, Any]] = field(default_factory=list, repr=False)
    """The grader's calls for those checks (variant, model, grader, latency, cost)."""

    def prepare(self) -> list[Cell]:
        """Render every cell, retrieving first for variants that bind variables to an
        index (raises ValidationError naming the case and variant; RagError and
        EmbedderError say what failed)."""
        from workbench.retrieval import retriever_for

        suite = self.suite
        with retriever_for(suite.variants, self.engine.settings, Path(suite.source).parent) as found:
            self.cells = plan(
                suite.variants,
                suite.models,
                [case.vars for case in suite.cases],
                suite.repeats,
                case_names=[case.where or f"case {i}" for i, case in enumerate(suite.cases)],
                retriever=found,
            )
        return self.cells

    async def run(self) -> Report:
        """Run the unsettled cells and grade them all. Cancelling it records what finished
        and re-raises."""
        cells = self.cells or self.prepare()
        store = self.engine.store
        suite = self.suite
        if self.resume == "last":  # this suite's newest experiment, not any suite's
            found = await asyncio.to_thread(
                experiments.last_experiment, store, fingerprint=suite.fingerprint,
                sources=[suite.source, str(Path(suite.source).resolve())],
            )
        elif self.resume:
            found = await asyncio.to_thread(experiments.get_experiment, store, self.resume)
        if self.resume:
            if found.fingerprint != suite.fingerprint:
                raise ValidationError(
                    f"experiment {found.id} ran a different suite (its prompts, models, cases "
                    "or repeats changed since): run it anew without --resume"
                )
            experiment_id = found.id
            settled = await asyncio.to_thread(experiments.settled_cells, store, experiment_id)
        else:
            made = await asyncio.to_thread(
                experiments.start_experiment,
                store,
                source=suite.source,
                description=suite.description,
                fingerprint=suite.fingerprint,
                cells=len(cells),
            )
            experiment_id, settled = made.id, {}
        self.experiment_id = experiment_id
        todo = [cell for cell in cells if cell.key not in settled]
        keys = await asyncio.to_thread(self._cache_keys, todo)
        cached: dict[str, RunInfo] = {}
        saved: dict[str, float | None] = {}
        if self.use_cache and suite.use_cache and keys:
            found_answers = await asyncio.to_thread(experiments.cached_answers, store, keys.values())
            hits = [
                (cell.key, found_answers[keys[cell.key]])
                for cell in todo
                if cell.key in keys and keys[cell.key] in found_answers
            ]
            for hit in await asyncio.to_thread(
                experiments.record_cache_hits, store, experiment_id, hits
            ):
                cached[hit.cell] = replace(
                    hit.source, id=hit.run_id, cached_from=hit.source.id,
                    metrics={**hit.source.metrics, "cost_usd": 0.0,
                             "cost_source": "cache hit: no model was called"},
                )
                saved[hit.cell] = hit.source.metrics.get("cost_usd")
            if self.on_event:
                for cell in todo:
                    if cell.key in cached:
                        self.on_event(Event("cached", cell))
        reused = {key: run.cached_from for key, run in settled.items() if run.cached_from}
        if reused:  # a resumed experiment's cache hits: what their answers cost, in one query
            costs = await asyncio.to_thread(experiments.costs_of, store, reused.values())
            saved.update({key: costs.get(source) for key, source in reused.items()})
        to_run = [cell for cell in todo if cell.key not in cached]
        cancelled = False
        results: dict[str, Any] = {}
        try:
            ran = await run_cells(
                self.engine,
                to_run,
                on_event=self.on_event,
                concurrency=self.concurrency or suite.concurrency,
                experiment_id=experiment_id,
                cache_keys=keys,
                delay_s=suite.delay_ms / 1000,
            )
            results = {cell.key: result for cell, result in zip(to_run, ran, strict=True)}
        except asyncio.CancelledError:
            cancelled = True
        status = "cancelled" if cancelled else "done"
        await asyncio.to_thread(experiments.finish_experiment, store, experiment_id, status)
        if cancelled:
            raise asyncio.CancelledError
        self.graded = await self._grade(cells, settled, cached, results)
        rows = [self._row(cell, settled, cached, saved, results) for cell in cells]
        if suite.judge is not None and suite.rubric is not None:
            rows = await self._judge(rows)
        return self._report(experiment_id, rows)

    async def _grade(
        self, cells: Sequence[Cell], settled: dict[str, RunInfo], cached: dict[str, RunInfo],
        results: dict[str, Any],
    ) -> dict[str, dict[int, tuple[bool, str]]]:
        """Model-graded checks (``llm-rubric``): the grader judges each successful output
        first, so the checks can then run like the others."""
        from workbench.judge import judge
        from workbench.rubrics import graded_checks

        grader = self.suite.grader or self.suite.judge
        self.grader_calls = []
        wanted = []
        for cell in cells:
            checks = graded_checks(self.suite.cases[cell.case_idx].checks)
            if not checks or grader is None:
                continue
            found = results.get(cell.key) or cached.get(cell.key) or settled.get(cell.key)
            if found is None or found.status != "ok":
                continue
            wanted += [(cell, check, found.output) for check in checks]
        if not wanted:
            return {}
        assert grader is not None
        backend = self.engine.backend(grader)
        gate = asyncio.Semaphore(self.concurrency or self.suite.concurrency or backend.max_concurrency)

        async def one(cell: Cell, check: Any, output: str) -> tuple[str, int, tuple[bool, str]]:
            verdict = await judge(self.engine, grader, check.rubric, cell.messages, output, gate=gate)
            self.grader_calls.append({"variant": cell.variant.label, "model": cell.model.name,
                                      "grader": grader.name, "latency_ms": verdict.latency_ms,
                                      "cost_usd": verdict.cost_usd})
            if verdict.scores is None:
                return cell.key, id(check), (False, verdict.error or "no answer")
            return cell.key, id(check), (verdict.scores["pass"] == 1, verdict.reason)

        graded: dict[str, dict[int, tuple[bool, str]]] = {}
        for key, check_id, outcome in await asyncio.gather(*(one(*w) for w in wanted)):
            graded.setdefault(key, {})[check_id] = outcome
        return graded

    async def _judge(self, rows: list[Row]) -> list[Row]:
        """Every successful output scored on the rubric (judgements this judge already made
        with this rubric version are reused)."""
        from workbench.judge import judge_rows
        from workbench.storage.rubrics import commit_rubric

        suite = self.suite
        assert suite.judge is not None and suite.rubric is not None
        version, _ = await asyncio.to_thread(
            commit_rubric, self.engine.store, suite.rubric, message=f"used by {suite.source}",
            author="workbench eval",
        )
        return await judge_rows(self.engine, suite.judge, suite.rubric, version.id, rows,
                                concurrency=self.concurrency or suite.concurrency)

    def _cache_keys(self, cells: Sequence[Cell]) -> dict[str, str]:
        keys = {}
        for cell in cells:
            params = self.engine.request_params(cell.model, cell.variant.params)
            if samples(self.suite, params):
                continue
            keys[cell.key] = self.engine.cache_key(cell.model, cell.messages, params)
        return keys

    def _row(
        self,
        cell: Cell,
        settled: dict[str, RunInfo],
        cached: dict[str, RunInfo],
        saved: dict[str, float | None],
        results: dict[str, Any],
    ) -> Row:
        if cell.key in results:
            result = results[cell.key]
            run_id, status, output, error = result.run_id, result.status, result.output, result.error
            figures = result.metrics.as_dict()
            was_cached, saved_cost, source_run_id = False, None, None
        else:
            run = cached.get(cell.key) or settled[cell.key]
            run_id, status, output, error = run.id, run.status, run.output, run.error
            figures = dict(run.metrics)
            was_cached = run.cached_from is not None
            source_run_id = run.cached_from
            saved_cost = saved.get(cell.key) if was_cached else None
        case = self.suite.cases[cell.case_idx]
        if status != "ok":
            passed, reason = False, f"{status}: {error or 'no output'}"
        else:
            seen = Observation(output, figures.get("e2e_ms"), figures.get("cost_usd"),
                               self.graded.get(cell.key))
            passed, reason = True, ""
            for check in case.checks:
                verdict = check.check(seen)
                if not verdict.passed:
                    passed, reason = False, f"{check.type}: {verdict.reason}"
                    break
        return Row(
            messages=cell.messages,
            source_run_id=source_run_id,
            variant=cell.variant.label,
            model=cell.model.name,
            test_idx=cell.case_idx,
            repeat=cell.repeat,
            vars=cell.variables,
            output=output,
            passed=passed,
            reason=reason,
            status=status,
            error=error,
            cached=was_cached,
            run_id=run_id,
            metrics=figures,
            saved_cost_usd=saved_cost,
            retrieval=[r.as_dict() for r in cell.retrieved] or None,
            expected_chunks=case.expected_chunks,
        )

    def _report(self, experiment_id: str, rows: list[Row]) -> Report:
        suite = self.suite
        groups: dict[tuple[str, str], list[Row]] = {}
        for row in rows:
            groups.setdefault((row.variant, row.model), []).append(row)
        summaries = [summarise(v, m, group) for (v, m), group in groups.items()]
        by_group = {(s.variant, s.model): s for s in summaries}
        labels = [v.label for v in suite.variants]
        pairs = list(self.comparisons or [])
        if not pairs and self.baselines:
            pairs = [(base, cand) for cand, base in self.baselines.items()]
        if not pairs:
            candidates = [label for label in labels if label not in self.baselines.values()]
            pairs = [(candidates[0], other) for other in candidates[1:]]
        comparisons = [
            compare_pass_rates(model.name, a, b, groups.get((a, model.name), []), groups.get((b, model.name), []))
            for a, b in pairs
            for model in suite.models
        ]
        failures = []
        baseline_labels = set(self.baselines.values())
        for summary in summaries:
            if summary.variant in baseline_labels:
                continue
            need = suite.thresholds.pass_rate
            if need is None and summary.passed < summary.cases:
                failures.append(
                    f"{summary.variant} on {summary.model}: {summary.cases - summary.passed} of "
                    f"{summary.cases} cases failed (no threshold given: every case must pass)"
                )
            elif need is not None and summary.pass_rate < need:
                failures.append(
                    f"{summary.variant} on {summary.model}: pass rate {summary.pass_rate:.1%} "
                    f"below the threshold {need:.1%}"
                )
        margin = suite.thresholds.baseline_margin
        for candidate, baseline in self.baselines.items():
            for model in suite.models:
                cand, base = by_group.get((candidate, model.name)), by_group.get((baseline, model.name))
                if cand and base and cand.pass_rate < base.pass_rate - margin - 1e-12:
                    failures.append(
                        f"{candidate} on {model.name}: pass rate {cand.pass_rate:.1%} is worse than "
                        f"{baseline}'s {base.pass_rate:.1%} by more than the margin {margin:.1%}"
                    )
        report = Report(experiment_id, suite, rows, summaries, comparisons, failures,
                        grader_summary=grader_figures(self.grader_calls))
        if suite.rubric is not None and any(r.judge for r in rows):
            report.scores, report.score_comparisons = score_statistics(suite, rows, pairs)
            report.judge_summary = judge_figures(rows)
        return report


def with_baseline(suite: Suite, store: Any, label: str) -> tuple[Suite, dict[str, str]]:
    """The suite plus, for each variant that is a stored prompt's version, that prompt's
    version labelled ``label`` (the baseline it is compared with).

    Raises:
        ValidationError: no variant is a stored prompt with that label.
    """
    from workbench.domain import Ref
    from workbench.errors import NotFoundError
    from workbench.storage import repo
    from workbench.suite import fingerprint

    extra: list[Variant] = []
    baselines: dict[str, str] = {}
    missing = []
    for variant in suite.variants:
        if variant.prompt is None:
            continue
        try:
            version = repo.resolve(store, Ref(name=variant.prompt, label=label))
        except NotFoundError:
            missing.append(variant.prompt)
            continue
        name = f"{variant.prompt}:{label}"
        if name not in [v.label for v in (*suite.variants, *extra)]:
            content = version.content
            extra.append(
                Variant(
                    label=name,
                    messages=tuple(content.messages),
                    defaults=dict(content.variables),
                    params=content.params.model_dump(exclude_none=True, exclude={"model"}),
                    version_id=version.id,
                    prompt=version.prompt,
                )
            )
        if name != variant.label:
            baselines[variant.label] = name
    if not baselines:
        why = f" ({', '.join(missing)} {'has' if len(missing) == 1 else 'have'} no {label!r} label)" if missing else ""
        raise ValidationError(
            f"--baseline {label}: no prompt of the suite is a stored prompt with a version "
            f"labelled {label!r} to compare with{why}"
        )
    variants = (*suite.variants, *extra)
    return (
        replace(
            suite,
            variants=variants,
            fingerprint=fingerprint([suite.fingerprint, label, [v.version_id for v in extra]]),
        ),
        baselines,
    )
