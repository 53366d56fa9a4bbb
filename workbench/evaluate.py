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
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from workbench.assertions import Observation
from workbench.engine import Engine
from workbench.errors import ValidationError
from workbench.experiment import Cell, Event, Variant, plan, run_cells
from workbench.suite import Suite
from workbench.storage import experiments
from workbench.storage.runs import RunInfo, get_run

_METRICS = ("ttft_ms", "e2e_ms", "tpot_ms", "tokens_per_s", "input_tokens", "output_tokens",
            "tokens_estimated", "cost_usd", "cost_source")


@dataclass(frozen=True)
class Row:
    """One graded cell: the results file's row."""

    variant: str
    model: str
    test_idx: int
    repeat: int
    vars: dict[str, Any]
    output: str
    passed: bool
    reason: str
    status: str
    error: str | None
    cached: bool
    run_id: str
    metrics: dict[str, Any]
    saved_cost_usd: float | None = None
    judge: dict[str, Any] | None = None
    """The judge's verdict (``model``, ``scores``, ``reason``, ``latency_ms``,
    ``cost_usd``; ``error`` with the raw text when it gave no usable answer)."""
    messages: list[dict[str, str]] | None = field(default=None, compare=False, repr=False)
    source_run_id: str | None = field(default=None, compare=False, repr=False)
    """For a cache hit: the run whose answer it reuses."""

    def as_dict(self) -> dict[str, Any]:
        """Flat: the metrics sit beside the other columns."""
        return {
            "variant": self.variant,
            "model": self.model,
            "test_idx": self.test_idx,
            "repeat": self.repeat,
            "vars": self.vars,
            "output": self.output,
            "pass": self.passed,
            "reason": self.reason,
            "status": self.status,
            "error": self.error,
            "cached": self.cached,
            "saved_cost_usd": self.saved_cost_usd,
            "run_id": self.run_id,
            **{k: self.metrics.get(k) for k in _METRICS},
            **({"judge": self.judge} if self.judge is not None else {}),
        }


@dataclass(frozen=True)
class Summary:
    """One variant x model."""

    variant: str
    model: str
    cases: int
    passed: int
    errors: int
    cached: int
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    tpot_p50_ms: float | None
    output_tokens: float | None
    """Mean output tokens per call."""
    cost_usd: float | None
    """Spent on this run (None when some call's cost is unknown)."""
    saved_cost_usd: float
    """What the cache hits cost when they were first run."""

    @property
    def pass_rate(self) -> float:
        return self.passed / self.cases if self.cases else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "model": self.model,
            "cases": self.cases,
            "passed": self.passed,
            "pass_rate": self.pass_rate,
            "errors": self.errors,
            "cached": self.cached,
            "ttft_p50_ms": self.ttft_p50_ms,
            "ttft_p95_ms": self.ttft_p95_ms,
            "tpot_p50_ms": self.tpot_p50_ms,
            "output_tokens": self.output_tokens,
            "cost_usd": self.cost_usd,
            "saved_cost_usd": self.saved_cost_usd,
        }


@dataclass(frozen=True)
class Comparison:
    """Variant ``b`` against ``a`` on the same model, over paired cases."""

    model: str
    a: str
    b: str
    pairs: int
    a_only: int
    """Pairs where only ``a`` passed."""
    b_only: int
    difference: float
    """``b``'s pass rate minus ``a``'s."""
    low: float
    high: float

    @property
    def distinguishable(self) -> bool:
        return self.low > 0 or self.high < 0

    def sentence(self) -> str:
        """The comparison in words."""
        span = (
            f"{self.b} vs {self.a} on {self.model}: pass rate {_points(self.difference)} "
            f"(95% CI {_points(self.low)} to {_points(self.high)}) over {self.pairs} paired cases"
        )
        if not self.pairs:
            return f"{span}: nothing to compare."
        if self.distinguishable:
            better = self.b if self.difference > 0 else self.a
            return f"{span}: {better} is better, and the difference is unlikely to be noise."
        return f"{span}: not distinguishable from noise at this sample size."

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "a": self.a,
            "b": self.b,
            "pairs": self.pairs,
            "a_only": self.a_only,
            "b_only": self.b_only,
            "difference": self.difference,
            "ci_low": self.low,
            "ci_high": self.high,
            "distinguishable": self.distinguishable,
            "sentence": self.sentence(),
        }


def _points(share: float) -> str:
    return f"{share * 100:+.1f} points"


@dataclass
class Report:
    """What an evaluation found, and whether the suite holds."""

    experiment_id: str
    suite: Suite
    rows: list[Row]
    summaries: list[Summary]
    comparisons: list[Comparison]
    failures: list[str] = field(default_factory=list)
    """Why the suite does not hold (thresholds, baseline); empty when it does."""
    cancelled: bool = False
    scores: list[dict[str, Any]] = field(default_factory=list)
    """With a judge: per variant x model x criterion (and ``weighted``), the mean score
    with a bootstrap 95% interval, and how many outputs the judge could not score."""
    score_comparisons: list[dict[str, Any]] = field(default_factory=list)
    """With a judge: variants compared on their weighted scores over paired cases."""

    @property
    def passed(self) -> bool:
        return not self.failures and not self.cancelled

    def as_dict(self) -> dict[str, Any]:
        return {
            "experiment_id": self.experiment_id,
            "suite": self.suite.source,
            "description": self.suite.description,
            "passed": self.passed,
            "failures": self.failures,
            "summary": [s.as_dict() for s in self.summaries],
            "comparisons": [c.as_dict() for c in self.comparisons],
            **({"scores": self.scores, "score_comparisons": self.score_comparisons}
               if self.scores else {}),
            "results": [r.as_dict() for r in self.rows],
        }


# --- statistics ---------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return None
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def wilson(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a proportion."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def square_and_add(
    p1: float, ci1: tuple[float, float], p2: float, ci2: tuple[float, float], phi: float = 0.0
) -> tuple[float, float]:
    """Newcombe's square-and-add interval for ``p1 - p2`` from each proportion's own
    interval; ``phi`` is the correlation of paired outcomes (0 for independent samples)."""
    (l1, u1), (l2, u2) = ci1, ci2
    d = p1 - p2
    below = (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2
    above = (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2
    return max(-1.0, d - math.sqrt(max(below, 0.0))), min(1.0, d + math.sqrt(max(above, 0.0)))


def paired_difference(both: int, a_only: int, b_only: int, neither: int) -> tuple[float, float, float]:
    """Difference of two paired pass rates (``b`` minus ``a``) with Newcombe's hybrid
    score interval for paired data (Newcombe, Statistics in Medicine 1998;17:2635-50,
    method 10): Wilson intervals combined by square-and-add, with the correlation of
    the pairs (continuity-corrected). It stays inside [-1, 1] and behaves at small
    samples and at pass rates near 0 or 1."""
    n = both + a_only + b_only + neither
    if n == 0:
        return 0.0, -1.0, 1.0
    pb, pa = (both + b_only) / n, (both + a_only) / n
    # The 2x2 table with b first: r both pass, s only b, t only a, u neither.
    r, s, t, u = both, b_only, a_only, neither
    denominator = (r + s) * (t + u) * (r + t) * (s + u)
    product = r * u - s * t
    if product > 0:
        product = max(product - n / 2, 0.0)
    phi = product / math.sqrt(denominator) if denominator else 0.0
    low, high = square_and_add(pb, wilson(both + b_only, n), pa, wilson(both + a_only, n), phi)
    return pb - pa, low, high


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
        resume: an experiment id or ``last``: run only its unsettled cells.
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

    def prepare(self) -> list[Cell]:
        """Render every cell (raises ValidationError naming the case and variant)."""
        suite = self.suite
        self.cells = plan(
            suite.variants,
            suite.models,
            [case.vars for case in suite.cases],
            suite.repeats,
            case_names=[case.where or f"case {i}" for i, case in enumerate(suite.cases)],
        )
        return self.cells

    async def run(self) -> Report:
        """Run the unsettled cells and grade them all. Cancelling it records what finished
        and re-raises."""
        cells = self.cells or self.prepare()
        store = self.engine.store
        suite = self.suite
        if self.resume:
            found = await asyncio.to_thread(experiments.get_experiment, store, self.resume)
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
        if self.use_cache and keys:
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
            )
            results = {cell.key: result for cell, result in zip(to_run, ran, strict=True)}
        except asyncio.CancelledError:
            cancelled = True
        status = "cancelled" if cancelled else "done"
        await asyncio.to_thread(experiments.finish_experiment, store, experiment_id, status)
        if cancelled:
            raise asyncio.CancelledError
        self._graded = await self._grade(cells, settled, cached, results)
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
            if verdict.scores is None:
                return cell.key, id(check), (False, verdict.error or "no answer")
            return cell.key, id(check), (verdict.scores["pass"] == 1, verdict.reason)

        graded: dict[str, dict[int, tuple[bool, str]]] = {}
        for key, check_id, outcome in await asyncio.gather(*(one(*w) for w in wanted)):
            graded.setdefault(key, {})[check_id] = outcome
        return graded

    async def _judge(self, rows: list[Row]) -> list[Row]:
        """Every successful output scored on the rubric (judgements already made with
        this rubric version are reused)."""
        from workbench.judge import judge
        from workbench.storage.rubrics import commit_rubric, judgements_for

        suite, store = self.suite, self.engine.store
        rubric = suite.rubric
        assert suite.judge is not None and rubric is not None
        version, _ = await asyncio.to_thread(
            commit_rubric, store, rubric, message=f"used by {suite.source}", author="workbench eval"
        )
        ids = [r.run_id for r in rows] + [r.source_run_id for r in rows if r.source_run_id]
        known = await asyncio.to_thread(judgements_for, store, ids)
        backend = self.engine.backend(suite.judge)
        gate = asyncio.Semaphore(self.concurrency or suite.concurrency or backend.max_concurrency)

        async def one(row: Row) -> Row:
            automatic = {}
            for criterion in rubric.criteria:
                if criterion.automatic:
                    from workbench import assertions

                    check = assertions.parse(criterion.assert_, criterion.name)
                    seen = Observation(row.output, row.metrics.get("e2e_ms"), row.metrics.get("cost_usd"))
                    automatic[criterion.name] = int(check.check(seen).passed)
            earlier = known.get(row.run_id) or known.get(row.source_run_id or "")
            if earlier is not None and earlier.rubric_version_id == version.id and earlier.error is None:
                verdict: dict[str, Any] = {
                    "model": earlier.judge_model, "scores": earlier.scores, "reason": earlier.reason,
                    "latency_ms": None, "cost_usd": 0.0, "reused": True,
                }
            elif not rubric.judged:
                verdict = {"model": None, "scores": {}, "reason": "", "latency_ms": None,
                           "cost_usd": 0.0}
            else:
                found = await judge(self.engine, suite.judge, rubric, row.messages or [], row.output,
                                    run_id=row.run_id, rubric_version_id=version.id, gate=gate)
                verdict = found.as_dict()
            if verdict.get("scores") is not None:
                verdict["scores"] = {**verdict["scores"], **automatic}
                verdict["weighted"] = rubric.weighted(verdict["scores"])
            return replace(row, judge=verdict)

        judged = await asyncio.gather(*(one(r) for r in rows if r.status == "ok"))
        by_id = {r.run_id: r for r in judged}
        return [by_id.get(r.run_id, r) for r in rows]

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
            saved_cost = saved.get(cell.key) if cell.key in cached else None
            if was_cached and saved_cost is None and cell.key not in cached:
                saved_cost = _source_cost(self.engine, run.cached_from)
        case = self.suite.cases[cell.case_idx]
        if status != "ok":
            passed, reason = False, f"{status}: {error or 'no output'}"
        else:
            seen = Observation(output, figures.get("e2e_ms"), figures.get("cost_usd"),
                               getattr(self, "_graded", {}).get(cell.key))
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
        )

    def _report(self, experiment_id: str, rows: list[Row]) -> Report:
        suite = self.suite
        groups: dict[tuple[str, str], list[Row]] = {}
        for row in rows:
            groups.setdefault((row.variant, row.model), []).append(row)
        summaries = [_summarise(v, m, group) for (v, m), group in groups.items()]
        by_group = {(s.variant, s.model): s for s in summaries}
        labels = [v.label for v in suite.variants]
        pairs = list(self.comparisons or [])
        if not pairs and self.baselines:
            pairs = [(base, cand) for cand, base in self.baselines.items()]
        if not pairs:
            candidates = [label for label in labels if label not in self.baselines.values()]
            pairs = [(candidates[0], other) for other in candidates[1:]]
        comparisons = [
            _compare(model.name, a, b, groups.get((a, model.name), []), groups.get((b, model.name), []))
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
        report = Report(experiment_id, suite, rows, summaries, comparisons, failures)
        if suite.rubric is not None and any(r.judge for r in rows):
            report.scores, report.score_comparisons = score_statistics(suite, rows, pairs)
        return report


def score_statistics(
    suite: Suite, rows: list[Row], pairs: Sequence[tuple[str, str]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Judge scores summarised: per variant x model x criterion the mean with a bootstrap
    95% interval; per pair of variants on each model, the paired comparison of their
    weighted scores (wins, ties, losses, win rate, sign test, Wilcoxon signed-rank)."""
    from workbench.stats import bootstrap_mean, compare_paired

    rubric = suite.rubric
    criteria = [c.name for c in rubric.criteria] + ["weighted"]
    groups: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        groups.setdefault((row.variant, row.model), []).append(row)
    summary = []
    for (variant, model), group in groups.items():
        judged = [r.judge for r in group if r.judge and r.judge.get("scores") is not None]
        errors = sum(1 for r in group if r.judge and r.judge.get("scores") is None)
        for name in criteria:
            values = [
                float(j["weighted"] if name == "weighted" else j["scores"][name])
                for j in judged
                if (j.get("weighted") if name == "weighted" else j["scores"].get(name)) is not None
            ]
            interval = bootstrap_mean(values) if values else None
            summary.append({
                "variant": variant, "model": model, "criterion": name, "n": len(values),
                "mean": interval.mean if interval else None,
                "ci_low": interval.low if interval else None,
                "ci_high": interval.high if interval else None,
                "judge_errors": errors,
            })
    comparisons = []
    for a, b in pairs:
        for model in suite.models:
            def weighted(label: str) -> dict[tuple[int, int], float]:
                return {
                    (r.test_idx, r.repeat): r.judge["weighted"]
                    for r in groups.get((label, model.name), [])
                    if r.judge and r.judge.get("weighted") is not None
                }

            wa, wb = weighted(a), weighted(b)
            keys = [k for k in wa if k in wb]
            if not keys:
                continue
            found = compare_paired([wa[k] for k in keys], [wb[k] for k in keys])
            if found.wins >= found.losses:
                sentence = found.sentence(a=a, b=b)
            else:
                sentence = compare_paired([wb[k] for k in keys], [wa[k] for k in keys]).sentence(a=b, b=a)
            comparisons.append({
                "model": model.name, "a": a, "b": b, "pairs": found.n, "wins": found.wins,
                "ties": found.ties, "losses": found.losses,
                "win_rate": list(found.win_rate) if found.win_rate else None,
                "sign_p": found.sign_p, "wilcoxon_p": found.wilcoxon_p,
                "mean_difference": list(found.mean_difference),
                "more_cases_needed": found.more_cases_needed,
                "sentence": f"{model.name}: {sentence}",
            })
    return summary, comparisons


def _source_cost(engine: Engine, run_id: str | None) -> float | None:
    if run_id is None:
        return None
    try:
        return get_run(engine.store, run_id).metrics.get("cost_usd")
    except Exception:
        return None


def _summarise(variant: str, model: str, rows: list[Row]) -> Summary:
    def figures(name: str) -> list[float]:
        return [r.metrics[name] for r in rows if r.status == "ok" and r.metrics.get(name) is not None]

    costs = [r.metrics.get("cost_usd") for r in rows if not r.cached]
    tokens = figures("output_tokens")
    return Summary(
        variant=variant,
        model=model,
        cases=len(rows),
        passed=sum(r.passed for r in rows),
        errors=sum(r.status != "ok" for r in rows),
        cached=sum(r.cached for r in rows),
        ttft_p50_ms=percentile(figures("ttft_ms"), 50),
        ttft_p95_ms=percentile(figures("ttft_ms"), 95),
        tpot_p50_ms=percentile(figures("tpot_ms"), 50),
        output_tokens=sum(tokens) / len(tokens) if tokens else None,
        cost_usd=None if any(c is None for c in costs) else float(sum(costs)),  # type: ignore[arg-type]
        saved_cost_usd=float(sum(r.saved_cost_usd or 0.0 for r in rows)),
    )


def _compare(model: str, a: str, b: str, rows_a: list[Row], rows_b: list[Row]) -> Comparison:
    passes_a = {(r.test_idx, r.repeat): r.passed for r in rows_a}
    passes_b = {(r.test_idx, r.repeat): r.passed for r in rows_b}
    common = [k for k in passes_a if k in passes_b]
    both = sum(passes_a[k] and passes_b[k] for k in common)
    a_only = sum(passes_a[k] and not passes_b[k] for k in common)
    b_only = sum(passes_b[k] and not passes_a[k] for k in common)
    neither = len(common) - both - a_only - b_only
    difference, low, high = paired_difference(both, a_only, b_only, neither)
    return Comparison(model, a, b, len(common), a_only, b_only, difference, low, high)


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
