"""Runs pushed to the registry as summaries (``registry push --runs``): what was run, on
which version and model, how it went and what it cost; not the messages, variables or
output (they stay in the store that made them).

Runs are immutable once finished, so they need no outbox: a push sends the finished runs
the registry does not have (by id), with their experiments, in batches.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, bindparam, select, update

from workbench.storage.db import Store, chunks
from workbench.storage.models import Experiment, Run
from workbench.storage.sync import V, insert_ignore, reaching

RUN: Table = Run.__table__  # type: ignore[assignment]
EXPERIMENT: Table = Experiment.__table__  # type: ignore[assignment]
BLANK = {"messages": [], "variables": {}, "output": "", "template": None, "retrieval": None}
"""What a summary leaves out."""


def push_runs(local: Store, registry: Store, *, batch: int = 500) -> tuple[int, int]:
    """Send finished runs the registry lacks; returns (sent, skipped: their version is not
    in the registry, e.g. a conflict left it here).

    Raises:
        RegistryUnavailable: the registry cannot be reached (send again later).
    """
    with local.errors(), local.engine.connect() as connection:
        finished = connection.execute(
            select(RUN.c.id).where(RUN.c.status != "running").order_by(RUN.c.created_at)
        ).scalars().all()
    sent = skipped = 0
    for part in chunks(finished, batch):
        with reaching(registry, local), registry.engine.connect() as connection:
            there = set(connection.execute(select(RUN.c.id).where(RUN.c.id.in_(part))).scalars())
        wanted = [run_id for run_id in part if run_id not in there]
        if not wanted:
            continue
        with local.errors(), local.engine.connect() as connection:
            rows = [dict(r._mapping) for r in connection.execute(select(RUN).where(RUN.c.id.in_(wanted)))]
            experiments = {r["experiment_id"] for r in rows if r["experiment_id"]}
            experiment_rows = [dict(r._mapping) for r in connection.execute(
                select(EXPERIMENT).where(EXPERIMENT.c.id.in_(sorted(experiments))))] if experiments else []
        with reaching(registry, local), registry.writer.begin() as connection:
            versions = {r["prompt_version_id"] for r in rows if r["prompt_version_id"]}
            known = set(connection.execute(
                select(V.c.id).where(V.c.id.in_(sorted(versions)))).scalars()) if versions else set()
            summaries: list[dict[str, Any]] = []
            for row in rows:
                if row["prompt_version_id"] and row["prompt_version_id"] not in known:
                    skipped += 1
                    continue
                summaries.append({**row, **BLANK})
            if experiment_rows:  # new ones, and the status of those sent while running
                connection.execute(insert_ignore(connection, EXPERIMENT), experiment_rows)
                connection.execute(
                    update(EXPERIMENT).where(EXPERIMENT.c.id == bindparam("b_id"))
                    .values(status=bindparam("b_status"), finished_at=bindparam("b_finished")),
                    [{"b_id": e["id"], "b_status": e["status"], "b_finished": e["finished_at"]}
                     for e in experiment_rows])
            if summaries:
                connection.execute(insert_ignore(connection, RUN), summaries)
        sent += len(summaries)
    return sent, skipped
