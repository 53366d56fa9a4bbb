"""Repository functions for runs: start one, finish it, read them back."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from sqlmodel import col, select, update

from workbench.errors import NotFoundError
from workbench.storage.db import Store
from workbench.storage.models import Run, utcnow
from workbench.storage.repo import as_utc

STATUSES = ("running", "ok", "error", "cancelled", "partial", "interrupted")


@dataclass(frozen=True)
class RunStart:
    """What is known when a call starts."""

    model: str
    backend: str
    messages: Sequence[dict[str, Any]]
    params: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)
    prompt_version_id: str | None = None
    template: Sequence[dict[str, Any]] | None = None
    model_info: dict[str, Any] = field(default_factory=dict)
    experiment_id: str | None = None
    cell: str | None = None
    cache_key: str | None = None
    retrieval: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class RunInfo:
    """A stored run."""

    id: str
    created_at: datetime
    finished_at: datetime | None
    status: str
    model: str
    backend: str
    prompt_version_id: str | None
    template: list[dict[str, Any]] | None
    model_info: dict[str, Any]
    params: dict[str, Any]
    variables: dict[str, Any]
    messages: list[dict[str, Any]]
    output: str
    error: str | None
    metrics: dict[str, Any]
    experiment_id: str | None = None
    cell: str | None = None
    cache_key: str | None = None
    cached_from: str | None = None
    retrieval: list[dict[str, Any]] | None = None
    """Per variable filled by retrieval: query, chunks (with injection flags), context."""


METRIC_FIELDS = (
    "ttft_ms",
    "e2e_ms",
    "tpot_ms",
    "tokens_per_s",
    "input_tokens",
    "output_tokens",
    "tokens_estimated",
    "cost_usd",
    "cost_source",
)


def new_run_id() -> str:
    """A fresh run id (32 hex digits)."""
    return uuid.uuid4().hex


def start_run(store: Store, start: RunStart, run_id: str | None = None) -> str:
    """Record a call as ``running`` as it is made; returns the run's id."""
    run_id = run_id or new_run_id()
    with store.write() as session:
        session.add(
            Run(
                id=run_id,
                created_at=utcnow(),
                status="running",
                owner=process_owner(),
                prompt_version_id=start.prompt_version_id,
                template=list(start.template) if start.template is not None else None,
                model=start.model,
                backend=start.backend,
                model_info=start.model_info,
                params=start.params,
                variables=start.variables,
                messages=list(start.messages),
                experiment_id=start.experiment_id,
                cell=start.cell,
                cache_key=start.cache_key,
                retrieval=start.retrieval,
            )
        )
    return run_id


def finish_run(
    store: Store,
    run_id: str,
    *,
    status: str,
    output: str,
    error: str | None,
    metrics: dict[str, Any],
    model_info: dict[str, Any] | None = None,
) -> None:
    """Complete a run with its outcome and figures."""
    if status not in STATUSES or status == "running":
        raise ValueError(f"not a final status: {status}")
    values: dict[str, Any] = {
        "status": status,
        "output": output,
        "error": error,
        "finished_at": utcnow(),
        **{k: metrics.get(k) for k in METRIC_FIELDS if k in metrics},
    }
    if model_info is not None:
        values["model_info"] = model_info
    # One Core UPDATE on a plain connection: this sits on every call's return path, and
    # an ORM session costs about as much again as the write itself.
    with store.errors(), store.writer.begin() as connection:
        connection.execute(update(Run).where(col(Run.id) == run_id).values(**values))


def process_owner() -> str:
    """``HOST:PID`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(owner: str | None) -> bool:
    """Whether the process that owns a run may still be running it.

    Runs of other hosts (a shared registry) are never judged from here; on this host a
    process that no longer exists is dead. (A recycled PID keeps a run `running` until
    that process ends: the safe side.)
    """
    if owner is None:
        return False
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, OverflowError):
        return True  # exists under another user, or not a pid we understand
    return True


def mark_interrupted(store: Store) -> int:
    """Runs (and experiments) left ``running`` by a process that died (``kill -9``, a
    crash, power loss) become ``interrupted``; those of live processes are left alone.
    Returns how many runs."""
    from workbench.storage.models import Experiment

    with store.read() as session:
        candidates = session.exec(
            select(Run.id, Run.owner).where(col(Run.status) == "running")
        ).all()
        experiments = session.exec(
            select(Experiment.id, Experiment.owner).where(col(Experiment.status) == "running")
        ).all()
    dead = [run_id for run_id, owner in candidates if not _alive(owner)]
    dead_experiments = [eid for eid, owner in experiments if not _alive(owner)]
    if not dead and not dead_experiments:
        return 0
    with store.write() as session:
        if dead:
            session.execute(
                update(Run)
                .where(col(Run.id).in_(dead), col(Run.status) == "running")
                .values(status="interrupted", finished_at=utcnow())
            )
        if dead_experiments:
            session.execute(
                update(Experiment)
                .where(col(Experiment.id).in_(dead_experiments), col(Experiment.status) == "running")
                .values(status="interrupted", finished_at=utcnow())
            )
    return len(dead)


def info(run: Run | Mapping[str, Any]) -> RunInfo:
    """A stored run as callers see it, from an ORM row or a Core row's mapping."""
    get = run.__getitem__ if isinstance(run, Mapping) else run.__getattribute__
    finished = get("finished_at")
    return RunInfo(
        id=get("id"),
        created_at=as_utc(get("created_at")),
        finished_at=as_utc(finished) if finished else None,
        status=get("status"),
        model=get("model"),
        backend=get("backend"),
        prompt_version_id=get("prompt_version_id"),
        template=get("template"),
        model_info=get("model_info"),
        params=get("params"),
        variables=get("variables"),
        messages=get("messages"),
        output=get("output"),
        error=get("error"),
        metrics={k: get(k) for k in METRIC_FIELDS},
        experiment_id=get("experiment_id"),
        cell=get("cell"),
        cache_key=get("cache_key"),
        cached_from=get("cached_from"),
        retrieval=get("retrieval"),
    )


def get_run(store: Store, run_id: str) -> RunInfo:
    """One run by id.

    Raises:
        NotFoundError: no such run.
    """
    with store.read() as session:
        run = session.get(Run, run_id)
        if run is None:
            raise NotFoundError(f"unknown run {run_id!r}")
        return info(run)


def list_runs(store: Store, limit: int = 100) -> list[RunInfo]:
    """The newest runs first."""
    with store.read() as session:
        rows = session.exec(select(Run).order_by(col(Run.created_at).desc()).limit(limit))
        return [info(r) for r in rows]


def query_runs(
    store: Store,
    *,
    prompt: str | None = None,
    version: str | None = None,
    model: str | None = None,
    label: str | None = None,
    status: str | None = None,
    since: date | datetime | None = None,
    limit: int = 200,
) -> list[RunInfo]:
    """The newest runs first, narrowed in SQL by every filter given (all must hold).

    Args:
        prompt: runs of any version of the prompt with this name.
        version: ``NAME@N``: runs of that one version.
        model: runs of the model of this name, as recorded.
        label: runs of the versions this label points to now (on every prompt that has
            it; with ``prompt``, only that prompt's).
        status: one of :data:`STATUSES`.
        since: runs created at or after this moment; a date means its midnight, UTC
            (a naive datetime is taken as UTC).
        limit: at most this many runs.

    Raises:
        ValidationError: a malformed version reference or an unknown status.
    """
    from workbench.domain import parse_ref
    from workbench.errors import ValidationError
    from workbench.storage.models import Label, Prompt, PromptVersion

    query = select(Run)
    if prompt is not None:
        versions = select(PromptVersion.id).join(Prompt, col(Prompt.id) == PromptVersion.prompt_id)
        query = query.where(col(Run.prompt_version_id).in_(versions.where(Prompt.name == prompt)))
    if version is not None:
        ref = parse_ref(version)
        if ref.number is None:
            raise ValidationError(f"invalid version {version!r}: write NAME@N, e.g. support@3")
        one = (
            select(PromptVersion.id)
            .join(Prompt, col(Prompt.id) == PromptVersion.prompt_id)
            .where(Prompt.name == ref.name, PromptVersion.number == ref.number)
        )
        query = query.where(col(Run.prompt_version_id).in_(one))
    if label is not None:
        pointed = select(Label.version_id).where(Label.name == label)
        query = query.where(col(Run.prompt_version_id).in_(pointed))
    if model is not None:
        query = query.where(col(Run.model) == model)
    if status is not None:
        if status not in STATUSES:
            raise ValidationError(f"unknown status {status!r}: one of {', '.join(STATUSES)}")
        query = query.where(col(Run.status) == status)
    if since is not None:
        query = query.where(col(Run.created_at) >= _utc_moment(since))
    query = query.order_by(col(Run.created_at).desc(), col(Run.id).desc()).limit(limit)
    with store.read() as session:
        return [info(r) for r in session.exec(query)]


def _utc_moment(moment: date | datetime) -> datetime:
    if not isinstance(moment, datetime):
        moment = datetime.combine(moment, time(), UTC)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def version_refs(store: Store, version_ids: Iterable[str]) -> dict[str, str]:
    """``NAME@N`` for each of these prompt version ids (unknown ids are left out)."""
    from workbench.storage.models import Prompt, PromptVersion

    wanted = sorted(set(version_ids))
    if not wanted:
        return {}
    query = (
        select(PromptVersion.id, Prompt.name, PromptVersion.number)
        .join(Prompt, col(Prompt.id) == PromptVersion.prompt_id)
        .where(col(PromptVersion.id).in_(wanted))
    )
    with store.read() as session:
        return {vid: f"{name}@{number}" for vid, name, number in session.exec(query)}
