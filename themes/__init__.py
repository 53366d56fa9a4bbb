"""Themes and the shared stylesheet. Only screens/ and themes/ import textual.

The app registers every theme in :data:`THEMES`; the command palette's "Change theme"
switches between them and Textual's own, and the app remembers the choice.
"""

from __future__ import annotations

from pathlib import Path

from textual.theme import Theme

GLOBAL_TCSS = Path(__file__).parent / "global.tcss"

DARK_NAME = "workbench-dark"
LIGHT_NAME = "workbench-light"
HIGH_CONTRAST_NAME = "workbench-high-contrast"
THEME_NAMES = (DARK_NAME, LIGHT_NAME, HIGH_CONTRAST_NAME)
"""The names of our themes, as the command palette lists them."""

DARK = Theme(
    name=DARK_NAME,
    # A slate background with a steel-blue primary and a warm amber accent.
    primary="#5fa8d3",
    secondary="#8ab4c9",
    accent="#e0a458",
    foreground="#d8dee6",
    background="#1b1f26",
    surface="#232830",
    panel="#2e3540",
    success="#8cc085",
    warning="#e5c07b",
    error="#e06c75",
    dark=True,
    variables={
        "footer-key-foreground": "#5fa8d3",
        "block-cursor-text-style": "bold",
        "input-selection-background": "#5fa8d3 35%",
    },
)

LIGHT = Theme(
    name=LIGHT_NAME,
    # Warm paper with ink-blue text accents; colours dark enough to read on white.
    primary="#245c8a",
    secondary="#3f6f8f",
    accent="#a4550a",
    foreground="#22272e",
    background="#f5f3ee",
    surface="#fbfaf7",
    panel="#e3dfd6",
    success="#2f7d3a",
    warning="#8a5a00",
    error="#b3261e",
    dark=False,
    variables={
        "footer-key-foreground": "#245c8a",
        "block-cursor-text-style": "bold",
        "input-selection-background": "#245c8a 25%",
    },
)

HIGH_CONTRAST = Theme(
    name=HIGH_CONTRAST_NAME,
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

THEMES = (DARK, LIGHT, HIGH_CONTRAST)
"""Themes of our own, registered next to Textual's (textual-dark, textual-light, ...)."""
