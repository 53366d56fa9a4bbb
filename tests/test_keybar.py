"""The key bar: every shown binding's key, the palette's on the right, a click presses."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from workbench.screens.keybar import KeyBar


class Keys(App[None]):
    BINDINGS = [
        Binding("x", "hit('x')", "Hit"),
        Binding("y", "hit('y')", "Hidden", show=False),
        Binding("z", "blocked", "Blocked"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.hits: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static("body")
        yield KeyBar()

    def action_hit(self, what: str) -> None:
        self.hits.append(what)

    def action_blocked(self) -> None:
        self.hits.append("blocked")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return None if action == "blocked" else True  # None: shown, disabled


async def test_shows_keys_and_a_click_presses_the_key() -> None:
    app = Keys()
    async with app.run_test(size=(80, 5)) as pilot:
        bar = app.query_one(KeyBar)
        line = str(bar.render())
        assert " x Hit " in line and "Hidden" not in line and " z Blocked " in line
        assert "…" not in line  # every key fits
        assert line.rstrip().endswith("^p palette")  # on the right
        x = line.index(" x Hit ")
        await pilot.click(KeyBar, offset=(x + 1, 0))
        assert app.hits == ["x"]
        z = line.index(" z Blocked ")
        await pilot.click(KeyBar, offset=(z + 1, 0))
        assert app.hits == ["x"]  # disabled: a bell, no action
        await pilot.click(KeyBar, offset=(len(line) - 3, 0))
        await pilot.pause()
        assert app.screen.__class__.__name__ == "CommandPalette"


async def test_keys_that_do_not_fit_are_left_to_the_palette() -> None:
    app = Keys()
    async with app.run_test(size=(30, 5)):
        line = str(app.query_one(KeyBar).render())
        assert len(line) <= 30 and "x Hit" in line and "Blocked" not in line
        assert "^p palette" in line
        assert "… " in line  # some keys are left out: they are in the palette
