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
                    and app.screen.query_one("#audit", DataTable).row_count == 2)
        assert "no registry" in _text(app, "#connection")
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
