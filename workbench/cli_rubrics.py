"""``workbench rubrics``: store rubric versions and read them back."""

from __future__ import annotations

from pathlib import Path

import click

from workbench.clikit import State, echo_json, pass_state

_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.group()
def rubrics() -> None:
    """Rubrics: the criteria outputs are scored on (versioned like prompts)."""


@rubrics.command("commit")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-m", "--message", required=True, help="What changed.")
@pass_state
def commit_cmd(state: State, file: Path, message: str) -> None:
    """Store FILE as the rubric's next version (prints NAME@N)."""
    from workbench.rubrics import load_rubric_file
    from workbench.storage.rubrics import commit_rubric

    info, new = commit_rubric(state.store, load_rubric_file(file), message=message,
                              author=state.settings.user.name)
    click.echo(info.ref if new else f"{info.ref} (unchanged)")


@rubrics.command("list")
@_JSON
@pass_state
def list_cmd(state: State, as_json: bool) -> None:
    """Every rubric with its latest version and criteria."""
    from workbench.output import table
    from workbench.storage.rubrics import list_rubrics

    found = list_rubrics(state.store)
    if as_json:
        echo_json([{"name": r.name, "version": r.number, "id": r.id,
                    "criteria": [c.name for c in r.rubric.criteria]} for r in found])
        return
    if not found:
        click.echo("no rubrics yet: `workbench rubrics commit FILE -m MESSAGE`")
        return
    click.echo(table([[r.name, str(r.number), ", ".join(c.name for c in r.rubric.criteria)]
                      for r in found], ["NAME", "LATEST", "CRITERIA"]))


@rubrics.command("show")
@click.argument("ref")
@_JSON
@pass_state
def show_cmd(state: State, ref: str, as_json: bool) -> None:
    """One version (NAME for the latest, or NAME@N) as a rubric file."""
    from workbench import yamlio
    from workbench.output import to_terminal
    from workbench.storage.rubrics import resolve_rubric

    info = resolve_rubric(state.store, ref)
    if as_json:
        echo_json({"name": info.name, "version": info.number, "id": info.id,
                   "author": info.author, "message": info.message,
                   "created_at": info.created_at, **info.rubric.content()})
        return
    click.echo(to_terminal(yamlio.dump(info.rubric.content())), nl=False)
