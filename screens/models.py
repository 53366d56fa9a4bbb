"""Models and keys: every model with whether it can be used now; set keys, add models.

Status checks ask the keyring and the network, so they run in a thread worker. A key
typed here goes from a password field straight to :mod:`workbench.keys`: it is never
shown, logged, or passed where Textual would describe it (a worker's arguments are).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static
from textual.worker import get_current_worker

from workbench.errors import WorkbenchError
from workbench.output import inert
from workbench.screens.keybar import KeyBar
from workbench.screens.model_dialogs import AddModelModal, KeyModal
from workbench.screens.worker_errors import ReportsWorkerErrors

if TYPE_CHECKING:
    from workbench.config import ModelConfig, Settings
    from workbench.models import ModelSpec
    from workbench.screens.app import WorkbenchApp

CHECKING = "… checking"


def plain(text: str) -> Text:
    """Untrusted text as an inert Rich ``Text``: no markup parsed, escapes made visible."""
    return Text(inert(text))


def _model_of(spec: ModelSpec) -> str:
    return str(spec.options.get("model_path") or spec.options.get("model") or spec.name)


class ModelsScreen(ReportsWorkerErrors, Screen[None]):
    """Each model with its backend and whether it is usable; keys and new models."""

    CSS_PATH = "models.tcss"
    BINDINGS = [
        Binding("r", "refresh", "Refresh"),
        Binding("k", "set_key", "Set key"),
        Binding("d", "delete_key", "Delete key"),
        Binding("a", "add_model", "Add model"),
        Binding("q", "app.quit", "Quit", show=False),
    ]

    app: WorkbenchApp

    def __init__(self) -> None:
        super().__init__()
        self._specs: dict[str, ModelSpec] = {}
        self._rows: dict[str, dict[str, Any]] = {}
        self._generation = 0
        self._select: str | None = None
        self._note: tuple[str, bool] | None = None
        """What the last action did (or why it failed): shown until the next one."""

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="models", cursor_type="row", zebra_stripes=True)
        yield Static(id="detail")
        yield Static("loading...", id="status", classes="hint")
        yield KeyBar()

    def on_mount(self) -> None:
        table = self.query_one("#models", DataTable)
        # Fixed widths: columns stay put as statuses arrive (and snapshots stay stable).
        for label, width in (("name", 16), ("backend", 9), ("model", 34), ("key", 8)):
            table.add_column(label, width=width, key=label)
        table.add_column("status", key="status")
        table.focus()
        self.action_refresh()

    def action_refresh(self) -> None:
        self._note = None
        self._check()

    def _check(self) -> None:
        self._generation += 1  # results of an earlier check that are still coming are dropped
        self.check_models(self._generation)

    @work(thread=True, exclusive=True, group="models", exit_on_error=False)
    def check_models(self, generation: int) -> None:
        """List the models, then check each one (keyring, files, servers) off the UI thread."""
        from workbench.models import listed_models, model_status

        worker, settings = get_current_worker(), self.app.settings
        try:
            specs = listed_models(settings)
        except Exception as exc:  # a bad model in the config: shown, the app keeps running
            self.app.call_from_thread(self._tell, f"error: {exc}", True)
            return
        self.app.call_from_thread(self._show_rows, generation, specs)
        for spec in specs:
            if worker.is_cancelled:
                return
            try:
                row = model_status(settings, spec)
            except Exception as exc:
                row = {"usable": False, "reason": f"cannot check: {exc}", "key": None}
            self.app.call_from_thread(self._show_status, generation, spec.name, row)

    def _show_rows(self, generation: int, specs: list[ModelSpec]) -> None:
        if generation != self._generation:
            return
        table = self.query_one("#models", DataTable)
        table.clear()
        self._specs, self._rows = {s.name: s for s in specs}, {}
        for spec in specs:
            table.add_row(plain(spec.name), plain(spec.backend), plain(_model_of(spec)), "",
                          Text(CHECKING), key=spec.name)
        if self._select in self._specs:
            table.move_cursor(row=table.get_row_index(self._select))
        self._select = None
        self._show_summary()

    def _show_status(self, generation: int, name: str, row: dict[str, Any]) -> None:
        if generation != self._generation or name not in self._specs:
            return
        self._rows[name] = row
        table = self.query_one("#models", DataTable)
        table.update_cell(name, "key", Text((row.get("key") or "").split(":")[0]))
        status = "✓ usable" if row["usable"] else f"✗ {row['reason']}"
        table.update_cell(name, "status", plain(status), update_width=True)
        if self._selected() is self._specs[name]:
            self._show_detail(self._specs[name])
        self._show_summary()

    def _show_summary(self) -> None:
        from workbench.config import config_path

        if self._note is not None:
            self._message(*self._note)
            return
        done, total = len(self._rows), len(self._specs)
        usable = sum(1 for r in self._rows.values() if r["usable"])
        progress = f"{usable} usable" if done == total else f"checked {done}"
        count = f"{total} model" + ("s" if total != 1 else "")
        self._message(f"{count} · {progress} · config: {config_path()}", False)

    def _tell(self, text: str, error: bool) -> None:
        """Show what an action did, until the next action."""
        self._note = (text, error)
        self._message(text, error)

    def _message(self, text: str, error: bool) -> None:
        status = self.query_one("#status", Static)
        status.update(plain(text))
        status.set_class(error, "error-message")

    def _selected(self) -> ModelSpec | None:
        table = self.query_one("#models", DataTable)
        if not table.row_count:
            return None
        row_key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return self._specs.get(row_key.value or "")

    @on(DataTable.RowHighlighted, "#models")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        spec = self._specs.get(event.row_key.value or "")
        if spec is not None:
            self._show_detail(spec)

    def _show_detail(self, spec: ModelSpec) -> None:
        from workbench.keys import env_var

        row = self._rows.get(spec.name)
        lines = [f"{spec.name}  ·  {spec.backend}  ·  {_model_of(spec)}  ({spec.source})"]
        if spec.provider:
            key = (row or {}).get("key") or "not checked yet"
            lines.append(f"key for {spec.provider}: {key}  ·  k: store one in the keyring, "
                         f"d: delete it, or set {env_var(spec.provider)}")
        if row is None:
            lines.append(CHECKING)
        else:
            lines.append("usable" if row["usable"] else f"not usable: {row['reason']}")
        self.query_one("#detail", Static).update(plain("\n".join(lines)))

    def _provider(self) -> str | None:
        spec = self._selected()
        if spec is None:
            self._tell("no model selected", True)
        elif not spec.provider:
            self._tell(f"{spec.name} uses no provider key (a local model, or a server of "
                       "your own with no provider set)", True)
        else:
            return spec.provider
        return None

    def action_set_key(self) -> None:
        from workbench.keys import env_var, set_key

        provider = self._provider()
        if provider is None:
            return
        var = env_var(provider)

        def stored(key: str | None) -> None:
            def store() -> str:
                set_key(provider, key or "")
                wins = f" ({var} is set in the environment and wins)" if os.environ.get(var) else ""
                return f"stored the {provider} key in the keyring{wins}"

            if key:
                self._keyring_job(store, f"store the {provider} key")

        self.app.push_screen(KeyModal(provider, var), stored)

    def action_delete_key(self) -> None:
        from workbench.keys import delete_key
        from workbench.screens.dialogs import Confirm

        provider = self._provider()
        if provider is None:
            return

        def delete() -> str:
            delete_key(provider)
            return f"deleted the {provider} key"

        def answered(yes: bool | None) -> None:
            if yes:
                self._keyring_job(delete, f"delete the {provider} key")

        self.app.push_screen(Confirm(f"Delete the {provider} key from the keyring?"), answered)

    def _keyring_job(self, job: Callable[[], str], description: str) -> None:
        """Run ``job`` in a thread; what it says (never a key) goes to the status line.

        A closure, not a ``@work`` method: Textual describes a worker by its arguments.
        """

        def run() -> None:
            try:
                message, error = job(), False
            except WorkbenchError as exc:  # messages of workbench.keys never hold a key
                message, error = str(exc), True
            except Exception as exc:  # anything else: its type only, never its text
                message, error = f"could not {description}: {type(exc).__name__}", True
            self.app.call_from_thread(self._keys_done, message, error)

        self.run_worker(run, name="keyring", group="keyring", description=description,
                        thread=True, exit_on_error=False)

    def _keys_done(self, message: str, error: bool) -> None:
        self._check()
        self._tell(message, error)

    def action_add_model(self) -> None:
        def added(result: tuple[str, ModelConfig] | None) -> None:
            if result is not None:
                self.add_model(*result)

        self.app.push_screen(AddModelModal(self.app.settings), added)

    @work(thread=True, exclusive=True, group="add", exit_on_error=False)
    def add_model(self, name: str, config: ModelConfig) -> None:
        """Write ``[models.NAME]`` to the config file, then reload the settings."""
        from workbench.config import add_model_section, load_settings

        try:
            path = add_model_section(name, config)
            settings = load_settings()
        except Exception as exc:
            self.app.call_from_thread(self._tell, f"error: {exc}", True)
            return
        self.app.call_from_thread(self._model_added, name, settings, str(path))

    def _model_added(self, name: str, settings: Settings, path: str) -> None:
        self.app.settings = settings  # loaded at start: the new model exists from now on
        self._select = name
        self._check()
        self._tell(f"added [models.{name}] to {path}", False)
