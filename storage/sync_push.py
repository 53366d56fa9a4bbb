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
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from workbench.errors import StoreError
from workbench.storage.db import Store
from workbench.storage.outbox import CONFLICT, WAITING
from workbench.storage.repo import APPROVED, as_utc
from workbench.storage.sync import (
    RV,
    A,
    C,
    D,
    E,
    L,
    O,
    P,
    R,
    V,
    S,
    SyncReport,
    approval_key,
    as_json_text,
    chunks,
    dataset_base_key,
    insert_ignore,
    insert_json_text,
    json_text_params,
    local_versions,
    place,
    reaching,
    set_state,
    stamp,
    waiting_count,
)
from workbench.storage.sync_pull import RUBRIC_COLUMNS, VERSION_COLUMNS, pull

BATCH = 500
after_registry_commit: Callable[[], None] | None = None
"""Tests set this to play a crash between the registry's commit and this store's."""


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
                                    *work.events.values())}
    for row in connection.execute(select(P).where(P.c.name.in_(sorted(wanted)))):
        work.prompts[row.name] = {"description": row.description, "tags": row.tags,
                                  "created_at": row.created_at}
    return work


def send(connection: Connection, work: Batch) -> Outcome:
    """Apply a batch in the registry (inside its transaction)."""
    outcome = Outcome()
    ids = _lock_prompts(connection, work)
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
        now = connection.execute(select(D.c.updated_at).where(D.c.name == name)).scalar()
        if now is None or stamp(now) != stamp(data["updated_at"]):
            changed.add(name)
        if name in outcome.bases:
            set_state(connection, dataset_base_key(name), outcome.bases[name])
    done = [item.id for item in work.items
            if item.kind not in ("version", "rubric") and item.id not in outcome.conflicts
            and not (item.kind == "dataset" and item.key in changed)]
    gone = [item.id for item in work.items if item.kind in ("version", "rubric")
            and item.key not in work.versions and item.key not in work.rubrics]
    for part in chunks(done + gone):
        connection.execute(delete(O).where(O.c.id.in_(part)))
    if outcome.conflicts:
        connection.execute(update(O).where(O.c.id == bindparam("b_id"))
                           .values(state=CONFLICT, detail=bindparam("b_detail")),
                           [{"b_id": k, "b_detail": v} for k, v in outcome.conflicts.items()])
    kinds = {"version": "versions", "rubric": "rubrics", "approval": "approvals",
             "label": "label moves", "dataset": "datasets"}
    for item in work.items:
        if item.id not in outcome.conflicts:
            report.pushed[kinds[item.kind]] += 1
    report.conflicts += list(outcome.conflicts.values())
