"""The engine's measurements and run records, with a scripted backend and a fake clock.

The arithmetic is checked exactly; real backends are tested in test_llama.py and
test_hosted.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import pytest

from workbench import metrics
from workbench.backends.base import Backend, BackendError, ChatRequest, Chunk, Done
from workbench.config import load_settings
from workbench.engine import Engine
from workbench.models import ModelSpec
from workbench.storage import runs
from workbench.storage.db import Store


class FakeClock:
    """A clock that only moves when the script says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Scripted(Backend):
    """Plays a script: ("wait", seconds) advances the clock, ("text", str) yields a chunk,
    ("fail", BackendError) raises, ("done", Done) ends."""

    name = "scripted"
    script: ClassVar[list[tuple[str, Any]]] = []
    local: ClassVar[bool] = False

    class Options(Backend.Options):
        model: str = "fake-model"
        provider: str | None = None
        api_key: str | None = None

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk | Done]:
        for action, value in self.script:
            if action == "wait":
                self.clock.now += value  # type: ignore[attr-defined]
                await asyncio.sleep(0)
            elif action == "text":
                yield Chunk(value, self.clock())
            elif action == "fail":
                raise value
            elif action == "hang":
                await asyncio.sleep(3600)
            else:
                yield value


class LocalScripted(Scripted):
    local = True


def _engine(store: Store, clock: FakeClock, price: float | None = None) -> Engine:
    settings = load_settings()
    settings.local.price_per_hour_usd = price
    return Engine(settings, store, clock=clock,
                  backend_classes={"scripted": Scripted, "local": LocalScripted})


SPEC = ModelSpec("fake", "scripted", {"model": "fake-model"})


def test_timing_arithmetic() -> None:
    t = metrics.timing(submitted=10.0, first_chunk=10.25, last_chunk=11.25, output_tokens=11)
    assert t == {"ttft_ms": 250.0, "e2e_ms": 1250.0, "tpot_ms": 100.0, "tokens_per_s": 10.0}
    assert metrics.timing(10.0, 10.1, 10.1, 1)["tpot_ms"] is None  # one token: no decode
    assert metrics.timing(10.0, None, None, None)["ttft_ms"] is None


def test_costs() -> None:
    assert metrics.hosted_cost(1000, 500, 1e-6, 2e-6, "list") == (pytest.approx(0.002), "list")
    assert metrics.hosted_cost(1000, 500, None, None, "list") == (None, "unknown")
    assert metrics.hosted_cost(None, 5, 1e-6, 1e-6, "list")[0] is None
    cost, source = metrics.local_cost(36.0, 2.0)
    assert cost == pytest.approx(0.02) and "$2/h" in source
    assert metrics.local_cost(36.0, None)[0] is None


async def test_ok_run_is_measured_and_recorded(store: Store) -> None:
    clock = FakeClock()
    Scripted.script = [
        ("wait", 0.2), ("text", ""), ("wait", 0.05), ("text", "Hel"),  # empty chunks don't count
        ("wait", 0.1), ("text", "lo"), ("wait", 0.1), ("text", "!"),
        ("done", Done(input_tokens=12, output_tokens=5)),
    ]
    seen: list[str] = []
    result = await _engine(store, clock).run(SPEC, [{"role": "user", "content": "hi"}],
                                              on_chunk=seen.append)
    assert result.status == "ok" and result.output == "Hello!" and seen == ["Hel", "lo", "!"]
    m = result.metrics
    assert m.ttft_ms == pytest.approx(250.0)
    assert m.e2e_ms == pytest.approx(450.0)
    assert m.tpot_ms == pytest.approx(50.0)  # (450 - 250) / (5 - 1)
    assert m.tokens_per_s == pytest.approx(20.0)  # 4 tokens in 0.2 s
    assert (m.input_tokens, m.output_tokens) == (12, 5)
    assert m.cost_usd is None and m.cost_source == "unknown"  # fake-model has no price
    stored = runs.get_run(store, result.run_id)
    assert stored.status == "ok" and stored.output == "Hello!"
    assert stored.metrics["ttft_ms"] == pytest.approx(250.0)
    assert stored.messages == [{"role": "user", "content": "hi"}]


async def test_broken_stream_is_partial_with_null_counts(store: Store) -> None:
    Scripted.script = [("text", "half an ans"), ("fail", BackendError("connection dropped", kind="connection"))]
    result = await _engine(store, FakeClock()).run(SPEC, [{"role": "user", "content": "q"}])
    assert result.status == "partial" and result.output == "half an ans"
    assert "fake: connection dropped" in (result.error or "")
    stored = runs.get_run(store, result.run_id)
    assert stored.status == "partial" and stored.output == "half an ans"
    assert stored.metrics["output_tokens"] is None and stored.metrics["input_tokens"] is None


async def test_failure_before_text_is_error(store: Store) -> None:
    Scripted.script = [("fail", BackendError("rate limited (HTTP 429)", kind="rate_limited"))]
    result = await _engine(store, FakeClock()).run(SPEC, [{"role": "user", "content": "q"}])
    assert result.status == "error" and result.output == ""
    assert runs.get_run(store, result.run_id).error == "fake: rate limited (HTTP 429)"


async def test_unexpected_exception_is_recorded_not_raised(store: Store) -> None:
    Scripted.script = [("text", "a"), ("fail", RuntimeError("backend bug"))]
    result = await _engine(store, FakeClock()).run(SPEC, [{"role": "user", "content": "q"}])
    assert result.status == "partial" and "RuntimeError: backend bug" in (result.error or "")


async def test_cancel_records_cancelled(store: Store) -> None:
    Scripted.script = [("text", "start"), ("hang", None)]
    engine = _engine(store, FakeClock())
    task = asyncio.create_task(engine.run(SPEC, [{"role": "user", "content": "q"}]))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [run] = runs.list_runs(store)
    assert run.status == "cancelled" and run.output == "start"


async def test_running_is_written_as_the_call_starts(store: Store) -> None:
    seen_status: list[str] = []

    class Peek(Scripted):
        async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk | Done]:
            # The row is written alongside the request going out: while the call is
            # under way it is there, as `running`.
            for _ in range(100):
                seen = [r.status for r in runs.list_runs(store)]
                if seen:
                    break
                await asyncio.sleep(0.01)
            seen_status.extend(seen)
            yield Done(1, 1)

    engine = Engine(load_settings(), store, backend_classes={"scripted": Peek})
    await engine.run(SPEC, [{"role": "user", "content": "q"}])
    assert seen_status == ["running"]
    assert runs.mark_interrupted(store) == 0


async def test_local_runs_are_costed_by_wall_time(store: Store) -> None:
    Scripted.script = [("wait", 1.0), ("text", "a"), ("wait", 0.8), ("text", "b"), ("done", Done(3, 2))]
    spec = ModelSpec("local", "local", {"model": "x"})
    result = await _engine(store, FakeClock(), price=3.6).run(spec, [{"role": "user", "content": "q"}])
    assert result.metrics.cost_usd == pytest.approx(3.6 * 1.8 / 3600)
    assert "local at $3.6/h" in result.metrics.cost_source


async def test_backend_is_reused(store: Store) -> None:
    engine = _engine(store, FakeClock())
    assert engine.backend(SPEC) is engine.backend(SPEC)


def test_broken_plugin_is_a_warning_not_a_crash(monkeypatch) -> None:
    from importlib.metadata import EntryPoint

    from workbench.backends import base

    broken = EntryPoint(name="broken", value="no_such_module_xyz:Backend", group=base.ENTRY_POINT_GROUP)
    real = base.entry_points
    monkeypatch.setattr(
        base, "entry_points", lambda group: [*real(group=group), broken]
    )
    assert {"llama_cpp", "openai", "litellm", "broken"} <= set(base.available_backends())
    with pytest.warns(UserWarning, match="broken"), pytest.raises(BackendError, match="failed to load"):
        base.load_backend("broken")
    with pytest.raises(BackendError, match="unknown backend 'nope'"):
        base.load_backend("nope")
    assert base.load_backend("llama_cpp").name == "llama_cpp"


def test_discovery_imports_no_backend(tmp_path) -> None:
    import subprocess
    import sys

    code = (
        "import sys\nfrom workbench.backends.base import available_backends\n"
        "names = available_backends()\n"
        "loaded = [m for m in sys.modules if m.startswith('workbench.backends.') and m != 'workbench.backends.base']\n"
        "heavy = [m for m in ('llama_cpp', 'litellm', 'openai') if m in sys.modules]\n"
        "print(sorted(names), loaded, heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True)
    assert out.stdout.strip() == "['echo', 'litellm', 'llama_cpp', 'openai'] [] []"


def test_tpot_is_null_when_everything_came_in_one_chunk() -> None:
    t = metrics.timing(submitted=1.0, first_chunk=1.5, last_chunk=1.5, output_tokens=6)
    assert t["tpot_ms"] is None and t["tokens_per_s"] is None and t["ttft_ms"] == 500.0


async def test_credentials_in_the_environment_are_scrubbed(store: Store, monkeypatch) -> None:
    monkeypatch.setenv("SOMEPROVIDER_API_KEY", "sk-env-canary-000111222")
    Scripted.script = [("fail", BackendError("401 for Bearer sk-env-canary-000111222", kind="auth"))]
    result = await _engine(store, FakeClock()).run(SPEC, [{"role": "user", "content": "q"}])
    assert "sk-env-canary" not in (result.error or "") and "***" in (result.error or "")
    assert "sk-env-canary" not in (runs.get_run(store, result.run_id).error or "")
