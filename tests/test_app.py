"""The app's first screen, driven through Textual's Pilot against a real store."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Static

from workbench.config import load_settings
from workbench.domain import Message, PromptContent, parse_ref, version_id
from workbench.screens.app import make_app
from workbench.storage import repo, transfer
from workbench.storage.db import open_store


def _commit(url: str, name: str, body: str, description: str | None = None) -> None:
    store = open_store(url)
    content = PromptContent(messages=(Message(role="user", content=body),))
    repo.commit(store, repo.Draft(name, content, description), message="m", author="tester")
    store.close()


async def _settle(pilot, app) -> None:
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


async def _wait_for(pilot, condition) -> None:
    """Let the app run until ``condition()`` holds (workers post their results later)."""
    for _ in range(200):
        await _settle(pilot, pilot.app)
        if condition():
            return
    raise AssertionError("the app never reached the expected state")


def _cells(table: DataTable) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def test_lists_prompts_and_shows_versions(tmp_path: Path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    monkeypatch.setenv("WORKBENCH_DATABASE__URL", url)
    _commit(url, "alpha", "Hello {{ name }}", "first prompt")
    _commit(url, "beta", "[bold]not markup[/] \x1b[31mred\x1b[0m [0]", "[link=x]y[/link]")
    _commit(url, "beta", "second version")
    app = make_app(load_settings())
    async with app.run_test(size=(140, 40)) as pilot:
        await _settle(pilot, app)
        screen = app.screen
        prompts = screen.query_one("#prompts", DataTable)
        rows = _cells(prompts)
        assert [r[0] for r in rows] == ["alpha", "beta"]
        assert rows[1][1] == "2" and rows[1][4] == "[link=x]y[/link]"  # shown as typed
        await pilot.press("down")
        versions = screen.query_one("#versions", DataTable)
        await _wait_for(pilot, lambda: [r[0] for r in _cells(versions)] == ["2", "1"])
        # Search narrows the list.
        await pilot.press("slash", "a", "l", "p")
        await _wait_for(pilot, lambda: [r[0] for r in _cells(prompts)] == ["alpha"])


async def test_untrusted_text_is_inert(tmp_path: Path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    monkeypatch.setenv("WORKBENCH_DATABASE__URL", url)
    _commit(url, "evil", "[bold]x[/] [0] \x1b]8;;http://e\x07link\x1b]8;;\x07 \x1b[2J")
    app = make_app(load_settings())
    async with app.run_test(size=(140, 40)) as pilot:
        content = app.screen.query_one("#content", Static)
        await _wait_for(pilot, lambda: "bold" in str(content.render()))
        shown = str(content.render())
        assert "[bold]x[/] [0]" in shown
        assert "\x1b" not in shown and "\\x1b]8;;http://e\\x07" in shown


async def test_store_error_is_shown_and_app_keeps_running(tmp_path: Path, monkeypatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("WORKBENCH_DATABASE__URL", f"sqlite:///{blocker}/db.sqlite")
    app = make_app(load_settings())
    async with app.run_test() as pilot:
        await _settle(pilot, app)
        status = app.screen.query_one("#status", Static)
        assert "cannot create the folder" in str(status.render())
        assert status.has_class("error-message")
        await pilot.press("r")
        await _settle(pilot, app)
        assert app.is_running


@pytest.mark.parametrize("theme", ["textual-dark", "textual-light", "workbench-high-contrast"])
async def test_themes_render(tmp_path: Path, monkeypatch, theme: str) -> None:
    monkeypatch.setenv("WORKBENCH_DATABASE__URL", f"sqlite:///{tmp_path / 'app.db'}")
    app = make_app(load_settings())
    async with app.run_test() as pilot:
        app.theme = theme
        await _settle(pilot, app)
        assert "no prompts yet" in str(app.screen.query_one("#status", Static).render())


def test_prompts_screen_snapshot(snap_compare, tmp_path: Path, monkeypatch) -> None:
    """The library as a user sees it, pixel for pixel (fixed data, fixed times)."""
    from workbench import exchange

    monkeypatch.chdir(tmp_path)
    url = "sqlite:///snapshot.db"  # relative, so the status line is the same on every machine
    monkeypatch.setenv("WORKBENCH_DATABASE__URL", url)
    store = open_store(url)
    for name, bodies in (("greet", ["Hello {{ name }}", "Hi {{ name }}, [b]welcome[/b]"]),
                         ("summarize", ["Summarize:\n{{ text }}"])):
        versions, parent = [], None
        for number, body in enumerate(bodies, start=1):
            content = PromptContent(messages=(Message(role="user", content=body),))
            vid = version_id(name, parent, content.content_hash())
            versions.append(
                {"number": number, "id": vid, "parent": parent, "content_hash": content.content_hash(),
                 "message": f"v{number}", "author": "ada", "created_at": f"2026-01-0{number}T09:00:00+00:00",
                 **content.canonical()}
            )
            parent = vid
        data = {"format": exchange.FORMAT, "name": name, "description": f"the {name} prompt",
                "tags": [], "created_at": "2026-01-01T09:00:00+00:00", "labels": {}, "versions": versions,
                "label_history": []}
        transfer.import_prompts(store, [exchange.data_to_prompt(data, name)])
    repo.set_label(store, parse_ref("greet@1"), "production", actor="ada")
    store.close()

    async def settle(pilot) -> None:
        # Wait for what the screen shows, not for workers: the versions load starts only
        # after the prompt list has arrived and its first row is highlighted.
        screen = pilot.app.screen
        await _wait_for(pilot, lambda: screen.query_one("#versions", DataTable).row_count == 2)

    assert snap_compare(make_app(load_settings()), terminal_size=(120, 30), run_before=settle)



async def test_an_unexpected_failure_in_background_work_is_shown_and_the_app_goes_on(
    tmp_path: Path, monkeypatch
) -> None:
    from workbench.screens.prompts import PromptsScreen

    url = f"sqlite:///{tmp_path / 'app.db'}"
    monkeypatch.setenv("WORKBENCH_DATABASE__URL", url)
    _commit(url, "alpha", "Hello {{ name }}")
    _commit(url, "beta", "Hi")

    def broken(self, versions) -> None:  # a handler that raises on the UI thread
        raise RuntimeError("[bold]boom[/] \x1b[31m")

    monkeypatch.setattr(PromptsScreen, "_show_versions", broken)
    app = make_app(load_settings())
    async with app.run_test(size=(140, 40)) as pilot:
        await _wait_for(pilot, lambda: app._notifications)
        [note] = list(app._notifications)
        assert note.severity == "error" and note.markup is False
        assert note.message == "load versions failed: RuntimeError: [bold]boom[/] \\x1b[31m"
        await pilot.press("down")  # the app goes on: the list still answers
        prompts = app.screen.query_one("#prompts", DataTable)
        await _wait_for(pilot, lambda: prompts.cursor_row == 1)
        assert app.is_running


def test_a_failed_workers_text_has_no_secret_of_the_configured_urls(monkeypatch) -> None:
    from types import SimpleNamespace

    from workbench.keys import remember
    from workbench.screens.worker_errors import worker_error_text

    # The registry's password from the environment or the keyring is no part of its URL.
    monkeypatch.setenv("PGPASSWORD", "pg-env-secret")
    remember("from-the-keyring-9")
    worker = SimpleNamespace(name="pull", error=OSError("auth pg-env-secret / from-the-keyring-9"))
    settings = SimpleNamespace(database=SimpleNamespace(url="sqlite:///x.db"),
                               registry=SimpleNamespace(url="postgresql+psycopg://ann@db/reg"))
    assert worker_error_text(worker, settings) == "pull failed: OSError: auth *** / ***"  # type: ignore[arg-type]

    url = "postgresql+psycopg://ann:s3cret-pw@db.example/registry"
    settings = SimpleNamespace(database=SimpleNamespace(url="sqlite:///x.db"),
                               registry=SimpleNamespace(url=url))
    worker = SimpleNamespace(name="push", error=OSError(f"cannot reach {url} (password s3cret-pw)"))
    text = worker_error_text(worker, settings)  # type: ignore[arg-type]
    assert "s3cret-pw" not in text
    assert text == ("push failed: OSError: cannot reach postgresql+psycopg://ann:***@db.example/registry"
                    " (password ***)")
