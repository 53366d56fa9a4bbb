"""The prompt library: every prompt in the store, with the selected one's versions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Header, Input, Static

from workbench.output import inert, when
from workbench.screens.keybar import KeyBar
from workbench.screens.worker_errors import ReportsWorkerErrors

if TYPE_CHECKING:
    from workbench.screens.app import WorkbenchApp
    from workbench.storage.repo import PromptInfo, VersionInfo


def plain(text: str) -> Text:
    """Untrusted text as an inert Rich ``Text``: no markup parsed, escapes made visible."""
    return Text(inert(text))


class PromptsScreen(ReportsWorkerErrors, Screen[None]):
    """Lists the prompts in the store; the highlighted one's versions show beside it."""

    CSS_PATH = "prompts.tcss"
    BINDINGS = [
        Binding("slash", "search", "Search"),
        Binding("e", "edit", "Edit"),
        Binding("l", "label", "Label"),
        Binding("a", "approve", "Approve"),
        Binding("m", "mark", "Mark"),
        Binding("d", "diff", "Diff"),
        Binding("h", "label_history", "Label moves"),
        Binding("t", "datasets", "Datasets"),
        Binding("r", "refresh", "Refresh"),
        Binding("escape", "clear_search", "Clear search", show=False),
        Binding("q", "app.quit", "Quit", show=False),  # ^q Quit is in the bar already
    ]

    app: WorkbenchApp

    def __init__(self) -> None:
        super().__init__()
        self._versions: dict[str, VersionInfo] = {}
        self._marked: VersionInfo | None = None
        self._resumed = False
        self._pending_notice: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="search prompts (/)", id="search")
        with Horizontal(id="body"):
            yield DataTable(id="prompts", cursor_type="row", zebra_stripes=True)
            with Vertical(id="detail"):
                yield DataTable(id="versions", cursor_type="row")
                yield Static(id="content")
        yield Static("loading...", id="status", classes="hint")
        yield KeyBar()

    def on_mount(self) -> None:
        # Fixed widths: columns stay put as rows arrive (and snapshots stay stable).
        prompts = self.query_one("#prompts", DataTable)
        for label, width in (("name", 24), ("latest", 6), ("labels", 18), ("updated", 20)):
            prompts.add_column(label, width=width)
        prompts.add_column("description")
        versions = self.query_one("#versions", DataTable)
        for label, width in (("version", 7), ("labels", 18), ("author", 12), ("created", 20)):
            versions.add_column(label, width=width)
        versions.add_column("message")
        self.query_one("#prompts", DataTable).focus()
        # A SQLite store at the current revision is read here and now (a few ms, never
        # waiting on a lock): the first frame shows the list. Anything else: a worker.
        from workbench.storage.quick import list_prompts_quick

        infos = list_prompts_quick(self.app.settings.database.url, timeout_s=0)
        if infos is None:
            self.load_prompts()
        else:
            self._show_prompts(infos)

    def action_refresh(self) -> None:
        self.load_prompts()

    def on_screen_resume(self) -> None:
        # Back from another screen (the editor may have committed): show the store as it is.
        # (The first resume comes right after on_mount, which is already loading.)
        if self._resumed:
            self.load_prompts()
        self._resumed = True

    def action_search(self) -> None:
        self.query_one("#search", Input).focus()

    def action_clear_search(self) -> None:
        search = self.query_one("#search", Input)
        search.value = ""
        self.query_one("#prompts", DataTable).focus()

    @on(Input.Changed, "#search")
    def _search_changed(self) -> None:
        self.load_prompts()

    @on(Input.Submitted, "#search")
    def _search_submitted(self) -> None:
        self.query_one("#prompts", DataTable).focus()

    @work(thread=True, exclusive=True, group="prompts", exit_on_error=False)
    def load_prompts(self) -> None:
        """Read the prompt list off the UI thread."""
        search = self.query_one("#search", Input).value.strip() or None
        try:
            from workbench.storage.quick import list_prompts_quick

            infos = list_prompts_quick(self.app.settings.database.url, search)
            if infos is None:
                from workbench.storage import repo

                infos = repo.list_prompts(self.app.store(), search)
        except Exception as exc:  # shown to the user; the app keeps running
            self.app.call_from_thread(self._show_error, exc)
            return
        self.app.call_from_thread(self._show_prompts, infos)

    def _show_prompts(self, infos: list[PromptInfo]) -> None:
        table = self.query_one("#prompts", DataTable)
        table.clear()
        for p in infos:
            labels = " ".join(f"{k}@{v}" for k, v in p.labels.items())
            table.add_row(
                plain(p.name),
                str(p.latest),
                plain(labels),
                when(p.updated_at),
                plain(p.description),
                key=p.name,
            )
        if not infos:
            self._show_versions([])
        status = self.query_one("#status", Static)
        if self._pending_notice is not None:  # what the user just did outranks the count
            notice, self._pending_notice = self._pending_notice, None
            self._notice(notice)
        elif infos:
            count = f"{len(infos)} prompt" + ("s" if len(infos) != 1 else "")
            from workbench.config import redact_url

            status.update(Text(f"{count}  ·  store: {redact_url(self.app.settings.database.url)}"))
        elif self.query_one("#search", Input).value:
            status.update(Text("no prompt matches the search"))
        else:
            status.update(
                Text("no prompts yet: add one with `workbench prompts commit FILE -m MESSAGE`")
            )
        status.set_class(False, "error-message")

    def _show_error(self, exc: Exception) -> None:
        status = self.query_one("#status", Static)
        status.update(plain(f"error: {exc}"))
        status.set_class(True, "error-message")

    @on(DataTable.RowHighlighted, "#prompts")
    def _prompt_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self.load_versions(event.row_key.value)

    @work(thread=True, exclusive=True, group="versions", exit_on_error=False)
    def load_versions(self, name: str) -> None:
        """Read one prompt's versions off the UI thread (with sqlite3 alone where it can:
        the store's own path imports SQLAlchemy)."""
        try:
            from workbench.storage.quick import log_quick

            versions = log_quick(self.app.settings.database.url, name)
            if versions is None:
                from workbench.storage import repo

                versions = repo.log(self.app.store(), name)
        except Exception as exc:
            self.app.call_from_thread(self._show_error, exc)
            return
        self.app.call_from_thread(self._show_versions, versions)

    def _show_versions(self, versions: list[VersionInfo]) -> None:
        self._versions = {v.id: v for v in versions}
        table = self.query_one("#versions", DataTable)
        table.clear()
        for v in versions:
            table.add_row(
                v.shown,
                plain(", ".join(v.labels)),
                plain(v.author),
                when(v.created_at),
                plain(v.message),
                key=v.id,
            )
        self._show_content(versions[0] if versions else None)

    @on(DataTable.RowHighlighted, "#versions")
    def _version_highlighted(self, event: DataTable.RowHighlighted) -> None:
        version = self._versions.get(event.row_key.value or "")
        if version is not None:
            self._show_content(version)

    def _show_content(self, version: VersionInfo | None) -> None:
        content = Text()
        if version is not None:
            for message in version.content.messages:
                content.append(f"{message.role}\n", style="bold reverse")
                content.append(inert(message.content) + "\n\n")
        self.query_one("#content", Static).update(content)

    # --- actions on the highlighted version ------------------------------------------

    def _selected(self) -> VersionInfo | None:
        table = self.query_one("#versions", DataTable)
        if not self._versions or table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self._versions.get(key or "")

    def _need_version(self) -> VersionInfo | None:
        version = self._selected()
        if version is None:
            self._show_error(Exception("no version selected: pick a prompt, then Tab to its versions"))
        return version

    def action_label(self) -> None:
        version = self._need_version()
        if version is None:
            return
        from workbench.screens.dialogs import Ask

        def answered(label: str | None) -> None:
            if label:
                self.set_label(version, label)

        self.app.push_screen(Ask(f"Label {version.ref} as", placeholder="approved"), answered)

    @work(thread=True, exit_on_error=False)
    def set_label(self, version: VersionInfo, label: str) -> None:
        from workbench.domain import Ref
        from workbench.storage import repo

        try:
            repo.set_label(self.app.store(), Ref(name=version.prompt, number=version.number), label,
                           actor=self.app.settings.user.name)
        except Exception as exc:
            self.app.call_from_thread(self._show_error, exc)
            return
        self.app.call_from_thread(self._reload_saying, f"{version.prompt}:{label} -> {version.ref}")

    def action_approve(self) -> None:
        version = self._need_version()
        if version is None:
            return
        from workbench.screens.dialogs import Ask

        def answered(comment: str | None) -> None:
            if comment:
                self.approve(version, comment)

        self.app.push_screen(Ask(f"Approve {version.ref}: why?", placeholder="reviewed on 40 cases"),
                             answered)

    @work(thread=True, exit_on_error=False)
    def approve(self, version: VersionInfo, comment: str) -> None:
        from workbench.domain import Ref
        from workbench.storage.approvals import approve

        try:
            done = approve(self.app.store(), Ref(name=version.prompt, number=version.number),
                           actor=self.app.settings.user.name, comment=comment)
        except Exception as exc:
            self.app.call_from_thread(self._show_error, exc)
            return
        self.app.call_from_thread(self._reload_saying, f"{version.ref} approved by {done.approver}")

    def _reload_saying(self, text: str) -> None:
        self._notice(text)
        self._pending_notice = text
        self.load_prompts()

    def _notice(self, text: str) -> None:
        status = self.query_one("#status", Static)
        status.update(plain(text))
        status.set_class(False, "error-message")

    def action_mark(self) -> None:
        version = self._need_version()
        if version is not None:
            self._marked = version
            self._notice(f"marked {version.ref}: highlight another version and press d to diff")

    def action_diff(self) -> None:
        version = self._need_version()
        if version is None:
            return
        older = self._marked if self._marked and self._marked.prompt == version.prompt else None
        if older is None:
            older = next((v for v in self._versions.values() if v.number == version.number - 1), None)
        if older is None:
            self._notice("nothing to diff with: mark a version with m first")
            return
        from workbench.promptfile import diff_versions
        from workbench.screens.dialogs import Show

        self.app.push_screen(Show(f"{older.ref} -> {version.ref}",
                                  diff_versions(older, version) or "no differences"))

    @work(thread=True, exit_on_error=False)
    def action_label_history(self) -> None:
        table = self.query_one("#prompts", DataTable)
        if table.row_count == 0:
            return
        name = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value or ""
        from workbench.output import when as at
        from workbench.storage import repo

        try:
            moves = repo.label_history(self.app.store(), name)
        except Exception as exc:
            self.app.call_from_thread(self._show_error, exc)
            return
        lines = [
            f"{at(m.at)}  {m.label}: {'@' + str(m.from_number) if m.from_number else '(new)'}"
            f" -> @{m.to_number}  by {m.actor}"
            for m in moves
        ]
        from workbench.screens.dialogs import Show

        self.app.call_from_thread(self.app.push_screen,
                                  Show(f"label moves of {name}", "\n".join(lines) or "no labels yet"))

    @work(thread=True, exit_on_error=False)
    def action_datasets(self) -> None:
        from workbench.storage.datasets import list_datasets

        try:
            found = list_datasets(self.app.store())
        except Exception as exc:
            self.app.call_from_thread(self._show_error, exc)
            return
        lines = [f"{d.name}  ({d.size} cases)  {d.description}" for d in found]
        from workbench.screens.dialogs import Show

        self.app.call_from_thread(self.app.push_screen, Show(
            "datasets (run one from Compare with Ctrl+G)",
            "\n".join(lines) or "no datasets: `workbench datasets import FILE --name NAME`"))

    def action_edit(self) -> None:
        version = self._need_version()
        if version is None:
            return

        async def go() -> None:
            await self.app.switch_mode("editor")
            editor = self.app.screen
            if hasattr(editor, "open_version"):
                editor.open_version(version.ref)

        self.run_worker(go(), exit_on_error=False)
