"""The ``workbench`` command line: thin wrappers over the engine and the store.

Importing this module stays cheap (click and the standard library only): the store,
the templates and the app are imported inside the commands that use them, and
litellm, chromadb and llama_cpp never load for ``--help``.
"""

from __future__ import annotations

from typing import Any

import click

from workbench import __version__
from workbench.cli_config import config
from workbench.cli_datasets import datasets
from workbench.cli_eval import eval_cmd
from workbench.cli_keys import keys
from workbench.cli_prompts import prompts
from workbench.cli_rag import rag
from workbench.cli_rubrics import rubrics
from workbench.cli_run import models, run_cmd
from workbench.clikit import State
from workbench.errors import WorkbenchError


class _Group(click.Group):
    """Turns :class:`WorkbenchError` into ``Error: ...`` on stderr and exit status 1."""

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
        from workbench.screens.app import make_app

        make_app(state.settings).run()


for _group in (config, prompts, datasets, rubrics, keys, models, run_cmd, eval_cmd, rag):
    cli.add_command(_group)


def main() -> None:
    """Entry point of the ``workbench`` script."""
    cli(prog_name="workbench")
