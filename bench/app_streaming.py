"""Compare streaming: four panes at once from a fast scripted backend, through the real app.

Each round builds a fresh app in fresh temp HOME/XDG folders: a config file (through
``WORKBENCH_CONFIG_FILE``) with one model ``long`` on the scripted backend of
``tests/support/scripted_backend.py`` (``--tokens`` chunks of one word each, ``--delay``
seconds apart), and a saved workspace of four variants on that model. The app is
``make_app(load_settings(), engine_options={"backend_classes": {"scripted":
ScriptedBackend}})`` driven by ``app.run_test()`` (headless: layout and every widget's
rendering run, on a virtual screen of ``--size``): F3 opens Compare, Ctrl+R starts the
four panes, the round ends when every pane has its final figures.

Measured, per round:

1. Tokens/s delivered to the screen: tokens appended to the panes' TextAreas (by
   ``StreamPane.flush``, wrapped) per second from the first append to the last, all four
   panes together; against the baseline of the same four scripted streams consumed raw
   (``ScriptedBackend.stream`` in ``asyncio.gather``, no engine, no UI), run in the same
   process just before. Ratio app/raw near 1: the app does not slow the stream down.
   Display lag: at each flush, the age of the oldest token it appends (p95, max).
2. Key-press latency: a thread stands in for the terminal's input thread. At random
   moments (every 40-120 ms) it reads ``perf_counter`` and hands ``app.simulate_key("f12")``
   to the event loop with ``call_soon_threadsafe`` (as a driver hands over a key); F12 is
   bound (``app.bind``) to a no-op action that reads ``perf_counter`` when it runs. The
   latency is the difference: time spent waiting for the event loop plus the key's trip
   through the bindings. p50/p95/max while streaming, against the same probe on the idle
   Compare screen just before Ctrl+R. Goal: p95 within 50 ms while streaming.
3. Cost per appended token, late against early: main-thread CPU time
   (``time.thread_time``) and wall time inside ``StreamPane.flush`` per token appended,
   for flushes that start at pane tokens 0-1,000 and at 19,000-20,000 (scaled to
   ``--tokens``). Also the main thread's whole CPU per token over the same windows
   (every pane's token count summed: everything on the event loop, the compositor's
   rendering of the panes included). Goal: late/early at most 1.5.

Usage: python bench/app_streaming.py [--rounds 3] [--tokens 20000] [--delay 0.0005]
       [--size 200x50]
Run from the repository root of an installed environment (the scripted backend is
imported from tests/support).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "support"))

PANES = 4
WINDOW = 1000
"""Tokens per pane in each cost window (the first and the last)."""
KEY = "f12"


def _set_env(home: Path, tokens: int, delay_s: float) -> None:
    """Point every folder the app uses at ``home``; write the config with model ``long``."""
    for key in list(os.environ):
        if key.startswith("WORKBENCH_"):
            del os.environ[key]
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"),
                     ("XDG_CACHE_HOME", "cache"), ("XDG_STATE_HOME", "state")):
        (home / sub).mkdir(parents=True, exist_ok=True)
        os.environ[var] = str(home / sub)
    os.environ["HOME"] = str(home)
    os.environ["WORKBENCH_USER__NAME"] = "bench"
    config = home / "config.toml"
    config.write_text(
        "[models.long]\n"
        'backend = "scripted"\n'
        'model = "long"\n'
        f"options = {{ tokens = {tokens}, delay_s = {delay_s} }}\n",
        encoding="utf-8",
    )
    os.environ["WORKBENCH_CONFIG_FILE"] = str(config)


# --- 1. the raw baseline -------------------------------------------------------------


async def raw_streams(tokens: int, delay_s: float) -> float:
    """Tokens/s of four scripted streams consumed directly (no engine, no UI)."""
    from scripted_backend import ScriptedBackend

    from workbench.backends.base import ChatRequest, Chunk

    backend = ScriptedBackend(ScriptedBackend.Options(model="long", tokens=tokens, delay_s=delay_s))
    request = ChatRequest(messages=[{"role": "user", "content": "go"}])

    async def one() -> int:
        return sum([isinstance(e, Chunk) async for e in backend.stream(request)])

    started = time.perf_counter()
    counts = await asyncio.gather(*(one() for _ in range(PANES)))
    return sum(counts) / (time.perf_counter() - started)


# --- probes ----------------------------------------------------------------------------


@dataclass
class Flush:
    start: int
    """The pane's token index of the first token this flush appended."""
    tokens: int
    cpu_s: float
    wall_s: float
    oldest_age_s: float
    at: float


@dataclass
class Probe:
    """Wraps StreamPane.add/flush; counts tokens and the main thread's CPU at milestones."""

    total_tokens: int
    flushes: list[Flush] = field(default_factory=list)
    added: int = 0
    milestones: dict[int, tuple[float, float]] = field(default_factory=dict)
    """Summed token count -> (main-thread CPU, wall) when it was reached."""

    def install(self) -> Any:
        from workbench.screens.compare import StreamPane

        probe, add, flush = self, StreamPane.add, StreamPane.flush
        marks = {0, PANES * WINDOW, PANES * (self.total_tokens - WINDOW), PANES * self.total_tokens}
        shown: dict[int, int] = {}
        first_pending: dict[int, float] = {}

        def timed_add(pane: Any, text: str) -> None:
            if not pane.pending:
                first_pending[id(pane)] = time.perf_counter()
            add(pane, text)
            if probe.added in marks:
                probe.milestones[probe.added] = (time.thread_time(), time.perf_counter())
            probe.added += 1

        def timed_flush(pane: Any) -> None:
            count = len(pane.pending)
            if not count:
                return flush(pane)
            age = time.perf_counter() - first_pending.get(id(pane), time.perf_counter())
            cpu, wall = time.thread_time(), time.perf_counter()
            flush(pane)
            cpu, done = time.thread_time() - cpu, time.perf_counter()
            start = shown.get(id(pane), 0)
            shown[id(pane)] = start + count
            probe.flushes.append(Flush(start, count, cpu, done - wall, age, done))

        StreamPane.add, StreamPane.flush = timed_add, timed_flush  # type: ignore[method-assign]

        def uninstall() -> None:
            StreamPane.add, StreamPane.flush = add, flush  # type: ignore[method-assign]

        return uninstall

    def window(self, lo: int, hi: int) -> tuple[float, float, int]:
        """Flush CPU and wall seconds per token, over flushes starting in [lo, hi)."""
        picked = [f for f in self.flushes if lo <= f.start < hi]
        tokens = sum(f.tokens for f in picked) or 1
        return sum(f.cpu_s for f in picked) / tokens, sum(f.wall_s for f in picked) / tokens, len(picked)

    def main_thread_cpu(self, lo: int, hi: int) -> float | None:
        """Main-thread CPU per token between two summed-token milestones."""
        if lo not in self.milestones or hi not in self.milestones:
            return None
        return (self.milestones[hi][0] - self.milestones[lo][0]) / (hi - lo)


class KeyProber:
    """A thread that presses F12 at random moments, as a terminal's input thread would."""

    def __init__(self, app: Any, loop: asyncio.AbstractEventLoop):
        self.app, self.loop = app, loop
        self.latencies: list[float] = []
        self._sent = 0.0
        self._answered = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def pong(self) -> None:
        """The no-op action F12 is bound to."""
        self.latencies.append(time.perf_counter() - self._sent)
        self._answered.set()

    def _run(self) -> None:
        rng = random.Random(7)
        while not self._stop.wait(rng.uniform(0.04, 0.12)):
            self._answered.clear()
            self._sent = time.perf_counter()
            self.loop.call_soon_threadsafe(self.app.simulate_key, KEY)
            self._answered.wait(5.0)

    def __enter__(self) -> KeyProber:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# --- 2. one round through the app --------------------------------------------------------


async def _until(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def app_round(args: argparse.Namespace, size: tuple[int, int]) -> dict[str, Any]:
    from scripted_backend import ScriptedBackend

    from workbench.config import load_settings
    from workbench.screens.app import make_app
    from workbench.workspace import VariantDraft, Workspace, workspace_path

    Workspace(
        variants=[VariantDraft(f"variant-{i}", [{"role": "user", "content": "go"}], {}, "long")
                  for i in range(PANES)],
        path=workspace_path(),
    ).save()
    app = make_app(load_settings(), engine_options={"backend_classes": {"scripted": ScriptedBackend}})
    probe = Probe(args.tokens)
    uninstall = probe.install()
    try:
        async with app.run_test(size=size) as pilot:
            loop = asyncio.get_running_loop()
            await pilot.press("f3")
            await _until(lambda: type(app.screen).__name__ == "CompareScreen", 30, "Compare")
            compare = app.screen
            await pilot.pause(0.3)
            prober = KeyProber(app, loop)
            app.bind(KEY, "bench_ping", show=False)
            app.action_bench_ping = prober.pong  # type: ignore[attr-defined]
            with prober:  # idle baseline: the Compare screen before Ctrl+R
                await asyncio.sleep(args.idle_s)
            idle = list(prober.latencies)
            prober = KeyProber(app, loop)
            app.action_bench_ping = prober.pong  # type: ignore[attr-defined]
            await pilot.press("ctrl+r")
            with prober:
                await _until(lambda: len(compare.panes) == PANES
                             and all(p.final is not None for p in compare.panes.values()),
                             600, "the four streams to finish")
            streaming = list(prober.latencies)
            texts = [p.query_one(".stream").text for p in compare.panes.values()]
            finals = [p.final for p in compare.panes.values()]
    finally:
        uninstall()
    for text, final in zip(texts, finals, strict=True):
        if len(text.split()) != args.tokens or not final.startswith("ok"):
            raise SystemExit(f"a pane did not show the whole stream: {len(text.split())} words, {final}")
    flushes = probe.flushes
    shown = sum(f.tokens for f in flushes)
    span = flushes[-1].at - flushes[0].at
    late_lo = args.tokens - WINDOW
    early, late = probe.window(0, WINDOW), probe.window(late_lo, args.tokens)
    main_early = probe.main_thread_cpu(0, PANES * WINDOW)
    main_late = probe.main_thread_cpu(PANES * late_lo, PANES * args.tokens)
    ages = sorted(f.oldest_age_s for f in flushes)
    return {
        "tokens_per_s": shown / span if span > 0 else 0.0,
        "lag_p95": _pct(ages, 95), "lag_max": ages[-1],
        "idle_keys": idle, "keys": streaming,
        "flush_early": early, "flush_late": late,
        "main_early": main_early, "main_late": main_late,
    }


def _pct(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def _range(values: list[float], fmt: str = ".2f") -> str:
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=20000, help="tokens per pane")
    parser.add_argument("--delay", type=float, default=0.0005, help="seconds between chunks")
    parser.add_argument("--size", default="200x50", help="virtual screen, COLSxROWS")
    parser.add_argument("--idle-s", type=float, default=2.0, help="idle key probing before Ctrl+R")
    args = parser.parse_args()
    cols, rows = (int(n) for n in args.size.split("x"))
    if args.tokens < 2 * WINDOW:
        parser.error(f"--tokens must be at least {2 * WINDOW}")

    rows_out: list[dict[str, Any]] = []
    for i in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="app-streaming-") as tmp:
            _set_env(Path(tmp), args.tokens, args.delay)
            raw = asyncio.run(raw_streams(args.tokens, args.delay))
            result = asyncio.run(app_round(args, (cols, rows)))
        result["raw_tokens_per_s"] = raw
        rows_out.append(result)
        e_cpu, l_cpu = result["flush_early"][0], result["flush_late"][0]
        print(f"round {i + 1}: screen {result['tokens_per_s']:.0f} tok/s (raw {raw:.0f}); "
              f"keys p95 {_pct(result['keys'], 95) * 1000:.1f} ms max "
              f"{max(result['keys']) * 1000:.1f} ms (n={len(result['keys'])}); flush CPU/token "
              f"{e_cpu * 1e6:.1f} -> {l_cpu * 1e6:.1f} us", flush=True)

    def med(key: str) -> list[float]:
        return [r[key] for r in rows_out]

    keys = [k for r in rows_out for k in r["keys"]]
    idle = [k for r in rows_out for k in r["idle_keys"]]
    ratio_rate = [r["tokens_per_s"] / r["raw_tokens_per_s"] for r in rows_out]
    flush_cpu = [r["flush_late"][0] / r["flush_early"][0] for r in rows_out]
    flush_wall = [r["flush_late"][1] / r["flush_early"][1] for r in rows_out]
    main_cpu = [r["main_late"] / r["main_early"] for r in rows_out if r["main_early"] and r["main_late"]]
    p95 = _pct(keys, 95)
    rate = statistics.median(med("tokens_per_s"))
    print(f"\ncompare streaming: {PANES} panes x {args.tokens} tokens, delay {args.delay}s, "
          f"{cols}x{rows}, {args.rounds} rounds (median, min-max over rounds)")
    print(f"  tokens/s to the screen   {_range(med('tokens_per_s'), '.0f')}  raw backend "
          f"{_range(med('raw_tokens_per_s'), '.0f')}  ratio app/raw {_range(ratio_rate)}  "
          f"goal >= 2000: {'met' if rate >= 2000 else 'NOT met'}")
    print(f"  display lag (oldest token at its flush)  p95 {_range(med('lag_p95'), '.3f')} s  "
          f"max {_range(med('lag_max'), '.3f')} s")
    print(f"  key latency, streaming   p50 {_pct(keys, 50) * 1000:.1f} ms  p95 {p95 * 1000:.1f} ms  "
          f"max {max(keys) * 1000:.1f} ms  (n={len(keys)})  goal p95 <= 50 ms: "
          f"{'met' if p95 <= 0.05 else 'NOT met'}")
    print(f"  key latency, idle        p50 {_pct(idle, 50) * 1000:.1f} ms  p95 "
          f"{_pct(idle, 95) * 1000:.1f} ms  max {max(idle) * 1000:.1f} ms  (n={len(idle)}); "
          f"streaming/idle p50 ratio {_pct(keys, 50) / _pct(idle, 50):.1f}")
    early_cpu = statistics.median([r["flush_early"][0] for r in rows_out])
    late_cpu = statistics.median([r["flush_late"][0] for r in rows_out])
    late_lo = args.tokens - WINDOW
    print(f"  flush CPU per token      tokens 0-{WINDOW}: {early_cpu * 1e6:.1f} us  "
          f"{late_lo}-{args.tokens}: {late_cpu * 1e6:.1f} us  ratio late/early {_range(flush_cpu)}  "
          f"goal <= 1.5: {'met' if statistics.median(flush_cpu) <= 1.5 else 'NOT met'}")
    print(f"  flush wall per token     ratio late/early {_range(flush_wall)}")
    if main_cpu:
        e = statistics.median([r["main_early"] for r in rows_out if r["main_early"]])
        la = statistics.median([r["main_late"] for r in rows_out if r["main_late"]])
        print(f"  main-thread CPU/token    early {e * 1e6:.1f} us  late {la * 1e6:.1f} us  "
              f"ratio late/early {_range(main_cpu)}")


if __name__ == "__main__":
    main()
