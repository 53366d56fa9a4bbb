"""``workbench registry``: the link to the team's registry (connect, push, pull, status,
resolve), the audit log and protected labels (these two work on any store, local or
shared). docs/registry-sync.md explains how sync works."""

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


def _with_registry(state: State, change) -> str:  # type: ignore[no-untyped-def]
    """Apply a protection change to the registry (where one is configured: its rules are the
    ones a pull brings) and to this store; says where."""
    if not state.settings.registry.url:
        change(state.store)
        return ""
    from workbench.registry_link import open_registry

    registry_store = open_registry(state.settings, state.store)
    try:
        change(registry_store)
    finally:
        registry_store.close()
    change(state.store)
    return " (in the registry and here)"


@registry.command("protect")
@click.argument("label")
@pass_state
def protect_cmd(state: State, label: str) -> None:
    """Protect LABEL: it may then only point to a version someone approved."""
    from workbench.storage.approvals import protect

    where = _with_registry(state, lambda store: protect(store, label, actor=state.settings.user.name))
    click.echo(f"{label} is protected{where}: it only moves to approved versions")


@registry.command("unprotect")
@click.argument("label")
@pass_state
def unprotect_cmd(state: State, label: str) -> None:
    """Lift LABEL's protection."""
    from workbench.storage.approvals import unprotect

    lifted: list[bool] = []
    where = _with_registry(state, lambda store: lifted.append(unprotect(store, label)))
    if any(lifted):
        click.echo(f"{label} is no longer protected{where}")
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

    from workbench.storage.outbox import pending

    waiting = pending(state.store)
    found = status(state.store, registry_url(state.settings))
    if as_json:
        echo_json({**found.__dict__, "outbox": waiting.waiting, "conflicts": waiting.conflicts})
        if not found.reachable:
            raise SystemExit(1)
        return
    _say_pending(waiting)
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


def _say_pending(waiting) -> None:  # type: ignore[no-untyped-def]
    from workbench.storage.outbox import waiting_text

    click.echo(f"waiting to be pushed: {waiting_text(waiting.waiting) or 'nothing'}")
    for conflict in waiting.conflicts:
        click.echo(f"conflict: {conflict}")


def _report(report, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    if as_json:
        echo_json(report.as_dict())
    else:
        for title, counts in (("pulled", report.pulled), ("pushed", report.pushed)):
            done = ", ".join(f"{n} {what[:-1] if n == 1 and what.endswith('s') else what}"
                             for what, n in sorted(counts.items()) if n)
            click.echo(f"{title}: {done or 'nothing new'}")
        for line in report.numbered:
            click.echo(f"numbered: {line}")
        for conflict in report.conflicts:
            click.echo(f"conflict: {conflict}", err=True)
        if report.waiting:
            click.echo(f"still waiting: {report.waiting} (conflicts to resolve included)")
    if report.conflicts:
        raise SystemExit(1)


@registry.command("push")
@click.option("--runs", is_flag=True, help="Also send finished runs, as summaries (figures, "
              "no messages or outputs).")
@_JSON
@pass_state
def push_cmd(state: State, runs: bool, as_json: bool) -> None:
    """Send what waits in the outbox to the registry (after pulling what is new there).
    Versions made here get their final numbers; a label someone else moved meanwhile is a
    conflict (exit 1), never overwritten. Safe to repeat: nothing is sent twice."""
    from workbench.registry_link import open_registry
    from workbench.storage.sync_push import push

    registry_store = open_registry(state.settings, state.store)
    try:
        report = push(state.store, registry_store)
        if runs:
            from workbench.storage.sync_runs import push_runs

            sent, skipped = push_runs(state.store, registry_store)
            report.pushed["runs"] = sent
            if skipped:
                report.pushed["runs kept here (their version is not in the registry)"] = skipped
        _report(report, as_json)
    finally:
        registry_store.close()


@registry.command("pull")
@_JSON
@pass_state
def pull_cmd(state: State, as_json: bool) -> None:
    """Bring the registry's versions, labels, approvals, protected labels, rubrics and
    datasets here. Versions waiting to be pushed keep their place after the registry's."""
    from workbench.registry_link import open_registry
    from workbench.storage.sync_pull import pull

    registry_store = open_registry(state.settings, state.store)
    try:
        _report(pull(state.store, registry_store), as_json)
    finally:
        registry_store.close()


@registry.command("resolve")
@click.argument("name")
@click.argument("label", required=False)
@click.option("--mine", "choice", flag_value="mine", help="Move it to your version again.")
@click.option("--theirs", "choice", flag_value="theirs", help="Keep the registry's.")
@click.option("--dataset", is_flag=True, help="NAME is a dataset (no LABEL).")
@pass_state
def resolve_cmd(state: State, name: str, label: str | None, choice: str | None,
                dataset: bool) -> None:
    """Settle a conflict from a push: NAME LABEL (a label moved by someone else meanwhile)
    or NAME --dataset, keeping --mine (sent again on top of theirs) or --theirs."""
    from workbench.registry_link import open_registry, resolve

    if choice is None:
        raise click.UsageError("say --mine or --theirs")
    if dataset == (label is not None):
        raise click.UsageError("give NAME LABEL for a label, or NAME --dataset for a dataset")
    registry_store = open_registry(state.settings, state.store)
    try:
        click.echo(resolve(state.store, registry_store, name, label, mine=choice == "mine",
                           actor=state.settings.user.name, dataset=dataset))
    finally:
        registry_store.close()
