"""Themes and the shared stylesheet. Only screens/ and themes/ import textual."""

from __future__ import annotations

from pathlib import Path

from textual.theme import Theme

GLOBAL_TCSS = Path(__file__).parent / "global.tcss"

HIGH_CONTRAST = Theme(
    name="workbench-high-contrast",
    primary="#ffff00",
    secondary="#00ffff",
    accent="#ff00ff",
    foreground="#ffffff",
    background="#000000",
    surface="#000000",
    panel="#1a1a1a",
    success="#00ff00",
    warning="#ffaa00",
    error="#ff3030",
    dark=True,
)

THEMES = (HIGH_CONTRAST,)
"""Themes of our own, registered next to Textual's (textual-dark, textual-light, ...)."""
