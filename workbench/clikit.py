"""What the command modules share: the lazily opened settings and store, JSON output."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from workbench.config import Settings
    from workbench.storage.db import Store


class State:
    """Settings and store, loaded once per command on first use."""

    def __init__(self) -> None:
        self._settings: Settings | None = None
        self._store: Store | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from workbench.config import load_settings

            self._settings = load_settings()
        return self._settings

    @property
    def store(self) -> Store:
        if self._store is None:
            from workbench.storage.db import open_store

            db = self.settings.database
            self._store = open_store(db.url, busy_timeout_s=db.busy_timeout_s)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


pass_state = click.make_pass_decorator(State)


def echo_json(data: Any) -> None:
    """Print ``data`` as JSON on stdout."""
    from workbench.output import as_json

    click.echo(as_json(data))


def parse_vars(pairs: tuple[str, ...]) -> dict[str, str]:
    """``--var KEY=VALUE`` options as a mapping (a usage error names a bad one)."""
    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--var")
        values[key] = value
    return values
