"""``workbench datasets``: import and inspect test cases."""

from __future__ import annotations

from pathlib import Path

import click

from workbench.clikit import State, echo_json, pass_state

_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.group()
def datasets() -> None:
    """Import and inspect datasets of test cases."""


@datasets.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="The dataset's name.")
@click.option("--description", default="", help="What the cases are for.")
@click.option("--replace", is_flag=True, help="Replace the cases of an existing dataset.")
@pass_state
def import_cmd(state: State, file: Path, name: str, description: str, replace: bool) -> None:
    """Import FILE (.csv or .jsonl) as dataset NAME."""
    from workbench.datasets import read_cases
    from workbench.storage.datasets import save_dataset

    cases = read_cases(file)
    info = save_dataset(
        state.store, name, cases, source=str(file), description=description, replace=replace
    )
    click.echo(f"{info.name}: {info.size} cases")


@datasets.command("list")
@_JSON
@pass_state
def list_cmd(state: State, as_json: bool) -> None:
    """List datasets with their sizes."""
    from workbench.output import table, when
    from workbench.storage.datasets import list_datasets

    infos = list_datasets(state.store)
    if as_json:
        echo_json(
            [
                {
                    "name": d.name,
                    "size": d.size,
                    "description": d.description,
                    "source": d.source,
                    "updated_at": d.updated_at.isoformat(),
                }
                for d in infos
            ]
        )
        return
    if not infos:
        click.echo("no datasets yet: `workbench datasets import FILE --name NAME` adds one")
        return
    rows = [[d.name, str(d.size), when(d.updated_at), d.description] for d in infos]
    click.echo(table(rows, ["NAME", "CASES", "UPDATED", "DESCRIPTION"]))


@datasets.command("show")
@click.argument("name")
@_JSON
@pass_state
def show_cmd(state: State, name: str, as_json: bool) -> None:
    """Show a dataset's cases."""
    import json

    from workbench.output import to_terminal
    from workbench.storage.datasets import get_dataset

    info = get_dataset(state.store, name)
    cases = [{"vars": c.vars, "expected": c.expected, "metadata": c.metadata} for c in info.cases]
    if as_json:
        echo_json({"name": info.name, "description": info.description, "cases": cases})
        return
    click.echo(f"{info.name}: {info.size} cases  {to_terminal(info.description)}".rstrip())
    for index, case in enumerate(cases, start=1):
        click.echo(f"{index:>4}  {to_terminal(json.dumps(case, ensure_ascii=False))}")
