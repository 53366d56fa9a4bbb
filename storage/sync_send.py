"""What the registry does with one batch of a push, inside its transaction: versions
numbered in arrival order under a lock on each prompt (COPY on PostgreSQL), rubric versions,
approvals, label moves as compare-and-set, datasets as compare-and-set against their base.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from workbench.storage.db import chunks
from workbench.storage.repo import APPROVED, as_utc
from workbench.storage.sync import (
    RV,
    A,
    C,
    D,
    E,
    L,
    P,
    R,
    V,
    approval_key,
    insert_ignore,
    insert_json_text,
    json_text_params,
    stamp,
)
from workbench.storage.sync_pull import VERSION_COLUMNS


@dataclass
class Batch:
    """One batch of the outbox, with the rows it names (read from this store)."""

    items: list[Any]
    prompts: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, dict[str, Any]] = field(default_factory=dict)
    rubrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    approvals: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class Outcome:
    """What the registry made of a batch."""

    numbers: dict[str, int] = field(default_factory=dict)
    """Version and rubric version id -> the registry's number."""
    conflicts: dict[int, str] = field(default_factory=dict)
    """Outbox id -> why the registry refused it."""
    bases: dict[str, str] = field(default_factory=dict)
    """Dataset name -> the registry's ``updated_at`` (stamped) after the push."""


def send(connection: Connection, work: Batch) -> Outcome:
    """Apply a batch in the registry (inside its transaction)."""
    outcome = Outcome()
    ids = _lock_prompts(connection, work)
    _details(connection, work, ids)
    _versions(connection, work, ids, outcome)
    _rubrics(connection, work, outcome)
    _approvals(connection, work, ids)
    for item in work.items:  # in the order they were made
        if item.kind == "label" and item.key in work.events:
            problem = _move_label(connection, work.events[item.key], ids)
            if problem:
                outcome.conflicts[item.id] = problem
    # Datasets in name order: two pushers lock them in the same order.
    for item in sorted((i for i in work.items if i.kind == "dataset"), key=lambda i: i.key):
        if item.key in work.datasets:
            problem = _dataset(connection, work.datasets[item.key], outcome)
            if problem:
                outcome.conflicts[item.id] = problem
    return outcome


def _lock_prompts(connection: Connection, work: Batch) -> dict[str, int]:
    """Create the batch's prompts where missing and lock them, in name order (two pushers
    then never wait on each other in a circle)."""
    names = sorted(work.prompts)
    if not names:
        return {}
    connection.execute(insert_ignore(connection, P),
                       [{"name": name, **work.prompts[name]} for name in names])
    return {name: pid for pid, name in connection.execute(
        select(P.c.id, P.c.name).where(P.c.name.in_(names)).order_by(P.c.name).with_for_update())}


def _details(connection: Connection, work: Batch, ids: dict[str, int]) -> None:
    """A prompt's description and tags, as they are here now: the last push wins (they
    describe the prompt; its versions, which are what runs, are never overwritten)."""
    for name in sorted({i.key for i in work.items if i.kind == "prompt"} & set(ids)):
        meta = work.prompts[name]
        connection.execute(update(P).where(P.c.id == ids[name])
                           .values(description=meta["description"], tags=meta["tags"]))


def _versions(connection: Connection, work: Batch, ids: dict[str, int], outcome: Outcome) -> None:
    if not work.versions:
        return
    for part in chunks(list(work.versions)):
        outcome.numbers.update(connection.execute(
            select(V.c.id, V.c.number).where(V.c.id.in_(part))).all())
    tops = dict(connection.execute(
        select(V.c.prompt_id, func.max(V.c.number)).where(V.c.prompt_id.in_(list(ids.values())))
        .group_by(V.c.prompt_id)).all())
    rows = []
    for item in work.items:  # in the order they were made: parents first
        row = work.versions.get(item.key) if item.kind == "version" else None
        if row is None or row["id"] in outcome.numbers:
            continue
        pid = ids[row["prompt"]]
        tops[pid] = tops.get(pid, 0) + 1
        outcome.numbers[row["id"]] = tops[pid]
        rows.append({**{c: row[c] for c in VERSION_COLUMNS}, "prompt_id": pid, "number": tops[pid]})
    if not rows:
        return
    if connection.dialect.name == "postgresql":
        _copy(connection, V, rows)
    else:
        connection.execute(insert_json_text(connection, V), [json_text_params(r) for r in rows])


def _copy(connection: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    """Rows into a PostgreSQL table with COPY, inside the connection's transaction (several
    times faster than INSERTs; constraints and foreign keys are checked all the same). JSON
    columns go as the JSON text they hold."""
    import psycopg

    columns = list(rows[0])
    statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
    try:
        with connection.connection.dbapi_connection.cursor() as cursor:  # type: ignore[union-attr]
            with cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row([row[c] for c in columns])
    except psycopg.Error as exc:  # as SQLAlchemy would have raised it (callers handle those)
        raise DBAPIError.instance(statement, None, exc, psycopg.Error,
                                  connection_invalidated=connection.invalidated) from None


def _rubrics(connection: Connection, work: Batch, outcome: Outcome) -> None:
    for name in sorted({r["name"] for r in work.rubrics.values()}):
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                               {"k": f"rubric:{name}"})
        mine = [r for r in work.rubrics.values() if r["name"] == name]
        outcome.numbers.update(connection.execute(select(RV.c.id, RV.c.number).where(
            RV.c.id.in_([r["id"] for r in mine]))).all())
        top = connection.execute(select(func.max(RV.c.number)).where(RV.c.name == name)).scalar() or 0
        rows = []
        for row in sorted(mine, key=lambda r: r["number"]):
            if row["id"] not in outcome.numbers:
                top += 1
                outcome.numbers[row["id"]] = top
                rows.append({**row, "number": top})
        if rows:
            connection.execute(insert(RV), rows)


def _approvals(connection: Connection, work: Batch, ids: dict[str, int]) -> None:
    if not work.approvals:
        return
    versions = sorted({a["version_id"] for a in work.approvals.values()})
    known = set()
    for part in chunks(versions):
        known |= {approval_key(*row) for row in connection.execute(
            select(A.c.version_id, A.c.approver, A.c.at).where(A.c.version_id.in_(part)))}
    rows = [{"prompt_id": ids[a["prompt"]], "version_id": a["version_id"], "approver": a["approver"],
             "comment": a["comment"], "at": a["at"]}
            for a in work.approvals.values()
            if approval_key(a["version_id"], a["approver"], a["at"]) not in known]
    if rows:
        connection.execute(insert(A), rows)


def _number(connection: Connection, version_id: str | None) -> str:
    if version_id is None:
        return "nowhere"
    number = connection.execute(select(V.c.number).where(V.c.id == version_id)).scalar()
    return f"@{number}" if number is not None else f"version {version_id[:12]}"


def _move_label(connection: Connection, event: dict[str, Any], ids: dict[str, int]) -> str:
    """Compare-and-set: move the label only where it still points where ours did. Returns
    why not, or "" when it moved (or had already: a retry)."""
    pid, label, name = ids[event["prompt"]], event["label"], event["prompt"]
    current = connection.execute(select(L).where(L.c.prompt_id == pid, L.c.name == label)
                                 .with_for_update()).first()
    already = connection.execute(select(E.c.at).where(
        E.c.prompt_id == pid, E.c.label == label, E.c.to_version_id == event["to_version_id"],
        E.c.actor == event["actor"])).scalars()
    if any(as_utc(at) == as_utc(event["at"]) for at in already):
        return ""  # sent before; the acknowledgement was lost
    there = current.version_id if current is not None else None
    if there == event["to_version_id"]:
        return ""  # someone made the same move: nothing to do, nothing overwritten
    if there != event["from_version_id"]:
        who = f" (moved by {current.moved_by} at {as_utc(current.moved_at):%Y-%m-%d %H:%M:%SZ})" \
            if current is not None else ""
        return (f"{name}:{label}: you moved it from {_number(connection, event['from_version_id'])} "
                f"to {_number(connection, event['to_version_id'])}, but the registry has it at "
                f"{_number(connection, there)}{who}: `workbench registry resolve {name} {label} "
                "--mine` moves it to yours again, `--theirs` keeps theirs")
    rule = "approval" if label == APPROVED else \
        connection.execute(select(R.c.requires).where(R.c.label == label)).scalar()
    if rule == "approval" and connection.execute(
            select(A.c.id).where(A.c.version_id == event["to_version_id"]).limit(1)).first() is None:
        what = "approved is moved by approving" if label == APPROVED else \
            f"{label} is protected in the registry"
        return (f"{name}:{label}: {what}: it may only point to an approved version, and "
                f"{_number(connection, event['to_version_id'])} has no approval there")
    values = {"version_id": event["to_version_id"], "moved_by": event["actor"],
              "moved_at": event["at"]}
    if current is None:
        connection.execute(insert(L).values(prompt_id=pid, name=label, **values))
    else:
        connection.execute(update(L).where(L.c.prompt_id == pid, L.c.name == label).values(**values))
    connection.execute(insert(E).values(
        prompt_id=pid, label=label, from_version_id=event["from_version_id"],
        to_version_id=event["to_version_id"], actor=event["actor"], at=event["at"]))
    return ""


def _dataset(connection: Connection, data: dict[str, Any], outcome: Outcome) -> str:
    """Compare-and-set: replace the registry's dataset with ours only where it is still the
    one ours is based on (or absent, or already equal to ours)."""
    name = data["name"]
    connection.execute(insert_ignore(connection, D).values(
        name=name, description="", source="", created_at=data["created_at"],
        updated_at=data["updated_at"]))  # absent: made now, empty, so it can be locked
    row = connection.execute(select(D).where(D.c.name == name).with_for_update()).one()
    cases = [{"position": c["position"], "vars": c["vars"], "expected": c["expected"],
              "metadata": c["metadata"]} for c in data["cases"]]
    theirs = [{k: c[k] for k in ("position", "vars", "expected", "metadata")}
              for c in connection.execute(select(C).where(C.c.dataset_id == row.id)
                                          .order_by(C.c.position)).mappings()]
    made_now = stamp(row.updated_at) == stamp(data["updated_at"]) and not theirs
    if (row.description, row.source, theirs) == (data["description"], data["source"], cases):
        outcome.bases[name] = stamp(row.updated_at)  # the same already: nothing to send
        return ""
    if not made_now and stamp(row.updated_at) != data["base"]:
        return (f"dataset {name}: changed in the registry (at "
                f"{as_utc(row.updated_at):%Y-%m-%d %H:%M:%SZ}) since your copy was taken: "
                f"`workbench registry resolve {name} --dataset --mine` sends yours over it, "
                "`--theirs` takes theirs")
    values = {k: data[k] for k in ("description", "source", "created_at", "updated_at")}
    connection.execute(update(D).where(D.c.id == row.id).values(**values))
    connection.execute(delete(C).where(C.c.dataset_id == row.id))
    if cases:
        connection.execute(insert(C), [{"dataset_id": row.id, **c} for c in cases])
    outcome.bases[name] = stamp(data["updated_at"])
    return ""
