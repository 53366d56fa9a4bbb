"""Push: pull first, then send the outbox to the registry in batches.

Each batch is one registry transaction; this store clears the batch (and settles its
versions' numbers) only after the registry committed it. Should this store never hear
back (a crash, a lost connection after the commit), the next push sends the batch again
and the registry recognises every item: versions and rubric versions by id, approvals and
label moves by what they say.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select, update
from sqlalchemy.exc import DBAPIError

from workbench.errors import StoreError
from workbench.storage.db import Store, chunks
from workbench.storage.outbox import CONFLICT, WAITING
from workbench.storage.sync import (
    RV,
    A,
    C,
    D,
    E,
    O,
    P,
    V,
    S,
    SyncReport,
    as_json_text,
    dataset_base_key,
    local_versions,
    place,
    reaching,
    set_state,
    stamp,
    waiting_count,
)
from workbench.storage.sync_pull import RUBRIC_COLUMNS, VERSION_COLUMNS, pull
from workbench.storage.sync_send import Batch, Outcome, send

BATCH = 500
after_registry_commit: Callable[[], None] | None = None
"""Tests set this to play a crash between the registry's commit and this store's."""


def push(local: Store, registry: Store, *, batch: int = BATCH) -> SyncReport:
    """Pull, then send every waiting change to the registry.

    Batches go one after another (a batch may hold the parents of the next), while this
    store reads the next batch and settles the previous one: the registry's transaction
    mostly waits on the network and the server, and the two overlap.

    Raises:
        RegistryUnavailable: the registry cannot be reached (what was not sent still waits).
    """
    from concurrent.futures import ThreadPoolExecutor

    report = pull(local, registry)
    last, work = _next_batch(local, 0, batch)
    done: tuple[Batch, Outcome] | None = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="registry-push") as sender:
        while work is not None:
            sending = sender.submit(_send_retrying, registry, local, work)
            try:
                if done is not None:  # the previous batch, which the registry committed
                    _settle(local, *done, report)
                    done = None
                last, upcoming = _next_batch(local, last, batch)
            finally:
                outcome = sending.result()  # waits; raises what the registry raised
            if after_registry_commit is not None:
                after_registry_commit()
            done, work = (work, outcome), upcoming
        if done is not None:
            _settle(local, *done, report)
    if report.conflicts:  # show the registry's side here (the conflicts say what was ours)
        pull(local, registry)
    report.waiting = waiting_count(local)
    return report


def _next_batch(local: Store, last: int, size: int) -> tuple[int, Batch | None]:
    """The waiting changes after outbox id ``last`` (up to ``size``), with their rows."""
    with local.errors(), local.engine.connect() as connection:
        items = connection.execute(
            select(O).where(O.c.state == WAITING, O.c.id > last).order_by(O.c.id).limit(size)
        ).all()
        if not items:
            return last, None
        return items[-1].id, gather(connection, items)


def _settle(local: Store, work: Batch, outcome: Outcome, report: SyncReport) -> None:
    with local.errors(), local.writer.begin() as connection:
        settle(connection, work, outcome, report)


RETRYABLE = {"40001", "40P01"}
"""PostgreSQL's serialization failure and deadlock: the transaction is rolled back whole,
and sending the batch again is right."""


def _send_retrying(registry: Store, local: Store, work: Batch, attempts: int = 5) -> Outcome:
    for attempt in range(attempts):
        try:
            with reaching(registry, local), registry.writer.begin() as connection:
                return send(connection, work)
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) not in RETRYABLE:
                raise
            if attempt == attempts - 1:
                raise StoreError(f"the registry kept refusing the batch ({registry._describe(exc)}); "
                                 "it waits in the outbox: push again") from None
    raise AssertionError("unreachable")


def gather(connection: Connection, items: list[Any]) -> Batch:
    work = Batch(items)
    keys: dict[str, list[str]] = defaultdict(list)
    for item in items:
        keys[item.kind].append(item.key)
    names = {pid: name for pid, name in connection.execute(select(P.c.id, P.c.name))}
    for part in chunks(keys["version"]):
        for row in connection.execute(select(*as_json_text(V)).where(V.c.id.in_(part))):
            work.versions[row.id] = {**{c: getattr(row, c) for c in VERSION_COLUMNS},
                                     "prompt": names[row.prompt_id]}
    for part in chunks(keys["rubric"]):
        for row in connection.execute(select(RV).where(RV.c.id.in_(part))):
            work.rubrics[row.id] = {c: getattr(row, c) for c in RUBRIC_COLUMNS}
    for part in chunks([int(k) for k in keys["approval"]]):
        for row in connection.execute(select(A).where(A.c.id.in_(part))):
            work.approvals[str(row.id)] = {**row._asdict(), "prompt": names[row.prompt_id]}
    for part in chunks([int(k) for k in keys["label"]]):
        for row in connection.execute(select(E).where(E.c.id.in_(part))):
            work.events[str(row.id)] = {**row._asdict(), "prompt": names[row.prompt_id]}
    for name in keys["dataset"]:
        row = connection.execute(select(D).where(D.c.name == name)).first()
        if row is not None:
            cases = connection.execute(select(C).where(C.c.dataset_id == row.id)
                                       .order_by(C.c.position)).all()
            base = connection.execute(select(S.c.value).where(
                S.c.key == dataset_base_key(name))).scalar()
            work.datasets[name] = {**row._asdict(), "cases": [c._asdict() for c in cases],
                                   "base": base}
    wanted = {r["prompt"] for r in (*work.versions.values(), *work.approvals.values(),
                                    *work.events.values())} | set(keys["prompt"])
    for row in connection.execute(select(P).where(P.c.name.in_(sorted(wanted)))):
        work.prompts[row.name] = {"description": row.description, "tags": row.tags,
                                  "created_at": row.created_at}
    return work


def _described_since(connection: Connection, work: Batch) -> set[str]:
    """The prompts of the batch whose description or tags changed here while it was sent:
    their outbox item stays, and they go with the next push."""
    names = {i.key for i in work.items if i.kind == "prompt"} & set(work.prompts)
    since = set()
    for name, description, tags in connection.execute(  # locked: a commit in flight is waited for
            select(P.c.name, P.c.description, P.c.tags).where(P.c.name.in_(sorted(names)))
            .order_by(P.c.name).with_for_update()):
        sent = work.prompts[name]
        if (description, tags) != (sent["description"], sent["tags"]):
            since.add(name)
    return since


def settle(connection: Connection, work: Batch, outcome: Outcome, report: SyncReport) -> None:
    """After the registry committed a batch: take its numbers, clear what it has, mark what
    it refused."""
    pids = {name: pid for pid, name in connection.execute(select(P.c.id, P.c.name))}
    by_prompt: dict[str, dict[str, int]] = defaultdict(dict)
    for vid, row in work.versions.items():
        by_prompt[row["prompt"]][vid] = outcome.numbers[vid]
    rows = local_versions(connection, "version", [pids[name] for name in by_prompt])
    for name, final in sorted(by_prompt.items()):
        place(connection, "version", rows[pids[name]], final, [], name, report)
    by_rubric: dict[str, dict[str, int]] = defaultdict(dict)
    for rid, row in work.rubrics.items():
        by_rubric[row["name"]][rid] = outcome.numbers[rid]
    rubric_rows = local_versions(connection, "rubric", sorted(by_rubric))
    for name, final in sorted(by_rubric.items()):
        place(connection, "rubric", rubric_rows[name], final, [], f"rubric {name}", report)
    changed = set()  # datasets saved again while the push was on: they go next time
    for name, data in work.datasets.items():
        now = connection.execute(select(D.c.updated_at).where(D.c.name == name)
                                 .with_for_update()).scalar()  # a save in flight is waited for
        if now is None or stamp(now) != stamp(data["updated_at"]):
            changed.add(name)
        if name in outcome.bases:
            set_state(connection, dataset_base_key(name), outcome.bases[name])
    described = _described_since(connection, work)
    done = [item.id for item in work.items
            if item.kind not in ("version", "rubric") and item.id not in outcome.conflicts
            and not (item.kind == "dataset" and item.key in changed)
            and not (item.kind == "prompt" and item.key in described)]
    gone = [item.id for item in work.items if item.kind in ("version", "rubric")
            and item.key not in work.versions and item.key not in work.rubrics]
    for part in chunks(done + gone):
        connection.execute(delete(O).where(O.c.id.in_(part)))
    if outcome.conflicts:
        connection.execute(update(O).where(O.c.id == bindparam("b_id"))
                           .values(state=CONFLICT, detail=bindparam("b_detail")),
                           [{"b_id": k, "b_detail": v} for k, v in outcome.conflicts.items()])
    kinds = {"version": "versions", "rubric": "rubrics", "approval": "approvals",
             "label": "label moves", "dataset": "datasets", "prompt": "prompt details"}
    for item in work.items:
        if item.id not in outcome.conflicts:
            report.pushed[kinds[item.kind]] += 1
    report.conflicts += list(outcome.conflicts.values())
