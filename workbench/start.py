"""The ``workbench`` script: without arguments it opens the app straight away, without
loading the command-line parser; with any argument it is the command line."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.config import Settings
    from workbench.screens.app import WorkbenchApp


def open_app(settings: Settings | None = None, **options: Any) -> WorkbenchApp:
    """The app as ``workbench`` starts it (the start-up benchmark starts it so too).

    The garbage collector is off until the first screen is shown: start-up makes only
    objects that live as long as the app, and collecting among them is a tenth of the
    start-up. The app turns it back on, with those objects frozen out of its passes.
    ``options`` go to ``make_app`` (``rag={"path": ...}`` opens an index's screen first).

    Raises:
        WorkbenchError: the settings cannot be read.
    """
    import gc

    gc.disable()
    try:
        from workbench.config import load_settings

        settings = settings if settings is not None else load_settings()  # before Textual
        from workbench.screens.app import make_app

        return make_app(settings, **options)
    except BaseException:
        gc.enable()
        raise


def main() -> None:
    """Entry point of the ``workbench`` script."""
    if len(sys.argv) > 1:
        from workbench.cli import main as command_line

        command_line()
        return
    from workbench.errors import WorkbenchError

    try:
        app = open_app()
    except WorkbenchError as exc:
        print(f"Error: {exc}", file=sys.stderr)  # as the command line reports it
        sys.exit(1)
    app.run()
