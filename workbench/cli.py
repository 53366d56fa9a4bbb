"""The ``workbench`` command line: thin wrappers over the engine and the store.

Importing this module stays cheap (click and the standard library only): the store,
the templates and the app are imported inside the commands that use them, and
litellm, chromadb and llama_cpp never load for ``--help``.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

import click

from workbench import __version__
from workbench.clikit import State
from workbench.errors import WorkbenchError

_COMMANDS = {
    "config": "workbench.cli_config:config",
    "datasets": "workbench.cli_datasets:datasets",
    "eval": "workbench.cli_eval:eval_cmd",
    "keys": "workbench.cli_keys:keys",
    "models": "workbench.cli_run:models",
    "prompts": "workbench.cli_prompts:prompts",
    "rag": "workbench.cli_rag:rag",
    "registry": "workbench.cli_registry:registry",
    "rubrics": "workbench.cli_rubrics:rubrics",
    "run": "workbench.cli_run:run_cmd",
}
"""Each command's module is imported when that command runs (or ``--help`` lists it):
launching the app imports none of them."""


class _Group(click.Group):
    """Loads its commands lazily; turns :class:`WorkbenchError` into ``Error: ...`` on
    stderr and exit status 1."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _COMMANDS and cmd_name not in self.commands:
            module, _, attr = _COMMANDS[cmd_name].partition(":")
            self.add_command(getattr(import_module(module), attr), cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except WorkbenchError as exc:
            raise click.ClickException(str(exc)) from None



@click.group(cls=_Group, invoke_without_command=True)
@click.version_option(__version__, prog_name="workbench")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Prompt Workbench: engineer, compare and version LLM prompts.

    Run without a command to open the app.
    """
    state = ctx.ensure_object(State)
    ctx.call_on_close(state.close)
    if ctx.invoked_subcommand is None:
        from workbench.start import open_app

        open_app(state.settings).run()


def main() -> None:
    """The command line (``workbench.start.main`` hands it every call with arguments)."""
    cli(prog_name="workbench")
