"""A new user's first session, by keyboard only, streaming real SmolLM2 through llama.cpp:
create a prompt, make variant B, run both, run a dataset grid, commit both, label the
better one `approved`, quit. Then the store is checked."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable

from pilot_helpers import opened, until

from workbench.config import load_settings
from workbench.domain import parse_ref
from workbench.models import demo_model_path
from workbench.screens.app import make_app
from workbench.storage import datasets as stored_datasets
from workbench.storage import repo, runs
from workbench.storage.db import open_store

needs_demo = pytest.mark.skipif(demo_model_path() is None, reason="demo extra not installed")



async def _until(pilot, condition, *, timeout_s: float = 120.0) -> None:
    await until(pilot, condition, timeout_s)  # real SmolLM2: give it time


async def _type(pilot, text: str) -> None:
    await pilot.press(*[{" ": "space"}.get(c, c) for c in text])


@needs_demo
async def test_first_session_by_keyboard(tmp_path: Path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'flow.db'}"
    monkeypatch.setenv("WORKBENCH_DATABASE__URL", url)
    store = open_store(url)
    stored_datasets.save_dataset(
        store, "people",
        [stored_datasets.Case(vars={"who": "Ann"}, expected="max-length:2000"),
         stored_datasets.Case(vars={"who": "Bob"}, expected="max-length:2000")],
        description="two names", source="test",
    )
    store.close()
    app = make_app(load_settings())
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("f2")
        await pilot.press("ctrl+n")
        await _type(pilot, "greet")
        await pilot.press("enter")
        await _until(pilot, lambda: len(app.workspace.variants) == 1)
        await _type(pilot, "Say hi to {{ who }}.")
        await pilot.press("tab")  # to the variable `who`
        await _type(pilot, "Ann")
        await pilot.press("shift+tab", "shift+tab")  # back over the messages to the parameters
        await _type(pilot, "max_tokens=12 temperature=0")
        draft = app.workspace.variants[0]
        await _until(pilot, lambda: draft.values == {"who": "Ann"}
                     and draft.params == {"max_tokens": 12, "temperature": 0})
        assert draft.messages == [{"role": "user", "content": "Say hi to {{ who }}."}]

        await pilot.press("ctrl+b")  # variant B, focused at the end of its messages
        await _until(pilot, lambda: len(app.workspace.variants) == 2)
        await _type(pilot, " Be formal.")
        b = app.workspace.variants[1]
        await _until(pilot, lambda: b.messages[0]["content"].endswith("Be formal."))
        assert b.name == "greet-b" and b.values == {"who": "Ann"}

        await pilot.press("ctrl+r")  # both stream side by side in Compare
        await _until(pilot, lambda: type(app.screen).__name__ == "CompareScreen")
        compare = app.screen
        await _until(pilot, lambda: len(compare.panes) == 2
                     and all(p.final for p in compare.panes.values()))
        for pane in compare.panes.values():
            assert pane.final.startswith("ok · ttft")
            assert pane.query_one(".stream").text.strip()

        await pilot.press("ctrl+g")  # the dataset grid
        await opened(pilot, "Pick", 120.0)
        await pilot.press("enter")
        await _until(pilot, lambda: compare.report is not None)
        grid = compare.query_one("#grid", DataTable)
        cells = [[str(c) for c in grid.get_row_at(i)] for i in range(grid.row_count)]
        assert len(cells) == 2 and all(c.startswith("✓ pass") for row in cells for c in row[1:])

        await pilot.press("f2")
        await pilot.press("ctrl+s")
        await opened(pilot, "Ask", 120.0)
        await _type(pilot, "first try")
        await pilot.press("enter")
        await _until(pilot, lambda: not any(d.unsaved for d in app.workspace.variants))

        await pilot.press("f1")
        prompts = app.screen.query_one("#prompts", DataTable)
        await _until(pilot, lambda: prompts.row_count == 2)
        await pilot.press("tab")  # from the prompt list to greet's versions
        versions = app.screen.query_one("#versions", DataTable)
        await _until(pilot, lambda: versions.has_focus and versions.row_count == 1)
        await pilot.press("l")
        await opened(pilot, "Ask", 120.0)
        await _type(pilot, "approved")
        await pilot.press("enter")
        await _until(pilot, lambda: "approved" in str(prompts.get_row_at(0)[2]))
        await pilot.press("ctrl+q")
        await _until(pilot, lambda: not app.is_running, timeout_s=10)

    store = open_store(url)
    assert [v.ref for v in repo.log(store, "greet")] == ["greet@1"]
    assert [v.ref for v in repo.log(store, "greet-b")] == ["greet-b@1"]
    assert repo.resolve(store, parse_ref("greet:approved")).number == 1
    recorded = runs.list_runs(store)
    assert len(recorded) == 6  # two streamed, four in the grid
    assert all(r.status == "ok" and r.model == "smollm2" for r in recorded)
    store.close()
