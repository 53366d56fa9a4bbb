"""A failure nobody caught in a screen's background work, shown instead of lost.

Screens run their slow work in thread workers that report back through
``call_from_thread``; each catches what it expects and says it in its status line. A
failure it did not expect (a bug, or a handler that raised on the UI thread) ends the
worker in the ERROR state, and with ``exit_on_error=False`` Textual says nothing: the
screen just stops updating. :class:`ReportsWorkerErrors` turns that state into an error
notification naming the work and the error (inert; scrubbed of the configured URLs' secrets,
of keys and passwords read from the keyring and of credential environment variables) and
keeps the app running.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.worker import Worker, WorkerState

from workbench.output import inert

if TYPE_CHECKING:
    from textual.screen import Screen

    _Host = Screen[Any]
else:
    _Host = object


def worker_error_text(worker: Worker[Any], settings: Any) -> str:
    """What a failed worker's notification says: the work (its method's name) and the error."""
    from workbench.config import scrub_secrets
    from workbench.keys import known_secrets, redact

    error = worker.error
    what = (worker.name or "background work").replace("_", " ")
    text = f"{what} failed: {type(error).__name__}: {error}"
    for url in (settings.database.url, getattr(settings.registry, "url", None)):
        if url:
            text = scrub_secrets(text, url)
    return inert(redact(text, known_secrets()))


class ReportsWorkerErrors(_Host):
    """Mixin for screens: a worker that ends in error is reported, never silent."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is not WorkerState.ERROR:
            return
        text = worker_error_text(event.worker, self.app.settings)  # type: ignore[attr-defined]
        self.log.error(text)
        self.app.notify(text, title="Unexpected error", severity="error", timeout=15, markup=False)
