"""Reported TTFT, TPOT and E2E against a loopback server's own record of when it sent
each chunk (both sides read the same monotonic clock, ``time.perf_counter``).

This checks accuracy, not speed: chunks must be stamped when they arrive, and the
figures computed from those stamps as defined in workbench.metrics.
"""

from __future__ import annotations

import time

import pytest
from fault_server import FaultServer, Scenario

from workbench.config import load_settings
from workbench.engine import Engine
from workbench.models import ModelSpec
from workbench.storage.db import Store

# The openai client (the backend for OpenAI-compatible servers) hands a chunk over within
# about 1.3 ms of the server writing it on an idle machine; with the server thread in this
# process and other work on 2 cores, 3-6 ms were seen: the figures are held to 8 ms, far
# below the 150 ms stall and 40 ms gaps they must tell apart. litellm's stream wrapper adds
# its own work, up to about 7 ms on the first chunk of a stream on 2 busy cores; that is
# latency its users really see, so it is held to a looser bound.
TOLERANCE_MS = {"openai": 8.0, "litellm": 20.0}


class RecordingClock:
    """perf_counter, remembering its first reading: the engine's "request submitted"."""

    def __init__(self) -> None:
        self.first: float | None = None

    def __call__(self) -> float:
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        return now


@pytest.mark.parametrize("backend", ["openai", "litellm"])
async def test_reported_timings_match_what_the_server_sent(store: Store, backend: str) -> None:
    scenario = Scenario(kind="stall", stall_s=0.15, chunks=8, delay_s=0.04)
    with FaultServer(scenario) as server:
        spec = ModelSpec(
            "timed",
            backend,
            {"model": "openai/timed" if backend == "litellm" else "timed",
             "api_base": server.base_url, "provider": "openai"},
            provider=None,
        )
        engine = Engine(load_settings(), store)
        # Warm the client (imports, connection pool) so the timed call measures the stream.
        server.scenario = Scenario(kind="ok", chunks=2)
        await engine.run(spec, [{"role": "user", "content": "warm up"}])
        server.scenario = scenario
        clock = RecordingClock()
        engine.clock = clock
        for b in engine._backends.values():
            b.clock = clock
        result = await engine.run(spec, [{"role": "user", "content": "time me"}])
        await engine.aclose()
    assert result.status == "ok", result.error
    sent = server.sent_at[-1]
    assert len(sent) == 8 and clock.first is not None
    m = result.metrics
    expected_ttft = (sent[0] - clock.first) * 1000
    expected_e2e = (sent[-1] - clock.first) * 1000
    expected_tpot = (sent[-1] - sent[0]) * 1000 / (8 - 1)
    assert m.output_tokens == 8  # from usage, not from counting chunks
    assert m.ttft_ms == pytest.approx(expected_ttft, abs=TOLERANCE_MS[backend])
    assert m.e2e_ms == pytest.approx(expected_e2e, abs=TOLERANCE_MS[backend])
    assert m.tpot_ms == pytest.approx(expected_tpot, abs=TOLERANCE_MS[backend])
    assert m.ttft_ms >= 150  # the server stalled 0.15 s before the first chunk
