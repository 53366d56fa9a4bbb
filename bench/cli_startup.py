"""Start-up of `workbench --help` and `workbench prompts list`, as ratios to baselines.

Baselines, run interleaved in the same invocation (the machine is shared and noisy):
- `--help` against a bare click program printing its help (the floor of any click CLI);
- `prompts list` against a script that imports sqlalchemy and lists one table of the same
  SQLite file (the floor of any SQLAlchemy-based command).

Usage: python bench/cli_startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BARE_CLICK = "import click\n@click.command()\ndef main():\n    'Bare.'\nmain(['--help'])"
BARE_SQLA = (
    "import sys\nfrom sqlalchemy import create_engine, text\n"
    "e = create_engine(sys.argv[1])\n"
    "with e.connect() as c:\n    print(c.execute(text('SELECT name FROM prompt')).all())"
)


def _time(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def _pair(name: str, cmd: list[str], base: list[str], env: dict[str, str], runs: int) -> None:
    _time(cmd, env), _time(base, env)  # warm-up: page cache, .pyc files
    ours, theirs = [], []
    for _ in range(runs):
        ours.append(_time(cmd, env))
        theirs.append(_time(base, env))
    ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
    print(
        f"{name:<28} median {statistics.median(ours) * 1000:7.1f} ms  "
        f"baseline {statistics.median(theirs) * 1000:7.1f} ms  "
        f"ratio {statistics.median(ratios):.2f} (min {min(ratios):.2f}, max {max(ratios):.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    script = str(Path(sys.executable).parent / "workbench")
    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, XDG_DATA_HOME=home, XDG_CONFIG_HOME=home)
        subprocess.run([script, "prompts", "list"], env=env, check=True, capture_output=True)
        url = f"sqlite:///{home}/workbench/workbench.db"
        py = sys.executable
        _pair("workbench --help", [script, "--help"], [py, "-c", BARE_CLICK], env, args.runs)
        _pair(
            "workbench prompts list",
            [script, "prompts", "list"],
            [py, "-c", BARE_SQLA, url],
            env,
            args.runs,
        )


if __name__ == "__main__":
    main()
