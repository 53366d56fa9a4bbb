"""App start-up: launch to the first screen ready, Workbench against a bare Textual app.

Each run is a whole new process (``python bench/app_startup.py --child KIND``), started
with a fresh temp HOME and XDG folders that hold a small seeded store (``--prompts``
prompts, committed through the store's repository functions before timing). The clock
is ``time.perf_counter`` (CLOCK_MONOTONIC on Linux, shared by every process): the parent
reads it just before spawning, the child reads it at its first screen ready and writes
it to a file, so the figure covers interpreter start-up, imports, settings, mounting and
the first refresh.

- bare: an ``App`` composing a Header, a TextArea and a Footer; ready is ``on_mount``
  then ``call_after_refresh`` (the first screen laid out and painted).
- workbench: what the ``workbench`` command does without arguments
  (``workbench.start.open_app``: the settings, the app; run); ready is the Prompts screen showing the seeded
  prompts: the ``#prompts`` DataTable holds every row and ``#status`` no longer says
  ``loading...`` (the list comes from SQLite in a worker thread), then the refresh after
  that. An asyncio task beside the app checks this every millisecond, through public
  attributes only.

Both run headless by default (``app.run_async(headless=True, size=(120, 40))``: layout
and every widget's rendering run; only writing to a terminal is skipped). ``--pty``
runs both under a pseudo-terminal with Textual's real terminal driver instead.

Pairs are interleaved (the order alternates pair by pair) after one warm-up pair.

Goal: Workbench's time to first screen ready at most 1.5x the bare app's (median ratio).

Usage: python bench/app_startup.py [--runs 15] [--prompts 5] [--pty]
Run from an installed environment (``workbench`` importable by this Python).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZE = (120, 40)
CHILD_TIMEOUT_S = 60.0


# --- the children: each runs one app until its first screen is ready, then exits --------


def _child_bare(out: Path, headless: bool) -> None:
    from textual.app import App, ComposeResult
    from textual.widgets import Footer, Header, TextArea

    class Bare(App[None]):
        def compose(self) -> ComposeResult:
            yield Header()
            yield TextArea("bare")
            yield Footer()

        def on_mount(self) -> None:
            self.call_after_refresh(self.bench_ready)

        def bench_ready(self) -> None:
            out.write_text(json.dumps({"ready": time.perf_counter()}))
            self.exit()

    app = Bare()
    asyncio.run(app.run_async(headless=headless, size=SIZE))
    sys.exit(app.return_code or 0)


def _child_workbench(out: Path, headless: bool, prompts: int) -> None:
    from workbench.start import open_app  # what the `workbench` script imports first

    app = open_app()  # what `workbench` without arguments runs

    def ready_now() -> bool:
        try:
            screen = app.screen
        except Exception:  # no screen yet
            return False
        table, status = screen.query("#prompts"), screen.query("#status")
        if not screen.is_mounted or not table or not status:
            return False
        return (
            getattr(table.first(), "row_count", 0) >= prompts
            and "loading" not in str(status.first().render())
        )

    async def watch() -> None:
        while not ready_now():
            await asyncio.sleep(0.001)

        def done() -> None:
            out.write_text(json.dumps({"ready": time.perf_counter()}))
            app.exit()

        app.call_after_refresh(done)

    async def main() -> None:
        watcher = asyncio.create_task(watch())
        await app.run_async(headless=headless, size=SIZE)
        watcher.cancel()

    asyncio.run(main())
    sys.exit(app.return_code or 0)


# --- the parent ---------------------------------------------------------------------------


def _seed(env: dict[str, str], prompts: int) -> None:
    code = (
        "from workbench.config import load_settings\n"
        "from workbench.domain import Message, PromptContent\n"
        "from workbench.storage import repo\n"
        "from workbench.storage.db import open_store\n"
        "store = open_store(load_settings().database.url)\n"
        f"for i in range({prompts}):\n"
        "    content = PromptContent(messages=(Message(role='user',\n"
        "        content=f'Summarise {{{{ text }}}} in {i + 1} lines.'),))\n"
        "    repo.commit(store, repo.Draft(f'prompt-{i}', content, 'a seeded prompt'),\n"
        "                message='seed', author='bench')\n"
        "store.close()\n"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True)


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")}
    env["HOME"] = str(home)
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"),
                     ("XDG_CACHE_HOME", "cache"), ("XDG_STATE_HOME", "state")):
        (home / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(home / sub)
    env["WORKBENCH_USER__NAME"] = "bench"
    env.setdefault("TERM", "xterm-256color")
    return env


def _run_pty(cmd: list[str], env: dict[str, str]) -> int:
    """Run ``cmd`` on a pseudo-terminal of SIZE, draining its output; its exit status."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", SIZE[1], SIZE[0], 0, 0))
    proc = subprocess.Popen(cmd, env=env, stdin=slave, stdout=slave, stderr=slave,
                            start_new_session=True)
    os.close(slave)
    deadline = time.monotonic() + CHILD_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            readable, _, _ = select.select([master], [], [], 0.05)
            if readable:
                try:
                    if not os.read(master, 65536):
                        break
                except OSError:  # EIO: the child closed the terminal
                    break
            elif proc.poll() is not None:
                break
        return proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)


def _launch(kind: str, env: dict[str, str], args: argparse.Namespace) -> tuple[float, float]:
    """One process: (seconds from spawn to first screen ready, seconds to its exit)."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = Path(handle.name)
    cmd = [sys.executable, __file__, "--child", kind, "--out", str(out),
           "--prompts", str(args.prompts)] + (["--pty"] if args.pty else [])
    try:
        started = time.perf_counter()
        if args.pty:
            rc = _run_pty(cmd, env)
        else:
            done = subprocess.run(cmd, env=env, capture_output=True, timeout=CHILD_TIMEOUT_S)
            rc = done.returncode
        ended = time.perf_counter()
        text = out.read_text()
        if rc != 0 or not text:
            raise SystemExit(f"{kind} child failed (exit status {rc})")
        return json.loads(text)["ready"] - started, ended - started
    finally:
        out.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="interleaved pairs")
    parser.add_argument("--prompts", type=int, default=5, help="prompts seeded in the store")
    parser.add_argument("--pty", action="store_true", help="a pseudo-terminal, not headless")
    parser.add_argument("--child", choices=["bare", "workbench"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "bare":
        return _child_bare(args.out, headless=not args.pty)
    if args.child == "workbench":
        return _child_workbench(args.out, headless=not args.pty, prompts=args.prompts)

    with tempfile.TemporaryDirectory(prefix="app-startup-") as tmp:
        env = _env(Path(tmp))
        _seed(env, args.prompts)
        _launch("workbench", env, args), _launch("bare", env, args)  # warm-up: .pyc, page cache
        ours, base, ours_exit, base_exit = [], [], [], []
        for i in range(args.runs):
            order = ("workbench", "bare") if i % 2 == 0 else ("bare", "workbench")
            for kind in order:
                ready, whole = _launch(kind, env, args)
                (ours if kind == "workbench" else base).append(ready)
                (ours_exit if kind == "workbench" else base_exit).append(whole)
    ratios = [a / b for a, b in zip(ours, base, strict=True)]
    whole = [a / b for a, b in zip(ours_exit, base_exit, strict=True)]
    mode = "pty" if args.pty else "headless"
    print(f"app start-up ({mode}, {args.runs} interleaved pairs, {args.prompts} prompts, "
          f"{SIZE[0]}x{SIZE[1]})")
    print(f"  launch -> first screen ready: workbench median "
          f"{statistics.median(ours) * 1000:.0f} ms  bare median "
          f"{statistics.median(base) * 1000:.0f} ms")
    print(f"  ratio {statistics.median(ratios):.2f} (min {min(ratios):.2f}, max {max(ratios):.2f})"
          f"  goal <= 1.5: {'met' if statistics.median(ratios) <= 1.5 else 'NOT met'}")
    print(f"  whole process (to exit): ratio {statistics.median(whole):.2f} "
          f"(min {min(whole):.2f}, max {max(whole):.2f}); workbench "
          f"{statistics.median(ours_exit) * 1000:.0f} ms, bare "
          f"{statistics.median(base_exit) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
