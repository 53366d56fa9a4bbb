"""Approvals, protected labels, the audit log and the approved export, on SQLite and
PostgreSQL; the append-only rule is checked with SQL, under the API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from workbench.cli import cli
from workbench.domain import Message, PromptContent, parse_ref
from workbench.errors import ConflictError, ValidationError
from workbench.storage import repo, transfer
from workbench.storage.approvals import approvals_of, approve, audit, protect, protected, unprotect
from workbench.storage.db import Store


def commit(store: Store, name: str, body: str) -> repo.VersionInfo:
    content = PromptContent(messages=(Message(role="user", content=body),))
    return repo.commit(store, repo.Draft(name, content), message="m", author="ada").version


def test_approve_records_and_moves_the_label(store: Store) -> None:
    commit(store, "greet", "Hi {{ who }}")
    v2 = commit(store, "greet", "Hello {{ who }}")
    done = approve(store, parse_ref("greet@2"), actor="bob", comment="read 40 cases")
    assert (done.prompt, done.number, done.approver, done.comment) == ("greet", 2, "bob", "read 40 cases")
    assert repo.resolve(store, parse_ref("greet:approved")).number == 2
    approve(store, parse_ref("greet@2"), actor="cy", comment="second look")  # a second approver
    assert [a.approver for a in approvals_of(store, v2.id)] == ["bob", "cy"]
    with pytest.raises(ValidationError, match="comment"):
        approve(store, parse_ref("greet@1"), actor="bob", comment="  ")


def test_moving_approved_any_way_is_an_approval(store: Store) -> None:
    v1 = commit(store, "greet", "Hi")
    repo.set_label(store, parse_ref("greet@1"), "approved", actor="dee")
    assert [(a.approver, a.comment) for a in approvals_of(store, v1.id)] == [("dee", "")]
    repo.set_label(store, parse_ref("greet@1"), "approved", actor="dee")  # no move: no approval
    assert len(approvals_of(store, v1.id)) == 1


def test_a_protected_label_only_moves_to_approved_versions(store: Store) -> None:
    commit(store, "greet", "Hi")
    commit(store, "greet", "Hello")
    repo.set_label(store, parse_ref("greet@1"), "production", actor="ann")  # not protected yet
    protect(store, "production", actor="ann")
    assert protected(store) == {"production": "approval"}
    with pytest.raises(ConflictError, match=r"production is protected.*greet@2 has no approval"):
        repo.set_label(store, parse_ref("greet@2"), "production", actor="ann")
    assert repo.resolve(store, parse_ref("greet:production")).number == 1  # unchanged
    approve(store, parse_ref("greet@2"), actor="bob", comment="ok")
    move = repo.set_label(store, parse_ref("greet@2"), "production", actor="ann")
    assert move is not None and move.to_number == 2
    with pytest.raises(ValidationError):
        protect(store, "approved", actor="ann")
    assert unprotect(store, "production") and not unprotect(store, "production")


def test_the_audit_log_lists_and_cannot_be_rewritten(store: Store) -> None:
    commit(store, "greet", "Hi")
    commit(store, "other", "Yo")
    approve(store, parse_ref("greet@1"), actor="bob", comment="fine")
    repo.set_label(store, parse_ref("greet@1"), "production", actor="ann")
    entries = audit(store, "greet")
    assert [(e.kind, e.label, e.from_number, e.to_number, e.who) for e in entries] == [
        ("approval", "approved", None, 1, "bob"),
        ("label", "approved", None, 1, "bob"),
        ("label", "production", None, 1, "ann"),
    ]
    assert entries[0].comment == "fine" and audit(store) == entries  # "other" has none
    with store.writer.connect() as connection:
        for statement in ("UPDATE approval SET approver = 'mallory'", "DELETE FROM approval",
                          "UPDATE label_event SET actor = 'mallory'", "DELETE FROM label_event"):
            with pytest.raises(DBAPIError, match="immutable"):
                with connection.begin():
                    connection.execute(text(statement))
        assert connection.execute(text("SELECT approver FROM approval")).scalars().all() == ["bob"]


def test_the_cli_approves_audits_protects_and_exports(isolated_env: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    prompt = tmp_path / "greet.yaml"
    prompt.write_text("name: greet\nmessages:\n  - role: user\n    content: 'Hi {{ who }}'\n"
                      "params: {temperature: 0}\n")
    assert runner.invoke(cli, ["prompts", "commit", str(prompt), "-m", "one"]).exit_code == 0
    labelled = runner.invoke(cli, ["prompts", "label", "greet@1", "approved", "-m", "by label"])
    assert labelled.exit_code == 0, labelled.output
    out = runner.invoke(cli, ["prompts", "approve", "greet@1", "-m", "checked"])
    assert out.exit_code == 0 and "greet@1 approved by tester: checked" in out.output
    assert runner.invoke(cli, ["registry", "protect", "production"]).exit_code == 0
    prompt.write_text(prompt.read_text().replace("Hi", "Hello"))
    runner.invoke(cli, ["prompts", "commit", str(prompt), "-m", "two"])
    refused = runner.invoke(cli, ["prompts", "label", "greet@2", "production"])
    assert refused.exit_code == 1 and "production is protected" in refused.stderr
    log = json.loads(runner.invoke(cli, ["registry", "audit", "greet", "--json"]).output)
    assert [(e["kind"], e["label"], e["to"], e["by"], e["comment"]) for e in log] == [
        ("approval", "approved", 1, "tester", "by label"), ("label", "approved", 1, "tester", ""),
        ("approval", "approved", 1, "tester", "checked")]
    assert "checked" in runner.invoke(cli, ["registry", "audit"]).output

    folder = tmp_path / "approved"
    written = runner.invoke(cli, ["prompts", "export", "--approved", str(folder)])
    assert written.exit_code == 0, written.output
    data = yaml.safe_load((folder / "greet.yaml").read_text())
    assert data["name"] == "greet" and data["version"] == 1 and data["labels"] == ["approved"]
    assert data["messages"] == [{"role": "user", "content": "Hi {{ who }}"}]
    assert data["params"]["temperature"] == 0 and data["approved"]["by"] == "tester"
    first = (folder / "greet.yaml").read_bytes()
    runner.invoke(cli, ["prompts", "export", "--approved", str(folder)])
    assert (folder / "greet.yaml").read_bytes() == first  # stable: the same bytes again
    runner.invoke(cli, ["prompts", "export", "--approved", str(folder), "--format", "json"])
    assert json.loads((folder / "greet.json").read_text())["version_id"] == data["version_id"]


def test_an_import_never_points_approved_or_a_protected_label_at_an_unapproved_version(
    store: Store, tmp_path: Path
) -> None:
    from workbench.storage.db import open_store

    commit(store, "greet", "Hi")
    commit(store, "greet", "Hello")
    approve(store, parse_ref("greet@2"), actor="bob", comment="ok")
    repo.set_label(store, parse_ref("greet@2"), "production", actor="bob")
    exported = transfer.export_prompt(store, "greet")
    # The export carries the approvals: they arrive, and the labels with them.
    whole = open_store(f"sqlite:///{tmp_path / 'whole.db'}")
    protect(whole, "production", actor="ann")
    transfer.import_prompts(whole, [exported])
    assert repo.list_prompts(whole)[0].labels == {"approved": 2, "production": 2}
    assert [(a.approver, a.comment) for a in approvals_of(whole, exported.versions[1].id)] == [("bob", "ok")]
    whole.close()
    # A file without them (older, or edited): the labels stay where they are.
    from dataclasses import replace

    other = open_store(f"sqlite:///{tmp_path / 'other.db'}")
    protect(other, "production", actor="ann")
    transfer.import_prompts(other, [replace(exported, approvals=())])
    labels = repo.list_prompts(other)[0].labels
    assert "approved" not in labels and "production" not in labels  # no approval here
    assert [e.label for e in repo.label_history(other, "greet")] == ["approved", "production"]
    other.close()
