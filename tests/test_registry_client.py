"""The client API for applications: get_prompt from a real store (SQLite and PostgreSQL),
the cache on disk, a registry that cannot be reached, removed labels."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from workbench.domain import Message, Params, PromptContent, parse_ref
from workbench.errors import NotFoundError, WorkbenchError
from workbench.registry import Client, RegistryUnavailableError, get_prompt
from workbench.storage import repo
from workbench.storage.approvals import approve
from workbench.storage.db import Store

DEAD = "postgresql+psycopg://app:s3cret-pw@127.0.0.1:1/registry"  # nothing listens on port 1


def seed(store: Store) -> None:
    for body in ("Answer: {{ question }}", "Answer briefly: {{ question }}"):
        content = PromptContent(messages=(Message(role="system", content="Be kind."),
                                          Message(role="user", content=body)),
                                params=Params(temperature=0.2, max_tokens=64))
        repo.commit(store, repo.Draft("support", content), message="m", author="ada")
    approve(store, parse_ref("support@1"), actor="bob", comment="ok")
    repo.set_label(store, parse_ref("support@2"), "production", actor="bob")


def test_get_prompt_renders_the_labelled_version(store: Store, tmp_path: Path) -> None:
    seed(store)
    client = Client(store.url, cache_folder=tmp_path / "cache")
    approved = client.get("support")  # default: approved
    assert (approved.version, approved.label) == (1, "approved") and not approved.from_cache
    request = client.get("support", label="production").render(question="Where is my parcel?")
    assert request["messages"][1] == {"role": "user", "content": "Answer briefly: Where is my parcel?"}
    assert request["params"] == {"temperature": 0.2, "max_tokens": 64}
    assert client.get("support", version=1).version_id == approved.version_id
    with pytest.raises(NotFoundError, match="no label 'gold'"):
        client.get("support", label="gold")
    with pytest.raises(WorkbenchError):
        client.get("support", label="x", version=1)


def test_an_unreachable_registry_serves_the_cache_even_after_a_restart(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seed(store)
    cache = tmp_path / "cache"
    first = Client(store.url, ttl_s=0, cache_folder=cache).get("support", label="production")
    # A restarted application, whose registry is down: a new client, the same URL and cache.
    restarted = Client(store.url, ttl_s=0, cache_folder=cache)
    restarted._engine = create_engine(DEAD, connect_args={"connect_timeout": 1})
    with caplog.at_level(logging.WARNING, logger="workbench.registry"):
        served = restarted.get("support", label="production")
    assert served.from_cache and served.version_id == first.version_id
    assert "cannot be reached" in caplog.text and "serving the cached copy" in caplog.text
    assert "s3cret-pw" not in caplog.text
    with pytest.raises(RegistryUnavailableError, match="no cached copy of support:approved"):
        restarted.get("support")  # never fetched: nothing to serve


def test_nothing_cached_and_nothing_reachable_is_a_clear_error(tmp_path: Path) -> None:
    client = Client(DEAD, cache_folder=tmp_path / "cache", timeout_s=1)
    with pytest.raises(RegistryUnavailableError) as caught:
        client.get("support")
    message = str(caught.value)
    assert "cannot be reached" in message and "s3cret-pw" not in message and "***" in message


def test_a_removed_label_is_never_served_from_the_cache(store: Store, tmp_path: Path) -> None:
    seed(store)
    cache = tmp_path / "cache"
    client = Client(store.url, ttl_s=0, cache_folder=cache)
    client.get("support", label="production")
    with store.writer.begin() as connection:  # the team removed the label
        connection.execute(text("DELETE FROM label WHERE name = 'production'"))
    with pytest.raises(NotFoundError, match="no label 'production'"):
        client.get("support", label="production")
    client._engine = create_engine(DEAD, connect_args={"connect_timeout": 1})  # then went down
    with pytest.raises(RegistryUnavailableError):
        client.get("support", label="production")


def test_within_the_time_limit_the_registry_is_not_asked(store: Store, tmp_path: Path) -> None:
    seed(store)
    client = Client(store.url, ttl_s=3600, cache_folder=tmp_path / "cache")
    first = client.get("support")
    client._engine = create_engine(DEAD, connect_args={"connect_timeout": 1})
    again = client.get("support")
    assert again == first and not again.from_cache


def test_get_prompt_reads_the_url_from_the_environment(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    seed(store)
    monkeypatch.delenv("WORKBENCH_REGISTRY__URL", raising=False)
    with pytest.raises(WorkbenchError, match="no registry configured"):
        get_prompt("support")
    monkeypatch.setenv("WORKBENCH_REGISTRY__URL", store.url)
    assert get_prompt("support", label="production").version == 2


def test_the_client_imports_nothing_heavy(tmp_path: Path) -> None:
    code = ("import sys, workbench.registry\n"
            "heavy = [m for m in ('textual', 'litellm', 'llama_cpp', 'chromadb', 'sqlalchemy')"
            " if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)


def test_a_registry_that_is_down_is_not_asked_on_every_call(store: Store, tmp_path: Path) -> None:
    seed(store)
    client = Client(store.url, ttl_s=0, cache_folder=tmp_path / "cache")
    client.get("support")
    client._engine = create_engine(DEAD, connect_args={"connect_timeout": 1})
    attempts = []
    real = client._fetch

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        attempts.append(1)
        return real(*args, **kwargs)

    client._fetch = counting  # type: ignore[method-assign]
    for _ in range(5):
        assert client.get("support").from_cache
    assert len(attempts) == 1  # then it waits before asking again


def test_a_stopped_registry_serves_the_cache(own_postgres, tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    """The real thing: the registry's PostgreSQL stopped (``pg_ctl stop -m immediate``)."""
    from workbench.storage.db import open_store

    url = own_postgres.new_database()
    registry = open_store(url)
    seed(registry)
    registry.close()
    cache = tmp_path / "cache"
    fetched = Client(url, ttl_s=0, cache_folder=cache).get("support", label="production")
    own_postgres.stop()
    with caplog.at_level(logging.WARNING, logger="workbench.registry"):
        served = Client(url, ttl_s=0, cache_folder=cache).get("support", label="production")
    assert served.from_cache and served.version_id == fetched.version_id
    assert served.render(question="Hi?")["messages"][1]["content"] == "Answer briefly: Hi?"
    assert "cannot be reached" in caplog.text
