"""The Workbench app. Build it with :func:`make_app` (the CLI and the tests both do).

Five screens, one per mode, each a key away (shown in the footer): F1 Prompts, F2
Editor, F3 Compare, F4 History, F5 Models. Every action is also in the command palette
(Ctrl+P), themes included; the chosen theme is remembered.
"""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Any

from textual.app import App, SystemCommand
from textual.binding import Binding

from workbench.themes import DARK_NAME, GLOBAL_TCSS, THEMES

if TYPE_CHECKING:
    from workbench.config import Settings
    from workbench.engine import Engine
    from workbench.storage.db import Store
    from workbench.workspace import Workspace

DEFAULT_THEME = DARK_NAME


def _screen(module: str, name: str) -> Any:
    """A mode's screen factory that imports its module only when first shown."""

    def make() -> Any:
        import importlib

        return getattr(importlib.import_module(f"workbench.screens.{module}"), name)()

    return make


class WorkbenchApp(App[None]):
    """Prompt Workbench's terminal interface."""

    TITLE = "Prompt Workbench"
    CSS_PATH = [GLOBAL_TCSS]
    MODES = {
        "prompts": _screen("prompts", "PromptsScreen"),
        "editor": _screen("editor", "EditorScreen"),
        "compare": _screen("compare", "CompareScreen"),
        "history": _screen("history", "HistoryScreen"),
        "models": _screen("models", "ModelsScreen"),
    }
    DEFAULT_MODE = "prompts"  # the first screen, mounted directly (no blank screen first)
    BINDINGS = [
        Binding("f1", "switch_mode('prompts')", "Prompts"),
        Binding("f2", "switch_mode('editor')", "Editor"),
        Binding("f3", "switch_mode('compare')", "Compare"),
        Binding("f4", "switch_mode('history')", "History"),
        Binding("f5", "switch_mode('models')", "Models"),
        Binding("f6", "open_rag", "RAG index"),
        Binding("f7", "open_registry", "Registry"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, settings: Settings, *, engine_options: dict[str, Any] | None = None,
                 rag: dict[str, Any] | None = None):
        super().__init__()
        self._rag_target: Any = None
        """The :class:`~workbench.screens.rag.RagTarget` to open at start (``rag open``)."""
        if rag is not None:
            from workbench.screens.rag import RagTarget

            self._rag_target = RagTarget(**rag)
        self._settings = settings
        self._engine_options = dict(engine_options or {})
        """Passed to the Engine (tests give a scripted backend and a fixed clock)."""
        self.clock = self._engine_options.get("clock", time.perf_counter)
        """The clock runs are timed with (the panes' live figures use it too)."""
        self._store: Store | None = None
        self._store_lock = threading.Lock()
        self._engine: Engine | None = None
        self._workspace: Workspace | None = None
        self.workspace_note: str | None = None
        """What happened to the saved drafts at start (restored, unreadable), to show once."""
        for theme in THEMES:
            self.register_theme(theme)
        # Before mounting: a theme set later would make Textual parse every stylesheet again.
        self.theme = _saved_theme(self) or DEFAULT_THEME

    @property
    def settings(self) -> Settings:
        """The settings in effect (reloaded when a screen changes the config)."""
        return self._settings

    @settings.setter
    def settings(self, value: Settings) -> None:
        self._settings = value
        self._engine = None  # the next call builds one that sees the new models

    def store(self) -> Store:
        """The store, opened (and migrated) on first use. Call it from a worker thread."""
        with self._store_lock:
            if self._store is None:
                from workbench.storage.db import open_store

                db = self.settings.database
                self._store = open_store(db.url, busy_timeout_s=db.busy_timeout_s)
            return self._store

    def engine(self) -> Engine:
        """The engine every model call goes through (built on first use; needs the store)."""
        with self._store_lock:
            engine = self._engine
        if engine is None:
            from workbench.engine import Engine

            store = self.store()
            with self._store_lock:
                if self._engine is None:
                    self._engine = Engine(self.settings, store, **self._engine_options)
                engine = self._engine
        return engine

    @property
    def workspace(self) -> Workspace:
        """The variants being edited, restored from the draft file on first use."""
        if self._workspace is None:
            from workbench.workspace import load_workspace

            self._workspace, self.workspace_note = load_workspace()
        return self._workspace

    def on_mount(self) -> None:
        self.call_after_refresh(_start_collector)
        if self._rag_target is not None:
            from workbench.screens.rag import RagScreen

            self.push_screen(RagScreen(self._rag_target))

    def action_open_registry(self) -> None:
        """The registry: connection, what waits to be pushed or pulled, the audit log."""
        from workbench.screens.registry import RegistryScreen

        if not isinstance(self.screen, RegistryScreen):
            self.push_screen(RegistryScreen())

    def action_open_rag(self) -> None:
        """Ask for a Chroma folder (or HOST:PORT) and inspect it."""
        from workbench.screens.dialogs import Ask
        from workbench.screens.rag import RagScreen, RagTarget

        def chosen(where: str | None) -> None:
            if not where:
                return
            host, sep, port = where.rpartition(":")
            if sep and port.isdigit() and "/" not in where:
                target = RagTarget(host=host, port=int(port))
            else:
                target = RagTarget(path=where)
            self.push_screen(RagScreen(target))

        last = self._rag_target.label if self._rag_target is not None else ""
        self.push_screen(Ask("Open a RAG index: a Chroma folder, or HOST:PORT of a Chroma server",
                             placeholder="./chroma", value=last), chosen)

    def get_system_commands(self, screen: Any) -> Any:
        """The palette: Textual's commands (themes among them), the screens, and every
        action of the screen it was opened from, with its key."""
        yield from super().get_system_commands(screen)
        seen = set()
        for target, bindings in ((self, self.BINDINGS), (screen, getattr(screen, "BINDINGS", []))):
            for binding in bindings:
                if not isinstance(binding, Binding) or not binding.description:
                    continue
                if binding.description in seen or binding.action == "quit":
                    continue
                seen.add(binding.description)
                key = binding.key.split(",")[0]
                yield SystemCommand(
                    binding.description,
                    f"{type(target).__name__.removesuffix('Screen')}: {key}",
                    lambda target=target, action=binding.action: self.call_later(
                        target.run_action, action
                    ),
                )

    def watch_theme(self, theme: str) -> None:
        _save_theme(theme)

    async def action_quit(self) -> None:
        """Quit; with unsaved drafts, the editor asks first."""
        editor = self._mode_screen("editor")
        if editor is not None and hasattr(editor, "confirm_quit"):
            await editor.confirm_quit()
            return
        self.exit()

    def _mode_screen(self, mode: str) -> Any:
        stack = self._screen_stacks.get(mode) if hasattr(self, "_screen_stacks") else None
        return stack[-1] if stack else None

    async def on_unmount(self) -> None:
        if self._engine is not None:
            await self._engine.aclose()
        if self._store is not None:
            self._store.close()


def _ui_state_path() -> Any:
    from workbench.config import data_dir

    return data_dir() / "ui.json"


def _start_collector() -> None:
    """After the first screen: start-up's objects (modules, classes, CSS) live as long as
    the app, so they are kept out of the collector's passes (a large share of streaming's
    CPU otherwise), and the collector, off during start-up (``workbench.cli.open_app``),
    is on again."""
    import gc

    gc.freeze()
    gc.enable()


def _saved_theme(app: App[Any]) -> str | None:
    try:
        theme = json.loads(_ui_state_path().read_text(encoding="utf-8")).get("theme")
    except (OSError, ValueError, AttributeError):
        return None
    return theme if isinstance(theme, str) and theme in app.available_themes else None


def _save_theme(theme: str) -> None:
    path = _ui_state_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"theme": theme}), encoding="utf-8")
    except OSError:
        pass  # a preference we cannot write only costs the user a key press next time


def make_app(settings: Settings, **options: Any) -> WorkbenchApp:
    """The app for these settings; nothing is opened until it runs."""
    return WorkbenchApp(settings, **options)
