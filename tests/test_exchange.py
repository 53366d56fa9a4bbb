"""Export files: what import accepts, what it refuses, and how it merges into a store."""

from __future__ import annotations

import copy
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from workbench import exchange, yamlio
from workbench.cli import cli
from workbench.domain import Message, PromptContent, parse_ref, version_id
from workbench.errors import ValidationError
from workbench.storage import repo, transfer
from workbench.storage.db import Store


def _commit(store: Store, name: str, body: str) -> None:
    content = PromptContent(messages=(Message(role="user", content=body),))
    repo.commit(store, repo.Draft(name, content), message=body, author="ada")


def _exported(store: Store, name: str = "a") -> dict[str, Any]:
    return json.loads(json.dumps(exchange.prompt_to_data(transfer.export_prompt(store, name))))


def _rehash(data: dict[str, Any]) -> dict[str, Any]:
    """Recompute hashes and ids, as a forger who knows the scheme would."""
    for v in data["versions"] if isinstance(data.get("versions"), list) else []:
        try:
            content = PromptContent.model_validate(
                {k: v[k] for k in ("messages", "params", "variables")}
            )
        except Exception:
            continue  # content the importer must refuse on its own
        v["content_hash"] = content.content_hash()
        v["id"] = version_id(data["name"], v["parent"], v["content_hash"])
    return data


@pytest.fixture
def two_versions(store: Store) -> Store:
    _commit(store, "a", "one")
    _commit(store, "a", "two")
    repo.set_label(store, parse_ref("a@1"), "production", actor="ada")
    return store


def test_old_export_never_moves_a_label_back(two_versions: Store) -> None:
    store = two_versions
    old = exchange.data_to_prompt(_exported(store), "old.yaml")
    repo.set_label(store, parse_ref("a@2"), "production", actor="bob")
    assert transfer.import_prompts(store, [old]) == [("a", 0, 0)]
    assert repo.resolve(store, parse_ref("a:production")).number == 2
    assert [m.to_number for m in repo.label_history(store, "a")] == [1, 2]


def test_newer_export_moves_the_label_with_its_history(two_versions: Store, tmp_path: Path) -> None:
    from workbench.storage.db import open_store

    store = two_versions
    behind = open_store(f"sqlite:///{tmp_path / 'behind.db'}")
    transfer.import_prompts(behind, [exchange.data_to_prompt(_exported(store), "x")])
    time.sleep(0.01)
    repo.set_label(store, parse_ref("a@2"), "production", actor="bob")
    newer = exchange.data_to_prompt(_exported(store), "newer.yaml")
    assert transfer.import_prompts(behind, [newer]) == [("a", 0, 1)]
    assert repo.resolve(behind, parse_ref("a:production")).number == 2
    assert [(m.to_number, m.actor) for m in repo.label_history(behind, "a")] == [
        (1, "ada"), (2, "bob")
    ]
    behind.close()


def test_reimport_adds_nothing(two_versions: Store) -> None:
    data = exchange.data_to_prompt(_exported(two_versions), "x")
    assert transfer.import_prompts(two_versions, [data]) == [("a", 0, 0)]
    assert len(repo.label_history(two_versions, "a")) == 1


def _forge(store: Store, change) -> dict[str, Any]:
    data = copy.deepcopy(_exported(store))
    change(data)
    return data


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(name="../../escape"), "invalid name"),
        (lambda d: d.update(labels={"latest": 1}), "'latest' always means"),
        (lambda d: d.update(labels={"bad label!": 1}), "invalid label"),
        (lambda d: d.update(labels=["production"]), "labels"),
        (lambda d: d.update(name=[1, 2]), "name"),
        (lambda d: d.update(tags="abc"), "tags"),
        (lambda d: d.update(versions=[]), "versions"),
        (lambda d: d["versions"][1].update(number=5), "numbered 1, 2, 3"),
        (lambda d: d["versions"][1].update(parent=None), "its parent must be version 1"),
        (lambda d: d["versions"][0].update(parent="f" * 64), "its parent must be version none"),
        (lambda d: d["versions"][0].update(author="x" * 300), "author"),
        (lambda d: d["versions"][0]["variables"].update(x=float("nan")), "JSON cannot represent"),
        (lambda d: d.update(labels={"production": 2}), "last move"),
        (lambda d: d["label_history"][0].update(to=9), "not in the file"),
    ],
)
def test_import_refuses_inconsistent_files(two_versions: Store, change, message: str) -> None:
    data = _rehash(_forge(two_versions, change))
    with pytest.raises(ValidationError, match=message):
        exchange.data_to_prompt(data, "forged.yaml")


def test_foreign_parent_is_refused(store: Store) -> None:
    _commit(store, "a", "one")
    _commit(store, "b", "other")
    a, b = _exported(store, "a"), _exported(store, "b")
    b["versions"][0]["parent"] = a["versions"][0]["id"]
    with pytest.raises(ValidationError, match="parent"):
        exchange.data_to_prompt(_rehash(b), "b.yaml")


def test_offsets_are_kept_as_utc(two_versions: Store, tmp_path: Path) -> None:
    from workbench.storage.db import open_store

    data = _exported(two_versions)
    data["versions"][0]["created_at"] = "2024-01-01T10:00:00+02:00"
    data["label_history"][0]["at"] = "2024-01-02T10:00:00-05:00"
    other = open_store(f"sqlite:///{tmp_path / 'tz.db'}")
    parsed = exchange.data_to_prompt(data, "tz.yaml")
    transfer.import_prompts(other, [parsed])
    assert transfer.import_prompts(other, [parsed]) == [("a", 0, 0)]  # no duplicate moves
    first = repo.resolve(other, parse_ref("a@1"))
    assert first.created_at.isoformat() == "2024-01-01T08:00:00+00:00"
    assert repo.label_history(other, "a")[0].at.isoformat() == "2024-01-02T15:00:00+00:00"
    other.close()


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(9)
    )
    started = time.monotonic()
    with pytest.raises(ValidationError, match="aliases"):
        yamlio.load(bomb, "bomb.yaml")
    assert time.monotonic() - started < 5


def test_dates_in_yaml_stay_text() -> None:
    data, _ = yamlio.load("when: 2024-01-01\n", "x.yaml")
    assert data == {"when": "2024-01-01"}


def test_export_round_trip_of_odd_text(store: Store, tmp_path: Path) -> None:
    bodies = ["trailing space \nnext", "tab\tand\r\nCRLF", "ünïcode ✓ \u2028 sep", "  lead\n\n\n", "x\x1b[31m"]
    for body in bodies:
        _commit(store, "odd", body)
    first = exchange.export_all(store, tmp_path / "one")
    from workbench.storage.db import open_store

    other = open_store(f"sqlite:///{tmp_path / 'odd.db'}")
    exchange.import_folder(other, tmp_path / "one")
    exchange.export_all(other, tmp_path / "two")
    assert first[0].read_bytes() == (tmp_path / "two" / "odd.yaml").read_bytes()
    assert [v.content.messages[0].content for v in repo.log(other, "odd")][::-1] == bodies
    other.close()
    # Stable enough to commit: exporting again from the same store changes no byte.
    again = exchange.export_all(store, tmp_path / "three")
    assert hashlib.sha256(again[0].read_bytes()).digest() == hashlib.sha256(
        first[0].read_bytes()
    ).digest()


def test_export_to_a_file_path_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("name: p\nmessages:\n  - {role: user, content: hi}\n")
    runner = CliRunner()
    runner.invoke(cli, ["prompts", "commit", str(tmp_path / "p.yaml"), "-m", "x"])
    blocker = tmp_path / "afile"
    blocker.write_text("")
    result = runner.invoke(cli, ["prompts", "export", str(blocker / "sub")])
    assert result.exit_code == 1 and "cannot write the export" in result.stderr
    partial = runner.invoke(cli, ["prompts", "export", str(tmp_path / "out"), "--name", "p", "--name", "nope"])
    assert partial.exit_code == 1 and "unknown prompt 'nope'" in partial.stderr
    assert not (tmp_path / "out").exists()
