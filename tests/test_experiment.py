"""The experiment core: planning renders everything first; running respects the
per-backend concurrency limit, reports events, and isolates a failing model."""

from __future__ import annotations

import pytest
from fault_server import FaultServer, Scenario, closed_port

from workbench.config import load_settings
from workbench.domain import Message
from workbench.engine import Engine
from workbench.errors import ValidationError
from workbench.experiment import Event, Variant, plan, run_cells
from workbench.models import ModelSpec
from workbench.storage import runs
from workbench.storage.db import Store

A = Variant("A", [Message(role="user", content="Answer {{ q }}")])
B = Variant("B", [Message(role="system", content="Be brief."),
                  Message(role="user", content="{{ q }}?")], params={"max_tokens": 5})


def test_plan_renders_every_cell_in_order() -> None:
    model = ModelSpec("m", "openai", {"model": "m", "api_base": "http://127.0.0.1:1/v1"})
    cells = plan([A, B], [model], [{"q": "one"}, {"q": "two"}], repeats=2)
    assert len(cells) == 8
    assert [(c.variant.label, c.case_idx, c.repeat) for c in cells[:4]] == [
        ("A", 0, 0), ("A", 0, 1), ("A", 1, 0), ("A", 1, 1)
    ]
    assert cells[4].messages == [{"role": "system", "content": "Be brief."},
                                 {"role": "user", "content": "one?"}]


def test_plan_stops_before_any_call_on_a_missing_variable() -> None:
    model = ModelSpec("m", "openai", {"model": "m", "api_base": "http://127.0.0.1:1/v1"})
    with pytest.raises(ValidationError, match=r"case 1: variant A: message 1 \(user\), line 1: "
                                              r"variable 'q' is undefined"):
        plan([A, B], [model], [{"q": "fine"}, {"other": "x"}])
    with pytest.raises(ValidationError, match=r"case 0: variant B: message 2 \(user\)"):
        plan([B], [model], [{"other": "x"}])


def _max_in_flight(server: FaultServer) -> int:
    spans = [(req.at, sent[-1]) for req, sent in zip(server.requests, server.sent_at, strict=False) if sent]
    points = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    most = now = 0
    for _, step in points:
        now += step
        most = max(most, now)
    return most


async def test_run_respects_concurrency_and_isolates_failures(store: Store) -> None:
    with FaultServer(Scenario(kind="ok", chunks=3, delay_s=0.05)) as server:
        good = ModelSpec("good", "openai", {"model": "good", "api_base": server.base_url})
        bad = ModelSpec("bad", "openai", {"model": "bad", "api_base": f"http://127.0.0.1:{closed_port()}/v1",
                                          "max_retries": 0})
        cells = plan([A, B], [good, bad], [{"q": str(i)} for i in range(6)])
        events: list[Event] = []
        engine = Engine(load_settings(), store)
        results = await run_cells(engine, cells, on_event=events.append, concurrency=3)
        await engine.aclose()
    assert len(results) == 24
    statuses = [(c.model.name, r.status) for c, r in zip(cells, results, strict=True)]
    assert {s for name, s in statuses if name == "good"} == {"ok"}
    assert {s for name, s in statuses if name == "bad"} == {"error"}
    assert _max_in_flight(server) <= 3
    kinds = [e.kind for e in events]
    assert kinds.count("started") == 24 and kinds.count("finished") == 12
    assert kinds.count("failed") == 12 and "chunk" in kinds
    assert len(runs.list_runs(store, limit=100)) == 24


async def test_cancel_stops_every_cell_and_records_it(store: Store) -> None:
    import asyncio

    with FaultServer(Scenario(kind="stall", stall_s=5)) as server:
        model = ModelSpec("slow", "openai", {"model": "slow", "api_base": server.base_url})
        cells = plan([A], [model], [{"q": str(i)} for i in range(4)])
        started: list[Event] = []
        engine = Engine(load_settings(), store)
        task = asyncio.create_task(
            run_cells(engine, cells, on_event=lambda e: e.kind == "started" and started.append(e),
                      concurrency=2)
        )
        while len(started) < 2:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await engine.aclose()
    statuses = sorted(r.status for r in runs.list_runs(store))
    # Nothing is left `running`; cells cancelled before their request went out have no run
    # (a resumed experiment redoes them), and the queued ones never started.
    assert statuses and set(statuses) == {"cancelled"} and len(statuses) <= 2
