"""The prompt library: every prompt in the store, with the selected one's versions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Static

from workbench.output import inert, when

if TYPE_CHECKING:
    from workbench.screens.app import WorkbenchApp
    from workbench.storage.repo import PromptInfo, VersionInfo


def plain(text: str) -> Text:
    """Untrusted text as an inert Rich ``Text``: no markup parsed, escapes made visible."""
    return Text(inert(text))


class PromptsScreen(Screen[None]):
    """Lists the prompts in the store; the highlighted one's versions show beside it."""

    CSS_PATH = "prompts.tcss"
    BINDINGS = [
        Binding("slash", "search", "Search"),
        Binding("r", "refresh", "Refresh"),
        Binding("escape", "clear_search", "Clear search", show=False),
        Binding("q", "app.quit", "Quit"),
    ]

    app: WorkbenchApp

    def __init__(self) -> None:
        super().__init__()
        self._versions: dict[str, VersionInfo] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="search prompts (/)", id="search")
        with Horizontal(id="body"):
            yield DataTable(id="prompts", cursor_type="row", zebra_stripes=True)
            with Vertical(id="detail"):
                yield DataTable(id="versions", cursor_type="row")
                yield Static(id="content")
        yield Static("loading...", id="status", classes="hint")
        yield Footer()

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
        self.load_prompts()

    def action_refresh(self) -> None:
        self.load_prompts()

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
        if infos:
            count = f"{len(infos)} prompt" + ("s" if len(infos) != 1 else "")
            status.update(Text(f"{count}  ·  store: {self.app.store().display_url}"))
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
        """Read one prompt's versions off the UI thread."""
        try:
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
                str(v.number),
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
