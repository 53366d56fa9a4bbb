"""The library's actions by keyboard: label, mark and diff, label moves, datasets, edit."""

from __future__ import annotations

from pathlib import Path

from pilot_helpers import opened, until

from workbench.config import load_settings
from workbench.domain import Message, PromptContent
from workbench.screens.app import make_app
from workbench.storage import repo
from workbench.storage.datasets import Case, save_dataset
from workbench.storage.db import open_store


def _seed(url: str) -> None:
    store = open_store(url)
    for body in ("Hello {{ name }}", "Hi {{ name }}, welcome"):
        content = PromptContent(messages=(Message(role="user", content=body),))
        repo.commit(store, repo.Draft("greet", content, None), message="m", author="ann")
    save_dataset(store, "people", [Case({"name": "Ann"})], description="one person")
    store.close()


async def test_label_diff_history_datasets_and_edit(tmp_path: Path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    monkeypatch.setenv("WORKBENCH_DATABASE__URL", url)
    _seed(url)
    app = make_app(load_settings())
    async with app.run_test(size=(140, 40)) as pilot:
        versions = app.screen.query_one("#versions")
        await until(pilot, lambda: versions.row_count == 2)
        await pilot.press("tab")  # to the versions: greet@2 is highlighted
        await until(pilot, lambda: versions.has_focus)
        await pilot.press("d")  # against the version before
        await until(pilot, lambda: type(app.screen).__name__ == "Show")
        diff = app.screen.query_one("TextArea").text
        assert "--- greet@1" in diff and "+++ greet@2" in diff and "+  content: Hi {{ name }}, welcome" in diff
        await pilot.press("escape")
        await pilot.press("l")
        await opened(pilot, "Ask")
        await pilot.press(*"approved", "enter")
        await until(pilot, lambda: "approved" in str(app.screen.query_one("#versions").get_row_at(0)[1]))
        await pilot.press("h")
        await until(pilot, lambda: type(app.screen).__name__ == "Show")
        assert "approved: (new) -> @2  by tester" in app.screen.query_one("TextArea").text
        await pilot.press("escape", "t")
        await until(pilot, lambda: type(app.screen).__name__ == "Show")
        assert "people  (1 cases)  one person" in app.screen.query_one("TextArea").text
        await pilot.press("escape")
        await until(pilot, lambda: type(app.screen).__name__ == "PromptsScreen")
        await pilot.press("e")
        await until(pilot, lambda: type(app.screen).__name__ == "EditorScreen"
                    and len(app.workspace.variants) == 1)
        draft = app.workspace.variants[0]
        assert draft.name == "greet" and not draft.unsaved
        assert draft.messages == [{"role": "user", "content": "Hi {{ name }}, welcome"}]


async def test_approve_and_a_protected_label_refused(tmp_path: Path, monkeypatch) -> None:
    from workbench.storage.approvals import approvals_of, protect

    url = f"sqlite:///{tmp_path / 'app.db'}"
    monkeypatch.setenv("WORKBENCH_DATABASE__URL", url)
    _seed(url)
    store = open_store(url)
    protect(store, "production", actor="ann")
    store.close()
    app = make_app(load_settings())
    async with app.run_test(size=(140, 40)) as pilot:
        versions = app.screen.query_one("#versions")
        await until(pilot, lambda: versions.row_count == 2)
        await pilot.press("tab")
        await until(pilot, lambda: versions.has_focus)
        await pilot.press("l")  # production on greet@2: no approval yet
        await opened(pilot, "Ask")
        await pilot.press(*"production", "enter")
        await until(pilot, lambda: "production is protected" in str(app.screen.query_one("#status").render()))
        await pilot.press("a")
        await opened(pilot, "Ask")
        await pilot.press(*"looks right", "enter")
        await until(pilot, lambda: "approved by tester" in str(app.screen.query_one("#status").render()))
        # The list is reloaded after the approval: wait for it, then label what it shows.
        await until(pilot, lambda: versions.row_count == 2
                    and "approved" in str(versions.get_row_at(0)[1]) and versions.has_focus)
        await pilot.press("l")
        await opened(pilot, "Ask")
        await pilot.press(*"production", "enter")
        await until(pilot, lambda: "production" in str(app.screen.query_one("#versions").get_row_at(0)[1]))
    store = open_store(url)
    from workbench.domain import parse_ref

    version = repo.resolve(store, parse_ref("greet@2"))
    assert [(a.approver, a.comment) for a in approvals_of(store, version.id)] == [("tester", "looks right")]
    store.close()
