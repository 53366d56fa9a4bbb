"""Driving the app in tests: wait for what the screen shows, not for a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


async def until(pilot: Any, condition: Callable[[], Any], timeout_s: float = 30.0) -> None:
    """Let the app run until ``condition()`` holds (workers post their results later)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        await pilot.pause(0.02)
        if condition():
            return
    raise AssertionError("the app never reached the expected state")
