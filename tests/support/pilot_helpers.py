"""Driving the app in tests: wait for what the screen shows, not for a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def _where(app: Any) -> str:
    """What the app showed when a wait gave up: the screen, the focus and the status line."""
    screen = app.screen
    status = screen.query("#status")
    shown = str(status.first().render()) if status else "(no #status)"
    focused = type(app.focused).__name__ if app.focused is not None else None
    return f"screen {type(screen).__name__}, focus {focused}, status {shown!r}"


async def until(pilot: Any, condition: Callable[[], Any], timeout_s: float = 30.0) -> None:
    """Let the app run until ``condition()`` holds (workers post their results later)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        await pilot.pause(0.02)
        if condition():
            return
    raise AssertionError(f"the app never reached the expected state; {_where(pilot.app)}")


async def opened(pilot: Any, dialog: str, timeout_s: float = 30.0, *, after: Any = None) -> Any:
    """Wait for the dialog named ``dialog`` to open with one of its widgets focused: keys sent
    before the focus lands go to whatever else listens (the app's bindings) and are lost.
    ``after``: a dialog of the same kind that is closing (the new one must be another).
    Returns the dialog."""
    app = pilot.app

    def ready() -> bool:
        focused = app.focused
        return (type(app.screen).__name__ == dialog and app.screen is not after
                and focused is not None and focused.screen is app.screen)

    await until(pilot, ready, timeout_s)
    return app.screen
