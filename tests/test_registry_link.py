"""Connecting to the team's registry (a real PostgreSQL) and what differs from it."""

from __future__ import annotations

import json
from pathlib import Path

import keyring
import keyring.core
import pytest
from click.testing import CliRunner

from workbench.cli import cli
from workbench.config import config_path, load_settings
from workbench.domain import Message, PromptContent, parse_ref
from workbench.registry_link import registry_url, split_password, status
from workbench.storage import repo, transfer
from workbench.storage.db import open_store

PLAINTEXT = "keyrings.alt.file.PlaintextKeyring"
FAIL = "keyring.backends.fail.Keyring"


def use_keyring(monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", backend)
    monkeypatch.setattr(keyring.core, "_keyring_backend", None)  # keyring caches its choice


def with_password(url: str, password: str) -> str:
    scheme, rest = url.split("://", 1)
    user, host = rest.split("@", 1)
    return f"{scheme}://{user}:{password}@{host}"


def test_split_password() -> None:
    bare, password, account = split_password("postgresql+psycopg://ann:p%40ss@db.local:5433/reg")
    assert bare == "postgresql+psycopg://ann@db.local:5433/reg"
    assert password == "p@ss" and account == "ann@db.local:5433/reg"


def test_connect_keeps_the_password_out_of_the_config_file(
    postgres_url: str, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_keyring(monkeypatch, PLAINTEXT)
    monkeypatch.delenv("PGPASSWORD", raising=False)
    secret = "hunter2-registry"
    result = CliRunner().invoke(cli, ["registry", "connect", with_password(postgres_url, secret)])
    assert result.exit_code == 0, result.output
    assert "password in the keyring" in result.output and secret not in result.output
    text = config_path().read_text()
    assert secret not in text and "[registry]" in text
    settings = load_settings()
    assert settings.registry.url == postgres_url
    assert registry_url(settings) == with_password(postgres_url, secret)  # from the keyring
    # The registry got the schema.
    store = open_store(postgres_url)
    assert repo.list_prompts(store) == []
    store.close()


def test_without_a_keyring_the_password_is_not_stored_and_the_user_is_told(
    postgres_url: str, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_keyring(monkeypatch, FAIL)
    result = CliRunner().invoke(cli, ["registry", "connect", with_password(postgres_url, "pw-xyz")])
    assert result.exit_code == 0, result.output
    assert "PGPASSWORD" in result.stderr and "pw-xyz" not in result.output + result.stderr
    assert "pw-xyz" not in config_path().read_text()


def test_status_names_what_differs(postgres_url: str, isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_keyring(monkeypatch, FAIL)
    local = open_store(load_settings().database.url)
    registry = open_store(postgres_url)
    content = PromptContent(messages=(Message(role="user", content="Hi"),))
    both = repo.commit(local, repo.Draft("greet", content), message="m", author="ann").version
    transfer.import_prompts(registry, [transfer.export_prompt(local, "greet")])  # as a push would
    repo.commit(local, repo.Draft("greet", PromptContent(messages=(Message(role="user", content="Hello"),))),
                message="m", author="ann")
    repo.commit(registry, repo.Draft("other", content), message="m", author="bob")
    repo.set_label(local, parse_ref("greet@2"), "production", actor="ann")
    repo.set_label(registry, parse_ref("greet@1"), "production", actor="bob")
    local.close()
    registry.close()
    found = status(open_store(load_settings().database.url), postgres_url)
    assert found.reachable and found.local_only == ["greet@2"] and found.registry_only == ["other@1"]
    assert found.labels_differ == ["greet:production here @2, registry @1"]
    assert both.id  # greet@1 is on both sides
    CliRunner().invoke(cli, ["registry", "connect", postgres_url])
    shown = json.loads(CliRunner().invoke(cli, ["registry", "status", "--json"]).output)
    assert shown["local_only"] == ["greet@2"]


def test_status_of_a_registry_that_does_not_answer(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_REGISTRY__URL", "postgresql+psycopg://ann:topsecret@127.0.0.1:1/reg")
    result = CliRunner().invoke(cli, ["registry", "status"])
    assert result.exit_code == 1 and "cannot be reached" in result.stderr
    assert "topsecret" not in result.stderr
