"""``workbench prompts``: commit, inspect, label, render, export and import prompts."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from workbench.clikit import State, echo_json, parse_vars, pass_state

if TYPE_CHECKING:
    from workbench.storage.repo import LabelMove, VersionInfo

_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.group()
def prompts() -> None:
    """Commit, inspect, label, render, export and import prompts."""


def _version_json(v: VersionInfo, full: bool = True) -> dict[str, Any]:
    data: dict[str, Any] = {
        "prompt": v.prompt,
        "version": v.number,
        "provisional": v.provisional,
        "id": v.id,
        "parent_id": v.parent_id,
        "content_hash": v.content_hash,
        "message": v.message,
        "author": v.author,
        "created_at": v.created_at.isoformat(),
        "labels": list(v.labels),
    }
    if full:
        data.update(v.content.canonical())
    return data


def _move_json(m: LabelMove) -> dict[str, Any]:
    return {
        "prompt": m.prompt,
        "label": m.label,
        "from": m.from_number,
        "to": m.to_number,
        "by": m.actor,
        "at": m.at.isoformat(),
    }


@prompts.command("commit")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-m", "--message", required=True, help="What changed and why.")
@_JSON
@pass_state
def commit_cmd(state: State, file: Path, message: str, as_json: bool) -> None:
    """Commit FILE (a prompt YAML) as the prompt's next version; prints NAME@N."""
    from workbench.promptfile import load_prompt_file
    from workbench.storage import repo

    loaded = load_prompt_file(file)
    for warning in loaded.warnings:
        click.echo(f"warning: {warning}", err=True)
    result = repo.commit(
        state.store,
        repo.Draft(loaded.name, loaded.content, loaded.description, loaded.tags),
        message=message,
        author=state.settings.user.name,
    )
    if as_json:
        echo_json({"created": result.created, "described": result.described,
                   **_version_json(result.version, full=False)})
    elif result.created:
        click.echo(result.version.ref)
        if result.version.provisional:
            click.echo(f"(shown as {result.version.prompt}@{result.version.shown} until pushed: the "
                       "registry gives the final number)", err=True)
    elif result.described:
        click.echo(f"{result.version.prompt}: description and tags updated (no new version: the "
                   f"messages and parameters equal {result.version.ref})")
    else:
        click.echo(f"nothing to commit: {file} equals {result.version.ref}")


@prompts.command("list")
@click.option("--search", default=None, help="Only names containing this text.")
@_JSON
@pass_state
def list_cmd(state: State, search: str | None, as_json: bool) -> None:
    """List prompts with their newest version and labels."""
    from workbench.output import table, when
    from workbench.storage import repo

    infos = repo.list_prompts(state.store, search)
    if as_json:
        echo_json(
            [
                {
                    "name": p.name,
                    "description": p.description,
                    "tags": list(p.tags),
                    "latest": p.latest,
                    "labels": p.labels,
                    "created_at": p.created_at.isoformat(),
                    "updated_at": p.updated_at.isoformat(),
                }
                for p in infos
            ]
        )
        return
    if not infos:
        click.echo("no prompts yet: `workbench prompts commit FILE -m MESSAGE` adds one")
        return
    rows = [
        [
            p.name,
            str(p.latest),
            " ".join(f"{k}@{v}" for k, v in p.labels.items()),
            when(p.updated_at),
            p.description,
        ]
        for p in infos
    ]
    click.echo(table(rows, ["NAME", "LATEST", "LABELS", "UPDATED", "DESCRIPTION"]))


@prompts.command("show")
@click.argument("ref")
@_JSON
@click.option("--yaml", "as_yaml", is_flag=True, help="Print it as a prompt file.")
@pass_state
def show_cmd(state: State, ref: str, as_json: bool, as_yaml: bool) -> None:
    """Show a version: REF is NAME, NAME@N or NAME:LABEL."""
    from workbench.domain import parse_ref
    from workbench.output import to_terminal, when
    from workbench.promptfile import dump_prompt_file
    from workbench.storage import repo

    version = repo.resolve(state.store, parse_ref(ref))
    if as_json:
        echo_json(_version_json(version))
        return
    if as_yaml:
        click.echo(to_terminal(dump_prompt_file(version.prompt, version.content)), nl=False)
        return
    labels = ", ".join(version.labels)
    click.echo(f"{version.prompt}@{version.shown}  {version.id[:12]}  {labels}".rstrip())
    if version.provisional:
        click.echo("provisional: not in the registry yet; its number may change when pushed")
    click.echo(f"author: {to_terminal(version.author)}  at {when(version.created_at)}")
    click.echo(f"message: {to_terminal(version.message)}")
    params = version.content.canonical()["params"]
    if params:
        click.echo("params: " + ", ".join(f"{k}={v!r}" for k, v in params.items()))
    if version.content.variables:
        shown = (f"{k}={v!r}" if v is not None else k for k, v in version.content.variables.items())
        click.echo("variables: " + ", ".join(shown))
    for message in version.content.messages:
        click.echo(f"\n[{message.role}]")
        click.echo(to_terminal(message.content))


@prompts.command("log")
@click.argument("name")
@_JSON
@pass_state
def log_cmd(state: State, name: str, as_json: bool) -> None:
    """List every version of NAME, newest first."""
    from workbench.output import to_terminal, when
    from workbench.storage import repo

    versions = repo.log(state.store, name)
    if as_json:
        echo_json([_version_json(v, full=False) for v in versions])
        return
    for v in versions:
        labels = f" ({', '.join(v.labels)})" if v.labels else ""
        click.echo(f"{v.prompt}@{v.shown}{labels}  {v.id[:12]}  {when(v.created_at)}  {to_terminal(v.author)}")
        click.echo(f"    {to_terminal(v.message)}")


@prompts.command("diff")
@click.argument("old")
@click.argument("new")
@pass_state
def diff_cmd(state: State, old: str, new: str) -> None:
    """Unified diff of two versions' messages, params and variables."""
    from workbench.domain import parse_ref
    from workbench.output import to_terminal
    from workbench.promptfile import diff_versions
    from workbench.storage import repo

    a = repo.resolve(state.store, parse_ref(old))
    b = repo.resolve(state.store, parse_ref(new))
    click.echo(to_terminal(diff_versions(a, b)), nl=False)


@prompts.command("label")
@click.argument("ref")
@click.argument("label")
@click.option("-m", "--message", "comment", default="",
              help="Why (recorded with the approval when LABEL is approved).")
@_JSON
@pass_state
def label_cmd(state: State, ref: str, label: str, comment: str, as_json: bool) -> None:
    """Point LABEL (e.g. approved, production) at the version REF names; moving approved
    records an approval."""
    from workbench.domain import parse_ref
    from workbench.storage import repo

    move = repo.set_label(state.store, parse_ref(ref), label, actor=state.settings.user.name,
                          comment=comment)
    if as_json:
        echo_json(_move_json(move) if move else {"label": label, "unchanged": True})
    elif move is None:
        click.echo(f"{label} already points to {ref}")
    else:
        was = f" (was {move.prompt}@{move.from_number})" if move.from_number else ""
        click.echo(f"{move.prompt}:{label} -> {move.prompt}@{move.to_number}{was}")


@prompts.command("history")
@click.argument("name")
@click.option("--label", default=None, help="Only this label's moves.")
@_JSON
@pass_state
def history_cmd(state: State, name: str, label: str | None, as_json: bool) -> None:
    """Every label move of NAME: label, from, to, who and when."""
    from workbench.output import to_terminal, when
    from workbench.storage import repo

    moves = repo.label_history(state.store, name, label)
    if as_json:
        echo_json([_move_json(m) for m in moves])
        return
    for m in moves:
        source = f"@{m.from_number}" if m.from_number else "(new)"
        click.echo(
            f"{when(m.at)}  {m.label}: {source} -> @{m.to_number}  by {to_terminal(m.actor)}"
        )


@prompts.command("render")
@click.argument("ref")
@click.option("--var", "pairs", multiple=True, metavar="KEY=VALUE", help="A variable (repeat).")
@_JSON
@pass_state
def render_cmd(state: State, ref: str, pairs: tuple[str, ...], as_json: bool) -> None:
    """Render a version's messages with variables (defaults fill the rest)."""
    from workbench import templates
    from workbench.domain import parse_ref
    from workbench.output import to_terminal
    from workbench.storage import repo

    values = parse_vars(pairs)
    version = repo.resolve(state.store, parse_ref(ref))
    messages = templates.render_messages(
        version.content.messages, values, version.content.variables
    )
    if as_json:
        echo_json({"prompt": version.prompt, "version": version.number, "messages": messages})
        return
    for index, message in enumerate(messages):
        click.echo(("\n" if index else "") + f"[{message['role']}]")
        click.echo(to_terminal(message["content"]))


@prompts.command("export")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", "names", multiple=True, help="Only this prompt (repeat).")
@click.option("--approved", is_flag=True,
              help="Only each prompt's approved version, as an application uses it.")
@click.option("--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml",
              show_default=True, help="With --approved: the files' format.")
@pass_state
def export_cmd(state: State, folder: Path, names: tuple[str, ...], approved: bool, fmt: str) -> None:
    """Write one YAML file per prompt (all versions, labels, label history) into FOLDER;
    with --approved, one file per approved prompt: the approved version's messages,
    parameters and variables, its number, id, labels and approval (stable, diff-friendly,
    for an application's repository)."""
    if approved:
        if names:
            raise click.UsageError("--approved exports every approved prompt (no --name)")
        from workbench.exchange import export_approved

        written = export_approved(state.store, folder, fmt)
        for path in written:
            click.echo(str(path))
        if not written:
            click.echo("no prompt has an approved version (workbench prompts approve NAME@N -m ...)",
                       err=True)
        return
    if fmt != "yaml":
        raise click.UsageError("--format is for --approved (the full export is YAML)")
    from workbench.exchange import export_all

    for path in export_all(state.store, folder, list(names) or None):
        click.echo(str(path))


@prompts.command("approve")
@click.argument("ref")
@click.option("-m", "--message", "comment", required=True, help="Why it is approved.")
@_JSON
@pass_state
def approve_cmd(state: State, ref: str, comment: str, as_json: bool) -> None:
    """Approve the version REF names: recorded (who, when, why) and `approved` moved to it."""
    from workbench.domain import parse_ref
    from workbench.storage.approvals import approve

    done = approve(state.store, parse_ref(ref), actor=state.settings.user.name, comment=comment)
    if as_json:
        echo_json({"prompt": done.prompt, "version": done.number, "version_id": done.version_id,
                   "by": done.approver, "at": done.at.isoformat(), "comment": done.comment})
    else:
        click.echo(f"{done.prompt}@{done.number} approved by {done.approver}: {done.comment}")


@prompts.command("import")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@pass_state
def import_cmd(state: State, folder: Path) -> None:
    """Read an export FOLDER back (all prompts or none; versions already here are skipped)."""
    from workbench.exchange import import_folder

    for name, versions, moves in import_folder(state.store, folder):
        click.echo(f"{name}: {versions} versions, {moves} label moves added")
