"""Repository functions for experiments: start one, find one to resume, its cells' runs,
and the cache of identical requests."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlmodel import col, select, update

from workbench.errors import NotFoundError
from workbench.storage.db import Store, chunks
from workbench.storage.models import Experiment, Run, utcnow
from workbench.storage.repo import as_utc
from workbench.storage.runs import METRIC_FIELDS, RunInfo, info, new_run_id, process_owner

DONE = ("ok", "error", "partial")
"""Statuses that settle a cell: resuming runs again only cells without one of these
(never run, ``cancelled`` or ``interrupted``)."""


@dataclass(frozen=True)
class ExperimentInfo:
    """A stored experiment."""

    id: str
    created_at: datetime
    finished_at: datetime | None
    status: str
    source: str
    description: str
    fingerprint: str
    cells: int


def _experiment_info(row: Experiment) -> ExperimentInfo:
    return ExperimentInfo(
        id=row.id,
        created_at=as_utc(row.created_at),
        finished_at=as_utc(row.finished_at) if row.finished_at else None,
        status=row.status,
        source=row.source,
        description=row.description,
        fingerprint=row.fingerprint,
        cells=row.cells,
    )


def start_experiment(
    store: Store, *, source: str, description: str, fingerprint: str, cells: int
) -> ExperimentInfo:
    """Record a new experiment as ``running``."""
    row = Experiment(
        id=new_run_id(),
        created_at=utcnow(),
        status="running",
        source=source,
        description=description,
        fingerprint=fingerprint,
        cells=cells,
        owner=process_owner(),
    )
    with store.write() as session:
        session.add(row)
        session.flush()
        return _experiment_info(row)


def finish_experiment(store: Store, experiment_id: str, status: str) -> None:
    """Mark an experiment ``done`` or ``cancelled``."""
    with store.write() as session:
        session.execute(
            update(Experiment)
            .where(col(Experiment.id) == experiment_id)
            .values(status=status, finished_at=utcnow())
        )


def get_experiment(store: Store, ref: str) -> ExperimentInfo:
    """An experiment by id (or a unique prefix of at least 6 digits), or ``last``.

    Raises:
        NotFoundError: no such experiment (or the prefix is ambiguous).
    """
    with store.read() as session:
        if ref == "last":
            row = session.exec(
                select(Experiment).order_by(col(Experiment.created_at).desc()).limit(1)
            ).first()
            if row is None:
                raise NotFoundError("no experiment to resume: none has been run yet")
            return _experiment_info(row)
        found = session.get(Experiment, ref)
        if found is not None:
            return _experiment_info(found)
        if len(ref) >= 6:
            rows = session.exec(
                select(Experiment).where(col(Experiment.id).startswith(ref)).limit(2)
            ).all()
            if len(rows) == 1:
                return _experiment_info(rows[0])
            if len(rows) > 1:
                raise NotFoundError(f"experiment id {ref!r} is ambiguous: give more digits")
    raise NotFoundError(f"unknown experiment {ref!r} (see `workbench eval --list`)")


def last_experiment(store: Store, *, fingerprint: str, sources: Iterable[str]) -> ExperimentInfo:
    """``--resume last`` for one suite: its newest experiment with the same fingerprint
    (the same cells); else the newest that ran one of ``sources`` (the suite file, which
    changed since: the caller refuses to resume it, saying so). Experiments of other
    suites, app grids among them, never count.

    Raises:
        NotFoundError: no experiment of this suite.
    """
    names = list(dict.fromkeys(sources))  # the first is the one to show
    with store.read() as session:
        newest = select(Experiment).order_by(col(Experiment.created_at).desc()).limit(1)
        row = session.exec(newest.where(col(Experiment.fingerprint) == fingerprint)).first()
        if row is None:
            row = session.exec(newest.where(col(Experiment.source).in_(names))).first()
        if row is None:
            raise NotFoundError(
                f"no experiment to resume for {names[0]}: this suite has not been run yet "
                "(see `workbench eval --list`)"
            )
        return _experiment_info(row)


def list_experiments(store: Store, limit: int = 20) -> list[ExperimentInfo]:
    """The newest experiments first."""
    with store.read() as session:
        rows = session.exec(
            select(Experiment).order_by(col(Experiment.created_at).desc()).limit(limit)
        ).all()
        return [_experiment_info(r) for r in rows]


def settled_cells(store: Store, experiment_id: str) -> dict[str, RunInfo]:
    """The experiment's settled cells (see :data:`DONE`), each with its latest run."""
    with store.read() as session:
        rows = session.exec(
            select(Run)
            .where(col(Run.experiment_id) == experiment_id, col(Run.status).in_(DONE))
            .order_by(col(Run.created_at))
        ).all()
        return {row.cell: info(row) for row in rows if row.cell is not None}


def cached_answers(store: Store, keys: Iterable[str]) -> dict[str, RunInfo]:
    """For each cache key, the newest successful run that called a model with it."""
    wanted = sorted(set(keys))
    found: dict[str, RunInfo] = {}
    table = Run.__table__  # Core, not ORM objects: this reads a row per cell
    with store.errors(), store.engine.connect() as connection:
        for part in chunks(wanted):
            rows = connection.execute(
                select(table)
                .where(
                    table.c.cache_key.in_(part),
                    table.c.status == "ok",
                    table.c.cached_from.is_(None),
                )
                .order_by(table.c.created_at)
            ).mappings()
            for row in rows:
                found[row["cache_key"]] = info(row)
    return found


def costs_of(store: Store, run_ids: Iterable[str]) -> dict[str, float | None]:
    """What each run cost (the answers cache hits reused)."""
    wanted = sorted(set(run_ids))
    found: dict[str, float | None] = {}
    table = Run.__table__
    with store.errors(), store.engine.connect() as connection:
        for part in chunks(wanted):
            rows = connection.execute(
                select(table.c.id, table.c.cost_usd).where(table.c.id.in_(part)))
            found.update({run_id: cost for run_id, cost in rows})
    return found


@dataclass(frozen=True)
class CacheHit:
    """A cell answered from the cache: its new run id and the run it reuses."""

    run_id: str
    cell: str
    source: RunInfo


def record_cache_hits(
    store: Store, experiment_id: str | None, hits: Sequence[tuple[str, RunInfo]]
) -> list[CacheHit]:
    """Record cells answered from the cache, in one transaction: each gets a run of its
    own (status ``ok``, ``cached_from`` the reused run, cost 0) with the reused output
    and timings."""
    now = utcnow()
    owner = process_owner()
    made = [CacheHit(new_run_id(), cell, source) for cell, source in hits]
    rows: list[dict[str, Any]] = []
    for hit in made:
        source = hit.source
        rows.append(
            {
                "id": hit.run_id,
                "created_at": now,
                "finished_at": now,
                "status": "ok",
                "owner": owner,
                "prompt_version_id": source.prompt_version_id,
                "template": source.template,
                "model": source.model,
                "backend": source.backend,
                "model_info": source.model_info,
                "params": source.params,
                "variables": source.variables,
                "messages": source.messages,
                "output": source.output,
                "error": None,
                **{k: source.metrics.get(k) for k in METRIC_FIELDS},
                "cost_usd": 0.0,
                "cost_source": "cache hit: no model was called",
                "experiment_id": experiment_id,
                "cell": hit.cell,
                "cache_key": source.cache_key,
                "cached_from": source.id,
                "retrieval": source.retrieval,
            }
        )
    if rows:
        with store.errors(), store.writer.begin() as connection:
            connection.execute(insert(Run), rows)
    return made
