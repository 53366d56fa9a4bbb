"""What an evaluation reports: a row per call, a summary per variant x model, paired
comparisons of pass rates, and (with a judge) scores per criterion with intervals and
the paired comparison of weighted scores. Built by :mod:`workbench.evaluate`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.stats import paired_difference, percentile

if TYPE_CHECKING:  # annotations only: the app's review imports this module without them
    from workbench.rubrics import Rubric
    from workbench.suite import Suite

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
    retrieval: list[dict[str, Any]] | None = None
    """What retrieval filled variables with (query, chunks with injection flags, context)."""
    expected_chunks: tuple[str, ...] = ()
    """The chunk ids the case expects retrieval to find."""

    @property
    def retrieval_rank(self) -> int | None:
        """Rank of the first expected chunk retrieved (None: none was, or none expected)."""
        wanted = set(self.expected_chunks)
        for item in self.retrieval or []:
            for hit in item["hits"]:
                if hit["id"] in wanted:
                    return int(hit["rank"])
        return None

    @property
    def flagged_chunks(self) -> list[str]:
        """Ids of retrieved chunks that read like instructions to the model."""
        return [h["id"] for item in self.retrieval or [] for h in item["hits"] if h["flags"]]

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
            **({"retrieval": self.retrieval} if self.retrieval else {}),
            **({"expected_chunks": list(self.expected_chunks),
                "retrieval_rank": self.retrieval_rank} if self.expected_chunks else {}),
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
    hit_at_k: float | None = None
    """Share of the cases naming expected chunks where retrieval found one (None: no
    such cases, or the variant retrieves nothing)."""
    mrr: float | None = None
    """Mean reciprocal rank of the first expected chunk, over the same cases."""
    flagged: int = 0
    """Calls given a chunk that reads like an instruction to the model."""

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
            "hit_at_k": self.hit_at_k,
            "mrr": self.mrr,
            "flagged": self.flagged,
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
    repeats: int = 1
    """Calls per case; above 1, a case counts as passed when most of its calls passed."""

    @property
    def distinguishable(self) -> bool:
        return self.low > 0 or self.high < 0

    def sentence(self) -> str:
        """The comparison in words."""
        rate = "pass rate" if self.repeats == 1 else "pass rate of cases (by majority of repeats)"
        span = (
            f"{self.b} vs {self.a} on {self.model}: {rate} {_points(self.difference)} "
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
            "repeats": self.repeats,
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
    judge_summary: list[dict[str, Any]] = field(default_factory=list)
    """With a judge: its own calls per variant x model (:func:`judge_figures`)."""
    grader_summary: list[dict[str, Any]] = field(default_factory=list)
    """With ``llm-rubric`` checks: the grader's calls (:func:`grader_figures`)."""

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
            **({"scores": self.scores, "score_comparisons": self.score_comparisons,
                "judge_summary": self.judge_summary} if self.scores else {}),
            **({"grader_summary": self.grader_summary} if self.grader_summary else {}),
            "results": [r.as_dict() for r in self.rows],
        }


def score_statistics(
    suite: Suite, rows: list[Row], pairs: Sequence[tuple[str, str]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Judge scores summarised: per variant x model x criterion the mean with a bootstrap
    95% interval (:func:`score_summary`); per pair of variants on each model, the paired
    comparison of their weighted scores (:func:`compare_scores`)."""
    assert suite.rubric is not None
    columns = [((a, model.name), (b, model.name)) for a, b in pairs for model in suite.models]
    return score_summary(suite.rubric, rows), compare_columns(rows, columns)


Column = tuple[str, str]
"""A column of a grid or suite: (variant, model)."""


def comparison_pairs(rows: Sequence[Any]) -> tuple[str, list[tuple[Column, Column]]]:
    """Which columns (variant, model) the summary compares, and the line saying so: each
    variant against the first on each model, as ``workbench eval`` does; with a single
    variant, each model against the first."""
    variants = list(dict.fromkeys(r.variant for r in rows))
    models = list(dict.fromkeys(r.model for r in rows))
    if len(variants) > 1:
        return (f"each variant against {variants[0]} (the first), on each model:",
                [((variants[0], m), (v, m)) for v in variants[1:] for m in models])
    if len(models) > 1:
        return (f"each model against {models[0]} (the first):",
                [((variants[0], models[0]), (variants[0], m)) for m in models[1:]])
    return "", []


def compare_columns(rows: Sequence[Row], pairs: Sequence[tuple[Column, Column]]) -> list[dict[str, Any]]:
    """:func:`compare_scores` of each pair of columns that has cases in common."""
    return [found for a, b in pairs if (found := compare_scores(rows, a, b)) is not None]


def score_summary(rubric: Rubric, rows: Sequence[Row]) -> list[dict[str, Any]]:
    """Per variant x model x criterion (and ``weighted``): the mean score of the rows'
    ``judge`` verdicts with a bootstrap 95% interval, and how many verdicts are errors.

    An automatic criterion counts for every verdict, even one whose judge failed (its
    assertion scored it); the judged criteria and ``weighted`` only where the judge
    answered. The app's review and ``workbench eval`` both summarise with this."""
    from workbench.stats import bootstrap_mean

    automatic = {c.name for c in rubric.criteria if c.automatic}
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row.variant, row.model), [])
        if row.judge:
            groups[(row.variant, row.model)].append(row.judge)
    summary = []
    for (variant, model), verdicts in groups.items():
        errors = sum(1 for j in verdicts if j.get("scores") is None)
        for name in [c.name for c in rubric.criteria] + ["weighted"]:
            values = [v for j in verdicts if (v := _score(j, name, automatic)) is not None]
            interval = bootstrap_mean(values) if values else None
            summary.append({
                "variant": variant, "model": model, "criterion": name, "n": len(values),
                "mean": interval.mean if interval else None,
                "ci_low": interval.low if interval else None,
                "ci_high": interval.high if interval else None,
                "judge_errors": errors,
            })
    return summary


def _score(verdict: dict[str, Any], name: str, automatic: set[str]) -> float | None:
    if name == "weighted":
        value = verdict.get("weighted")
    elif name in automatic and verdict.get("automatic") is not None:
        value = verdict["automatic"].get(name)
    else:
        value = (verdict.get("scores") or {}).get(name)
    return None if value is None else float(value)


def compare_scores(
    rows: Sequence[Row], a: tuple[str, str], b: tuple[str, str]
) -> dict[str, Any] | None:
    """Column ``b`` (variant, model) against column ``a`` on their weighted scores over
    the cases (and repeats) both have: wins, ties, losses, win rate, sign test, Wilcoxon
    signed-rank. The sentence names the better one first. None: no common case.

    On one model the sentence names the variants (prefixed by the model), else each
    column as ``variant · model``."""
    from workbench.stats import compare_paired

    def weighted(column: tuple[str, str]) -> dict[tuple[int, int], float]:
        return {
            (r.test_idx, r.repeat): float(r.judge["weighted"])
            for r in rows
            if (r.variant, r.model) == column and r.judge and r.judge.get("weighted") is not None
        }

    wa, wb = weighted(a), weighted(b)
    keys = [k for k in wa if k in wb]
    if not keys:
        return None
    same_model = a[1] == b[1]
    name_a, name_b = (a[0], b[0]) if same_model else (" · ".join(a), " · ".join(b))
    found = compare_paired([wa[k] for k in keys], [wb[k] for k in keys])
    if found.wins >= found.losses:
        sentence = found.sentence(a=name_a, b=name_b)
    else:
        flipped = compare_paired([wb[k] for k in keys], [wa[k] for k in keys])
        sentence = flipped.sentence(a=name_b, b=name_a)
    return {
        "model": a[1] if same_model else None, "a": name_a, "b": name_b, "pairs": found.n,
        "wins": found.wins, "ties": found.ties, "losses": found.losses,
        "win_rate": list(found.win_rate) if found.win_rate else None,
        "sign_p": found.sign_p, "wilcoxon_p": found.wilcoxon_p,
        "mean_difference": list(found.mean_difference),
        "more_cases_needed": found.more_cases_needed,
        "sentence": f"{a[1]}: {sentence}" if same_model else sentence,
    }


def judge_figures(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """The judge's own calls per variant x model, apart from the judged runs' figures:
    how many it made (``calls``) and how many verdicts were reused from earlier runs
    (``reused``: no call, no cost), the median latency of its calls, and what they cost
    in all (None when some call's cost is unknown)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        if row.judge is not None:
            groups.setdefault((row.variant, row.model), []).append(row.judge)
    found = []
    for (variant, model), verdicts in groups.items():
        calls = [j for j in verdicts if not j.get("reused") and j.get("model") is not None]
        found.append({"variant": variant, "model": model, **_call_figures(calls),
                      "reused": sum(1 for j in verdicts if j.get("reused"))})
    return found


def grader_figures(calls: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The grader's own calls (``llm-rubric`` checks) per variant x model x grader, from
    ``{"variant", "model", "grader", "latency_ms", "cost_usd"}`` per call."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for call in calls:
        groups.setdefault((call["variant"], call["model"], call["grader"]), []).append(call)
    return [{"variant": variant, "model": model, "grader": grader, **_call_figures(group)}
            for (variant, model, grader), group in sorted(groups.items())]  # calls end in any order


def _call_figures(calls: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """How many calls, their median latency, and what they cost in all (None when some
    call's cost is unknown)."""
    latencies = [float(c["latency_ms"]) for c in calls if c.get("latency_ms") is not None]
    costs = [c.get("cost_usd") for c in calls]
    return {"calls": len(calls), "latency_p50_ms": percentile(latencies, 50),
            "cost_usd": None if any(c is None for c in costs) else float(sum(costs))}


def grader_lines(figures: Sequence[dict[str, Any]]) -> list[str]:
    """The graders' calls as ``workbench eval`` prints them."""
    from workbench.output import table

    return ["Grader calls (llm-rubric: the grader's own latency and cost, apart from the runs "
            "above):", table(
                [[g["variant"], g["model"], g["grader"], str(g["calls"]), _ms(g["latency_p50_ms"]),
                  _usd(g["cost_usd"])] for g in figures],
                ["VARIANT", "MODEL", "GRADER", "CALLS", "LATENCY P50", "COST"])]


def _ms(value: float | None) -> str:
    return f"{value:.0f}" if value is not None else "-"


def _usd(value: float | None) -> str:
    return "unknown" if value is None else f"${value:.4f}"


def judge_lines(
    scores: Sequence[dict[str, Any]], comparisons: Sequence[dict[str, Any]],
    figures: Sequence[dict[str, Any]],
) -> list[str]:
    """The judge's part of a report as text, as ``workbench eval`` prints it and the app
    shows it: the scores table (:func:`score_summary`), the paired comparisons
    (:func:`compare_scores`), and the judge's own calls (:func:`judge_figures`)."""
    from workbench.output import inert, table

    lines = ["Judge scores (mean, bootstrap 95% interval):", table(
        [[s["variant"], s["model"], s["criterion"], str(s["n"]),
          "-" if s["mean"] is None else f"{s['mean']:.2f} [{s['ci_low']:.2f}, {s['ci_high']:.2f}]",
          str(s["judge_errors"])] for s in scores],
        ["VARIANT", "MODEL", "CRITERION", "N", "MEAN [95% CI]", "JUDGE ERRORS"],
    )]
    lines.extend(inert(c["sentence"]) for c in comparisons)
    if figures:
        lines.append("")
        lines.append("Judge calls (the judge's own latency and cost, apart from the runs above):")
        lines.append(table(
            [[j["variant"], j["model"], str(j["calls"]), str(j["reused"]), _ms(j["latency_p50_ms"]),
              _usd(j["cost_usd"])] for j in figures],
            ["VARIANT", "MODEL", "CALLS", "REUSED", "LATENCY P50", "COST"],
        ))
    return lines


def summarise(variant: str, model: str, rows: list[Row]) -> Summary:
    """One variant x model's figures: pass rate, TTFT and TPOT percentiles, tokens, cost."""
    def figures(name: str) -> list[float]:
        return [r.metrics[name] for r in rows if r.status == "ok" and r.metrics.get(name) is not None]

    costs = [r.metrics.get("cost_usd") for r in rows if not r.cached]
    tokens = figures("output_tokens")
    # Retrieval is the same for every repeat and model: once per case.
    judged = {r.test_idx: r.retrieval_rank for r in rows if r.expected_chunks and r.retrieval}
    ranks = list(judged.values())
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
        hit_at_k=sum(r is not None for r in ranks) / len(ranks) if ranks else None,
        mrr=sum(1 / r for r in ranks if r is not None) / len(ranks) if ranks else None,
        flagged=sum(bool(r.flagged_chunks) for r in rows),
    )


def compare_pass_rates(model: str, a: str, b: str, rows_a: list[Row], rows_b: list[Row]) -> Comparison:
    """Two variants' pass rates on the cases both ran, with Newcombe's paired interval.

    The pairs are cases, not calls: repeats of a case are not independent samples, and
    counting each as a pair would overstate the sample size. With repeats, a case counts
    as passed by a variant when more than half of its calls passed (majority vote).
    """
    passes_a, repeats_a = _case_verdicts(rows_a)
    passes_b, repeats_b = _case_verdicts(rows_b)
    common = [k for k in passes_a if k in passes_b]
    both = sum(passes_a[k] and passes_b[k] for k in common)
    a_only = sum(passes_a[k] and not passes_b[k] for k in common)
    b_only = sum(passes_b[k] and not passes_a[k] for k in common)
    neither = len(common) - both - a_only - b_only
    difference, low, high = paired_difference(both, a_only, b_only, neither)
    repeats = max([repeats_a.get(k, 1) for k in common] + [repeats_b.get(k, 1) for k in common],
                  default=1)
    return Comparison(model, a, b, len(common), a_only, b_only, difference, low, high, repeats)


def _case_verdicts(rows: list[Row]) -> tuple[dict[int, bool], dict[int, int]]:
    """Per case: passed by majority of its calls, and how many calls it had."""
    calls: dict[int, list[bool]] = {}
    for row in rows:
        calls.setdefault(row.test_idx, []).append(row.passed)
    verdicts = {case: 2 * sum(found) > len(found) for case, found in calls.items()}
    return verdicts, {case: len(found) for case, found in calls.items()}
