"""The editor: prompt variants side by side, each with its messages, model, parameters
and the values of its variables. Every change is saved to the draft file at once, so a
crash or ``kill -9`` loses nothing; committing stores a version.

Messages are edited as text, one block per message under a ``## role`` line::

    ## system
    Answer in one sentence.
    ## user
    {{ question }}
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, HorizontalScroll, Vertical
from textual.screen import Screen
from textual.widgets import Header, Input, Label, Static, TextArea

from workbench.output import inert
from workbench.screens.dialogs import Confirm, Ask
from workbench.screens.keybar import KeyBar
from workbench.workspace import VariantDraft
from workbench.screens.worker_errors import ReportsWorkerErrors

if TYPE_CHECKING:
    from workbench.screens.app import WorkbenchApp

_ROLE_LINE = re.compile(r"^## *(system|user|assistant) *$")
_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}")
_TAG_STYLE = {"{{": "string", "{%": "keyword", "{#": "comment"}


class TemplateArea(TextArea):
    """A TextArea that highlights Jinja2 (``{{ expressions }}``, ``{% statements %}``,
    ``{# comments #}``) and the ``## role`` lines that start messages."""

    def _build_highlight_map(self) -> None:
        self._line_cache.clear()
        highlights = self._highlights
        highlights.clear()
        for row, line in enumerate(self.document.lines):
            if _ROLE_LINE.match(line):
                highlights[row].append((0, len(line.encode()), "heading"))
                continue
            for match in _TAG.finditer(line):
                start = len(line[: match.start()].encode())
                end = len(line[: match.end()].encode())
                highlights[row].append((start, end, _TAG_STYLE[match.group()[:2]]))


def messages_to_text(messages: list[dict[str, str]]) -> str:
    """Messages as the editor's text (``## role`` then the content)."""
    return "\n".join(f"## {m['role']}\n{m['content']}" for m in messages)


def text_to_messages(text: str) -> list[dict[str, str]]:
    """The editor's text as messages; text before the first ``## role`` is a user message."""
    messages: list[dict[str, str]] = []
    role, lines = "user", []
    started = False
    for line in text.split("\n"):
        match = _ROLE_LINE.match(line)
        if match:
            if started or any(part.strip() for part in lines):
                messages.append({"role": role, "content": "\n".join(lines)})
            role, lines, started = match.group(1), [], True
        else:
            lines.append(line)
    if started or any(part.strip() for part in lines):
        messages.append({"role": role, "content": "\n".join(lines)})
    return messages or [{"role": "user", "content": ""}]


def parse_params(text: str) -> dict[str, Any]:
    """``temperature=0 max_tokens=64`` as parameters (numbers where they are numbers).

    Raises:
        ValueError: a part that is not KEY=VALUE.
    """
    params: dict[str, Any] = {}
    for part in text.split():
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise ValueError(f"{part!r} is not KEY=VALUE")
        number: Any = value
        for kind in (int, float):
            try:
                number = kind(value)
                break
            except ValueError:
                continue
        params[key] = number
    return params


def params_text(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items())


def variables_of(draft: VariantDraft) -> list[str]:
    """The variables the draft's templates use, in order of first use (broken ones: none)."""
    from workbench import templates

    names: list[str] = []
    for message in draft.messages:
        try:
            found = templates.compile_template(message["content"]).variables
        except templates.TemplateError:
            continue
        for match in re.finditer(r"[A-Za-z_][A-Za-z0-9_]*", message["content"]):
            if match.group() in found and match.group() not in names:
                names.append(match.group())
    return names


class VariantPane(Vertical):
    """One variant: name, model, parameters, messages and variable values."""

    def __init__(self, index: int, draft: VariantDraft):
        super().__init__(classes="variant")
        self.index = index
        self.draft = draft

    def compose(self) -> ComposeResult:
        with Horizontal(classes="variant-head"):
            yield Static(self._title(), classes="variant-title")
            yield Input(self.draft.name, placeholder="prompt name", classes="name")
        with Horizontal(classes="variant-model"):
            yield Input(self.draft.model, placeholder="model (smollm2)", classes="model")
            yield Input(params_text(self.draft.params), placeholder="temperature=0 max_tokens=64",
                        classes="params")
        yield TemplateArea(messages_to_text(self.draft.messages), classes="messages",
                           soft_wrap=True, tab_behavior="focus")
        yield Static("", classes="problem error-message")
        yield Static(self._retrieval_text(), classes="retrieval hint")
        yield Label("variables", classes="hint")
        yield Vertical(classes="variables")

    def on_mount(self) -> None:
        self.query_one(".retrieval", Static).display = bool(self.draft.retrieval)
        self.refresh_variables()

    def _title(self) -> Text:
        mark = " ●" if self.draft.unsaved else ""
        return Text(f"{chr(ord('A') + self.index)}{mark}", style="bold")

    def refresh_title(self) -> None:
        self.query_one(".variant-title", Static).update(self._title())

    def _retrieval_text(self) -> Text:
        parts = [f"{variable} <- retrieval from {spec.get('collection', '?')} (k={spec.get('k', 4)})"
                 for variable, spec in self.draft.retrieval.items() if isinstance(spec, dict)]
        return Text(inert(" · ".join(parts)))

    def refresh_retrieval(self) -> None:
        line = self.query_one(".retrieval", Static)
        line.update(self._retrieval_text())
        line.display = bool(self.draft.retrieval)
        self.refresh_variables()

    def refresh_variables(self) -> None:
        box = self.query_one(".variables", Vertical)
        wanted = [n for n in variables_of(self.draft) if n not in self.draft.retrieval]
        have = [w.name for w in box.query(Input)]
        if have == wanted:
            return
        box.remove_children()
        box.mount_all(
            Input(self.draft.values.get(name, ""), placeholder=name, name=name, classes="var")
            for name in wanted
        )

    def show_problem(self, text: str) -> None:
        self.query_one(".problem", Static).update(Text(inert(text)))


class EditorScreen(ReportsWorkerErrors, Screen[None]):
    """Variants side by side; every edit is saved to the draft file."""

    CSS_PATH = "editor.tcss"
    BINDINGS = [
        Binding("ctrl+n", "new_prompt", "New"),
        Binding("ctrl+o", "open_prompt", "Open"),
        Binding("ctrl+b", "duplicate", "Variant B"),
        Binding("ctrl+t", "remove", "Remove"),
        Binding("ctrl+s", "commit", "Commit"),
        Binding("ctrl+r", "run", "Run"),
        Binding("ctrl+g", "run_dataset", "Run dataset"),
        Binding("ctrl+l", "retrieval", "Retrieval"),
    ]

    app: WorkbenchApp

    def compose(self) -> ComposeResult:
        yield Header()
        yield HorizontalScroll(id="variants")
        yield Static("", id="status", classes="hint")
        yield KeyBar()

    def on_mount(self) -> None:
        self.rebuild()
        note = self.app.workspace_note
        if note:
            self.status(note)
            self.app.workspace_note = None
        elif not self.app.workspace.variants:
            self.status("no variants yet: Ctrl+N a new prompt, Ctrl+O open a stored one")

    # --- building -----------------------------------------------------------------------

    def rebuild(self, focus: int | None = None) -> None:
        box = self.query_one("#variants", HorizontalScroll)
        box.remove_children()
        panes = [VariantPane(i, d) for i, d in enumerate(self.app.workspace.variants)]
        box.mount_all(panes)
        if panes:
            target = panes[focus if focus is not None else 0]

            def focus_end() -> None:
                area = target.query_one(TextArea)
                area.focus()
                area.move_cursor(area.document.end)

            self.call_after_refresh(focus_end)

    def panes(self) -> list[VariantPane]:
        return list(self.query(VariantPane))

    def current(self) -> VariantPane | None:
        node = self.focused
        while node is not None and not isinstance(node, VariantPane):
            node = node.parent  # type: ignore[assignment]
        return node if isinstance(node, VariantPane) else (self.panes() or [None])[0]

    def status(self, text: str, error: bool = False) -> None:
        line = self.query_one("#status", Static)
        line.update(Text(inert(text)))
        line.set_class(error, "error-message")

    # --- editing ------------------------------------------------------------------------

    def _save(self) -> None:
        try:
            self.app.workspace.save()
        except OSError as exc:
            self.status(f"cannot save drafts: {exc}", error=True)

    @on(TextArea.Changed, ".messages")
    def _messages_changed(self, event: TextArea.Changed) -> None:
        pane = self._pane_of(event.text_area)
        pane.draft.messages = text_to_messages(event.text_area.text)
        from workbench import templates

        problems = []
        for i, m in enumerate(pane.draft.messages):
            try:
                templates.compile_template(m["content"], where=templates.message_label(i, m["role"]))
            except templates.TemplateError as exc:
                problems.append(str(exc))
        pane.show_problem("; ".join(problems))
        pane.refresh_variables()
        pane.refresh_title()
        self._save()

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        pane = self._pane_of(event.input)
        if pane is None:
            return
        draft, value = pane.draft, event.value
        if event.input.has_class("name"):
            draft.name = value.strip()
        elif event.input.has_class("model"):
            draft.model = value.strip()
        elif event.input.has_class("params"):
            try:
                draft.params = parse_params(value)
                pane.show_problem("")
            except ValueError as exc:
                pane.show_problem(f"parameters: {exc}")
                return
        elif event.input.has_class("var") and event.input.name:
            draft.values[event.input.name] = value
        pane.refresh_title()
        self._save()

    def _pane_of(self, widget: Any) -> Any:
        node = widget
        while node is not None and not isinstance(node, VariantPane):
            node = node.parent
        return node

    # --- actions ------------------------------------------------------------------------

    def action_new_prompt(self) -> None:
        def made(name: str | None) -> None:
            if not name:
                return
            workspace = self.app.workspace
            workspace.variants.append(
                VariantDraft(name=name, messages=[{"role": "user", "content": ""}])
            )
            self._save()
            self.rebuild(focus=len(workspace.variants) - 1)
            self.status(f"new prompt {name}: write its messages; Ctrl+B makes variant B")

        self.app.push_screen(Ask("Name of the new prompt", placeholder="support-answer"), made)

    def action_retrieval(self) -> None:
        """Bind variables of the current variant to retrieval from a Chroma index (the
        same settings as a suite's ``retrieval:``, written as one line of YAML)."""
        pane = self.current()
        if pane is None:
            self.status("no variants yet: Ctrl+N a new prompt first", error=True)
            return
        draft = pane.draft
        current = ""
        if draft.retrieval:
            import yaml

            current = yaml.safe_dump(draft.retrieval, default_flow_style=True, width=10**6,
                                     sort_keys=False).strip()

        def answered(text: str | None) -> None:
            if text is None:
                return
            if text.lower() in ("off", "none", "-"):
                draft.retrieval = {}
                pane.refresh_retrieval()
                self._save()
                self.status(f"{draft.name}: no retrieval")
                return
            import yaml

            from workbench.errors import ValidationError
            from workbench.retrieval import parse_bindings

            try:
                data = yaml.safe_load(text)
                bindings = parse_bindings(data, "retrieval")
            except (yaml.YAMLError, ValidationError) as exc:
                self.status(f"{draft.name}: {' '.join(str(exc).split())}", error=True)
                return
            if not bindings:
                self.status(f"{draft.name}: write VARIABLE: {{...}}, or off", error=True)
                return
            draft.retrieval = data
            pane.refresh_retrieval()
            self._save()
            self.status(f"{draft.name}: " + ", ".join(
                f"{b.variable} from {b.collection} in {b.source} (k={b.k})" for b in bindings))

        self.app.push_screen(Ask(
            f"Retrieval for {draft.name}, one line of YAML (off: none)",
            placeholder='context: {index: ./chroma, collection: docs, k: 4, '
                        'query: "{{ question }}", embed: smollm2}',
            value=current), answered)

    def action_open_prompt(self) -> None:
        def chosen(ref: str | None) -> None:
            if ref:
                self.open_version(ref)

        self.app.push_screen(Ask("Open a stored prompt (NAME, NAME@N or NAME:LABEL)"), chosen)

    @work(thread=True, exit_on_error=False)
    def open_version(self, ref: str) -> None:
        from workbench.domain import parse_ref
        from workbench.storage import repo

        try:
            version = repo.resolve(self.app.store(), parse_ref(ref))
        except Exception as exc:
            self.app.call_from_thread(self.status, f"cannot open {ref}: {exc}", True)
            return
        content = version.content
        draft = VariantDraft(
            name=version.prompt,
            messages=[m.model_dump() for m in content.messages],
            params=content.params.model_dump(exclude_none=True, exclude={"model"}),
            model=content.params.model or "smollm2",
            values={k: str(v) for k, v in content.variables.items() if v is not None},
            base_version_id=version.id,
            variables=dict(content.variables),
        )
        # Clean as opened (a version without a model gets the default one to run on,
        # which is not a change of its own).
        draft.base_hash = draft.content_hash()

        def add() -> None:
            self.app.workspace.variants.append(draft)
            self._save()
            self.rebuild(focus=len(self.app.workspace.variants) - 1)
            self.status(f"opened {version.ref}")

        self.app.call_from_thread(add)

    def action_duplicate(self) -> None:
        pane = self.current()
        if pane is None:
            self.status("nothing to duplicate: Ctrl+N a new prompt first", error=True)
            return
        copy = self.app.workspace.duplicate(pane.index)
        self._save()
        self.rebuild(focus=len(self.app.workspace.variants) - 1)
        self.status(f"variant {copy.name} made from {pane.draft.name}: change its wording")

    def action_remove(self) -> None:
        pane = self.current()
        if pane is None:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                del self.app.workspace.variants[pane.index]
                self._save()
                self.rebuild()

        if pane.draft.unsaved:
            self.app.push_screen(Confirm(f"Remove {pane.draft.name}? Its changes are not committed."),
                                 answered)
        else:
            answered(True)

    def action_commit(self) -> None:
        changed = [i for i, d in enumerate(self.app.workspace.variants) if d.unsaved]
        if not changed:
            self.status("no changes to commit")
            return
        names = ", ".join(self.app.workspace.variants[i].name for i in changed)

        def with_message(message: str | None) -> None:
            if message:
                self.commit(changed, message)

        self.app.push_screen(Ask(f"Commit {names}: message"), with_message)

    @work(thread=True, exit_on_error=False)
    def commit(self, indexes: list[int], message: str) -> None:
        from workbench.storage import repo

        made = []
        for index in indexes:
            draft = self.app.workspace.variants[index]
            try:
                result = repo.commit(
                    self.app.store(), repo.Draft(draft.name, draft.content(), None),
                    message=message, author=self.app.settings.user.name,
                )
            except Exception as exc:
                self.app.call_from_thread(self.status, f"cannot commit {draft.name}: {exc}", True)
                break
            draft.base_version_id = result.version.id
            draft.base_hash = draft.content_hash()
            made.append(result.version.ref)

        def done() -> None:
            self._save()
            for pane in self.panes():
                pane.refresh_title()
            if made:
                self.status(f"committed {', '.join(made)}")

        self.app.call_from_thread(done)

    async def action_run(self) -> None:
        if not self.app.workspace.variants:
            self.status("nothing to run: Ctrl+N a new prompt first", error=True)
            return
        await self.app.switch_mode("compare")
        compare = self.app.screen
        if hasattr(compare, "run_single"):
            compare.run_single()

    async def action_run_dataset(self) -> None:
        if not self.app.workspace.variants:
            self.status("nothing to run: Ctrl+N a new prompt first", error=True)
            return
        await self.app.switch_mode("compare")
        compare = self.app.screen
        if hasattr(compare, "action_run_dataset"):
            compare.action_run_dataset()

    async def confirm_quit(self) -> None:
        unsaved = [d.name for d in self.app.workspace.variants if d.unsaved]
        if not unsaved:
            self.app.exit()
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.app.exit()

        self.app.push_screen(
            Confirm(f"Quit with uncommitted changes in {', '.join(unsaved)}? "
                    "They stay saved as drafts and come back next time."),
            answered,
        )
