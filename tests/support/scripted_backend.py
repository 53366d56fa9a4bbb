"""A scripted backend for app tests and snapshots: fixed answers, fixed timestamps.

Configure a model with ``backend = "scripted"`` and pass
``engine_options={"backend_classes": {"scripted": ScriptedBackend}, "clock": StepClock()}``
to ``make_app``. The answer is ``"<model> says: <last message>"`` in word chunks; a model
named ``fail`` fails before any text, ``slow`` waits ``delay_s`` between chunks (for
cancelling), ``long`` streams ``tokens`` chunks. A model named ``judge`` asked for a JSON
Schema answers as a judge would (:func:`judge_answer`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from workbench.backends.base import Backend, BackendError, ChatRequest, Chunk, Done


class StepClock:
    """A clock that advances a fixed step each time it is read: figures come out exact."""

    def __init__(self, step_s: float = 0.01):
        self.now, self.step = 0.0, step_s

    def __call__(self) -> float:
        self.now += self.step
        return self.now


class ScriptedBackend(Backend):
    name = "scripted"
    max_concurrency = 8

    class Options(Backend.Options):
        model: str
        provider: str = "scripted"
        api_base: str | None = None
        api_key: Any = None
        delay_s: float = 0.0
        tokens: int = 0

    options: Options

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk | Done]:
        model = self.options.model
        if model == "fail":
            raise BackendError("fail: the scripted server refused (HTTP 500)", kind="server")
        if model == "judge" and request.response_format:
            words = [judge_answer(request)]
        elif model == "long":
            words = [f"w{i} " for i in range(self.options.tokens or 2000)]
        else:
            words = f"{model} says: {request.messages[-1]['content']}".split(" ")
            words = [w + " " for w in words[:-1]] + words[-1:]
        for word in words:
            if self.options.delay_s:
                await asyncio.sleep(self.options.delay_s)
            yield Chunk(word, self.clock())
        yield Done(input_tokens=10, output_tokens=len(words))

    def describe(self) -> dict[str, Any]:
        return {"provider": "scripted", "model": self.options.model}


def judge_answer(request: ChatRequest) -> str:
    """A rubric's JSON: every criterion's highest score where the judged answer starts with
    ``Answer:`` (after the scripted ``<model> says:``), else its lowest."""
    schema = (request.response_format or {}).get("json_schema", {}).get("schema", {})
    criteria = schema["properties"]["scores"]["properties"]
    good = "says: Answer:" in request.messages[-1]["content"]
    scores = {name: c["maximum"] if good else c["minimum"] for name, c in criteria.items()}
    return json.dumps({"scores": scores, "reason": "scripted"})
