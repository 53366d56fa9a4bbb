"""``workbench keys``: API keys for hosted providers in the OS keyring.

No command ever prints a key: ``set`` reads it without echo, ``list`` shows only where
a key is, ``delete`` removes it.
"""

from __future__ import annotations

import os
import sys

import click

from workbench.clikit import echo_json

# How long a command waits for the keyring; read at call time so tests can shorten it.
TIMEOUT_S = 3.0


@click.group()
def keys() -> None:
    """Store API keys for hosted model providers in the OS keyring.

    The provider's environment variable (OPENAI_API_KEY, ANTHROPIC_API_KEY, ...) works
    too, and wins over the keyring.
    """


@keys.command("set")
@click.argument("provider")
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the key from standard input.")
def set_cmd(provider: str, from_stdin: bool) -> None:
    """Store PROVIDER's API key (asked for without echo, or read with --stdin)."""
    from workbench.keys import check_provider, env_var, set_key

    check_provider(provider)  # before asking for the key, not after
    if from_stdin:
        # Scripts pipe `echo "$KEY"` or a file: the trailing newline is not part of the key.
        key = sys.stdin.read().rstrip("\r\n")
    else:
        key = click.prompt(f"API key for {provider}", hide_input=True, err=True)
    set_key(provider, key, timeout_s=TIMEOUT_S)
    click.echo(f"stored the key for {provider} in the keyring")
    var = env_var(provider)
    if os.environ.get(var, "").strip():
        click.echo(f"note: {var} is set in the environment and takes precedence", err=True)


@keys.command("list")
@click.argument("providers", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_cmd(providers: tuple[str, ...], as_json: bool) -> None:
    """Show where each provider's key is: keyring, environment (never the key).

    The known providers are always listed; name PROVIDERS to check others too.
    """
    from workbench.keys import scan_keys

    rows, problem = scan_keys(providers, timeout_s=TIMEOUT_S)
    if problem is not None:
        # Environment variables still work, so this is a note, not a failure.
        click.echo(f"keyring unavailable: {problem}", err=True)
    if as_json:
        echo_json(rows)
        return
    from workbench.output import table

    unknown = "?" if problem is not None else "no"
    lines = [
        [
            r["provider"],
            "yes" if r["keyring"] else unknown,
            r["env_var"] + (" (set)" if r["env"] else ""),
            "env" if r["env"] else "keyring" if r["keyring"] else "-",
        ]
        for r in rows
    ]
    click.echo(table(lines, ["PROVIDER", "KEYRING", "ENVIRONMENT", "USES"]))


@keys.command("delete")
@click.argument("provider")
def delete_cmd(provider: str) -> None:
    """Remove PROVIDER's key from the keyring."""
    from workbench.keys import delete_key

    delete_key(provider, timeout_s=TIMEOUT_S)
    click.echo(f"deleted the key for {provider} from the keyring")
