"""The Workbench app. Build it with :func:`make_app` (the CLI and the tests both do)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from textual.app import App

from workbench.themes import GLOBAL_TCSS, THEMES

if TYPE_CHECKING:
    from workbench.config import Settings
    from workbench.storage.db import Store


class WorkbenchApp(App[None]):
    """Prompt Workbench's terminal interface."""

    TITLE = "Prompt Workbench"
    CSS_PATH = [GLOBAL_TCSS]

    def __init__(self, settings: Settings):
        super().__init__()
        self.settings = settings
        self._store: Store | None = None
        self._store_lock = threading.Lock()

    def store(self) -> Store:
        """The store, opened (and migrated) on first use. Call it from a worker thread."""
        with self._store_lock:
            if self._store is None:
                from workbench.storage.db import open_store

                db = self.settings.database
                self._store = open_store(db.url, busy_timeout_s=db.busy_timeout_s)
            return self._store

    def on_mount(self) -> None:
        for theme in THEMES:
            self.register_theme(theme)
        from workbench.screens.prompts import PromptsScreen

        self.push_screen(PromptsScreen())

    def on_unmount(self) -> None:
        if self._store is not None:
            self._store.close()


def make_app(settings: Settings) -> WorkbenchApp:
    """The app for these settings; nothing is opened until it runs."""
    return WorkbenchApp(settings)
