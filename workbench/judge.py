"""LLM-as-judge: a model scores an output on a rubric, and never returns garbage.

The judge is asked for JSON of the rubric's shape. On llama.cpp the answer is constrained
by a grammar built from that JSON Schema; hosted models get the schema as their
``response_format``, and a provider that refuses it (HTTP 400 naming ``response_format`` or
``json_schema``) is asked once more in JSON mode (``{"type": "json_object"}``: the prompt
spells out the shape). The engine then remembers that model's refusal, and its later
judgements go straight to JSON mode; the refused call is recorded as a failed run of its
own, and a verdict's latency is its answer's. Every answer is checked (every judged
criterion, an integer in its range): one that does not parse is recorded as a judge error
with the raw text, never as a score. The judge's own call is a run like any other, so its
latency and cost are kept apart from the judged run's.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from workbench.engine import Engine
from workbench.models import ModelSpec
from workbench.rubrics import (
    JudgeAnswer,
    Rubric,
    automatic_scorer,
    judge_messages,
    parse_judge_answer,
)

if TYPE_CHECKING:
    from workbench.report import Row

MAX_TOKENS = 400


@dataclass(frozen=True)
class Verdict:
    """A judge's verdict on one output, as results files show it (``judge`` per row)."""

    model: str
    scores: dict[str, int] | None
    reason: str
    latency_ms: float | None
    cost_usd: float | None
    error: str | None = None
    raw: str = ""
    judge_run_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "model": self.model,
            "scores": self.scores,
            "reason": self.reason,
            "latency_ms": self.latency_ms,
            "cost_usd": self.cost_usd,
        }
        if self.error is not None:
            data["error"] = {"message": self.error, "raw": self.raw}
        return data


def judge_params(rubric: Rubric) -> dict[str, Any]:
    """Greedy decoding, bounded length, and the answer's JSON Schema."""
    return {
        "temperature": 0,
        "max_tokens": MAX_TOKENS,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "rubric_scores", "schema": rubric.judge_schema(), "strict": True},
        },
    }


JSON_MODE = {"type": "json_object"}
"""What a judge is asked for where a provider refuses a JSON Schema."""

_REFUSED_SCHEMA: WeakKeyDictionary[Engine, set[str]] = WeakKeyDictionary()
"""Per engine, the judge models that refused a JSON Schema: asked in JSON mode from then on."""


def schema_refused(result: Any) -> bool:
    """Whether a call failed because the provider refused the JSON Schema response format:
    HTTP 400 (the request, not the server or the key) whose message names it."""
    error = (result.error or "").lower()
    return (
        result.status == "error"
        and "http 400" in error
        and ("response_format" in error or "json_schema" in error or "json schema" in error)
    )


async def judge(
    engine: Engine,
    spec: ModelSpec,
    rubric: Rubric,
    prompt: list[dict[str, str]],
    output: str,
    *,
    run_id: str | None = None,
    rubric_version_id: str | None = None,
    gate: asyncio.Semaphore | None = None,
) -> Verdict:
    """Ask ``spec`` to score ``output`` (the answer to ``prompt``) on ``rubric``; record the
    judgement when the judged run and the rubric version are known."""
    messages, params = judge_messages(rubric, prompt, output), judge_params(rubric)
    refusing = _REFUSED_SCHEMA.setdefault(engine, set())
    json_mode = {**params, "response_format": JSON_MODE}
    refused_cost = 0.0
    # One judgement holds the gate for both its calls; whether the model refuses a schema is
    # looked up once the gate is ours (a judgement that waited may have learnt it meanwhile).
    async with gate if gate is not None else contextlib.nullcontext():
        known = spec.name in refusing
        result = await engine.run(spec, messages, json_mode if known else params)
        if not known and schema_refused(result):  # once: JSON mode, the same messages
            refusing.add(spec.name)
            refused_cost = result.metrics.cost_usd or 0.0  # a refused request is rarely billed
            result = await engine.run(spec, messages, json_mode)
    cost = result.metrics.cost_usd
    if cost is not None:
        cost += refused_cost
    if result.status != "ok":
        answer = JudgeAnswer(None, "", f"the judge's call failed: {result.error}", result.output)
    else:
        answer = parse_judge_answer(rubric, result.output)
    verdict = Verdict(
        model=spec.name,
        scores=answer.scores,
        reason=answer.reason,
        latency_ms=result.metrics.e2e_ms,
        cost_usd=cost,
        error=answer.error,
        raw=answer.raw if answer.error else "",
        judge_run_id=result.run_id,
    )
    if run_id is not None and rubric_version_id is not None:
        from workbench.storage.rubrics import record_judgement

        await asyncio.to_thread(
            record_judgement,
            engine.store,
            run_id=run_id,
            judge_run_id=result.run_id,
            rubric_version_id=rubric_version_id,
            judge_model=spec.name,
            scores=verdict.scores,
            reason=verdict.reason,
            error=verdict.error,
            raw=verdict.raw,
        )
    return verdict


async def judge_rows(
    engine: Engine,
    spec: ModelSpec,
    rubric: Rubric,
    rubric_version_id: str,
    rows: Sequence[Row],
    *,
    concurrency: int | None = None,
    on_judged: Callable[[Row], None] | None = None,
) -> list[Row]:
    """Every successful row's output scored on ``rubric`` by ``spec``: the rows with their
    ``judge`` verdicts (failed rows unchanged). ``workbench eval`` and the app's Compare
    grid both judge with this.

    Each judgement is recorded as it is made. An output this judge has already scored with
    this rubric version (a cached re-run, a resume, the grid judged again) is not judged
    again: the verdict is reused, with no call and no cost. Automatic criteria are scored
    by their assertions and kept apart under ``automatic`` as well, so they stand when the
    judge fails; ``weighted`` (all criteria) is there only when the judge answered.

    Args:
        concurrency: judge calls in flight (default: the judge backend's).
        on_judged: called with each judged row as it is done (on the event loop).
    """
    from workbench.storage.rubrics import judgements_for

    store = engine.store
    ids = [r.run_id for r in rows] + [r.source_run_id for r in rows if r.source_run_id]
    known = await asyncio.to_thread(
        judgements_for, store, ids, rubric_version_id=rubric_version_id, judge_model=spec.name
    )
    gate = asyncio.Semaphore(concurrency or engine.backend(spec).max_concurrency)
    score_automatic = automatic_scorer(rubric)

    async def one(row: Row) -> Row:
        automatic = score_automatic(row.output, row.metrics)
        earlier = known.get(row.run_id) or known.get(row.source_run_id or "")
        if earlier is not None and earlier.error is None:
            verdict: dict[str, Any] = {
                "model": earlier.judge_model, "scores": earlier.scores, "reason": earlier.reason,
                "latency_ms": None, "cost_usd": 0.0, "reused": True,
            }
        elif not rubric.judged:
            verdict = {"model": None, "scores": {}, "reason": "", "latency_ms": None,
                       "cost_usd": 0.0}
        else:
            found = await judge(engine, spec, rubric, row.messages or [], row.output,
                                run_id=row.run_id, rubric_version_id=rubric_version_id, gate=gate)
            verdict = found.as_dict()
        if automatic:
            # Kept apart as well: an assertion's score stands when the judge fails.
            verdict["automatic"] = automatic
        if verdict.get("scores") is not None:
            verdict["scores"] = {**verdict["scores"], **automatic}
            verdict["weighted"] = rubric.weighted(verdict["scores"])
        judged = replace(row, judge=verdict)
        if on_judged is not None:
            on_judged(judged)
        return judged

    judged = await asyncio.gather(*(one(r) for r in rows if r.status == "ok"))
    by_id = {r.run_id: r for r in judged}
    return [by_id.get(r.run_id, r) for r in rows]
