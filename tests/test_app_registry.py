"""The Registry screen: the connection, what differs from the registry, the audit log."""

from __future__ import annotations

from pathlib import Path

from pilot_helpers import until
from textual.widgets import DataTable

from workbench.config import load_settings
from workbench.domain import Message, PromptContent, parse_ref
from workbench.screens.app import make_app
from workbench.storage import repo
from workbench.storage.approvals import approve
from workbench.storage.db import open_store


def _text(app, selector: str) -> str:  # type: ignore[no-untyped-def]
    return str(app.screen.query_one(selector).render())


async def test_the_registry_screen(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    local_url = f"sqlite:///{tmp_path / 'local.db'}"
    monkeypatch.setenv("WORKBENCH_DATABASE__URL", local_url)
    local = open_store(local_url)
    content = PromptContent(messages=(Message(role="user", content="Hi [b]there[/b]"),))
    repo.commit(local, repo.Draft("greet", content), message="m", author="ann")
    approve(local, parse_ref("greet@1"), actor="ann", comment="fine [red]really[/red]")
    local.close()
    app = make_app(load_settings())
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("f7")
        await until(pilot, lambda: type(app.screen).__name__ == "RegistryScreen"
                    and app.screen.query_one("#audit", DataTable).row_count == 2
                    and "no registry" in _text(app, "#connection"))
        assert _text(app, "#connection") == ("no registry: `workbench registry connect URL` links "
                                             "this store to the team's registry")
        rows = [[str(c) for c in app.screen.query_one("#audit", DataTable).get_row_at(i)] for i in range(2)]
        assert rows[1][1:7] == ["approval", "greet", "approved", "-", "1", "ann"]
        assert rows[1][7] == "fine [red]really[/red]"  # inert
    registry_url = f"sqlite:///{tmp_path / 'registry.db'}"
    open_store(registry_url).close()
    monkeypatch.setenv("WORKBENCH_REGISTRY__URL", registry_url)
    app = make_app(load_settings())
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("f7")
        await until(pilot, lambda: type(app.screen).__name__ == "RegistryScreen"
                    and "reachable" in _text(app, "#connection"))
        assert "waiting to be pushed (only here): 1" in _text(app, "#differences")
        assert "greet@1" in _text(app, "#differences")
    monkeypatch.setenv("WORKBENCH_REGISTRY__URL", "postgresql+psycopg://a:pw9@127.0.0.1:1/x")
    app = make_app(load_settings())
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("f7")
        await until(pilot, lambda: type(app.screen).__name__ == "RegistryScreen"
                    and "cannot be reached" in _text(app, "#connection"))
        assert "pw9" not in _text(app, "#connection")
        await pilot.press("escape")
        await until(pilot, lambda: type(app.screen).__name__ == "PromptsScreen")


async def test_push_pull_and_resolve_from_the_registry_screen(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from workbench.storage.sync_pull import pull
    from workbench.storage.sync_push import push

    local_url, registry_url = f"sqlite:///{tmp_path / 'local.db'}", f"sqlite:///{tmp_path / 'reg.db'}"
    monkeypatch.setenv("WORKBENCH_DATABASE__URL", local_url)
    monkeypatch.setenv("WORKBENCH_REGISTRY__URL", registry_url)
    local, registry, other = (open_store(u) for u in (local_url, registry_url,
                                                       f"sqlite:///{tmp_path / 'other.db'}"))
    for body in ("one", "two"):
        content = PromptContent(messages=(Message(role="user", content=body),))
        repo.commit(local, repo.Draft("greet", content), message=body, author="ann")
    push(local, registry)
    pull(other, registry)
    repo.set_label(other, parse_ref("greet@1"), "production", actor="bob")
    push(other, registry)
    repo.set_label(local, parse_ref("greet@2"), "production", actor="ann")  # bob got there first
    approve(local, parse_ref("greet@2"), actor="ann", comment="good")
    app = make_app(load_settings())
    async with app.run_test(size=(150, 45)) as pilot:
        await pilot.press("f7")
        await until(pilot, lambda: type(app.screen).__name__ == "RegistryScreen"
                    and "waiting to be pushed: 1 approval, 2 labels" in _text(app, "#outbox"))
        assert "approvals waiting: 1" in _text(app, "#outbox")
        await pilot.press("p")
        await until(pilot, lambda: app.screen.query_one("#conflicts", DataTable).row_count == 1)
        assert "conflict" in _text(app, "#status")
        row = [str(c) for c in app.screen.query_one("#conflicts", DataTable).get_row_at(0)]
        assert row[0] == "greet:production" and "registry has it at @1" in row[1]
        await pilot.press("m")
        await until(pilot, lambda: "yours is in the registry" in _text(app, "#status"))
        await until(pilot, lambda: app.screen.query_one("#conflicts", DataTable).row_count == 0)
        await pilot.press("u")
        await until(pilot, lambda: "pulled" in _text(app, "#status"))
    assert repo.resolve(registry, parse_ref("greet:production")).number == 2
    for store in (local, registry, other):
        store.close()
