"""The team's registry as this machine sees it: the connection, what waits in the outbox
(approvals waiting included), conflicts to resolve, what differs there, protected labels,
and the audit log; push, pull and resolve from here."""

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
from workbench.screens.worker_errors import ReportsWorkerErrors

if TYPE_CHECKING:
    from workbench.screens.app import WorkbenchApp


class RegistryScreen(ReportsWorkerErrors, Screen[None]):
    """Connection state and differences on the left, the audit log on the right."""

    CSS_PATH = "registry.tcss"
    BINDINGS = [
        Binding("p", "push", "Push"),
        Binding("u", "pull", "Pull"),
        Binding("m", "resolve(True)", "Mine"),
        Binding("t", "resolve(False)", "Theirs"),
        Binding("r", "refresh", "Refresh"),
        Binding("escape", "back", "Back"),
    ]

    app: WorkbenchApp

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="registry-body"):
            with VerticalScroll(id="sync"):
                yield Static("checking the registry...", id="connection")
                yield Static(id="outbox")
                yield DataTable(id="conflicts", cursor_type="row")
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
        conflicts = self.query_one("#conflicts", DataTable)
        conflicts.border_title = "conflicts (m keeps mine, t theirs)"
        for label, width in (("what", 24), ("why", 80)):
            conflicts.add_column(label, width=width)
        self._conflicts: list[Any] = []
        self.action_refresh()

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    def action_refresh(self) -> None:
        self.load()

    _busy = False
    """A push, pull or resolve is under way (one at a time: a thread cannot be stopped)."""

    def _start(self, what: str, *args: Any) -> None:
        if self._busy:
            self._say("a push, pull or resolve is still under way")
            return
        self._busy = True
        self._say(f"{what}...")
        self.sync(*args)

    def action_push(self) -> None:
        self._start("pushing", "push")

    def action_pull(self) -> None:
        self._start("pulling", "pull")

    def action_resolve(self, mine: bool) -> None:
        table = self.query_one("#conflicts", DataTable)
        if not self._conflicts or table.cursor_row < 0:
            self._say("no conflict selected")
            return
        conflict = self._conflicts[min(table.cursor_row, len(self._conflicts) - 1)]
        self._start("resolving", "resolve", conflict, mine)

    @work(thread=True, group="registry-sync", exit_on_error=False)
    def sync(self, what: str, conflict: Any = None, mine: bool = False) -> None:
        try:
            self._sync(what, conflict, mine)
        finally:
            self._busy = False

    def _sync(self, what: str, conflict: Any, mine: bool) -> None:
        from workbench.registry_link import open_registry, resolve
        from workbench.storage.sync_pull import pull
        from workbench.storage.sync_push import push

        store = self.app.store()
        try:
            registry = open_registry(self.app.settings, store)
        except Exception as exc:  # unreachable, not configured: said where the user looks
            self.app.call_from_thread(self._say, str(exc), True)
            return
        try:
            if what == "resolve":
                said = resolve(store, registry, conflict.name, conflict.label, mine=mine,
                               actor=self.app.settings.user.name, dataset=conflict.kind == "dataset")
            else:
                report = (push if what == "push" else pull)(store, registry)
                counts = report.pushed if what == "push" else report.pulled
                said = f"{what}ed: " + (", ".join(f"{n} {k}" for k, n in sorted(counts.items()) if n)
                                        or "nothing new")
                if report.numbered:
                    said += " · numbered " + ", ".join(report.numbered[:5])
                if report.conflicts:
                    said += f" · {len(report.conflicts)} conflict(s) to resolve"
        except Exception as exc:
            self.app.call_from_thread(self._say, str(exc), True)
            return
        finally:
            registry.close()
        self.app.call_from_thread(self._say, said, "conflict" in said or "refused" in said)
        self.load(keep_status=True)

    @work(thread=True, exclusive=True, group="registry", exit_on_error=False)
    def load(self, keep_status: bool = False) -> None:
        from workbench.storage.approvals import RULES, audit, protected
        from workbench.storage.outbox import pending

        store = self.app.store()
        try:
            entries = audit(store)
            rules = protected(store)
            waiting = pending(store)
        except Exception as exc:
            self.app.call_from_thread(self._say, f"cannot read the audit log: {exc}", True)
            return
        self.app.call_from_thread(self._show_audit, entries, keep_status)
        self.app.call_from_thread(self._show_outbox, waiting)
        settings = self.app.settings
        lines = [f"protected labels: {', '.join(f'{k} ({RULES.get(v, v)})' for k, v in rules.items()) or 'none'}"]
        if not settings.registry.url:
            self.app.call_from_thread(self._show, "no registry: `workbench registry connect URL` links "
                                      "this store to the team's registry", lines, False)
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

    def _show_outbox(self, waiting: Any) -> None:
        from workbench.storage.outbox import waiting_text

        counts = waiting_text(waiting.waiting) or "nothing"
        approvals = waiting.waiting.get("approval", 0)
        self.query_one("#outbox", Static).update(Text(
            f"waiting to be pushed: {counts}\napprovals waiting: {approvals}"))
        self._conflicts = list(waiting.items)
        table = self.query_one("#conflicts", DataTable)
        table.clear()
        for conflict in self._conflicts:
            what = f"{conflict.name}:{conflict.label}" if conflict.label else f"dataset {conflict.name}"
            table.add_row(plain(what), plain(conflict.detail))
        table.display = bool(self._conflicts)

    def _show_audit(self, entries: list[Any], keep_status: bool = False) -> None:
        table = self.query_one("#audit", DataTable)
        table.clear()
        for e in reversed(entries):  # newest first
            table.add_row(e.at.strftime("%Y-%m-%d %H:%M:%SZ"), e.kind, plain(e.prompt), plain(e.label),
                          "-" if e.from_number is None else str(e.from_number), str(e.to_number),
                          plain(e.who), plain(e.comment))
        if not keep_status:
            self._say(f"{len(entries)} approvals and label moves · p pushes, u pulls, r refreshes")

    def _say(self, text: str, error: bool = False) -> None:
        line = self.query_one("#status", Static)
        line.update(Text(inert(text)))
        line.set_class(error, "error-message")
