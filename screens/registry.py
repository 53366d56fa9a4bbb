"""The team's registry as this machine sees it: the connection, what is waiting to be pushed
or pulled, labels that point elsewhere there, protected labels, and the audit log."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from workbench.output import inert
from workbench.screens.keybar import KeyBar
from workbench.screens.prompts import plain

if TYPE_CHECKING:
    from workbench.screens.app import WorkbenchApp


class RegistryScreen(Screen[None]):
    """Connection state and differences on the left, the audit log on the right."""

    CSS_PATH = "registry.tcss"
    BINDINGS = [Binding("r", "refresh", "Refresh"), Binding("escape", "back", "Back")]

    app: WorkbenchApp

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="registry-body"):
            with VerticalScroll(id="sync"):
                yield Static("checking the registry...", id="connection")
                yield Static(id="differences")
            yield DataTable(id="audit", cursor_type="row", zebra_stripes=True)
        yield Static("", id="status", classes="hint")
        yield KeyBar()

    def on_mount(self) -> None:
        self.sub_title = "Registry"
        self.query_one("#sync").border_title = "sync"
        audit = self.query_one("#audit", DataTable)
        audit.border_title = "audit log (this store)"
        for label, width in (("when", 20), ("what", 8), ("prompt", 16), ("label", 12),
                             ("from", 4), ("to", 4), ("who", 10)):
            audit.add_column(label, width=width)
        audit.add_column("comment")
        self.action_refresh()

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    def action_refresh(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="registry", exit_on_error=False)
    def load(self) -> None:
        from workbench.storage.approvals import RULES, audit, protected

        store = self.app.store()
        try:
            entries = audit(store)
            rules = protected(store)
        except Exception as exc:
            self.app.call_from_thread(self._say, f"cannot read the audit log: {exc}", True)
            return
        self.app.call_from_thread(self._show_audit, entries)
        settings = self.app.settings
        lines = [f"protected labels: {', '.join(f'{k} ({RULES.get(v, v)})' for k, v in rules.items()) or 'none'}"]
        if not settings.registry.url:
            self.app.call_from_thread(self._show, "no registry: `workbench registry connect URL` links "
                                      "this store to the team's", lines, False)
            return
        from workbench.registry_link import registry_url, status

        try:
            found = status(store, registry_url(settings))
        except Exception as exc:
            self.app.call_from_thread(self._show, f"registry: {exc}", lines, True)
            return
        if not found.reachable:
            self.app.call_from_thread(
                self._show, f"registry {found.registry}: cannot be reached ({found.reason}); "
                "work goes on here and waits", lines, True)
            return
        for title, items in (("waiting to be pushed (only here)", found.local_only),
                             ("to pull (only in the registry)", found.registry_only),
                             ("labels that point elsewhere there", found.labels_differ)):
            lines.append(f"\n{title}: {len(items)}")
            lines += [f"  {item}" for item in items[:50]]
        self.app.call_from_thread(self._show, f"registry {found.registry}: reachable", lines, False)

    def _show(self, connection: str, lines: list[str], error: bool) -> None:
        line = self.query_one("#connection", Static)
        line.update(Text(inert(connection), style="bold"))
        line.set_class(error, "error-message")
        self.query_one("#differences", Static).update(Text(inert("\n".join(lines))))

    def _show_audit(self, entries: list[Any]) -> None:
        table = self.query_one("#audit", DataTable)
        table.clear()
        for e in reversed(entries):  # newest first
            table.add_row(e.at.strftime("%Y-%m-%d %H:%M:%SZ"), e.kind, plain(e.prompt), plain(e.label),
                          "-" if e.from_number is None else str(e.from_number), str(e.to_number),
                          plain(e.who), plain(e.comment))
        self._say(f"{len(entries)} approvals and label moves · r refreshes")

    def _say(self, text: str, error: bool = False) -> None:
        line = self.query_one("#status", Static)
        line.update(Text(inert(text)))
        line.set_class(error, "error-message")
