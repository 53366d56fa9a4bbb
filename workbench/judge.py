"""LLM-as-judge: a model scores an output on a rubric, and never returns garbage.

The judge is asked for JSON of the rubric's shape. On llama.cpp the answer is constrained
by a grammar built from that JSON Schema; hosted models get the schema as their
``response_format``, and a provider that refuses it (HTTP 400 naming ``response_format`` or
``json_schema``) is asked once more in JSON mode (``{"type": "json_object"}``): the prompt
spells out the shape, and the answer is checked all the same. The answer is then checked (every judged criterion, an integer in
its range): one that still does not parse is recorded as a judge error with the raw text,
never as a score. The judge's own call is a run like any other, so its latency and cost
are kept apart from the judged run's.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from workbench.engine import Engine
from workbench.models import ModelSpec
from workbench.rubrics import JudgeAnswer, Rubric, judge_messages, parse_judge_answer

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
    result = await engine.run(spec, messages, params, gate=gate)
    refused_cost = 0.0
    if schema_refused(result):  # once: JSON mode, the same messages
        refused_cost = result.metrics.cost_usd or 0.0  # a refused request is rarely billed
        json_mode = {**params, "response_format": JSON_MODE}
        result = await engine.run(spec, messages, json_mode, gate=gate)
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
