"""The History screen, driven by key presses against a real store; its SQL filters on
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, update
from textual.widgets import DataTable, Static, TextArea

from workbench.config import load_settings
from workbench.domain import Message, PromptContent, parse_ref
from workbench.errors import ValidationError
from workbench.screens.app import make_app
from workbench.storage import repo, runs
from workbench.storage.db import Store, open_store
from workbench.storage.models import Run

EVIL = "[bold]not markup[/] [0] \x1b[31mred\x1b[0m \x1b]8;;http://e\x07link\x1b]8;;\x07"
SHOWN = EVIL.replace("\x1b", "\\x1b").replace("\x07", "\\x07")  # escapes made visible


def _run(store: Store, rid: str, *, day: int, model: str = "echo", status: str = "ok",
         version: str | None = None, content: str = "Hello Ada", output: str | None = None,
         cached_from: str | None = None, **metrics: Any) -> None:
    """A finished run with a fixed id and a fixed time (2026-01-DAY 09:00 UTC)."""
    messages = [{"role": "user", "content": content}]
    start = runs.RunStart(model=model, backend="echo", messages=messages,
                          params={"max_tokens": 64}, prompt_version_id=version)
    runs.start_run(store, start, run_id=rid)
    error = f"{model}: rate limited (HTTP 429)" if status == "error" else None
    answer = "" if error else (content if output is None else output)
    if not error:  # a failed call has no figures: they stay unknown (NULL), never 0
        metrics = {"ttft_ms": 12.0, "output_tokens": 3, "cost_usd": 0.0012,
                   "cost_source": "price table", **metrics}
    runs.finish_run(store, rid, status=status, output=answer, error=error, metrics=metrics)
    moment = datetime(2026, 1, day, 9, 0, tzinfo=UTC)
    with store.write() as session:
        session.execute(update(Run).where(col(Run.id) == rid)
                        .values(created_at=moment, finished_at=moment, cached_from=cached_from))


def _seed(store: Store) -> None:
    """greet@1 (labelled approved), greet@2 and summarize@1, and five runs over five days."""
    ids = {}
    for name, body in (("greet", "Hello {{ name }}"), ("greet", "Hi {{ name }}"),
                       ("summarize", "Summarize {{ text }}")):
        draft = repo.Draft(name, PromptContent(messages=(Message(role="user", content=body),)))
        version = repo.commit(store, draft, message="m", author="ada").version
        ids[version.ref] = version.id
    repo.set_label(store, parse_ref("greet@1"), "approved", actor="ada")
    _run(store, "a" * 32, day=1, version=ids["greet@1"])
    _run(store, "b" * 32, day=2, version=ids["greet@2"], model="tiny", status="error")
    _run(store, "c" * 32, day=3, version=ids["summarize@1"], cached_from="a" * 32)
    _run(store, "d" * 32, day=4, content=EVIL, tokens_estimated=True)
    _run(store, "e" * 32, day=5, version=ids["greet@1"], model="tiny")


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, "edcba"),
        ({"prompt": "greet"}, "eba"),
        ({"version": "greet@2"}, "b"),
        ({"model": "tiny"}, "eb"),
        ({"label": "approved"}, "ea"),
        ({"label": "approved", "prompt": "summarize"}, ""),
        ({"status": "error"}, "b"),
        ({"since": date(2026, 1, 3)}, "edc"),
        ({"since": datetime(2026, 1, 3, 10, 0, tzinfo=UTC)}, "ed"),
        ({"prompt": "greet", "model": "echo"}, "a"),
        ({"limit": 2}, "ed"),
    ],
)
def test_query_runs_filters_in_sql(store: Store, filters: dict, expected: str) -> None:
    _seed(store)
    assert "".join(r.id[0] for r in runs.query_runs(store, **filters)) == expected


def test_query_runs_rejects_bad_input_and_names_versions(store: Store) -> None:
    _seed(store)
    with pytest.raises(ValidationError, match="NAME@N"):
        runs.query_runs(store, version="greet")
    with pytest.raises(ValidationError, match="unknown status"):
        runs.query_runs(store, status="fine")
    found = runs.query_runs(store, prompt="greet")
    refs = runs.version_refs(store, [r.prompt_version_id for r in found if r.prompt_version_id])
    assert sorted(refs.values()) == ["greet@1", "greet@2"]
    assert runs.version_refs(store, []) == {}


async def _wait_for(pilot, condition) -> None:
    """Let the app run until ``condition()`` holds (workers post their results later)."""
    for _ in range(200):
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        if condition():
            return
    raise AssertionError("the app never reached the expected state")


def _table(app) -> DataTable:
    return app.screen.query_one("#runs", DataTable)


def _column(app, index: int) -> list[str]:
    table = _table(app)
    return [str(table.get_row_at(i)[index]) for i in range(table.row_count)]


def _status(app, widget: str = "#status") -> str:
    return str(app.screen.query_one(widget, Static).render())


@pytest.fixture
def seeded(tmp_path: Path, monkeypatch) -> str:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    monkeypatch.setenv("WORKBENCH_DATABASE__URL", url)
    store = open_store(url)
    _seed(store)
    store.close()
    return url


async def _open_history(pilot) -> None:
    await pilot.press("f4")
    await _wait_for(pilot, lambda: _table(pilot.app).row_count > 0)


async def test_lists_every_run_newest_first(seeded: str) -> None:
    app = make_app(load_settings())
    async with app.run_test(size=(160, 40)) as pilot:
        await _open_history(pilot)
        rows = [[str(c) for c in _table(app).get_row_at(i)] for i in range(5)]
        assert [r[0] for r in rows] == [f"2026-01-0{d} 09:00:00Z" for d in (5, 4, 3, 2, 1)]
        assert [r[2] for r in rows] == ["greet@1", "inline", "summarize@1", "greet@2", "greet@1"]
        assert rows[0][1:8] == ["ok", "greet@1", "tiny", "12 ms", "3", "$0.0012", ""]
        assert rows[1][5] == "~3" and rows[1][8].startswith("[bold]not markup[/] [0] \\x1b[31m")
        assert rows[2][7] == "hit"  # a cache hit: no model was called
        assert rows[3][1] == "error" and rows[3][8] == "error: tiny: rate limited (HTTP 429)"
        assert rows[3][4:7] == ["—", "—", "—"]  # unknown figures
        assert _status(app) == "5 runs, newest first"
        await pilot.press("question_mark")  # the help panel explains the filter syntax
        await _wait_for(pilot, lambda: bool(app.screen.query("HelpPanel")))
        assert "label:LABEL" in app.screen.query_one("HelpPanel Markdown").source
        await pilot.press("question_mark")
        await _wait_for(pilot, lambda: not app.screen.query("HelpPanel"))


FILTERS = (
    ("prompt:greet", "eba"),
    ("version:greet@2", "b"),
    ("model:tiny", "eb"),
    ("label:approved", "ea"),
    ("status:error", "b"),
    ("since:2026-01-03", "edc"),
    ("prompt:greet model:echo", "a"),
)


async def test_each_filter(seeded: str) -> None:
    app = make_app(load_settings())
    async with app.run_test(size=(160, 40)) as pilot:
        await _open_history(pilot)
        for query, expected in FILTERS:
            await pilot.press("slash", *query, "enter")
            count = len(expected)
            await _wait_for(pilot, lambda n=count: len(_table(app).rows) == n)
            assert "".join(key.value[0] for key in _table(app).rows) == expected, query
            assert app.screen.focused is _table(app)  # Enter hands the keys back to the list
            assert "filtered" in _status(app)
            await pilot.press("escape")  # clears the filter
            await _wait_for(pilot, lambda: _table(app).row_count == 5)
        await pilot.press("slash", *"prompt:nothing", "enter")
        await _wait_for(pilot, lambda: "no run matches the filter" in _status(app))


async def test_bad_filters_are_explained(seeded: str) -> None:
    app = make_app(load_settings())
    async with app.run_test(size=(160, 40)) as pilot:
        await _open_history(pilot)
        for query, message in (("since:yesterday", "write the date as YYYY-MM-DD"),
                               ("colour:red", "write key:value"),
                               ("version:greet", "write NAME@N"),
                               ("status:fine", "unknown status 'fine'")):
            await pilot.press("slash", "ctrl+a", "ctrl+k", *query, "enter")
            await _wait_for(pilot, lambda m=message: m in _status(app))
            assert app.screen.query_one("#status").has_class("error-message")
        assert _table(app).row_count == 5 and app.is_running


async def test_opened_run_shows_untrusted_text_literally(seeded: str) -> None:
    app = make_app(load_settings())
    async with app.run_test(size=(160, 40)) as pilot:
        await _open_history(pilot)
        await pilot.press("down", "enter")
        await _wait_for(pilot, lambda: type(app.screen).__name__ == "RunScreen")
        output = app.screen.query_one("#output", TextArea).text
        assert output == SHOWN
        facts = str(app.screen.query_one("#facts", Static).render())
        assert "d" * 32 in facts and "12.00 ms" in facts and '{"max_tokens": 64}' in facts
        messages = str(app.screen.query_one("#messages", Static).render())
        assert "[bold]not markup[/] [0]" in messages and "\x1b" not in messages
        await pilot.press("escape")
        await _wait_for(pilot, lambda: type(app.screen).__name__ == "HistoryScreen")


async def test_failed_run_shows_its_error(seeded: str) -> None:
    app = make_app(load_settings())
    async with app.run_test(size=(160, 40)) as pilot:
        await _open_history(pilot)
        # The fourth row (greet@2, failed), below the border and the header: a click
        # highlights it, a second click opens it.
        await pilot.click("#runs", offset=(5, 5))
        await pilot.click("#runs", offset=(5, 5))
        await _wait_for(pilot, lambda: type(app.screen).__name__ == "RunScreen")
        error = app.screen.query_one("#error", Static)
        assert error.display and "rate limited (HTTP 429)" in str(error.render())


async def test_rerun_with_echo_records_a_new_run(seeded: str) -> None:
    app = make_app(load_settings())
    async with app.run_test(size=(160, 40)) as pilot:
        await _open_history(pilot)
        await pilot.press("down", "r")  # the inline echo run, straight from the list
        await _wait_for(pilot, lambda: "recorded: ok" in _status(app, "#run-status"))
        screen = app.screen
        assert screen.run.id != "d" * 32 and screen.run.status == "ok"
        assert screen.query_one("#output", TextArea).text == SHOWN  # echo answers the prompt
        new = screen.run.id
        await pilot.press("r")  # again, from the opened run
        await _wait_for(pilot, lambda: screen.run.id != new
                        and "recorded" in _status(app, "#run-status"))
        await pilot.press("escape")
        await _wait_for(pilot, lambda: _table(app).row_count == 7)
        top = [str(c) for c in _table(app).get_row_at(0)]
        assert top[1:4] == ["ok", "inline", "echo"] and top[6] == "free"
        assert [k.value for k in _table(app).rows][:3] == [screen.run.id, new, "e" * 32]
    stored = runs.get_run(open_store(seeded), screen.run.id)
    assert stored.messages == [{"role": "user", "content": EVIL}]
    assert stored.params == {"max_tokens": 64}


async def test_rerun_streams_and_esc_cancels_it(seeded: str, monkeypatch) -> None:
    from workbench.backends.base import Chunk
    from workbench.backends.echo import EchoBackend

    async def slow(self, request):  # three words, then a model that never finishes
        for word in ("one ", "two ", "[b]three[/b]"):
            yield Chunk(word, self.clock())
            await asyncio.sleep(0.01)
        await asyncio.sleep(60)

    monkeypatch.setattr(EchoBackend, "stream", slow)
    app = make_app(load_settings())
    async with app.run_test(size=(160, 40)) as pilot:
        await _open_history(pilot)
        await pilot.press("down", "r")
        for _ in range(300):  # not _wait_for: the re-run is still on its way
            await pilot.pause(0.02)
            if type(app.screen).__name__ == "RunScreen":
                if app.screen.query_one("#output", TextArea).text == "one two [b]three[/b]":
                    break
        else:
            raise AssertionError("the answer was not streamed into the view")
        assert "re-running" in _status(app, "#run-status")
        await pilot.press("escape")  # back to the list; the call is stopped and recorded
        await _wait_for(pilot, lambda: str(_table(app).get_row_at(0)[1]) == "cancelled")
        assert [str(c) for c in _table(app).get_row_at(0)][2:4] == ["inline", "echo"]
        assert _table(app).row_count == 6
        assert app.is_running


async def test_rerun_of_a_model_gone_is_explained(seeded: str) -> None:
    app = make_app(load_settings())
    async with app.run_test(size=(160, 40)) as pilot:
        await _open_history(pilot)
        await pilot.press("r")  # the newest run used "tiny", which is not configured
        await _wait_for(pilot, lambda: "cannot re-run" in _status(app, "#run-status"))
        assert "unknown model 'tiny'" in _status(app, "#run-status")
        assert app.screen.query_one("#run-status").has_class("error-message")
        await pilot.press("escape")
        await _wait_for(pilot, lambda: _table(app).row_count == 5)


async def test_database_error_is_shown_and_app_keeps_running(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WORKBENCH_DATABASE__URL", f"sqlite:///{tmp_path}")  # a directory
    app = make_app(load_settings())
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.press("f4")
        await _wait_for(pilot, lambda: _status(app).startswith("error:"))
        assert app.screen.query_one("#status").has_class("error-message")
        await pilot.press("ctrl+r", "r", "enter")
        await _wait_for(pilot, lambda: "no run selected" in _status(app))
        assert app.is_running


def test_history_screen_snapshot(snap_compare, tmp_path: Path, monkeypatch) -> None:
    """The history as a user sees it (fixed data, fixed times)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WORKBENCH_DATABASE__URL", "sqlite:///snapshot.db")
    store = open_store("sqlite:///snapshot.db")
    _seed(store)
    store.close()

    async def settle(pilot) -> None:
        await _open_history(pilot)
        # Everything the picture shows, not only the first rows (a busy machine is slower).
        # DataTable sizes its auto-width column when idle, after the rows arrive: wait until
        # the table is as wide as its columns say.
        def laid_out() -> bool:
            table = _table(pilot.app)
            widths = sum(c.get_render_width(table) for c in table.columns.values())
            return (_status(pilot.app) == "5 runs, newest first" and table.row_count == 5
                    and not table._require_update_dimensions
                    and table.virtual_size.width == widths
                    and list(table.columns.values())[-1].content_width > len("output"))

        await _wait_for(pilot, laid_out)

    assert snap_compare(make_app(load_settings()), terminal_size=(140, 30), run_before=settle)


def test_run_detail_snapshot(snap_compare, tmp_path: Path, monkeypatch) -> None:
    """An opened run whose text is full of markup and escape sequences, shown as text."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WORKBENCH_DATABASE__URL", "sqlite:///snapshot.db")
    store = open_store("sqlite:///snapshot.db")
    _seed(store)
    store.close()

    async def settle(pilot) -> None:
        await _open_history(pilot)
        await pilot.press("down", "enter")
        await _wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "RunScreen")

    assert snap_compare(make_app(load_settings()), terminal_size=(140, 30), run_before=settle)
