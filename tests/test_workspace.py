"""Drafts: saved after every change, restored after a crash or kill -9, never lost."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from workbench.workspace import VariantDraft, Workspace, load_workspace


def test_round_trip_and_unsaved(tmp_path: Path) -> None:
    path = tmp_path / "workspace.json"
    workspace = Workspace(path=path)
    workspace.variants.append(VariantDraft("greet", [{"role": "user", "content": "Hi {{ who }}"}],
                                           {"temperature": 0}, "smollm2", {"who": "Ann"}))
    copy = workspace.duplicate(0)
    assert copy.name == "greet-b" and workspace.duplicate(0).name == "greet-c"
    workspace.dataset = "people"
    workspace.save()
    restored, note = load_workspace(path)
    assert restored.variants == workspace.variants and restored.dataset == "people"
    assert note == "restored unsaved drafts from the last session"
    draft = restored.variants[0]
    draft.base_hash = draft.content_hash()
    assert not draft.unsaved
    draft.messages[0]["content"] += "!"
    assert draft.unsaved


def test_missing_file_is_an_empty_workspace(tmp_path: Path) -> None:
    workspace, note = load_workspace(tmp_path / "none.json")
    assert workspace.variants == [] and note is None


def test_unreadable_file_is_kept_aside(tmp_path: Path) -> None:
    path = tmp_path / "workspace.json"
    path.write_text("{not json", encoding="utf-8")
    workspace, note = load_workspace(path)
    assert workspace.variants == []
    assert note is not None and "could not be read" in note and "workspace.json.broken" in note
    assert (tmp_path / "workspace.json.broken").read_text() == "{not json"
    workspace.save()  # a new file; the broken one stays for the user
    assert json.loads(path.read_text())["variants"] == []


def test_kill_9_during_a_session_loses_no_edit(tmp_path: Path, isolated_env: Path) -> None:
    """A real app session types into the editor, then the process kills itself with
    SIGKILL; the next start restores every keystroke."""
    script = textwrap.dedent(
        """
        import asyncio, os, signal
        from workbench.config import load_settings
        from workbench.screens.app import make_app

        async def main():
            app = make_app(load_settings())
            async with app.run_test(size=(140, 40)) as pilot:
                await pilot.press("f2", "ctrl+n", *"draft", "enter")
                await pilot.pause(0.3)
                await pilot.press(*"Hello", "space", *"there")
                await pilot.pause(0.3)
                os.kill(os.getpid(), signal.SIGKILL)

        asyncio.run(main())
        """
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, timeout=120,
                          capture_output=True, text=True)
    assert done.returncode == -9, done.stderr
    path = isolated_env / "data" / "workbench" / "workspace.json"
    workspace, note = load_workspace(path)
    assert [v.name for v in workspace.variants] == ["draft"]
    assert workspace.variants[0].messages == [{"role": "user", "content": "Hello there"}]
    assert note == "restored unsaved drafts from the last session"
