"""The README stays true: every key a screen shows in its key bar is in the README's tour."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
from textual.binding import Binding

README = Path(__file__).resolve().parents[1] / "README.md"
SCREENS = {
    "Prompts": ("prompts", "PromptsScreen"),
    "Editor": ("editor", "EditorScreen"),
    "Compare": ("compare", "CompareScreen"),
    "Review": ("review", "ReviewScreen"),
    "History": ("history", "HistoryScreen"),
    "RAG": ("rag", "RagScreen"),
    "Models": ("models", "ModelsScreen"),
    "Registry": ("registry", "RegistryScreen"),
}
# How the README writes a key (lower-cased) -> Textual's name for it.
SPELLED = {"esc": "escape", "/": "slash", "?": "question_mark", "↑": "up", "↓": "down",
           "→": "right", "←": "left", "+": "plus", "-": "minus"}


def documented() -> dict[str, set[str]]:
    """The keys in backticks per screen: the tour table's rows, and the F7 row (Registry)."""
    text = README.read_text(encoding="utf-8")
    table = text.split("| screen | key | what it does |")[1].split("\n\n")[0]
    keys: dict[str, set[str]] = {}
    screen = ""
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        screen = cells[0] or screen
        keys.setdefault(screen, set()).update(re.findall(r"`([^`]+)`", cells[1]))
    registry = next(line for line in text.splitlines() if line.startswith("| `F7` |"))
    keys["Registry"] = set(re.findall(r"`([^`]+)`", registry))
    return {screen: {SPELLED.get(k.lower(), k.lower()) for k in found} for screen, found in keys.items()}


@pytest.mark.parametrize("title", sorted(SCREENS))
def test_every_key_in_the_key_bar_is_in_the_readme(title: str) -> None:
    module, name = SCREENS[title]
    screen = getattr(importlib.import_module(f"workbench.screens.{module}"), name)
    keys = documented()[title]
    missing = []
    for binding in screen.BINDINGS:
        binding = binding if isinstance(binding, Binding) else Binding(*binding)
        if binding.show and binding.description and not set(binding.key.split(",")) & keys:
            missing.append(f"{binding.key} ({binding.description})")
    assert not missing, f"{title} shows keys the README does not list: {missing}"
