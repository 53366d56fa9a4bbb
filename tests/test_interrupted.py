"""Runs left `running` by a dead process become `interrupted`; live ones are left alone.
End to end: `kill -9` during `workbench run`, then the next start marks the run."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.models import demo_model_path
from workbench.storage import runs
from workbench.storage.db import Store
from workbench.storage.models import Run, utcnow


def _running(store: Store, owner: str | None) -> str:
    run_id = runs.new_run_id()
    with store.write() as session:
        session.add(Run(id=run_id, created_at=utcnow(), status="running", owner=owner,
                        model="m", backend="b", model_info={}, params={}, variables={},
                        messages=[]))
    return run_id


def test_dead_owners_runs_are_interrupted(store: Store, tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    host = socket.gethostname()
    dead = _running(store, f"{host}:{gone.pid}")
    legacy = _running(store, None)
    mine = _running(store, runs.process_owner())
    elsewhere = _running(store, "another-host.example:1")
    assert runs.mark_interrupted(store) == 2
    status = {r.id: r.status for r in runs.list_runs(store)}
    assert status == {dead: "interrupted", legacy: "interrupted", mine: "running",
                      elsewhere: "running"}
    assert runs.mark_interrupted(store) == 0


@pytest.mark.skipif(demo_model_path() is None, reason="demo extra not installed")
def test_kill_9_mid_run_then_next_start_marks_it(tmp_path: Path, isolated_env: Path) -> None:
    script = str(Path(sys.executable).parent / "workbench")
    proc = subprocess.Popen(
        [script, "run", "smollm2", "-m", "Write a very long story.", "--max-tokens", "2000"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=tmp_path,
    )
    assert proc.stdout is not None
    proc.stdout.read(20)  # text is streaming: the run is under way
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    db = isolated_env / "data" / "workbench" / "workbench.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT status FROM run").fetchall() == [("running",)]
    later = subprocess.run(
        [script, "run", str(tmp_path / "missing.gguf"), "-m", "hi"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )
    assert later.returncode == 1
    with sqlite3.connect(db) as conn:
        statuses = sorted(s for (s,) in conn.execute("SELECT status FROM run"))
    assert statuses == ["error", "interrupted"]
