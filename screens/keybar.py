"""The key bar at the bottom of every screen: each action's key and what it does.

Textual's ``Footer`` builds one widget per key and rebuilds them all whenever focus moves;
with a screen's and the app's bindings together that is a large share of the app's
start-up. This bar is one widget drawing one line: the same keys, the command palette's
key on the right, a click on a key presses it.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.screen import Screen
from textual.widget import Widget


class KeyBar(Widget, can_focus=False):
    """Shows the focused screen's active bindings (those with ``show=True``)."""

    ALLOW_SELECT = False
    COMPONENT_CLASSES = {"keybar--key", "keybar--description", "keybar--hover"}
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        color: $footer-foreground;
        background: $footer-background;
        .keybar--key {
            color: $footer-key-foreground;
            background: $footer-key-background;
            text-style: bold;
        }
        .keybar--description {
            color: $footer-description-foreground;
            background: $footer-description-background;
        }
        .keybar--hover {
            background: $block-hover-background;
        }
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._spots: list[tuple[int, int, str, bool]] = []
        """Where each key was drawn: (start column, end column, key, enabled)."""
        self._hover: int | None = None

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen) -> None:
        self.refresh()

    def _entries(self) -> tuple[list[tuple[str, str, str, bool]], tuple[str, str, str, bool] | None]:
        """(key, key display, description, enabled) per action, and the palette's."""
        active = self.screen.active_bindings
        seen: set[str] = set()
        entries = []
        for _node, binding, enabled, _tooltip in active.values():
            if not binding.show or binding.action in seen:
                continue
            seen.add(binding.action)
            entries.append((binding.key, self.app.get_key_display(binding),
                            binding.description, enabled))
        palette = None
        if self.app.ENABLE_COMMAND_PALETTE and self.app.COMMAND_PALETTE_BINDING in active:
            _node, binding, enabled, _tooltip = active[self.app.COMMAND_PALETTE_BINDING]
            palette = (binding.key, self.app.get_key_display(binding), binding.description, enabled)
            entries = [e for e in entries if e[0] != binding.key]
        return entries, palette

    def render(self) -> Text:
        key_style = self.get_component_rich_style("keybar--key")
        text_style = self.get_component_rich_style("keybar--description")
        hover_style = self.get_component_rich_style("keybar--hover")
        width = self.size.width
        entries, palette = self._entries()
        tail = f"▏ {palette[1]} {palette[2]} " if palette else ""  # drawn as _add draws it
        room = width - cell_len(tail)
        line = Text(no_wrap=True, overflow="crop")
        spots: list[tuple[int, int, str, bool]] = []
        for at, (key, shown, description, enabled) in enumerate(entries):
            piece = f" {shown} {description} " if description else f" {shown} "
            # Room for "… " when keys are left out (they are all in the command palette).
            more = 2 if at < len(entries) - 1 else 0
            if line.cell_len + cell_len(piece) + more > room:
                line.append("… ", style=text_style)
                break
            self._add(line, spots, key, shown, description, enabled,
                      key_style, text_style, hover_style)
        if palette is not None:
            line.append(" " * max(0, room - line.cell_len))
            line.append("▏", style=text_style)
            self._add(line, spots, palette[0], palette[1], palette[2], palette[3],
                      key_style, text_style, hover_style)
        self._spots = spots
        return line

    def _add(self, line: Text, spots: list, key: str, shown: str, description: str,
             enabled: bool, key_style, text_style, hover_style) -> None:
        start = line.cell_len
        hovered = self._hover is not None and len(spots) == self._hover
        extra = hover_style if hovered else None
        line.append(f" {shown} ", style=key_style + extra if extra else key_style)
        if description:
            line.append(f"{description} ", style=text_style + extra if extra else text_style)
        if not enabled:
            line.stylize("dim", start)
        spots.append((start, line.cell_len, key, enabled))

    def _spot_at(self, x: int) -> int | None:
        for index, (start, end, _key, _enabled) in enumerate(self._spots):
            if start <= x < end:
                return index
        return None

    def on_mouse_move(self, event: events.MouseMove) -> None:
        spot = self._spot_at(event.x)
        if spot != self._hover:
            self._hover = spot
            self.refresh()

    def on_leave(self, event: events.Leave) -> None:
        if self._hover is not None:
            self._hover = None
            self.refresh()

    def on_click(self, event: events.Click) -> None:
        spot = self._spot_at(event.x)
        if spot is None:
            return
        _start, _end, key, enabled = self._spots[spot]
        if enabled:
            self.app.simulate_key(key)
        else:
            self.app.bell()
