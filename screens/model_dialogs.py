"""The Models screen's dialogs: a provider's API key, and a new model.

A key typed here goes from a password field straight back to the Models screen through
``dismiss()``: it is never shown, logged, or passed where Textual would describe it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from workbench.errors import WorkbenchError
from workbench.screens.prompts import plain

if TYPE_CHECKING:
    from workbench.config import ModelConfig, Settings

_R = TypeVar("_R")


class _Dialog(ModalScreen[_R]):
    """A dialog box with a problem line and OK / Cancel buttons; Esc cancels (None)."""

    CSS_PATH = "model_dialogs.tcss"
    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    TITLE_TEXT = ""
    OK = "OK"

    def __init__(self) -> None:
        super().__init__(classes="dialog")

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Static(plain(self.TITLE_TEXT), classes="dialog-title")
            yield from self.fields()
            yield Static(id="problem", classes="error-message")
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.OK, id="ok", variant="primary")
                yield Button("Cancel", id="cancel")

    def fields(self) -> ComposeResult:
        yield from ()

    def problem(self, text: str) -> None:
        self.query_one("#problem", Static).update(plain(text))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class KeyModal(_Dialog[str | None]):
    """Asks for a provider's API key in a password field; Enter stores it."""

    OK = "Save"

    def __init__(self, provider: str, env_var: str):
        super().__init__()
        self.TITLE_TEXT = f"API key for {provider}"
        self.env_var = env_var

    def fields(self) -> ComposeResult:
        yield Input(password=True, placeholder="paste the key", id="key")
        yield Static(plain(f"Kept in the OS keyring. {self.env_var} in the environment wins "
                           "over it (use that where there is no keyring). Enter saves · Esc "
                           "cancels"), classes="hint")

    @on(Input.Submitted)
    @on(Button.Pressed, "#ok")
    def _save(self) -> None:
        key = self.query_one("#key", Input).value.strip()
        if key:
            self.dismiss(key)
        else:
            self.problem("the key is empty")


class AddModelModal(_Dialog["tuple[str, ModelConfig] | None"]):
    """Asks for a name and a GGUF path or a model id (with an optional api_base)."""

    TITLE_TEXT = "Add a model"
    OK = "Add"

    def __init__(self, settings: Settings):
        super().__init__()
        self.settings = settings

    def fields(self) -> ComposeResult:
        yield Input(placeholder="name (e.g. tiny)", id="name")
        yield Input(placeholder="GGUF path, or a model id such as openai/gpt-4o-mini", id="source")
        yield Input(placeholder="api_base, optional: http://127.0.0.1:8080/v1", id="api-base")
        yield Static(Text("Tab moves · Enter adds · Esc cancels"), classes="hint")

    @on(Input.Submitted)
    @on(Button.Pressed, "#ok")
    def _add(self) -> None:
        from workbench.models import new_model_config

        name, source, base = (self.query_one(f"#{i}", Input).value
                              for i in ("name", "source", "api-base"))
        try:
            self.dismiss((name.strip(), new_model_config(self.settings, name, source, base)))
        except WorkbenchError as exc:
            self.problem(str(exc))
