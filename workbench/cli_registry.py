"""``workbench registry``: the link to the team's registry (connect, status), the audit log
and protected labels (these two work on any store, local or shared). Push and pull come next
(docs/registry-sync.md)."""

from __future__ import annotations

import click

from workbench.clikit import State, echo_json, pass_state

_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.group()
def registry() -> None:
    """The team's registry, approvals, label moves and protected labels."""


@registry.command("audit")
@click.argument("name", required=False)
@_JSON
@pass_state
def audit_cmd(state: State, name: str | None, as_json: bool) -> None:
    """Every approval and label move (of NAME, or of every prompt), oldest first: who,
    when, from and to. The log is append-only: the database refuses to change it."""
    from workbench.output import table
    from workbench.storage.approvals import audit

    entries = audit(state.store, name)
    if as_json:
        echo_json([{"kind": e.kind, "prompt": e.prompt, "label": e.label, "from": e.from_number,
                    "to": e.to_number, "by": e.who, "at": e.at.isoformat(),
                    "comment": e.comment} for e in entries])
        return
    if not entries:
        click.echo("nothing approved or labelled yet")
        return
    rows = [[e.at.strftime("%Y-%m-%d %H:%M:%SZ"), e.kind, e.prompt, e.label,
             "-" if e.from_number is None else str(e.from_number), str(e.to_number), e.who,
             e.comment] for e in entries]
    click.echo(table(rows, ["WHEN", "WHAT", "PROMPT", "LABEL", "FROM", "TO", "WHO",
                              "COMMENT"]))


@registry.command("protect")
@click.argument("label")
@pass_state
def protect_cmd(state: State, label: str) -> None:
    """Protect LABEL: it may then only point to a version someone approved."""
    from workbench.storage.approvals import protect

    protect(state.store, label, actor=state.settings.user.name)
    click.echo(f"{label} is protected: it only moves to approved versions")


@registry.command("unprotect")
@click.argument("label")
@pass_state
def unprotect_cmd(state: State, label: str) -> None:
    """Lift LABEL's protection."""
    from workbench.storage.approvals import unprotect

    if unprotect(state.store, label):
        click.echo(f"{label} is no longer protected")
    else:
        click.echo(f"{label} was not protected")


@registry.command("protected")
@_JSON
@pass_state
def protected_cmd(state: State, as_json: bool) -> None:
    """The protected labels."""
    from workbench.storage.approvals import RULES, protected

    rules = protected(state.store)
    if as_json:
        echo_json(rules)
        return
    for label, rule in rules.items():
        click.echo(f"{label}: {RULES.get(rule, rule)}")
    if not rules:
        click.echo("no protected labels")


@registry.command("connect")
@click.argument("url")
def connect_cmd(url: str) -> None:
    """Use URL (postgresql+psycopg://USER:PASSWORD@HOST/DB) as the team's registry: its
    schema is created or upgraded, the URL without its password goes to the config file and
    the password to the keyring (with no keyring: not stored; give it as PGPASSWORD)."""
    from workbench.config import redact_url
    from workbench.registry_link import connect

    done = connect(url)
    click.echo(f"registry: {redact_url(done.url)}"
               + (" (password in the keyring)" if done.password_stored else ""))
    if done.note:
        click.echo(done.note, err=True)


@registry.command("status")
@_JSON
@pass_state
def status_cmd(state: State, as_json: bool) -> None:
    """Whether the registry answers, and what differs: versions only here (to push), only
    there (to pull), labels pointing elsewhere."""
    from workbench.registry_link import registry_url, status

    found = status(state.store, registry_url(state.settings))
    if as_json:
        echo_json(found.__dict__)
        return
    if not found.reachable:
        raise click.ClickException(f"the registry {found.registry} cannot be reached ({found.reason})")
    click.echo(f"registry {found.registry}: reachable")
    for title, items in (("only here (to push)", found.local_only),
                         ("only in the registry (to pull)", found.registry_only),
                         ("labels that differ", found.labels_differ)):
        click.echo(f"{title}: {len(items)}")
        for item in items[:20]:
            click.echo(f"  {item}")
        if len(items) > 20:
            click.echo(f"  ... and {len(items) - 20} more")
