"""Eval harness figures: efficiency against a fixed-latency server, the cached re-run, and
promptfoo side by side.

A loopback OpenAI-compatible server (aiohttp, in this process) answers every chat
completion after exactly ``--latency`` seconds (streamed or not, as asked) and records
when each request arrived and finished, and how many were in flight. The suite is one
promptfoo config (so both tools run the very same file): 2 prompt variants x ``--cases``
cases against that server.

1. ``workbench eval promptfooconfig.yaml -j 8 --no-cache``, whole process. Harness
   efficiency = ideal / (last request's end - first request's start), ideal = calls x
   latency / concurrency. Goal: at least 0.9, never more than 8 in flight.
2. The same command again without ``--no-cache`` (three times, the median): every call
   answered from the cache. Goal: wall time at most 0.05x the first run's.
3. With ``--promptfoo``: ``npx promptfoo@0.120.0 eval -c promptfooconfig.yaml -j 8
   --no-cache`` against the same server, alternating with Workbench's run, whole process
   against whole process. Goal: Workbench at most 0.8x promptfoo's wall time.

Usage: python bench/eval_harness.py [--cases 500] [--latency 0.2] [--rounds 1] [--promptfoo]
Run from an installed environment (``workbench`` on PATH beside this Python).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from aiohttp import web


class LatencyServer:
    """Answers every chat completion after a fixed delay; records timings and in-flight."""

    def __init__(self, latency_s: float):
        self.latency_s = latency_s
        self.spans: list[tuple[float, float]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.loop = asyncio.new_event_loop()
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._ready = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> LatencyServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def reset(self) -> None:
        self.spans.clear()
        self.max_in_flight = 0

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/chat/completions", self._chat)
        runner = web.AppRunner(app, access_log=None)
        self.loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", self.port, backlog=256)
        self.loop.run_until_complete(site.start())
        self._ready.set()
        self.loop.run_forever()

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        start = time.perf_counter()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            body = await request.json()
            await asyncio.sleep(self.latency_s)
            text = "ok: " + str(body["messages"][-1]["content"])[:40]
            usage = {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16}
            if not body.get("stream"):
                return web.json_response({
                    "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": text}}],
                    "usage": usage,
                })
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            chunk = {"id": "x", "object": "chat.completion.chunk", "created": 0,
                     "model": body["model"]}
            for piece in (text[:10], text[10:]):
                delta = {**chunk, "choices": [{"index": 0, "delta": {"content": piece},
                                               "finish_reason": None}]}
                await response.write(f"data: {json.dumps(delta)}\n\n".encode())
            end = {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                   "usage": usage}
            await response.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
            await response.write_eof()
            return response
        finally:
            self.in_flight -= 1
            self.spans.append((start, time.perf_counter()))


def write_suite(folder: Path, base_url: str, cases: int) -> Path:
    with (folder / "tests.csv").open("w") as handle:
        handle.write("question,__expected\n")
        for i in range(cases):
            handle.write(f"What is item {i}?,contains:ok\n")
    config = folder / "promptfooconfig.yaml"
    config.write_text(
        "description: harness efficiency\n"
        "prompts:\n"
        "  - 'Answer briefly: {{question}}'\n"
        "  - 'Answer in detail: {{question}}'\n"
        "providers:\n"
        "  - id: openai:chat:bench-model\n"
        "    config:\n"
        f"      apiBaseUrl: {base_url}\n"
        "      apiKey: not-a-real-key\n"
        "      temperature: 0\n"
        "tests: file://tests.csv\n"
    )
    return config


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    return time.perf_counter() - start, done.returncode, done.stderr[-2000:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=500)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--promptfoo", action="store_true", help="also time promptfoo 0.120.0")
    args = parser.parse_args()

    server = LatencyServer(args.latency).start()
    folder = Path(tempfile.mkdtemp(prefix="workbench-bench-"))
    config = write_suite(folder, server.base_url, args.cases)
    env = {**os.environ, "XDG_DATA_HOME": str(folder / "data"),
           "XDG_CONFIG_HOME": str(folder / "config"), "XDG_CACHE_HOME": str(folder / "cache"),
           "PROMPTFOO_DISABLE_TELEMETRY": "1", "PROMPTFOO_DISABLE_UPDATE": "1",
           "PROMPTFOO_DISABLE_SHARING": "1", "PROMPTFOO_CONFIG_DIR": str(folder / "promptfoo")}
    workbench = str(Path(sys.executable).parent / "workbench")
    calls = 2 * args.cases
    ideal = calls * args.latency / args.concurrency
    ours_cmd = [workbench, "eval", str(config), "-j", str(args.concurrency), "--no-cache",
                "-o", str(folder / "results.json")]
    theirs_cmd = [shutil.which("npx") or "npx", "--yes", "promptfoo@0.120.0", "eval", "-c",
                  str(config), "-j", str(args.concurrency), "--no-cache",
                  "-o", str(folder / "promptfoo.json")]

    rows: list[dict[str, Any]] = []
    for round_no in range(args.rounds):
        server.reset()
        wall, code, err = timed(ours_cmd, folder, env)
        if code not in (0, 1):
            raise SystemExit(f"workbench eval failed ({code}):\n{err}")
        first, last = min(s for s, _ in server.spans), max(e for _, e in server.spans)
        row: dict[str, Any] = {
            "round": round_no + 1,
            "workbench_wall_s": wall,
            "calls_seen": len(server.spans),
            "span_s": last - first,
            "efficiency": ideal / (last - first),
            "max_in_flight": server.max_in_flight,
        }
        server.reset()
        cached_walls = []
        for _ in range(3):  # short and noisy: the median of three
            cached, code, err = timed(ours_cmd[:-3] + ["-o", str(folder / "cached.json")], folder, env)
            if code not in (0, 1):
                raise SystemExit(f"cached workbench eval failed ({code}):\n{err}")
            cached_walls.append(cached)
        cached_wall = statistics.median(cached_walls)
        cached_rows = json.loads((folder / "cached.json").read_text())["results"]
        row.update(cached_wall_s=cached_wall, cached_ratio=cached_wall / wall,
                   cached_calls=len(server.spans),
                   cached_rows=sum(r["cached"] for r in cached_rows))
        if args.promptfoo:
            server.reset()
            their_wall, code, err = timed(theirs_cmd, folder, env)
            if code not in (0, 100):
                raise SystemExit(f"promptfoo failed ({code}):\n{err}")
            row.update(promptfoo_wall_s=their_wall, promptfoo_calls=len(server.spans),
                       promptfoo_max_in_flight=server.max_in_flight,
                       vs_promptfoo=wall / their_wall)
        rows.append(row)
        print(json.dumps(row), flush=True)

    def med(key: str) -> float:
        return statistics.median(r[key] for r in rows)

    print(f"\nideal {ideal:.1f} s ({calls} calls x {args.latency * 1000:.0f} ms / {args.concurrency})")
    print(f"harness efficiency (median): {med('efficiency'):.3f}  goal >= 0.9; "
          f"max in flight {max(r['max_in_flight'] for r in rows)} (limit {args.concurrency})")
    print(f"workbench wall {med('workbench_wall_s'):.2f} s; cached re-run {med('cached_wall_s'):.2f} s"
          f" = {med('cached_ratio'):.3f}x  goal <= 0.05")
    if args.promptfoo:
        print(f"promptfoo wall {med('promptfoo_wall_s'):.2f} s; workbench/promptfoo "
              f"{med('vs_promptfoo'):.3f}x  goal <= 0.8")
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
