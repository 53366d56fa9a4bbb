"""Editor and Compare, by keyboard, with a scripted backend (fixed answers and clock)."""

from __future__ import annotations

from pathlib import Path

import pytest
from scripted_backend import ScriptedBackend, StepClock
from textual.widgets import DataTable

from pilot_helpers import opened, until

from workbench.config import load_settings
from workbench.screens.app import make_app
from workbench.storage import runs
from workbench.storage.db import open_store
from workbench.workspace import VariantDraft, Workspace, workspace_path

CONFIG = """\
[models.fast]
backend = "scripted"
model = "fast"

[models.fail]
backend = "scripted"
model = "fail"

[models.slow]
backend = "scripted"
model = "slow"
options = { delay_s = 0.2 }
"""


@pytest.fixture()
def app_env(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("WORKBENCH_DATABASE__URL", f"sqlite:///{tmp_path / 'app.db'}")
    config = tmp_path / "config.toml"
    config.write_text(CONFIG, encoding="utf-8")
    monkeypatch.setenv("WORKBENCH_CONFIG_FILE", str(config))
    return tmp_path


def scripted_app():
    return make_app(load_settings(), engine_options={
        "backend_classes": {"scripted": ScriptedBackend}, "clock": StepClock()})


def seed(*drafts: VariantDraft) -> None:
    workspace = Workspace(variants=list(drafts), path=workspace_path())
    workspace.save()



_until = until


async def test_panes_stream_inert_text_and_a_failure_stays_in_its_pane(app_env: Path) -> None:
    nasty = "[bold]not markup[/] \x1b[31mred\x1b]8;;http://x\x07link"
    seed(VariantDraft("a", [{"role": "user", "content": "{{ q }}"}], {}, "fast", {"q": nasty}),
         VariantDraft("b", [{"role": "user", "content": "{{ q }}"}], {}, "fail", {"q": "x"}))
    app = scripted_app()
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.press("f2")
        await _until(pilot, lambda: "restored unsaved drafts" in str(app.screen.query_one("#status").render()))
        await pilot.press("ctrl+r")
        await _until(pilot, lambda: type(app.screen).__name__ == "CompareScreen")
        compare = app.screen
        await _until(pilot, lambda: len(compare.panes) == 4 and all(p.final for p in compare.panes.values()))
        by_title = {p.title_text: p for p in compare.panes.values()}
        text = by_title["a · fast"].query_one(".stream").text
        assert text == "fast says: [bold]not markup[/] \\x1b[31mred\\x1b]8;;http://x\\x07link"
        assert by_title["a · fast"].final.startswith("ok · ttft ")
        assert by_title["a · fail"].final.startswith("error")
        assert "refused (HTTP 500)" in str(by_title["a · fail"].query_one(".figures").render())
        assert by_title["b · fast"].final.startswith("ok")
        assert "2 ok, 2 failed" in str(compare.query_one("#status").render())


async def test_escape_cancels_and_runs_are_recorded_cancelled(app_env: Path) -> None:
    seed(VariantDraft("a", [{"role": "user", "content": "one two three four five six"}], {}, "slow"))
    app = scripted_app()
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("f3", "ctrl+r")
        compare = app.screen
        await _until(pilot, lambda: any(p.chunks for p in compare.panes.values()))
        await pilot.press("escape")
        await _until(pilot, lambda: "cancelled" in str(compare.query_one("#status").render()))
    store = open_store(load_settings().database.url)
    assert [r.status for r in runs.list_runs(store)] == ["cancelled"]
    store.close()


async def test_quit_with_unsaved_drafts_asks_first(app_env: Path) -> None:
    seed(VariantDraft("a", [{"role": "user", "content": "hi"}], {}, "fast"))
    app = scripted_app()
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("f2")
        await pilot.pause()
        await pilot.press("ctrl+q")
        await opened(pilot, "Confirm", 120.0)
        await pilot.press("n")
        await _until(pilot, lambda: type(app.screen).__name__ == "EditorScreen")
        assert app.is_running
        await pilot.press("ctrl+q")
        await opened(pilot, "Confirm", 120.0)
        await pilot.press("y")
        await _until(pilot, lambda: not app.is_running)


async def test_template_error_is_shown_and_nothing_runs(app_env: Path) -> None:
    seed(VariantDraft("a", [{"role": "user", "content": "ok"}], {}, "fast"))
    app = scripted_app()
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("f2")
        await pilot.pause()
        await pilot.press(*" {{ broken", "ctrl+r")
        await pilot.pause(0.3)
        pane_problem = str(app.query_one(".problem").render()) if type(app.screen).__name__ == "EditorScreen" else ""
        status = str(app.screen.query_one("#status").render())
        assert "message 1 (user)" in pane_problem or "message 1 (user)" in status
    store = open_store(load_settings().database.url)
    assert runs.list_runs(store) == []  # nothing was called
    store.close()


async def test_dataset_grid_and_open_a_cell(app_env: Path) -> None:
    from workbench.storage.datasets import Case, save_dataset

    store = open_store(load_settings().database.url)
    save_dataset(store, "qs", [Case({"q": "alpha"}, "icontains:ALPHA"), Case({"q": "beta"}, "contains:zzz")])
    store.close()
    seed(VariantDraft("a", [{"role": "user", "content": "{{ q }}"}], {}, "fast"),
         VariantDraft("b", [{"role": "user", "content": "Q: {{ q }}"}], {}, "fast"))
    app = scripted_app()
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.press("f3", "ctrl+g")
        await opened(pilot, "Pick", 120.0)
        await pilot.press("enter")
        await _until(pilot, lambda: type(app.screen).__name__ == "CompareScreen" and app.screen.report is not None)
        grid = app.screen.query_one("#grid", DataTable)
        rows = [[str(c) for c in grid.get_row_at(i)] for i in range(grid.row_count)]
        assert rows == [["0", "✓ pass", "✓ pass"], ["1", "✗ fail", "✗ fail"]]
        assert "over 2 paired cases" in str(app.screen.query_one("#status").render())
        await pilot.press("down", "enter")
        await _until(pilot, lambda: type(app.screen).__name__ == "Show")
        body = app.screen.query_one("TextArea").text
        assert "fail: contains:" in body and "fast says: beta" in body


def test_editor_snapshot(snap_compare, app_env: Path) -> None:
    seed(VariantDraft("support-answer", [{"role": "system", "content": "Answer in one sentence."},
                                         {"role": "user", "content": "{{ question }}"}],
                      {"temperature": 0}, "fast", {"question": "Where is my parcel?"}),
         VariantDraft("support-answer-b", [{"role": "user", "content": "Briefly: {{ question }}"}],
                      {}, "fast", {"question": "Where is my parcel?"}))

    async def settle(pilot) -> None:
        await pilot.press("f2")
        await _until(pilot, lambda: len(pilot.app.screen.query(".var")) == 2)
        first = pilot.app.screen.query(".messages").first()
        await _until(pilot, lambda: first.has_focus)
        for area in pilot.app.screen.query(".messages"):
            area.cursor_blink = False  # a blinking cursor would make the picture random
            # TextArea caches its lines under a key that ignores cursor_blink: a line drawn
            # in the blink's "off" half would be reused without the cursor. Drop the cache.
            area.notify_style_update()
            area.refresh()
        await pilot.pause(0.1)

    assert snap_compare(scripted_app(), terminal_size=(130, 34), run_before=settle)


def test_compare_snapshot(snap_compare, app_env: Path) -> None:
    seed(VariantDraft("support-answer", [{"role": "user", "content": "{{ question }}"}],
                      {}, "fast", {"question": "Where is my parcel? [b]not bold[/b]"}))

    async def settle(pilot) -> None:
        await pilot.press("f3", "ctrl+r")
        await _until(pilot, lambda: pilot.app.screen.panes
                     and all(p.final for p in pilot.app.screen.panes.values()))
        await pilot.pause(0.2)

    assert snap_compare(scripted_app(), terminal_size=(110, 24), run_before=settle)


def test_grid_snapshot(snap_compare, app_env: Path) -> None:
    from workbench.storage.datasets import Case, save_dataset

    store = open_store(load_settings().database.url)
    save_dataset(store, "qs", [Case({"q": "alpha"}, "icontains:ALPHA"), Case({"q": "beta"}, "contains:zzz")])
    store.close()
    seed(VariantDraft("a", [{"role": "user", "content": "{{ q }}"}], {}, "fast"),
         VariantDraft("b", [{"role": "user", "content": "Q: {{ q }}"}], {}, "fast"))

    async def settle(pilot) -> None:
        await pilot.press("f3", "ctrl+g")
        await opened(pilot, "Pick", 120.0)
        await pilot.press("enter")
        await _until(pilot, lambda: type(pilot.app.screen).__name__ == "CompareScreen"
                     and pilot.app.screen.report is not None)
        await pilot.pause(0.2)

    assert snap_compare(scripted_app(), terminal_size=(130, 24), run_before=settle)


async def test_palette_lists_screens_and_the_screens_actions(app_env: Path) -> None:
    app = scripted_app()
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("f2")
        await pilot.pause()
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Prompts", "Editor", "Compare", "History", "Models", "New", "Variant B", "Commit",
                "Run", "Run dataset"} <= titles
        await pilot.press("ctrl+p")
        await opened(pilot, "CommandPalette")
        await pilot.press(*"Compare", "enter")
        await _until(pilot, lambda: type(app.screen).__name__ == "CompareScreen")


async def test_editor_highlights_jinja_and_role_lines(app_env: Path) -> None:
    seed(VariantDraft("a", [{"role": "system", "content": "Be {% if x %}brief{% endif %}."},
                            {"role": "user", "content": "Hi {{ who }} {# note #} é {{ x }}"}], {}, "fast"))
    app = scripted_app()
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("f2")
        await pilot.pause(0.2)
        area = app.screen.query_one(".messages")
        lines = area.document.lines
        assert lines[0] == "## system" and area._highlights[0] == [(0, 9, "heading")]
        assert [h[2] for h in area._highlights[1]] == ["keyword", "keyword"]
        third = lines[3]
        spans = [(third.encode()[s:e].decode(), name) for s, e, name in area._highlights[3]]
        assert spans == [("{{ who }}", "string"), ("{# note #}", "comment"), ("{{ x }}", "string")]


async def test_the_chosen_theme_is_remembered(app_env: Path) -> None:
    app = scripted_app()
    async with app.run_test(size=(120, 30)) as pilot:
        assert app.theme == "workbench-dark"
        await pilot.press("ctrl+p")
        palette = await opened(pilot, "CommandPalette")
        await pilot.press(*"theme", "enter")  # Textual's theme picker: another palette
        await opened(pilot, "CommandPalette", after=palette)
        await pilot.press(*"workbench-light", "enter")
        await _until(pilot, lambda: app.theme == "workbench-light")
    again = scripted_app()
    async with again.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        assert again.theme == "workbench-light"
