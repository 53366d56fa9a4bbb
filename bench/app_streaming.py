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

1. Tokens/s delivered to the screen: tokens appended to the panes' text (by
   ``StreamPane.flush``, wrapped) per second from the first append to the last, all four
   panes together; against the baseline of the same four scripted streams consumed raw
   (``ScriptedBackend.stream`` in ``asyncio.gather``, no engine, no UI), run in the same
   process just before. Ratio app/raw near 1: the app does not slow the stream down.
   Goal: at least 2,000 tokens/s, every round finished. Display lag: at each flush, the
   age of the oldest token it appends (p95, max).
2. Key-press latency: a thread stands in for the terminal's input thread. At random
   moments (every 40-120 ms) it reads ``perf_counter`` and hands ``app.simulate_key("f12")``
   to the event loop with ``call_soon_threadsafe`` (as a driver hands over a key); F12 is
   bound (``app.bind``) to a no-op action that reads ``perf_counter`` when it runs. The
   latency is the difference: time spent waiting for the event loop plus the key's trip
   through the bindings. p50/p95/max while streaming, against the same probe on the idle
   Compare screen just before Ctrl+R. Goal: p95 within 50 ms while streaming.
3. Cost per appended token, late against early: main-thread CPU time
   (``time.thread_time``) and wall time inside ``StreamPane.flush`` per token appended,
   for flushes that start at pane tokens 0-1,000 and in the last 1,000 (19,000-20,000).
   Also the main thread's whole CPU per token over the same windows (every pane's token
   count summed: everything on the event loop, the compositor's rendering of the panes
   included, which happens after ``flush`` returns). Goal: late/early at most 1.5.
   A diagnostic compares the late window with tokens 1,000-2,000 too: until a pane is
   full its appends do not scroll it, which makes the first window cheaper.

A round that has not finished after ``--max-s`` seconds is cancelled (Esc) and measured
on what reached the screen: the late window is then the last tokens shown (half of
them, at most 1,000 per pane), and the throughput goal is reported as not met.

Usage: python bench/app_streaming.py [--rounds 3] [--tokens 20000] [--delay 0.0005]
       [--size 200x50] [--max-s 150] [--idle-s 2]
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
SAMPLE = 200
"""Summed tokens between readings of the main thread's CPU time."""


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
    """Wraps StreamPane.add/flush: the flushes, and the main thread's CPU as tokens arrive."""

    flushes: list[Flush] = field(default_factory=list)
    added: int = 0
    samples: list[tuple[int, float, float]] = field(default_factory=lambda: [(0, 0.0, 0.0)])
    """(tokens added, all panes summed; main-thread CPU; perf_counter), every SAMPLE tokens."""
    shown: dict[int, int] = field(default_factory=dict)
    """Tokens appended to each pane's text so far."""

    def install(self) -> Any:
        from workbench.screens.compare import StreamPane

        probe, add, flush = self, StreamPane.add, StreamPane.flush
        first_pending: dict[int, float] = {}

        def timed_add(pane: Any, text: str) -> None:
            if not pane.pending:
                first_pending[id(pane)] = time.perf_counter()
            add(pane, text)
            if probe.added % SAMPLE == 0:
                probe.samples.append((probe.added, time.thread_time(), time.perf_counter()))
            probe.added += 1

        def timed_flush(pane: Any) -> None:
            count = len(pane.pending)
            if not count:
                return flush(pane)
            age = time.perf_counter() - first_pending.get(id(pane), time.perf_counter())
            cpu, wall = time.thread_time(), time.perf_counter()
            flush(pane)
            cpu, done = time.thread_time() - cpu, time.perf_counter()
            start = probe.shown.get(id(pane), 0)
            probe.shown[id(pane)] = start + count
            probe.flushes.append(Flush(start, count, cpu, done - wall, age, done))

        StreamPane.add, StreamPane.flush = timed_add, timed_flush  # type: ignore[method-assign]

        def uninstall() -> None:
            StreamPane.add, StreamPane.flush = add, flush  # type: ignore[method-assign]

        return uninstall

    def window(self, lo: int, hi: int) -> tuple[float, float, int]:
        """Flush CPU and wall seconds per token, over flushes starting in [lo, hi)."""
        picked = [f for f in self.flushes if lo <= f.start < hi]
        tokens = sum(f.tokens for f in picked) or 1
        cpu, wall = sum(f.cpu_s for f in picked), sum(f.wall_s for f in picked)
        return cpu / tokens, wall / tokens, len(picked)

    def span(self, lo: int, hi: int) -> tuple[float, float]:
        """Main-thread CPU per token and tokens/s between summed token counts lo and hi."""
        a = min(self.samples[1:], key=lambda s: abs(s[0] - lo))
        b = min(self.samples[1:], key=lambda s: abs(s[0] - hi))
        n = max(1, b[0] - a[0])
        return (b[1] - a[1]) / n, n / max(1e-9, b[2] - a[2])


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

    async def __aenter__(self) -> KeyProber:
        self._thread.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        # Joined off the event loop: the thread may be waiting for its last key, which
        # only the event loop can handle.
        self._stop.set()
        await asyncio.to_thread(self._thread.join)


# --- 2. one round through the app --------------------------------------------------------


async def _until(condition: Any, timeout_s: float, what: str | None) -> bool:
    """Wait for ``condition``; False after ``timeout_s`` (an error where ``what`` is named)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            if what is None:
                return False
            raise SystemExit(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
    return True


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
    app = make_app(load_settings(),
                   engine_options={"backend_classes": {"scripted": ScriptedBackend}})
    probe = Probe()
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
            async with prober:  # idle baseline: the Compare screen before Ctrl+R
                await asyncio.sleep(args.idle_s)
            idle = list(prober.latencies)
            prober = KeyProber(app, loop)
            app.action_bench_ping = prober.pong  # type: ignore[attr-defined]
            await pilot.press("ctrl+r")
            async with prober:
                finished = await _until(
                    lambda: len(compare.panes) == PANES
                    and all(p.final is not None for p in compare.panes.values()),
                    args.max_s, None)
            streaming = list(prober.latencies)
            if finished:
                texts = [p.query_one(".stream").text for p in compare.panes.values()]
                finals = [p.final or "" for p in compare.panes.values()]
            else:  # over the time limit: cancel (Esc), measure what was reached
                app.simulate_key("escape")
                await _until(lambda: not any(w.is_running for w in compare.workers), 120,
                             "the cancelled streams to stop")
    finally:
        uninstall()
    if finished:
        for text, final in zip(texts, finals, strict=True):
            if len(text.split()) != args.tokens or not final.startswith("ok"):
                raise SystemExit(f"a pane did not show the whole stream: "
                                 f"{len(text.split())} words, {final}")
    flushes = probe.flushes
    reached = min(probe.shown.values()) if len(probe.shown) == PANES else 0
    window = min(WINDOW, reached // 2)  # a round cut off early: two halves of what was shown
    if window < 50:
        raise SystemExit(f"only {reached} tokens per pane reached the screen in {args.max_s} s")
    late_lo = reached - window
    ages = sorted(f.oldest_age_s for f in flushes)
    shown = sum(f.tokens for f in flushes)
    main_early, rate_early = probe.span(0, PANES * window)
    main_second, _ = probe.span(PANES * window, PANES * 2 * window)
    main_late, rate_late = probe.span(PANES * late_lo, PANES * reached)
    return {
        "finished": finished, "reached": reached, "window": window,
        "tokens_per_s": shown / max(1e-9, flushes[-1].at - flushes[0].at),
        "rate_early": rate_early, "rate_late": rate_late,
        "lag_p95": _pct(ages, 95), "lag_max": ages[-1],
        "idle_keys": idle, "keys": streaming,
        "flush_early": probe.window(0, window), "flush_late": probe.window(late_lo, reached),
        "flush_second": probe.window(window, 2 * window), "main_second": main_second,
        "main_early": main_early, "main_late": main_late,
    }


def _pct(values: list[float], pct: float) -> float:
    ordered = sorted(values) or [float("nan")]
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def _ratios(results: list[dict[str, Any]], top: str, bottom: str) -> list[float]:
    """Per round, ``top / bottom`` (a flush window's CPU per token is its first item)."""

    def value(r: dict[str, Any], key: str) -> float:
        return r[key][0] if isinstance(r[key], tuple) else r[key]

    return [value(r, top) / value(r, bottom) for r in results]


def _range(values: list[float], fmt: str = ".2f") -> str:
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=20000, help="tokens per pane")
    parser.add_argument("--delay", type=float, default=0.0005, help="seconds between chunks")
    parser.add_argument("--size", default="200x50", help="virtual screen, COLSxROWS")
    parser.add_argument("--idle-s", type=float, default=2.0, help="idle key probing before Ctrl+R")
    parser.add_argument("--max-s", type=float, default=150.0,
                        help="per round: past this, cancel and measure the tokens reached")
    args = parser.parse_args()
    cols, rows = (int(n) for n in args.size.split("x"))
    if args.tokens < 2 * WINDOW:
        parser.error(f"--tokens must be at least {2 * WINDOW}")

    results: list[dict[str, Any]] = []
    for i in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="app-streaming-") as tmp:
            _set_env(Path(tmp), args.tokens, args.delay)
            raw = asyncio.run(raw_streams(args.tokens, args.delay))
            r = asyncio.run(app_round(args, (cols, rows)))
        r["raw_tokens_per_s"] = raw
        results.append(r)
        print(f"round {i + 1}: {'finished' if r['finished'] else 'CUT OFF at --max-s'}, "
              f"{r['reached']} tokens/pane shown; screen {r['tokens_per_s']:.0f} tok/s "
              f"(raw backend {raw:.0f}); keys p95 {_pct(r['keys'], 95) * 1000:.1f} ms; "
              f"flush CPU/token {r['flush_early'][0] * 1e6:.1f} -> "
              f"{r['flush_late'][0] * 1e6:.1f} us; main-thread CPU/token "
              f"{r['main_early'] * 1e6:.0f} -> {r['main_late'] * 1e6:.0f} us", flush=True)

    def col(key: str, index: int | None = None) -> list[float]:
        return [r[key] if index is None else r[key][index] for r in results]

    def ratio(key: str, index: int | None = None) -> list[float]:
        late, early = col(f"{key}_late", index), col(f"{key}_early", index)
        return [a / b for a, b in zip(late, early, strict=True)]

    keys = [k for r in results for k in r["keys"]]
    idle = [k for r in results for k in r["idle_keys"]]
    reached, window = min(col("reached")), min(col("window"))
    early, late = f"0-{window}", f"{reached - window}-{reached}"
    rate = statistics.median(col("tokens_per_s"))
    p95 = _pct(keys, 95)
    cost = statistics.median(ratio("flush", 0))
    main_cost = statistics.median(ratio("main"))
    print(f"\ncompare streaming: {PANES} panes x {args.tokens} tokens, delay {args.delay} s, "
          f"{cols}x{rows}, {args.rounds} rounds (median, min-max over rounds)")
    if not all(col("finished")):
        print(f"  NOT all rounds finished within --max-s {args.max_s:.0f} s: the late window is "
              f"the last {window} tokens shown (at least {reached} per pane)")
    print(f"  tokens/s to the screen  {_range(col('tokens_per_s'), '.0f')}; raw backend "
          f"{_range(col('raw_tokens_per_s'), '.0f')}; ratio app/raw "
          f"{_range([a / b for a, b in zip(col('tokens_per_s'), col('raw_tokens_per_s'))])}  "
          f"goal >= 2000: {'met' if rate >= 2000 and all(col('finished')) else 'NOT met'}")
    print(f"  tokens/s, tokens {early} vs {late} per pane: {_range(col('rate_early'), '.0f')} vs "
          f"{_range(col('rate_late'), '.0f')}")
    print(f"  display lag (oldest token at its flush): p95 {_range(col('lag_p95'), '.3f')} s, "
          f"max {_range(col('lag_max'), '.3f')} s")
    print(f"  key latency streaming: p50 {_pct(keys, 50) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, "
          f"max {_pct(keys, 100) * 1000:.1f} ms (n={len(keys)})  goal p95 <= 50 ms: "
          f"{'met' if p95 <= 0.05 else 'NOT met'}")
    print(f"  key latency idle:      p50 {_pct(idle, 50) * 1000:.1f} ms, "
          f"p95 {_pct(idle, 95) * 1000:.1f} ms, "
          f"max {_pct(idle, 100) * 1000:.1f} ms (n={len(idle)}); streaming/idle p95 "
          f"{p95 / _pct(idle, 95):.1f}x")
    print(f"  StreamPane.flush CPU per token: tokens {early} "
          f"{_range([c * 1e6 for c in col('flush_early', 0)], '.1f')} us, {late} "
          f"{_range([c * 1e6 for c in col('flush_late', 0)], '.1f')} us; ratio late/early "
          f"{_range(ratio('flush', 0))}  goal <= 1.5: {'met' if cost <= 1.5 else 'NOT met'}")
    print(f"  StreamPane.flush wall per token: ratio late/early {_range(ratio('flush', 1))}")
    if reached >= 3 * window:  # a late window apart from the second one
        second = f"{window}-{2 * window}"
        flush_2nd = _range(_ratios(results, "flush_late", "flush_second"))
        main_2nd = _range(_ratios(results, "main_late", "main_second"))
        print(f"  diagnostic, against tokens {second} (once a pane is full, every append "
              f"scrolls it): flush CPU late/{second} {flush_2nd}, main-thread CPU "
              f"late/{second} {main_2nd}")
    print(f"  main-thread CPU per token (rendering included): "
          f"{_range([c * 1e6 for c in col('main_early')], '.0f')} us -> "
          f"{_range([c * 1e6 for c in col('main_late')], '.0f')} us; ratio late/early "
          f"{_range(ratio('main'))}  goal <= 1.5: {'met' if main_cost <= 1.5 else 'NOT met'}")


if __name__ == "__main__":
    main()
