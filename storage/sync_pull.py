"""Pull: bring the registry's prompts, versions (with their final numbers), label moves,
approvals, label pointers, protected labels, rubrics and datasets into this store.

The registry is read in one snapshot; this store is changed in one transaction. Labels
that have a move of ours still waiting keep our pointer (push will try it); datasets
with a change of ours waiting (or in conflict) keep ours.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, cast, delete, insert, select, String, update

from workbench.storage.db import Store, chunks
from workbench.storage.outbox import CONFLICT, REGISTRY_ID, WAITING
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
    dataset_base_key,
    insert_ignore,
    event_key,
    link,
    local_versions,
    place,
    reaching,
    registry_identity,
    set_state,
    stamp,
    waiting_count,
)

VERSION_COLUMNS = ("id", "number", "parent_id", "content_hash", "messages", "params",
                   "variables", "message", "author", "created_at")
RUBRIC_COLUMNS = ("id", "name", "number", "parent_id", "content", "content_hash", "message",
                  "author", "created_at")


@dataclass
class Snapshot:
    """What the registry holds (full rows only of what this store lacks)."""

    prompts: dict[str, dict[str, Any]] = field(default_factory=dict)
    numbers: dict[str, tuple[str, int]] = field(default_factory=dict)
    """version id -> (prompt name, number)."""
    versions: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Full rows of the versions this store lacks, with ``prompt``."""
    rubric_numbers: dict[str, tuple[str, int]] = field(default_factory=dict)
    rubrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    approvals: list[dict[str, Any]] = field(default_factory=list)
    labels: list[dict[str, Any]] = field(default_factory=list)
    rules: list[dict[str, Any]] = field(default_factory=list)
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Datasets newer there than here, with their ``cases``."""


def pull(local: Store, registry: Store) -> SyncReport:
    """Bring the registry's work here.

    Raises:
        RegistryUnavailable: the registry cannot be reached (nothing here changed).
    """
    report = SyncReport()
    with local.errors(), local.engine.connect() as connection:
        have_versions = set(connection.execute(select(V.c.id)).scalars())
        have_rubrics = set(connection.execute(select(RV.c.id)).scalars())
        bases = dict(connection.execute(select(S.c.key, S.c.value)).all())
        have_datasets = {name: bases.get(dataset_base_key(name))
                         for name in connection.execute(select(D.c.name)).scalars()}
        # Labels protected here before this store met a registry: the registry gets them
        # (a pull then brings the registry's rules, which would otherwise drop them).
        rules = [] if REGISTRY_ID in bases else [r._asdict() for r in connection.execute(select(R))]
    with reaching(registry, local):
        with registry.writer.begin() as connection:
            registry_id = registry_identity(connection)
            if rules:
                connection.execute(insert_ignore(connection, R), rules)
        snapshot = read_registry(registry, have_versions, have_rubrics, have_datasets)
    with local.errors(), local.writer.begin() as connection:
        link(connection, registry_id)
        apply(connection, snapshot, report)
    report.waiting = waiting_count(local)
    return report


def read_registry(registry: Store, have_versions: set[str], have_rubrics: set[str],
                  have_datasets: dict[str, Any]) -> Snapshot:
    found = Snapshot()
    with registry.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            names = {}
            for row in connection.execute(select(P)):
                names[row.id] = row.name
                found.prompts[row.name] = {"description": row.description, "tags": row.tags,
                                           "created_at": row.created_at}
            for vid, pid, number in connection.execute(select(V.c.id, V.c.prompt_id, V.c.number)):
                found.numbers[vid] = (names[pid], number)
            missing = [vid for vid in found.numbers if vid not in have_versions]
            # Most of them (a fresh store): one read of everything beats many IN lists.
            queries = [select(V)] if len(missing) > len(found.numbers) // 2 else \
                [select(V).where(V.c.id.in_(part)) for part in chunks(missing)]
            for query in queries:
                for row in connection.execute(query):
                    if row.id not in have_versions:
                        found.versions[row.id] = {**{c: getattr(row, c) for c in VERSION_COLUMNS},
                                                  "prompt": names[row.prompt_id]}
            for rid, name, number in connection.execute(select(RV.c.id, RV.c.name, RV.c.number)):
                found.rubric_numbers[rid] = (name, number)
            missing = [rid for rid in found.rubric_numbers if rid not in have_rubrics]
            for part in chunks(missing):
                for row in connection.execute(select(RV).where(RV.c.id.in_(part))):
                    found.rubrics[row.id] = {c: getattr(row, c) for c in RUBRIC_COLUMNS}
            found.events = [{**row._asdict(), "prompt": names[row.prompt_id]}
                            for row in connection.execute(select(E).order_by(E.c.id))]
            found.approvals = [{**row._asdict(), "prompt": names[row.prompt_id]}
                               for row in connection.execute(select(A).order_by(A.c.id))]
            found.labels = [{**row._asdict(), "prompt": names[row.prompt_id]}
                            for row in connection.execute(select(L))]
            found.rules = [row._asdict() for row in connection.execute(select(R))]
            datasets = {row.id: row._asdict() for row in connection.execute(select(D))
                        if row.name not in have_datasets
                        or stamp(row.updated_at) != have_datasets[row.name]}
            for part in chunks(list(datasets)):
                for row in connection.execute(select(C).where(C.c.dataset_id.in_(part))
                                              .order_by(C.c.dataset_id, C.c.position)):
                    datasets[row.dataset_id].setdefault("cases", []).append(row._asdict())
            found.datasets = {d["name"]: d for d in datasets.values()}
    return found


def apply(connection: Connection, found: Snapshot, report: SyncReport) -> None:
    """Write the snapshot into this store (inside its write transaction)."""
    ids = _prompts(connection, found, report)
    _versions(connection, found, ids, report)
    _rubrics(connection, found, report)
    _approvals(connection, found, ids, report)
    _events(connection, found, ids, report)
    _labels(connection, found, ids)
    connection.execute(delete(R))
    if found.rules:
        connection.execute(insert(R), found.rules)
    _datasets(connection, found, report)


def _prompts(connection: Connection, found: Snapshot, report: SyncReport) -> dict[str, int]:
    """The registry's prompts here: new ones added; the description and tags of the others
    taken from the registry, except where a change of ours waits to be pushed."""
    ids, details = {}, {}
    # Locked first (a store on PostgreSQL: a commit changing them is waited for, and its
    # outbox item is then seen below), in one order (two pulls never wait in a circle).
    for pid, name, description, tags in connection.execute(
            select(P.c.id, P.c.name, P.c.description, P.c.tags).order_by(P.c.id).with_for_update()):
        ids[name], details[name] = pid, (description, list(tags or ()))
    ours = set(connection.execute(select(O.c.key).where(O.c.kind == "prompt",
                                                        O.c.state == WAITING)).scalars())
    for name, meta in found.prompts.items():
        if name not in ids:
            ids[name] = connection.execute(insert(P).values(name=name, **meta)).inserted_primary_key[0]
        elif name not in ours and details[name] != (meta["description"], list(meta["tags"] or ())):
            connection.execute(update(P).where(P.c.id == ids[name]).values(
                description=meta["description"], tags=meta["tags"]))
            report.pulled["prompt details"] += 1
    return ids


def _versions(connection: Connection, found: Snapshot, ids: dict[str, int],
              report: SyncReport) -> None:
    have = set(connection.execute(select(V.c.id)).scalars())
    new: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for vid, row in sorted(found.versions.items(), key=lambda item: item[1]["number"]):
        if vid not in have:
            values = {c: row[c] for c in VERSION_COLUMNS}
            new[row["prompt"]].append({**values, "prompt_id": ids[row["prompt"]]})
    waiting = {vid for vid in connection.execute(
        select(O.c.key).where(O.c.kind == "version", O.c.state == WAITING)).scalars()}
    touched = set(new) | {found.numbers[vid][0] for vid in waiting if vid in found.numbers}
    rows = local_versions(connection, "version", [ids[name] for name in touched])
    finals: dict[str, dict[str, int]] = defaultdict(dict)
    for vid, (prompt, number) in found.numbers.items():
        if prompt in touched:
            finals[prompt][vid] = number
    for name in sorted(touched):
        final = finals[name]
        place(connection, "version", rows[ids[name]], final, new[name], name, report)
        report.pulled["versions"] += len(new[name])


def _rubrics(connection: Connection, found: Snapshot, report: SyncReport) -> None:
    have = set(connection.execute(select(RV.c.id)).scalars())
    new: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rid, row in sorted(found.rubrics.items(), key=lambda item: item[1]["number"]):
        if rid not in have:
            new[row["name"]].append(row)
    waiting = set(connection.execute(
        select(O.c.key).where(O.c.kind == "rubric", O.c.state == WAITING)).scalars())
    touched = set(new) | {found.rubric_numbers[r][0] for r in waiting if r in found.rubric_numbers}
    rows = local_versions(connection, "rubric", sorted(touched))
    for name in sorted(touched):
        final = {rid: n for rid, (rname, n) in found.rubric_numbers.items() if rname == name}
        place(connection, "rubric", rows[name], final, new[name], f"rubric {name}", report)
        report.pulled["rubrics"] += len(new[name])


def _approvals(connection: Connection, found: Snapshot, ids: dict[str, int],
               report: SyncReport) -> None:
    known = {approval_key(r.version_id, r.approver, r.at)
             for r in connection.execute(select(A.c.version_id, A.c.approver, A.c.at))}
    rows = [{"prompt_id": ids[a["prompt"]], "version_id": a["version_id"], "approver": a["approver"],
             "comment": a["comment"], "at": a["at"]}
            for a in found.approvals
            if approval_key(a["version_id"], a["approver"], a["at"]) not in known]
    if rows:
        connection.execute(insert(A), rows)
    report.pulled["approvals"] += len(rows)


def _events(connection: Connection, found: Snapshot, ids: dict[str, int],
            report: SyncReport) -> None:
    names = {pid: name for name, pid in ids.items()}
    known = {event_key(names[r.prompt_id], r.label, r.to_version_id, r.at)
             for r in connection.execute(select(E.c.prompt_id, E.c.label, E.c.to_version_id, E.c.at))}
    rows = [{"prompt_id": ids[e["prompt"]], "label": e["label"], "from_version_id": e["from_version_id"],
             "to_version_id": e["to_version_id"], "actor": e["actor"], "at": e["at"]}
            for e in found.events
            if event_key(e["prompt"], e["label"], e["to_version_id"], e["at"]) not in known]
    if rows:
        connection.execute(insert(E), rows)
    report.pulled["label moves"] += len(rows)


def _labels(connection: Connection, found: Snapshot, ids: dict[str, int]) -> None:
    ours = {(pid, label) for pid, label in connection.execute(
        select(E.c.prompt_id, E.c.label).join(O, O.c.key == cast(E.c.id, String))
        .where(O.c.kind == "label", O.c.state == WAITING))}
    here = {(r.prompt_id, r.name): r.version_id for r in connection.execute(select(L))}
    theirs = {(ids[label["prompt"]], label["name"]) for label in found.labels}
    for key in here.keys() - theirs - ours:  # a move the registry refused: back to its state
        connection.execute(delete(L).where(L.c.prompt_id == key[0], L.c.name == key[1]))
    for label in found.labels:
        key = (ids[label["prompt"]], label["name"])
        if key in ours or here.get(key) == label["version_id"]:
            continue
        values = {"version_id": label["version_id"], "moved_by": label["moved_by"],
                  "moved_at": label["moved_at"]}
        if key in here:
            connection.execute(update(L).where(L.c.prompt_id == key[0], L.c.name == key[1])
                               .values(**values))
        else:
            connection.execute(insert(L).values(prompt_id=key[0], name=key[1], **values))


def _datasets(connection: Connection, found: Snapshot, report: SyncReport) -> None:
    # Locked before the outbox is read, as in _prompts: a save in flight is waited for.
    connection.execute(select(D.c.id).order_by(D.c.id).with_for_update()).all()
    ours = set(connection.execute(select(O.c.key).where(
        O.c.kind == "dataset", O.c.state.in_((WAITING, CONFLICT)))).scalars())
    for name, data in found.datasets.items():
        if name in ours:
            continue
        set_state(connection, dataset_base_key(name), stamp(data["updated_at"]))
        values = {k: data[k] for k in ("description", "source", "created_at", "updated_at")}
        dataset_id = connection.execute(select(D.c.id).where(D.c.name == name)).scalar()
        if dataset_id is None:
            dataset_id = connection.execute(insert(D).values(name=name, **values)).inserted_primary_key[0]
        else:
            connection.execute(update(D).where(D.c.id == dataset_id).values(**values))
            connection.execute(delete(C).where(C.c.dataset_id == dataset_id))
        cases = [{"dataset_id": dataset_id, "position": c["position"], "vars": c["vars"],
                  "expected": c["expected"], "metadata": c["metadata"]}
                 for c in data.get("cases", [])]
        if cases:
            connection.execute(insert(C), cases)
        report.pulled["datasets"] += 1
