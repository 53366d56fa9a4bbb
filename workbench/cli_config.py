"""``workbench config``: where the settings live and what they are."""

from __future__ import annotations

import click

from workbench.clikit import State, echo_json, pass_state


@click.group()
def config() -> None:
    """Show the configuration."""


@config.command("path")
def config_path_cmd() -> None:
    """Print the config file's path (it need not exist yet)."""
    from workbench.config import config_path

    click.echo(str(config_path()))


@config.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_state
def config_show(state: State, as_json: bool) -> None:
    """Print the settings in effect (file, environment and defaults merged)."""
    from workbench.config import config_path, redact_url, to_toml

    data = state.settings.model_dump()
    data["database"]["url"] = redact_url(data["database"]["url"])
    if data["registry"]["url"]:
        data["registry"]["url"] = redact_url(data["registry"]["url"])
    if as_json:
        echo_json({"config_file": str(config_path()), **data})
        return
    click.echo(f"# {config_path()}")
    click.echo(to_toml(data))
