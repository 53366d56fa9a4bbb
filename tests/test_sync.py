"""Push and pull between local stores (SQLite files) and a registry (the fixture's real
PostgreSQL), checked through the API and with SQL on the registry."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from workbench.domain import Message, PromptContent, Ref, parse_ref
from workbench.errors import StoreConflictError
from workbench.storage import repo, transfer
from workbench.storage.approvals import approve, audit, protect
from workbench.storage.datasets import Case, get_dataset, save_dataset
from workbench.storage.db import Store, open_store
from workbench.storage.outbox import pending
from workbench.storage.sync import RegistryUnavailable, SyncReport
from workbench.storage.sync_pull import pull
from workbench.storage.sync_push import push


def commit(store: Store, name: str, body: str, author: str = "ada") -> repo.VersionInfo:
    content = PromptContent(messages=(Message(role="user", content=body),))
    return repo.commit(store, repo.Draft(name=name, content=content), message=body,
                       author=author).version


@pytest.fixture
def registry(postgres_url: str):
    opened = open_store(postgres_url)
    yield opened
    opened.close()


@pytest.fixture
def ada(tmp_path: Path):
    opened = open_store(f"sqlite:///{tmp_path / 'ada.db'}")
    yield opened
    opened.close()


@pytest.fixture
def bob(tmp_path: Path):
    opened = open_store(f"sqlite:///{tmp_path / 'bob.db'}")
    yield opened
    opened.close()


def numbering(store: Store, name: str) -> dict[str, int]:
    """Version id -> number, as the store shows it."""
    return {v.id: v.number for v in repo.log(store, name)}


def shared(ada: Store, bob: Store, registry: Store, *bodies: str) -> None:
    """Ada commits greet's versions and pushes; Bob pulls them."""
    for body in bodies:
        commit(ada, "greet", body)
    push(ada, registry)
    pull(bob, registry)


def race(registry: Store, label: str, first: tuple[Store, str, int],
         second: tuple[Store, str, int]) -> SyncReport:
    """Two people move ``label`` (``(store, who, to greet@N)`` each); the first pushes first
    and wins. Returns the second's push report, which meets the conflict."""
    for store, who, number in (first, second):
        repo.set_label(store, parse_ref(f"greet@{number}"), label, actor=who)
    assert not push(first[0], registry).conflicts
    return push(second[0], registry)


def registry_rows(registry: Store, name: str) -> list[tuple[int, str]]:
    with registry.engine.connect() as connection:
        return [tuple(r) for r in connection.execute(text(
            "SELECT v.number, v.id FROM prompt_version v JOIN prompt p ON p.id = v.prompt_id "
            "WHERE p.name = :n ORDER BY v.number"), {"n": name})]


def test_push_then_pull_gives_the_same_versions_and_labels(ada: Store, bob: Store,
                                                           registry: Store) -> None:
    commit(ada, "greet", "one")
    commit(ada, "greet", "two")
    repo.set_label(ada, parse_ref("greet@1"), "production", actor="ada")
    approve(ada, parse_ref("greet@2"), actor="ada", comment="reads well")
    save_dataset(ada, "cases", [Case({"name": "Ada"}), Case({"name": "Bob"}, expected="hi")])
    report = push(ada, registry)
    assert report.pushed["versions"] == 2 and report.waiting == 0 and not report.conflicts
    assert pending(ada).total == 0
    assert [n for n, _ in registry_rows(registry, "greet")] == [1, 2]
    with registry.engine.connect() as connection:  # JSON there, not a string of JSON
        assert connection.execute(text(
            "SELECT messages->0->>'content' FROM prompt_version WHERE number = 2")).scalar() == "two"

    pulled = pull(bob, registry)
    assert pulled.pulled["versions"] == 2 and pulled.pulled["datasets"] == 1
    assert numbering(bob, "greet") == numbering(ada, "greet")
    assert repo.resolve(bob, parse_ref("greet:production")).number == 1
    assert repo.resolve(bob, parse_ref("greet:approved")).number == 2
    assert [(e.kind, e.label, e.to_number, e.who) for e in audit(bob, "greet")] == \
        [(e.kind, e.label, e.to_number, e.who) for e in audit(ada, "greet")]
    assert get_dataset(bob, "cases").cases == get_dataset(ada, "cases").cases
    # Pulled work is not pushed back, and pulling again changes nothing.
    assert pending(bob).total == 0
    again = pull(bob, registry)
    assert sum(again.pulled.values()) == 0


def test_two_people_from_the_same_parent_both_keep_their_versions(ada: Store, bob: Store,
                                                                 registry: Store) -> None:
    commit(ada, "greet", "base")
    push(ada, registry)
    pull(bob, registry)
    mine = commit(ada, "greet", "ada's idea")
    theirs = commit(bob, "greet", "bob's idea")
    assert mine.parent_id == theirs.parent_id and mine.number == theirs.number == 2
    assert repo.log(ada, "greet")[0].provisional  # not in the registry yet
    push(ada, registry)
    report = push(bob, registry)
    # Bob's version was ~2; the registry had a 2 already, so his is 3 everywhere.
    assert report.numbered == ["greet@3 (was ~2)"]
    pull(ada, registry)
    assert numbering(ada, "greet") == numbering(bob, "greet")
    assert numbering(ada, "greet")[mine.id] == 2 and numbering(ada, "greet")[theirs.id] == 3
    assert [n for n, _ in registry_rows(registry, "greet")] == [1, 2, 3]
    assert not any(v.provisional for v in repo.log(ada, "greet"))


def test_offline_work_waits_and_goes_when_the_registry_is_back(ada: Store, registry: Store,
                                                               tmp_path: Path) -> None:
    commit(ada, "greet", "one")
    unreachable = Store("postgresql+psycopg://nobody@127.0.0.1:9/none")  # nobody answers
    with pytest.raises(RegistryUnavailable, match="1 change.*wait in the outbox"):
        push(ada, unreachable)
    commit(ada, "greet", "two")
    assert pending(ada).waiting["version"] == 2
    push(ada, registry)
    assert [n for n, _ in registry_rows(registry, "greet")] == [1, 2]


def test_a_retry_after_a_lost_acknowledgement_creates_no_duplicate(
        ada: Store, registry: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.storage import sync_push

    commit(ada, "greet", "one")
    commit(ada, "greet", "two")
    repo.set_label(ada, parse_ref("greet@2"), "production", actor="ada")
    approve(ada, parse_ref("greet@2"), actor="ada", comment="ok")

    def lost() -> None:
        raise ConnectionError("the acknowledgement never came")

    monkeypatch.setattr(sync_push, "after_registry_commit", lost)
    with pytest.raises(ConnectionError):
        push(ada, registry)
    assert pending(ada).total == 5  # nothing cleared here: the registry's answer was lost
    monkeypatch.setattr(sync_push, "after_registry_commit", None)
    report = push(ada, registry)
    assert not report.conflicts and report.waiting == 0
    with registry.engine.connect() as connection:
        counts = [connection.execute(text(f"SELECT count(*) FROM {t}")).scalar()
                  for t in ("prompt_version", "label_event", "approval")]
    assert counts == [2, 2, 1]  # production and approved moved once each


def test_the_same_label_moved_at_once_gives_one_winner_and_a_named_conflict(
        ada: Store, bob: Store, registry: Store) -> None:
    commit(ada, "greet", "one")
    repo.set_label(ada, parse_ref("greet@1"), "production", actor="ada")
    shared(ada, bob, registry, "two", "three")
    report = race(registry, "production", (ada, "ada", 2), (bob, "bob", 3))
    assert report.conflicts == [report.conflicts[0]]
    assert "greet:production" in report.conflicts[0]
    assert "from @1 to @3" in report.conflicts[0] and "registry has it at @2" in report.conflicts[0]
    assert "moved by ada" in report.conflicts[0]
    assert pending(bob).conflicts == report.conflicts
    with registry.engine.connect() as connection:  # ada's move stands, nothing overwritten
        assert connection.execute(text(
            "SELECT v.number FROM label l JOIN prompt_version v ON v.id = l.version_id "
            "WHERE l.name = 'production'")).scalar() == 2
    # Bob's store now shows the registry's pointer; his move is still on record.
    assert repo.resolve(bob, parse_ref("greet:production")).number == 2
    assert [m.to_number for m in repo.label_history(bob, "greet", "production")][-1] in (2, 3)


def test_resolving_a_conflict_with_mine_or_theirs(ada: Store, bob: Store, registry: Store) -> None:
    from workbench.registry_link import resolve

    commit(ada, "greet", "one")
    repo.set_label(ada, parse_ref("greet@1"), "staging", actor="ada")
    shared(ada, bob, registry, "two", "three")
    assert race(registry, "staging", (ada, "ada", 2), (bob, "bob", 3)).conflicts
    said = resolve(bob, registry, "greet", "staging", mine=True, actor="bob")
    assert "yours is in the registry" in said
    assert pending(bob).conflicts == []
    pull(ada, registry)
    assert repo.resolve(ada, parse_ref("greet:staging")).number == 3
    # The other way: keep theirs.
    assert race(registry, "staging", (ada, "ada", 1), (bob, "bob", 2)).conflicts
    assert "kept the registry's" in resolve(bob, registry, "greet", "staging", mine=False,
                                            actor="bob")
    assert repo.resolve(bob, parse_ref("greet:staging")).number == 1
    assert pending(bob).total == 0


def test_protected_in_the_registry_means_approved_there(ada: Store, registry: Store) -> None:
    commit(ada, "greet", "one")
    push(ada, registry)
    protect(registry, "production", actor="lead")
    repo.set_label(ada, parse_ref("greet@1"), "production", actor="ada")  # not protected here
    report = push(ada, registry)
    assert report.conflicts and "protected in the registry" in report.conflicts[0]
    # The pull brought the registry's rule here: the next attempt is refused locally.
    from workbench.storage.approvals import protected

    assert protected(ada) == {"production": "approval"}


def test_pull_renumbers_provisional_versions_after_the_registry(ada: Store, bob: Store,
                                                               registry: Store) -> None:
    commit(bob, "greet", "bob one")
    commit(bob, "greet", "bob two")
    push(bob, registry)
    offline = [commit(ada, "greet", f"ada {i}") for i in range(3)]
    assert [v.number for v in offline] == [1, 2, 3]
    report = pull(ada, registry)
    assert report.pulled["versions"] == 2
    shown = {v.id: (v.number, v.provisional) for v in repo.log(ada, "greet")}
    assert [shown[v.id] for v in offline] == [(3, True), (4, True), (5, True)]
    push(ada, registry)
    assert [n for n, _ in registry_rows(registry, "greet")] == [1, 2, 3, 4, 5]
    assert {v.id: v.number for v in repo.log(ada, "greet")}[offline[0].id] == 3


def test_a_final_number_cannot_change_in_any_store(ada: Store, registry: Store) -> None:
    version = commit(ada, "greet", "one")
    with ada.engine.begin() as connection:  # still provisional: the sync may renumber it
        connection.execute(text("UPDATE prompt_version SET number = 7 WHERE id = :i"),
                           {"i": version.id})
    push(ada, registry)
    for store in (ada, registry):
        with pytest.raises(StoreConflictError, match="immutable|final"), store.write() as s:
            s.execute(text("UPDATE prompt_version SET number = 9"))
        with pytest.raises(StoreConflictError, match="immutable"), store.write() as s:
            s.execute(text("UPDATE prompt_version SET message = 'x'"))


def test_rubrics_and_dataset_changes_travel(ada: Store, bob: Store, registry: Store) -> None:
    from workbench.rubrics import Rubric
    from workbench.storage.rubrics import commit_rubric, list_rubrics

    rubric = Rubric.model_validate({"name": "tone", "criteria": [
        {"name": "polite", "description": "1 rude, 5 polite", "scale": "1-5"}]})
    commit_rubric(ada, rubric, message="first", author="ada")
    save_dataset(ada, "cases", [Case({"name": "Ada"})])
    push(ada, registry)
    pull(bob, registry)
    assert [r.ref for r in list_rubrics(bob)] == ["tone@1"]
    save_dataset(bob, "cases", [Case({"name": "Bob"})], replace=True)
    push(bob, registry)
    pull(ada, registry)
    assert get_dataset(ada, "cases").cases == (Case({"name": "Bob"}, None, {}),)


def describe(store: Store, name: str, body: str, description: str, tags: list[str]) -> None:
    content = PromptContent(messages=(Message(role="user", content=body),))
    repo.commit(store, repo.Draft(name, content, description, tags), message="m", author="ada")


def details(store: Store, name: str) -> tuple[str, list[str]]:
    info = next(p for p in repo.list_prompts(store) if p.name == name)
    return info.description, list(info.tags)


def test_a_prompts_description_and_tags_travel(ada: Store, bob: Store, registry: Store) -> None:
    from workbench.storage.outbox import waiting_text

    describe(ada, "greet", "hello", "says hello", ["demo"])
    shared(ada, bob, registry)
    assert details(bob, "greet") == ("says hello", ["demo"])
    # A new description with the same messages makes no version, but it waits to go.
    describe(ada, "greet", "hello", "greets the customer", ["demo", "support"])
    assert len(repo.log(ada, "greet")) == 1
    assert waiting_text(pending(ada).waiting) == "1 prompt detail"
    assert push(ada, registry).pushed["prompt details"] == 1 and pending(ada).total == 0
    with registry.engine.connect() as connection:
        assert tuple(connection.execute(text(
            "SELECT description, tags::text FROM prompt WHERE name = 'greet'")).one()) == \
            ("greets the customer", '["demo", "support"]')
    assert pull(bob, registry).pulled["prompt details"] == 1
    assert details(bob, "greet") == ("greets the customer", ["demo", "support"])
    # Bob's own change waits: a pull keeps it, and his push is the last word.
    describe(bob, "greet", "hello", "bob's words", [])
    describe(ada, "greet", "hello", "ada's words", ["a"])
    push(ada, registry)
    assert pull(bob, registry).pulled["prompt details"] == 0
    assert details(bob, "greet") == ("bob's words", [])
    push(bob, registry)
    pull(ada, registry)
    assert details(ada, "greet") == details(bob, "greet") == ("bob's words", [])
    # Edits before a push go once, as they are then.
    describe(ada, "greet", "hello", "one", [])
    describe(ada, "greet", "hello", "two", [])
    assert pending(ada).waiting["prompt"] == 1


def test_prompt_details_changed_during_a_push_wait_for_the_next(
        ada: Store, bob: Store, registry: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.storage import sync_push

    describe(ada, "greet", "hello", "first words", [])
    push(ada, registry)
    describe(ada, "greet", "hello", "second words", [])
    monkeypatch.setattr(sync_push, "after_registry_commit",
                        lambda: describe(ada, "greet", "hello", "third words", ["late"]))
    push(ada, registry)
    monkeypatch.setattr(sync_push, "after_registry_commit", None)
    assert pending(ada).waiting["prompt"] == 1  # "second words" went; "third" waits
    push(ada, registry)
    pull(bob, registry)
    assert details(bob, "greet") == ("third words", ["late"])


def test_a_waiting_description_goes_to_a_new_registry(ada: Store, bob: Store, registry: Store,
                                                      postgres_server) -> None:
    describe(ada, "greet", "hello", "orig", [])
    push(ada, registry)
    other = open_store(postgres_server.new_database())
    try:
        pull(bob, registry)
        push(bob, other)  # the other registry has greet, described "orig"
        describe(ada, "greet", "hello", "ada's new words", ["x"])
        push(ada, other)  # switching registries queues everything again: ours still goes
        assert details(ada, "greet") == ("ada's new words", ["x"])
        pull(bob, other)
        assert details(bob, "greet") == ("ada's new words", ["x"])
    finally:
        other.close()


def test_a_dataset_replaced_in_the_registry_after_ours_is_a_conflict(ada: Store, bob: Store,
                                                                    registry: Store) -> None:
    save_dataset(ada, "cases", [Case({"n": 1})])
    save_dataset(bob, "cases", [Case({"n": 2})])
    push(bob, registry)  # bob's is newer than ada's
    report = push(ada, registry)
    assert report.conflicts and "dataset cases" in report.conflicts[0]
    assert get_dataset(ada, "cases").cases[0].vars == {"n": 1}  # ada's kept here


def test_status_and_pending_work_offline(ada: Store) -> None:
    commit(ada, "greet", "one")
    repo.set_label(ada, Ref(name="greet", number=1), "staging", actor="ada")
    assert pending(ada).waiting["version"] == 1 and pending(ada).waiting["label"] == 1


def test_the_cli_pushes_pulls_shows_provisional_numbers_and_resolves(
        postgres_url: str, isolated_env: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from workbench.cli import cli

    def run(who: str, *args: str, url: str = postgres_url):  # type: ignore[no-untyped-def]
        env = {"WORKBENCH_DATABASE__URL": f"sqlite:///{tmp_path / who}.db",
               "WORKBENCH_REGISTRY__URL": url, "WORKBENCH_USER__NAME": who}
        return CliRunner().invoke(cli, list(args), env=env)

    prompt = tmp_path / "greet.yaml"
    prompt.write_text("name: greet\nmessages:\n  - role: user\n    content: Hello\n")
    assert run("ada", "prompts", "commit", str(prompt), "-m", "first").exit_code == 0
    said = run("ada", "registry", "status")
    assert "waiting to be pushed: 1 version" in said.output, said.output
    pushed = run("ada", "registry", "push")
    assert pushed.exit_code == 0 and "pushed: 1 version\n" in pushed.output, pushed.output
    pulled = run("bob", "registry", "pull")
    assert "pulled: 1 version\n" in pulled.output, pulled.output
    assert "greet@1" in run("bob", "prompts", "log", "greet").output
    # A version made after linking is provisional until pushed.
    prompt.write_text("name: greet\nmessages:\n  - role: user\n    content: Hello there\n")
    made = run("ada", "prompts", "commit", str(prompt), "-m", "second")
    assert made.stdout == "greet@2\n" and "greet@~2 until pushed" in made.stderr
    assert "greet@~2" in run("ada", "prompts", "log", "greet").output
    down = run("ada", "registry", "push", url="postgresql+psycopg://ada:s3cret@127.0.0.1:1/reg")
    assert down.exit_code == 1 and "cannot be reached" in down.output + down.stderr
    assert "s3cret" not in down.output + down.stderr
    assert run("ada", "registry", "push").exit_code == 0
    assert "greet@2 " in run("ada", "prompts", "log", "greet").output
    # The same label moved by both: one wins, the other is told and resolves.
    run("bob", "registry", "pull")
    run("ada", "prompts", "label", "greet@1", "production")
    run("ada", "registry", "push")
    run("bob", "prompts", "label", "greet@2", "production")
    refused = run("bob", "registry", "push")
    assert refused.exit_code == 1 and "greet:production" in refused.stderr, refused.output
    listed = run("bob", "registry", "status", "--json")
    assert listed.exit_code == 0 and "greet:production" in listed.output
    settled = run("bob", "registry", "resolve", "greet", "production", "--theirs")
    assert settled.exit_code == 0 and "kept the registry's" in settled.output, settled.output
    assert "greet:production" not in run("bob", "registry", "status").output
    assert "no conflict" in run("bob", "registry", "resolve", "greet", "production",
                                "--theirs").stderr
    # With a registry, protecting a label protects it there (a pull brings it to everyone).
    said = run("ada", "registry", "protect", "production")
    assert said.exit_code == 0 and "in the registry and here" in said.output, said.output
    run("bob", "registry", "pull")
    assert "production" in run("bob", "registry", "protected").output
    refused = run("bob", "prompts", "label", "greet@2", "production")
    assert refused.exit_code == 1 and "protected" in refused.stderr


def test_runs_go_as_summaries_when_asked(ada: Store, registry: Store) -> None:
    from workbench.storage.runs import RunStart, finish_run, start_run
    from workbench.storage.sync_runs import push_runs

    version = commit(ada, "greet", "Hello {{ name }}")
    done = start_run(ada, RunStart(model="echo", backend="echo", messages=[
        {"role": "user", "content": "Hello secret-customer-name"}], variables={"name": "x"},
        prompt_version_id=version.id))
    finish_run(ada, done, status="ok", output="private answer", error=None,
               metrics={"e2e_ms": 12.5, "output_tokens": 3, "cost_usd": 0.0})
    start_run(ada, RunStart(model="echo", backend="echo", messages=[]))  # still running: stays
    push(ada, registry)
    assert push_runs(ada, registry) == (1, 0)
    assert push_runs(ada, registry) == (0, 0)  # nothing twice
    with registry.engine.connect() as connection:
        row = connection.execute(text("SELECT * FROM run")).mappings().one()
    assert row["id"] == done and row["prompt_version_id"] == version.id
    assert (row["e2e_ms"], row["output_tokens"], row["status"]) == (12.5, 3, "ok")
    assert row["output"] == "" and "secret-customer-name" not in str(dict(row))


def test_a_deadlocked_batch_is_sent_again(ada: Store, registry: Store,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL rolls a deadlocked transaction back whole: sending the batch again is
    right, and saying "cannot be reached" would be wrong."""
    from sqlalchemy.exc import OperationalError

    from workbench.storage import sync_push

    class Deadlock(Exception):
        sqlstate = "40P01"

    real, calls = sync_push.send, []

    def once_deadlocked(connection, work):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("UPDATE ...", {}, Deadlock("deadlock detected"))
        return real(connection, work)

    monkeypatch.setattr(sync_push, "send", once_deadlocked)
    commit(ada, "greet", "one")
    assert push(ada, registry).waiting == 0 and len(calls) == 2
    assert [n for n, _ in registry_rows(registry, "greet")] == [1]


def test_a_dataset_saved_during_a_push_waits_for_the_next(ada: Store, bob: Store, registry: Store,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.storage import sync_push

    save_dataset(ada, "cases", [Case({"n": 1})])
    monkeypatch.setattr(sync_push, "after_registry_commit",
                        lambda: save_dataset(ada, "cases", [Case({"n": 1}), Case({"n": 2})],
                                             replace=True))
    push(ada, registry)
    monkeypatch.setattr(sync_push, "after_registry_commit", None)
    assert pending(ada).waiting["dataset"] == 1  # the second save was not what went
    push(ada, registry)
    pull(bob, registry)
    assert [c.vars for c in get_dataset(bob, "cases").cases] == [{"n": 1}, {"n": 2}]


def test_a_dataset_changed_in_the_registry_since_our_copy_is_a_conflict_not_an_overwrite(
        ada: Store, bob: Store, registry: Store) -> None:
    from workbench.registry_link import resolve

    save_dataset(ada, "cases", [Case({"n": 0})])
    push(ada, registry)
    pull(bob, registry)
    save_dataset(bob, "cases", [Case({"n": "bob"})], replace=True)
    push(bob, registry)
    save_dataset(ada, "cases", [Case({"n": "ada"})], replace=True)  # later, without a pull
    report = push(ada, registry)
    assert report.conflicts and "changed in the registry" in report.conflicts[0]
    pull(bob, registry)
    assert get_dataset(bob, "cases").cases[0].vars == {"n": "bob"}  # bob's work stands
    assert get_dataset(ada, "cases").cases[0].vars == {"n": "ada"}  # ada's is kept here
    assert "yours is in the registry" in resolve(ada, registry, "cases", None, mine=True,
                                                 actor="ada", dataset=True)
    pull(bob, registry)
    assert get_dataset(bob, "cases").cases[0].vars == {"n": "ada"}


def test_a_registry_in_another_time_zone_shifts_nothing(ada: Store, bob: Store,
                                                        postgres_url: str) -> None:
    from sqlalchemy import create_engine

    name = postgres_url.rsplit("/", 1)[1]
    engine = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f"ALTER DATABASE \"{name}\" SET timezone = 'Pacific/Auckland'"))
    engine.dispose()
    registry = open_store(postgres_url)
    commit(ada, "greet", "one")
    approve(ada, parse_ref("greet@1"), actor="ada", comment="ok")
    push(ada, registry)
    for _ in range(3):  # nothing comes back as new, however often
        assert sum(pull(ada, registry).pulled.values()) == 0
    pull(bob, registry)
    assert sum(pull(bob, registry).pulled.values()) == 0
    assert [e.at for e in audit(bob, "greet")] == [e.at for e in audit(ada, "greet")]
    registry.close()


def test_approved_only_ever_points_to_an_approved_version_in_the_registry(
        ada: Store, tmp_path: Path, registry: Store) -> None:
    import dataclasses

    commit(ada, "greet", "one")
    approve(ada, parse_ref("greet@1"), actor="ada", comment="ok")
    stripped = dataclasses.replace(transfer.export_prompt(ada, "greet"), approvals=())
    carl = open_store(f"sqlite:///{tmp_path / 'carl.db'}")
    transfer.import_prompts(carl, [stripped])  # an export without its approvals
    report = push(carl, registry)
    assert report.conflicts and "approved is moved by approving" in report.conflicts[0]
    with registry.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM label")).scalar() == 0
    carl.close()


def test_a_move_the_registry_refused_goes_back_to_the_registry_state(ada: Store,
                                                                     registry: Store) -> None:
    commit(ada, "greet", "one")
    push(ada, registry)
    protect(registry, "production", actor="lead")
    repo.set_label(ada, parse_ref("greet@1"), "production", actor="ada")
    assert push(ada, registry).conflicts
    with pytest.raises(Exception, match="no label 'production'"):
        repo.resolve(ada, parse_ref("greet:production"))
    assert [e.kind for e in audit(ada, "greet")] == ["label"]  # refused only once settled


def test_a_settled_conflict_is_on_record_and_never_sent_to_a_new_registry(
        ada: Store, bob: Store, registry: Store, postgres_server) -> None:
    from workbench.registry_link import resolve

    shared(ada, bob, registry, "one", "two", "three")
    assert race(registry, "production", (bob, "bob", 2), (ada, "ada", 3)).conflicts
    resolve(ada, registry, "greet", "production", mine=False, actor="ada")
    assert push(ada, registry).waiting == 0  # a settled refusal is a record, not work
    kinds = [(e.kind, e.who, e.to_number) for e in audit(ada, "greet") if e.label == "production"]
    assert ("refused", "ada", 3) in kinds and ("label", "bob", 2) in kinds
    fresh = open_store(postgres_server.new_database())
    assert not push(ada, fresh).conflicts  # the team's history, not the refused move
    assert repo.resolve(fresh, parse_ref("greet:production")).number == 2
    fresh.close()


def test_resolving_mine_keeps_the_conflict_when_the_registry_is_down(ada: Store, bob: Store,
                                                                     registry: Store) -> None:
    from workbench.registry_link import resolve

    shared(ada, bob, registry, "one", "two")
    assert race(registry, "staging", (bob, "bob", 1), (ada, "ada", 2)).conflicts
    down = Store("postgresql+psycopg://nobody@127.0.0.1:9/none")
    with pytest.raises(RegistryUnavailable):
        resolve(ada, down, "greet", "staging", mine=True, actor="ada")
    assert len(pending(ada).items) == 1  # still there to resolve


def test_the_same_move_by_two_people_is_no_conflict(ada: Store, bob: Store, registry: Store) -> None:
    shared(ada, bob, registry, "one")
    assert not race(registry, "staging", (ada, "ada", 1), (bob, "bob", 1)).conflicts


def test_labels_protected_before_the_first_sync_go_to_the_registry(ada: Store, bob: Store,
                                                                   registry: Store) -> None:
    from workbench.storage.approvals import protected

    protect(ada, "production", actor="ada")
    commit(ada, "greet", "one")
    push(ada, registry)
    assert protected(ada) == protected(registry) == {"production": "approval"}
    pull(bob, registry)
    assert protected(bob) == {"production": "approval"}


def test_a_nul_in_what_gets_pushed_is_refused_at_once(ada: Store) -> None:
    from workbench.errors import ValidationError

    commit(ada, "greet", "one")
    two = PromptContent(messages=(Message(role="user", content="two"),))
    with pytest.raises(ValidationError, match="NUL"):
        repo.commit(ada, repo.Draft(name="greet", content=two), message="a\x00b", author="ada")
    with pytest.raises(ValidationError, match="NUL"):
        approve(ada, parse_ref("greet@1"), actor="ada", comment="fine\x00")


def test_long_dataset_names_are_queued_on_postgresql(postgres_url: str) -> None:
    store = open_store(postgres_url)
    save_dataset(store, "d" * 120, [Case({"n": 1})])
    assert pending(store).waiting["dataset"] == 1
    store.close()


def test_a_store_on_postgresql_syncs_prompt_details_and_datasets(postgres_server,
                                                                 bob: Store) -> None:
    local, registry = (open_store(postgres_server.new_database()) for _ in range(2))
    try:
        describe(local, "greet", "hello", "first", ["a"])
        save_dataset(local, "cases", [Case({"n": 1})])
        push(local, registry)
        assert pending(local).total == 0
        pull(bob, registry)
        save_dataset(bob, "cases", [Case({"n": 2})], replace=True)
        push(bob, registry)
        assert pull(local, registry).pulled["datasets"] == 1
        assert get_dataset(local, "cases").cases[0].vars == {"n": 2}
        describe(local, "greet", "hello", "second", ["b"])
        assert push(local, registry).pushed["prompt details"] == 1
        pull(bob, registry)
        describe(bob, "greet", "hello", "bob's", [])
        push(bob, registry)
        assert pull(local, registry).pulled["prompt details"] == 1
        assert details(local, "greet") == ("bob's", [])
    finally:
        local.close()
        registry.close()
