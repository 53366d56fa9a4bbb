"""Experiments: variants x models x test cases x repeats, run with a concurrency limit
per backend, reporting progress as events. (The core of issue 5; suites, the cache and
result files build on it.)

Every cell is rendered before any model is called, so a variable a template needs but a
case lacks stops the experiment up front with the variant, case and message named.
A failing model fails only its own cells; cancelling stops every cell in flight, each
recorded as ``cancelled``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from workbench import templates
from workbench.domain import Message
from workbench.engine import Engine, RunResult
from workbench.errors import ValidationError, WorkbenchError
from workbench.models import ModelSpec
from workbench.retrieval import Binding, Retrieved, Retriever


@dataclass(frozen=True)
class Variant:
    """One prompt variant: a stored version or an inline draft."""

    label: str
    messages: Sequence[Message]
    defaults: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    version_id: str | None = None
    prompt: str | None = None
    """The stored prompt it is a version of (None for a draft)."""
    retrieval: tuple[Binding, ...] = ()
    """Variables filled by retrieval before rendering (one search per case)."""


@dataclass(frozen=True)
class Cell:
    """One call to make: a variant, a model, a case and a repeat, rendered."""

    variant: Variant
    model: ModelSpec
    case_idx: int
    repeat: int
    variables: dict[str, Any]
    messages: list[dict[str, str]]
    key: str = ""
    """``VARIANT/MODEL/CASE/REPEAT`` indexes: the cell's place in its experiment."""
    retrieved: tuple[Retrieved, ...] = ()
    """What retrieval gave this cell's variables (the context is in ``variables`` too)."""


@dataclass(frozen=True)
class Event:
    """Progress: ``started``, ``chunk`` (with ``text``), ``finished`` or ``failed`` (with
    ``result``)."""

    kind: str
    cell: Cell
    text: str = ""
    result: RunResult | None = None


def plan(
    variants: Sequence[Variant],
    models: Sequence[ModelSpec],
    cases: Sequence[dict[str, Any]],
    repeats: int = 1,
    *,
    case_names: Sequence[str] | None = None,
    retriever: Retriever | None = None,
) -> list[Cell]:
    """Every cell, rendered, in a stable order (variant, model, case, repeat).

    ``case_names`` say where each case came from (``suite.yaml:12``) for error messages.
    Variants with retrieval bindings need a ``retriever``: each case's searches run first
    and their contexts become variables.

    Raises:
        ValidationError: a template cannot be rendered for some case (names which), or
            retrieval failed (RagError and EmbedderError pass through, with their reasons).
    """
    cells = []
    for v_idx, variant in enumerate(variants):
        rendered = []
        for idx, case in enumerate(cases):
            name = case_names[idx] if case_names else f"case {idx}"
            values, found = dict(case), ()
            if variant.retrieval:
                if retriever is None:
                    raise ValidationError(f"variant {variant.label} retrieves: no retriever given")
                try:
                    found = tuple(retriever.retrieve(b, case) for b in variant.retrieval)
                except WorkbenchError as exc:  # a template, the index, the embedder
                    raise type(exc)(f"{name}: variant {variant.label}: {exc}") from None
                values.update({item.variable: item.context for item in found})
            try:
                messages = templates.render_messages(variant.messages, values, variant.defaults)
            except templates.TemplateError as exc:
                raise ValidationError(f"{name}: variant {variant.label}: {exc}") from None
            rendered.append((values, messages, found))
        for m_idx, model in enumerate(models):
            for idx, (values, messages, found) in enumerate(rendered):
                for repeat in range(repeats):
                    key = f"{v_idx}/{m_idx}/{idx}/{repeat}"
                    cells.append(Cell(variant, model, idx, repeat, dict(values), messages, key,
                                      found))
    return cells


async def run_cells(
    engine: Engine,
    cells: Sequence[Cell],
    *,
    on_event: Callable[[Event], None] | None = None,
    concurrency: int | None = None,
    experiment_id: str | None = None,
    cache_keys: dict[str, str] | None = None,
    delay_s: float = 0,
) -> list[RunResult]:
    """Run cells, at most ``concurrency`` in flight per backend (default: the backend's
    own limit: one for a local model, eight for hosted ones). Results come back in cell
    order; each run is recorded as it finishes, with its experiment, cell and cache key.

    With ``delay_s`` above 0, one call at a time (whatever ``concurrency`` says), each
    starting at least ``delay_s`` after the previous one ended (promptfoo's ``delay``)."""
    emit = on_event or (lambda event: None)
    limits: dict[int, asyncio.Semaphore] = {}
    paced = asyncio.Lock()  # FIFO: with a delay, calls go one by one in cell order
    next_start = 0.0

    def gate(cell: Cell) -> asyncio.Semaphore:
        backend = engine.backend(cell.model)
        key = id(backend)
        if key not in limits:
            limits[key] = asyncio.Semaphore(concurrency or backend.max_concurrency)
        return limits[key]

    async def one(cell: Cell) -> RunResult:
        nonlocal next_start
        if delay_s <= 0:
            return await call(cell)
        loop = asyncio.get_running_loop()
        async with paced:
            if (wait := next_start - loop.time()) > 0:
                await asyncio.sleep(wait)
            try:
                return await call(cell)
            finally:
                next_start = loop.time() + delay_s

    async def call(cell: Cell) -> RunResult:
        result = await engine.run(
            cell.model,
            cell.messages,
            cell.variant.params,
            prompt_version_id=cell.variant.version_id,
            template=[m.model_dump() for m in cell.variant.messages],
            variables=cell.variables,
            on_chunk=lambda text: emit(Event("chunk", cell, text=text)),
            experiment_id=experiment_id,
            cell=cell.key or None,
            cache_key=(cache_keys or {}).get(cell.key),
            gate=gate(cell),
            on_start=lambda: emit(Event("started", cell)),
            retrieval=[r.as_dict() for r in cell.retrieved] or None,
        )
        emit(Event("finished" if result.status == "ok" else "failed", cell, result=result))
        return result

    tasks = [asyncio.ensure_future(one(cell)) for cell in cells]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        # gather gives up at the first cancelled cell (and has cancelled the rest): wait
        # for every cell to record its outcome, `cancelled` included, before returning.
        await asyncio.wait(tasks)
        raise
