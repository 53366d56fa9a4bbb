"""Registry sync throughput: push 10,000 versions to a local PostgreSQL, pull them into a
fresh store; each against plain batched inserts of the same rows with the same driver.

A PostgreSQL server is started for the bench (initdb in a temp folder, as the tests do).
The local store (SQLite) holds ``--prompts`` x ``--versions`` versions, all waiting in the
outbox, made directly with SQL (committing 10,000 versions one by one would dominate the
set-up). Each round, in alternating order:

- push: ``sync_push.push(local, registry)`` into a fresh registry database, against the
  baseline: the same prompt and version rows inserted with SQLAlchemy Core over psycopg,
  500 rows per statement and transaction (push's batch size), into another fresh database.
- pull: ``sync_pull.pull(fresh, registry)`` into a fresh SQLite store, against the
  baseline: the same rows selected from the registry and inserted into a fresh SQLite
  store, 500 rows per statement, in one transaction (as pull does).

A small unmeasured round first warms both paths up. Figures: versions per second, and the
ratio workbench / baseline (goal at least 0.5).

Usage: python bench/registry_sync.py [--prompts 100] [--versions 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path


def start_postgres(root: Path) -> tuple[str, list[str]]:
    found = shutil.which("initdb")
    bindir = Path(found).parent if found else Path(sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1])
    prefix: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = root / "data"
    subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U",
                    "postgres", "--no-sync"], check=True, capture_output=True)
    subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"),
                    "-w", "-o", f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off", "start"],
                   check=True, capture_output=True)
    stop = [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}", stop


def new_database(server: str) -> str:
    import psycopg

    name = f"b_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server.replace("+psycopg", "") + "/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{server}/{name}"


def make_local(url: str, prompts: int, versions: int) -> tuple[list[dict], list[dict]]:
    """A store whose versions all wait in the outbox; returns the prompt and version rows."""
    from sqlalchemy import insert

    from workbench.domain import Message, PromptContent, version_id
    from workbench.storage.db import open_store
    from workbench.storage.models import Outbox, Prompt, PromptVersion, utcnow

    store = open_store(url)
    now = utcnow()
    prompt_rows, version_rows = [], []
    for p in range(prompts):
        name = f"prompt-{p:03}"
        prompt_rows.append({"id": p + 1, "name": name, "description": "bench", "tags": ["bench"],
                            "created_at": now})
        parent = None
        for n in range(1, versions + 1):
            content = PromptContent(messages=(
                Message(role="system", content=f"You answer support questions for product {p}. "
                                               "Be brief, cite the manual, never guess." * 2),
                Message(role="user", content=f"Version {n}: {{{{ question }}}}")))
            digest = content.content_hash()
            vid = version_id(name, parent, digest)
            data = content.canonical()
            version_rows.append({"id": vid, "prompt_id": p + 1, "number": n, "parent_id": parent,
                                 "content_hash": digest, "messages": data["messages"],
                                 "params": data["params"], "variables": data["variables"],
                                 "message": f"v{n}", "author": "bench", "created_at": now})
            parent = vid
    with store.engine.begin() as connection:
        connection.execute(insert(Prompt.__table__), prompt_rows)
        for start in range(0, len(version_rows), 500):
            connection.execute(insert(PromptVersion.__table__), version_rows[start:start + 500])
        connection.execute(insert(Outbox.__table__), [
            {"kind": "version", "key": v["id"], "state": "waiting", "detail": "", "created_at": now}
            for v in version_rows])
    store.close()
    return prompt_rows, version_rows


def baseline_push(url: str, prompt_rows: list[dict], version_rows: list[dict]) -> float:
    from sqlalchemy import insert

    from workbench.storage.db import open_store
    from workbench.storage.models import Prompt, PromptVersion

    store = open_store(url)  # the schema, made before the clock starts
    started = time.perf_counter()
    with store.engine.begin() as connection:
        connection.execute(insert(Prompt.__table__), prompt_rows)
    for start in range(0, len(version_rows), 500):
        with store.engine.begin() as connection:
            connection.execute(insert(PromptVersion.__table__), version_rows[start:start + 500])
    took = time.perf_counter() - started
    store.close()
    return took


def workbench_push(local_url: str, url: str) -> tuple[float, object]:
    from workbench.storage.db import open_store
    from workbench.storage.sync_push import push

    local, registry = open_store(local_url), open_store(url)
    started = time.perf_counter()
    report = push(local, registry)
    took = time.perf_counter() - started
    local.close()
    registry.close()
    return took, report


def baseline_pull(registry_url: str, fresh_url: str) -> float:
    from sqlalchemy import insert, select

    from workbench.storage.db import open_store
    from workbench.storage.models import Prompt, PromptVersion

    registry, fresh = open_store(registry_url), open_store(fresh_url)
    started = time.perf_counter()
    with registry.engine.connect() as source:
        prompts = [row._asdict() for row in source.execute(select(Prompt.__table__))]
        versions = [row._asdict() for row in source.execute(select(PromptVersion.__table__))]
    with fresh.engine.begin() as connection:
        connection.execute(insert(Prompt.__table__), prompts)
        for start in range(0, len(versions), 500):
            connection.execute(insert(PromptVersion.__table__), versions[start:start + 500])
    took = time.perf_counter() - started
    registry.close()
    fresh.close()
    return took


def workbench_pull(registry_url: str, fresh_url: str) -> float:
    from workbench.storage.db import open_store
    from workbench.storage.sync_pull import pull

    registry, fresh = open_store(registry_url), open_store(fresh_url)
    started = time.perf_counter()
    pull(fresh, registry)
    took = time.perf_counter() - started
    registry.close()
    fresh.close()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=100)
    parser.add_argument("--versions", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    total = args.prompts * args.versions
    with tempfile.TemporaryDirectory(prefix="registry-sync-") as tmp:
        root = Path(tmp)
        pg_root = Path(tempfile.mkdtemp(prefix="registry-sync-pg-"))  # postgres must own it
        server, stop = start_postgres(pg_root)
        try:
            # Warm-up, not measured: first-use costs (statement compilation, type adapters)
            # would otherwise fall on whichever side runs first.
            warm = f"sqlite:///{root / 'warm.db'}"
            prompt_rows, version_rows = make_local(warm, 2, 50)
            workbench_push(warm, new_database(server))
            baseline_push(new_database(server), prompt_rows, version_rows)
            figures: dict[str, list[float]] = {k: [] for k in ("push", "push0", "pull", "pull0")}
            for r in range(args.rounds):
                local = f"sqlite:///{root / f'local{r}.db'}"
                prompt_rows, version_rows = make_local(local, args.prompts, args.versions)
                registry = new_database(server)
                order = ("wb", "base") if r % 2 == 0 else ("base", "wb")
                for who in order:
                    if who == "wb":
                        took, report = workbench_push(local, registry)
                        assert report.waiting == 0 and report.pushed["versions"] == total, report
                        figures["push"].append(took)
                    else:
                        figures["push0"].append(baseline_push(new_database(server), prompt_rows,
                                                              version_rows))
                for who in order:
                    fresh = f"sqlite:///{root / f'fresh{r}-{who}.db'}"
                    key = "pull" if who == "wb" else "pull0"
                    run = workbench_pull if who == "wb" else baseline_pull
                    figures[key].append(run(registry, fresh))
                print(f"round {r + 1}: push {figures['push'][-1]:.2f} s (baseline "
                      f"{figures['push0'][-1]:.2f} s), pull {figures['pull'][-1]:.2f} s (baseline "
                      f"{figures['pull0'][-1]:.2f} s)", flush=True)
        finally:
            subprocess.run(stop, capture_output=True)
            shutil.rmtree(pg_root, ignore_errors=True)
    for what in ("push", "pull"):
        ours, base = statistics.median(figures[what]), statistics.median(figures[what + "0"])
        ratios = [b / o for o, b in zip(figures[what], figures[what + "0"], strict=True)]
        print(f"{what}: {total / ours:,.0f} versions/s vs plain batched inserts "
              f"{total / base:,.0f} versions/s; ratio {statistics.median(ratios):.2f} "
              f"({min(ratios):.2f}-{max(ratios):.2f}); goal at least 0.5")


if __name__ == "__main__":
    main()
