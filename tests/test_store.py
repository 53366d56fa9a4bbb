"""The prompt store on SQLite and PostgreSQL: numbering, immutability, labels, datasets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from workbench.domain import Message, Params, PromptContent, parse_ref, version_id
from workbench.errors import ConflictError, NotFoundError, ValidationError
from workbench.storage import repo
from workbench.storage.datasets import Case, get_dataset, list_datasets, save_dataset
from workbench.storage.db import Store, current_revision, open_store, upgrade
from workbench.storage.migrations import HEAD_REVISION


def draft(name: str = "greet", body: str = "Hello {{ name }}", **params: object) -> repo.Draft:
    content = PromptContent(
        messages=(Message(role="system", content="Be brief."), Message(role="user", content=body)),
        params=Params(**params),  # type: ignore[arg-type]
        variables={"name": None},
    )
    return repo.Draft(name=name, content=content, description="says hi", tags=("demo",))


def test_commit_numbers_and_ids(store: Store) -> None:
    first = repo.commit(store, draft(), message="first", author="ada")
    second = repo.commit(store, draft(body="Hi {{ name }}"), message="second", author="bob")
    assert (first.created, second.created) == (True, True)
    assert (first.version.number, second.version.number) == (1, 2)
    assert first.version.parent_id is None
    assert second.version.parent_id == first.version.id
    assert second.version.id == version_id("greet", first.version.id, second.version.content_hash)
    assert first.version.id == version_id("greet", None, first.version.content_hash)
    assert second.version.author == "bob" and second.version.message == "second"
    assert second.version.labels == ("latest",)


def test_identical_content_creates_nothing(store: Store) -> None:
    repo.commit(store, draft(), message="one", author="ada")
    again = repo.commit(store, draft(), message="again", author="ada")
    assert not again.created
    assert again.version.number == 1
    assert [v.number for v in repo.log(store, "greet")] == [1]


def test_content_hash_covers_params(store: Store) -> None:
    a = repo.commit(store, draft(temperature=0.2), message="a", author="x").version
    b = repo.commit(store, draft(temperature=0.3), message="b", author="x").version
    assert a.content_hash != b.content_hash and b.number == 2


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE prompt_version SET message = 'changed'",
        "UPDATE prompt_version SET messages = '[]'",
        "DELETE FROM prompt_version",
        "UPDATE label_event SET actor = 'mallory'",
        "DELETE FROM label_event",
    ],
)
def test_database_rejects_changing_history(store: Store, statement: str) -> None:
    repo.commit(store, draft(), message="one", author="ada")
    repo.set_label(store, parse_ref("greet@1"), "approved", actor="ada")
    version = repo.resolve(store, parse_ref("greet@1"))
    with pytest.raises(DBAPIError, match="immutable"), store.engine.begin() as conn:
        conn.execute(text(statement))
    assert repo.resolve(store, parse_ref("greet@1")) == version
    assert len(repo.label_history(store, "greet")) == 1


def test_labels_move_and_keep_history(store: Store) -> None:
    repo.commit(store, draft(), message="one", author="ada")
    repo.commit(store, draft(body="v2 {{ name }}"), message="two", author="ada")
    first = repo.set_label(store, parse_ref("greet@1"), "production", actor="ada")
    assert first is not None and (first.from_number, first.to_number) == (None, 1)
    assert repo.set_label(store, parse_ref("greet@1"), "production", actor="ada") is None
    moved = repo.set_label(store, parse_ref("greet@2"), "production", actor="bob")
    assert moved is not None and (moved.from_number, moved.to_number) == (1, 2)
    history = repo.label_history(store, "greet")
    assert [(m.label, m.from_number, m.to_number, m.actor) for m in history] == [
        ("production", None, 1, "ada"),
        ("production", 1, 2, "bob"),
    ]
    assert repo.resolve(store, parse_ref("greet:production")).number == 2
    assert repo.resolve(store, parse_ref("greet:latest")).number == 2
    assert repo.resolve(store, parse_ref("greet@latest")).number == 2
    assert repo.log(store, "greet")[0].labels == ("latest", "production")
    assert repo.list_prompts(store)[0].labels == {"production": 2}


def test_latest_is_reserved(store: Store) -> None:
    repo.commit(store, draft(), message="one", author="ada")
    with pytest.raises(ValidationError, match="latest"):
        repo.set_label(store, parse_ref("greet@1"), "latest", actor="ada")


@pytest.mark.parametrize(
    ("ref", "message"),
    [("nope", "unknown prompt 'nope'"), ("greet@9", "no version 9"), ("greet:gold", "no label")],
)
def test_unknown_references(store: Store, ref: str, message: str) -> None:
    repo.commit(store, draft(), message="one", author="ada")
    with pytest.raises(NotFoundError, match=message):
        repo.resolve(store, parse_ref(ref))


def test_list_prompts_and_search(store: Store) -> None:
    repo.commit(store, draft("alpha"), message="a", author="x")
    repo.commit(store, draft("beta"), message="b", author="x")
    repo.commit(store, draft("beta", body="again {{ name }}"), message="b2", author="x")
    assert [(p.name, p.latest) for p in repo.list_prompts(store)] == [("alpha", 1), ("beta", 2)]
    assert [p.name for p in repo.list_prompts(store, "bet")] == ["beta"]
    assert [p.name for p in repo.list_prompts(store, "BET")] == ["beta"]  # any case, any backend
    assert repo.list_prompts(store, "%") == []  # a wildcard character matches only itself
    assert repo.get_prompt(store, "alpha").tags == ("demo",)


def test_quick_prompt_list_agrees_with_the_store(store: Store) -> None:
    """The app's first screen reads the list with sqlite3 alone: it must say what repo says."""
    from workbench.storage.quick import list_prompts_quick, log_quick

    repo.commit(store, draft("alpha", temperature=0.2), message="a", author="x")
    repo.commit(store, draft("Beta"), message="b", author="x")
    repo.commit(store, draft("Beta", body="again {{ name }}"), message="b2", author="x")
    repo.set_label(store, parse_ref("Beta@1"), "production", actor="x")
    if not store.url.startswith("sqlite"):
        assert list_prompts_quick(store.url) is None  # PostgreSQL: the full store answers
        assert log_quick(store.url, "alpha") is None
        return
    for search in (None, "bet", "BETA", "zzz", "%"):
        assert list_prompts_quick(store.url, search) == repo.list_prompts(store, search)
    for name in ("alpha", "Beta"):
        assert log_quick(store.url, name) == repo.log(store, name)
    assert [v.labels for v in log_quick(store.url, "Beta")] == [("latest",), ("production",)]
    assert log_quick(store.url, "nope") is None  # repo says what is wrong
    assert {p.name: p.labels for p in list_prompts_quick(store.url)}["Beta"] == {"production": 1}
    with store.write() as session:  # linked to a registry: waiting versions are provisional
        session.exec(text("INSERT INTO sync_state (key, value) VALUES ('registry_id', 'r1')"))
        session.exec(text("DELETE FROM outbox WHERE key = (SELECT id FROM prompt_version "
                          "WHERE number = 1 AND prompt_id = (SELECT id FROM prompt WHERE name = 'Beta'))"))
    assert [v.provisional for v in repo.log(store, "Beta")] == [True, False]
    assert log_quick(store.url, "Beta") == repo.log(store, "Beta")
    with store.write() as session:  # an older schema: the full store must migrate it first
        session.exec(text("UPDATE alembic_version SET version_num = 'old'"))
    assert list_prompts_quick(store.url) is None


def test_datasets_round_trip(store: Store) -> None:
    cases = [
        Case({"q": "2+2", "n": 4}, "4", {"topic": "math"}),
        Case({"q": "capital of France"}, ["Paris", "paris"], {}),
        Case({"q": "ünïcode ✓"}),
    ]
    save_dataset(store, "qa", cases, source="qa.jsonl")
    info = get_dataset(store, "qa")
    assert info.size == 3
    assert [c.vars for c in info.cases] == [c.vars for c in cases]
    assert [c.expected for c in info.cases] == ["4", ["Paris", "paris"], None]
    assert info.cases[0].metadata == {"topic": "math"}
    with pytest.raises(ConflictError):
        save_dataset(store, "qa", cases)
    save_dataset(store, "qa", cases[:1], replace=True)
    assert [(d.name, d.size) for d in list_datasets(store)] == [("qa", 1)]
    with pytest.raises(NotFoundError):
        get_dataset(store, "missing")


def test_new_database_is_at_head(store: Store) -> None:
    assert current_revision(store) == HEAD_REVISION


def test_old_database_is_upgraded_keeping_data(db_url: str) -> None:
    old = Store(db_url)
    upgrade(old, "0001_prompts")
    assert current_revision(old) == "0001_prompts"
    content = draft().content
    data = content.canonical()
    with old.engine.begin() as conn:  # today's code expects today's tables: write it plainly
        conn.execute(text("INSERT INTO prompt (name, description, tags, created_at) "
                          "VALUES ('greet', '', '[]', '2026-01-01 00:00:00+00:00')"))
        conn.execute(
            text("INSERT INTO prompt_version (id, prompt_id, number, parent_id, content_hash, "
                 "messages, params, variables, message, author, created_at) VALUES (:id, 1, 1, "
                 "NULL, :hash, :messages, :params, :variables, 'made before datasets existed', "
                 "'ada', '2026-01-01 00:00:00+00:00')"),
            {"id": version_id("greet", None, content.content_hash()), "hash": content.content_hash(),
             "messages": json.dumps(data["messages"]), "params": json.dumps(data["params"]),
             "variables": json.dumps(data["variables"])})
    old.close()
    store = open_store(db_url)
    assert current_revision(store) == HEAD_REVISION
    assert repo.resolve(store, parse_ref("greet@1")).message == "made before datasets existed"
    save_dataset(store, "later", [Case({"a": 1})])
    from workbench.storage.outbox import pending

    # What existed before sync did waits to be pushed, like anything made since.
    assert pending(store).waiting == {"version": 1, "rubric": 0, "dataset": 1, "approval": 0,
                                      "label": 0, "prompt": 0}
    store.close()


def test_head_constant_and_models_match_migrations(store: Store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlmodel import SQLModel

    from workbench.storage import db, models  # noqa: F401

    scripts = ScriptDirectory(str(os.path.join(os.path.dirname(db.__file__), "migrations")))
    assert scripts.get_current_head() == HEAD_REVISION
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == []


def test_sqlite_pragmas(tmp_path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'p.db'}", busy_timeout_s=3)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 3000
    store.close()


COMMITTER = textwrap.dedent(
    """
    import sys
    from workbench.domain import Message, PromptContent
    from workbench.storage import repo
    from workbench.storage.db import open_store

    url, who, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = open_store(url)
    print("ready", flush=True)
    sys.stdin.readline()  # start together
    for i in range(count):
        content = PromptContent(messages=(Message(role="user", content=f"{who} {i}"),))
        repo.commit(store, repo.Draft("race", content), message=f"{who}{i}", author=who)
    """
)


def test_two_processes_commit_gapless(db_url: str, tmp_path) -> None:
    open_store(db_url).close()  # migrate once, so the race is about commits
    count = 15
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", COMMITTER, db_url, who, str(count)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            cwd=tmp_path,  # not the checkout, whose folders would shadow the installed package
        )
        for who in ("a", "b")
    ]
    for proc in procs:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            pytest.fail(f"committer did not start: {proc.communicate(timeout=30)[1]}")
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    store = open_store(db_url)
    versions = repo.log(store, "race")
    assert sorted(v.number for v in versions) == list(range(1, 2 * count + 1))
    assert len({v.id for v in versions}) == 2 * count
    # Each version's parent is the one numbered just before it: one linear history.
    by_number = {v.number: v for v in versions}
    for n in range(2, 2 * count + 1):
        assert by_number[n].parent_id == by_number[n - 1].id
    store.close()


def test_prompts_starting_alike_get_distinct_ids(store: Store) -> None:
    a = repo.commit(store, draft("alpha"), message="same text", author="x").version
    b = repo.commit(store, draft("beta"), message="same text", author="x").version
    assert a.content_hash == b.content_hash
    assert a.id != b.id


def test_concurrent_first_moves_of_a_label(store: Store) -> None:
    from concurrent.futures import ThreadPoolExecutor

    repo.commit(store, draft(), message="one", author="ada")
    with ThreadPoolExecutor(8) as pool:
        moves = list(
            pool.map(
                lambda i: repo.set_label(store, parse_ref("greet@1"), "gold", actor=f"u{i}"),
                range(8),
            )
        )
    assert sum(m is not None for m in moves) == 1
    assert len(repo.label_history(store, "greet", "gold")) == 1
