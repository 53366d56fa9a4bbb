"""Sync under real concurrency and real outages: two stores in two OS processes pushing to
one PostgreSQL, and a registry stopped with ``pg_ctl stop -m immediate`` mid-push. Results
are checked with SQL on the registry."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from workbench.domain import Message, PromptContent
from workbench.storage import repo
from workbench.storage.db import open_store
from workbench.storage.outbox import pending
from workbench.storage.sync import RegistryUnavailable
from workbench.storage.sync_pull import pull
from workbench.storage.sync_push import push

WORKER = Path(__file__).parent / "support" / "sync_worker.py"
ROUNDS = 200


def registry_versions(url: str) -> dict[str, list[tuple[int, str]]]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text(
                "SELECT p.name, v.number, v.id FROM prompt_version v "
                "JOIN prompt p ON p.id = v.prompt_id ORDER BY p.name, v.number")).all()
    finally:
        engine.dispose()
    found: dict[str, list[tuple[int, str]]] = {}
    for name, number, vid in rows:
        found.setdefault(name, []).append((number, vid))
    return found


def test_two_processes_pushing_the_same_prompts_lose_nothing(postgres_url: str, tmp_path: Path) -> None:
    open_store(postgres_url).close()  # the schema, made once
    stores = {who: f"sqlite:///{tmp_path / who}.db" for who in ("ada", "bob")}
    workers = [subprocess.Popen([sys.executable, str(WORKER), url, postgres_url, who, str(ROUNDS)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=tmp_path)
               for who, url in stores.items()]
    for worker in workers:
        out, err = worker.communicate(timeout=900)
        assert worker.returncode == 0, err[-3000:]
        assert "0 conflicts" in out  # each moves only its own label
    found = registry_versions(postgres_url)
    for name in ("alpha", "beta"):
        numbers = [n for n, _ in found[name]]
        ids = [vid for _, vid in found[name]]
        assert numbers == list(range(1, 2 * ROUNDS + 1))  # no gap, no duplicate
        assert len(set(ids)) == len(ids) == 2 * ROUNDS  # nothing lost
    registry = open_store(postgres_url)
    for who, url in stores.items():
        local = open_store(url)
        pull(local, registry)
        assert pending(local).total == 0
        for name in ("alpha", "beta"):
            mine = sorted((v.number, v.id) for v in repo.log(local, name))
            assert mine == found[name], f"{who} numbers {name} differently"
            assert not any(v.provisional for v in repo.log(local, name))
        local.close()
    with registry.engine.connect() as connection:
        moves = connection.execute(text("SELECT count(*) FROM label_event")).scalar()
    assert moves == 2 * 2 * (ROUNDS // 10)
    registry.close()


def test_a_registry_stopped_mid_push_then_restarted_gets_everything_once(own_postgres, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.storage import sync_push

    url = own_postgres.new_database()
    registry = open_store(url)
    local = open_store(f"sqlite:///{tmp_path / 'ada.db'}")
    made = 0
    for prompt in range(20):
        for i in range(30):
            content = PromptContent(messages=(Message(role="user", content=f"p{prompt} v{i}"),))
            repo.commit(local, repo.Draft(name=f"p{prompt:02}", content=content), message="m",
                        author="ada")
            made += 1
    batches = 0
    stopped = threading.Event()

    def count_and_stop() -> None:
        nonlocal batches
        batches += 1
        if batches == 3:  # the registry dies after three batches were committed
            own_postgres.stop()
            stopped.set()

    monkeypatch.setattr(sync_push, "after_registry_commit", count_and_stop)
    with pytest.raises(RegistryUnavailable, match="wait in the outbox"):
        push(local, registry, batch=50)
    assert stopped.is_set()
    waiting = pending(local).waiting["version"]
    assert waiting == made - 3 * 50
    own_postgres.start()
    monkeypatch.setattr(sync_push, "after_registry_commit", None)
    deadline = time.monotonic() + 30
    while True:  # the pool's connections died with the server; pre-ping replaces them
        try:
            report = push(local, registry, batch=50)
            break
        except RegistryUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    assert report.waiting == 0 and not report.conflicts
    found = registry_versions(url)
    assert sum(len(rows) for rows in found.values()) == made
    for rows in found.values():
        assert [n for n, _ in rows] == list(range(1, 31))
    with registry.engine.connect() as connection:  # nothing half-written
        assert connection.execute(text(
            "SELECT count(*) FROM prompt_version v LEFT JOIN prompt_version p "
            "ON p.id = v.parent_id WHERE v.parent_id IS NOT NULL AND p.id IS NULL")).scalar() == 0
    local.close()
    registry.close()


@pytest.mark.parametrize("when", ["before the copy", "after the copy"])
def test_a_registry_stopped_during_a_batch_rolls_it_back(own_postgres, tmp_path: Path, when: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The server dies inside the registry's transaction (not between two): that batch is
    not there at all, and the next push sends it whole."""
    from workbench.storage import sync_send

    url = own_postgres.new_database()
    registry = open_store(url)
    local = open_store(f"sqlite:///{tmp_path / 'ada.db'}")
    for i in range(40):
        content = PromptContent(messages=(Message(role="user", content=f"v{i}"),))
        repo.commit(local, repo.Draft(name="greet", content=content), message="m", author="ada")
    name = "_copy" if when == "before the copy" else "_versions"
    real = getattr(sync_send, name)

    def dying(*args):  # type: ignore[no-untyped-def]
        if when == "before the copy":
            own_postgres.stop()
        real(*args)  # rows written (or not), never committed
        own_postgres.stop()

    monkeypatch.setattr(sync_send, name, dying)
    with pytest.raises(RegistryUnavailable):
        push(local, registry)
    monkeypatch.setattr(sync_send, name, real)
    own_postgres.start()
    assert pending(local).waiting["version"] == 40
    deadline = time.monotonic() + 30
    while True:
        try:
            push(local, registry)
            break
        except RegistryUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    assert [n for n, _ in registry_versions(url)["greet"]] == list(range(1, 41))
    local.close()
    registry.close()
