"""Push and pull between this store and the team's registry (a Workbench store on
PostgreSQL). docs/registry-sync.md explains the design; in short:

- Identity is by id: a version (or rubric version) pushed twice is one row, so a retry
  after a lost acknowledgement creates nothing new. Approvals and label moves are known by
  what they say (version, who, when).
- The registry numbers versions per prompt in the order it receives them. Here, a version
  waiting in the outbox has a provisional number, placed after every number the registry
  gave; pulling and pushing settle numbers to the registry's, so every store shows the same.
- A label move is pushed as compare-and-set: it applies only where the registry's label
  still points where ours did; otherwise it becomes a conflict to resolve, never an
  overwrite. Protected labels are checked with the registry's rules and approvals.
- Push pulls first, then sends the outbox in batches, each one registry transaction, and
  clears the batch here only after the registry committed it: a registry that goes down
  mid-push loses nothing, and the next push completes the work.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Connection,
    String,
    Table,
    Text,
    bindparam,
    cast,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError

from workbench.errors import StoreError, WorkbenchError
from workbench.storage.db import Store, chunks
from workbench.storage.models import (
    Approval,
    Dataset,
    DatasetCase,
    Label,
    LabelEvent,
    LabelRule,
    Outbox,
    Prompt,
    PromptVersion,
    RubricVersion,
    SyncState,
    utcnow,
)
from workbench.storage.outbox import REFUSED, REGISTRY_ID, WAITING
from workbench.storage.repo import as_utc

P: Table = Prompt.__table__  # type: ignore[assignment]
V: Table = PromptVersion.__table__  # type: ignore[assignment]
RV: Table = RubricVersion.__table__  # type: ignore[assignment]
L: Table = Label.__table__  # type: ignore[assignment]
E: Table = LabelEvent.__table__  # type: ignore[assignment]
A: Table = Approval.__table__  # type: ignore[assignment]
R: Table = LabelRule.__table__  # type: ignore[assignment]
D: Table = Dataset.__table__  # type: ignore[assignment]
C: Table = DatasetCase.__table__  # type: ignore[assignment]
O: Table = Outbox.__table__  # type: ignore[assignment]
S: Table = SyncState.__table__  # type: ignore[assignment]

STORE_ID = "store_id"
"""``sync_state`` key of a store's own identity (what its pushers know it by)."""
class RegistryUnavailable(WorkbenchError):
    """The registry cannot be reached now; nothing was lost, the outbox keeps the work."""


@dataclass
class SyncReport:
    """What a push or pull did."""

    pushed: Counter[str] = field(default_factory=Counter)
    pulled: Counter[str] = field(default_factory=Counter)
    moves: dict[str, tuple[str, int, int, bool]] = field(default_factory=dict)
    """Version id -> (shown name, number before, number now, final) for numbers that moved."""
    conflicts: list[str] = field(default_factory=list)
    waiting: int = 0
    """Changes still in the outbox (conflicts included)."""

    @property
    def numbered(self) -> list[str]:
        """``NAME@N (was ~M)`` (``@~N`` while still provisional) for every number that moved."""
        return [f"{name}@{'' if final else '~'}{now} (was ~{before})"
                for name, before, now, final in self.moves.values() if now != before]

    def moved(self, vid: str, name: str, before: int, now: int, final: bool) -> None:
        first = self.moves.get(vid, (name, before, now, final))[1]
        self.moves[vid] = (name, first, now, final)

    def as_dict(self) -> dict[str, Any]:
        return {"pushed": dict(self.pushed), "pulled": dict(self.pulled),
                "numbered": self.numbered, "conflicts": self.conflicts, "waiting": self.waiting}


JSON_COLUMNS = ("messages", "params", "variables")
"""A version's JSON columns: moved between stores as the JSON text they hold (decoding and
encoding 30,000 documents again would cost more than the inserts)."""


def as_json_text(table: Table) -> list[Any]:
    """The table's columns for a SELECT, its JSON columns as text."""
    return [cast(c, Text).label(c.name) if c.name in JSON_COLUMNS else c for c in table.c]


def insert_json_text(connection: Connection, table: Table) -> Any:
    """An INSERT whose JSON columns take JSON text (as :func:`as_json_text` read it)."""
    values: dict[str, Any] = {}
    for name in JSON_COLUMNS:
        raw = bindparam(f"raw_{name}", type_=Text)
        # SQLite keeps JSON as text; PostgreSQL parses it (CAST(text AS json)).
        values[name] = cast(raw, table.c[name].type) if connection.dialect.name == "postgresql" else raw
    return insert(table).values(values)


def json_text_params(row: dict[str, Any]) -> dict[str, Any]:
    """Row values for :func:`insert_json_text`."""
    return {(f"raw_{k}" if k in JSON_COLUMNS else k): v for k, v in row.items()}


def insert_ignore(connection: Connection, table: Table) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` for the connection's database."""
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(table).on_conflict_do_nothing()


@contextmanager
def reaching(registry: Store, local: Store) -> Iterator[None]:
    """Turn the registry's connection failures into :class:`RegistryUnavailable` that says
    the work is safe (and never shows the password)."""
    from workbench.config import db_failure

    try:
        yield
    except StoreError:
        raise
    except DBAPIError as exc:
        state = getattr(exc.orig, "sqlstate", None)
        if state in ("40001", "40P01"):
            raise  # a deadlock or serialization failure: the caller sends again
        down = exc.connection_invalidated or (
            type(exc).__name__ in ("OperationalError", "InterfaceError")
            and (state is None or state.startswith("08") or state in ("57P01", "57P02", "57P03")))
        if not down:  # the registry answered, and refused: say what it said
            raise StoreError(f"the registry refused the push: {registry._describe(exc)}") from None
        waiting = waiting_count(local)
        raise RegistryUnavailable(
            f"the registry {registry.display_url} cannot be reached "
            f"({db_failure(exc, registry.url)}); {waiting} change(s) wait in the outbox, "
            "safe: push again when it is back") from None


def waiting_count(local: Store) -> int:
    """Changes still to send: waiting or in conflict (settled refusals are only a record)."""
    with local.engine.connect() as connection:
        return connection.execute(
            select(func.count()).select_from(O).where(O.c.state != REFUSED)).scalar_one()


def registry_identity(connection: Connection) -> str:
    """The registry's identity, made on first use (two first users agree on one)."""
    found = connection.execute(select(S.c.value).where(S.c.key == STORE_ID)).scalar()
    if found:
        return found
    connection.execute(insert_ignore(connection, S).values(key=STORE_ID, value=uuid.uuid4().hex))
    return connection.execute(select(S.c.value).where(S.c.key == STORE_ID)).scalar_one()


def link(connection: Connection, registry_id: str) -> None:
    """Remember which registry this store syncs with. A store that synced with another
    registry before sends it everything it has (the new one knows none of it)."""
    current = connection.execute(select(S.c.value).where(S.c.key == REGISTRY_ID)).scalar()
    if current == registry_id:
        return
    if current is not None:
        requeue_all(connection)
        connection.execute(update(S).where(S.c.key == REGISTRY_ID).values(value=registry_id))
    else:
        connection.execute(insert(S).values(key=REGISTRY_ID, value=registry_id))


def requeue_all(connection: Connection) -> None:
    """Queue every version, rubric version, dataset, approval and label move, in an order
    the registry can take: parents first. Label moves a registry refused stay refused, and
    a prompt's description or tags changed here and not pushed yet stay queued (a prompt
    the new registry lacks gets ours with its first version anyway)."""
    connection.execute(delete(O).where(O.c.state != REFUSED,
                                       ~((O.c.kind == "prompt") & (O.c.state == WAITING))))
    refused = select(O.c.key).where(O.c.kind == "label", O.c.state == REFUSED)
    now = utcnow()
    sources = (
        ("version", select(V.c.id).order_by(V.c.prompt_id, V.c.number)),
        ("rubric", select(RV.c.id).order_by(RV.c.name, RV.c.number)),
        ("dataset", select(D.c.name).order_by(D.c.name)),
        ("approval", select(A.c.id).order_by(A.c.id)),
        ("label", select(E.c.id).where(cast(E.c.id, String).not_in(refused)).order_by(E.c.id)),
    )
    for kind, query in sources:
        keys = [str(key) for key in connection.execute(query).scalars()]
        for part in chunks(keys):
            connection.execute(insert(O), [{"kind": kind, "key": key, "state": WAITING,
                                            "detail": "", "created_at": now} for key in part])


def place(connection: Connection, kind: str, rows: list[dict[str, Any]],
          final: dict[str, int], new: list[dict[str, Any]], shown: str,
          report: SyncReport) -> None:
    """Settle the numbers of one prompt's (or rubric's) versions here.

    ``rows``: this store's versions of it (``id``, ``number``, ``waiting``: still in the
    outbox); ``final``: the registry's numbers of any of them (or of ``new``); ``new``:
    registry versions to add (``number`` already the registry's). Versions that reached
    the registry take its numbers and leave the outbox; versions still waiting go after
    the highest final number, in their order. Moved numbers go to ``report``.
    """
    table = V if kind == "version" else RV
    movable = sorted((r for r in rows if r["waiting"]), key=lambda r: r["number"])
    settled = {r["id"]: final[r["id"]] for r in movable if r["id"] in final}
    still = [r for r in movable if r["id"] not in final]
    fixed = [r["number"] for r in rows if not r["waiting"]]
    top = max([*fixed, *settled.values(), *(n["number"] for n in new), 0])
    wanted = {r["id"]: settled.get(r["id"]) for r in movable}
    wanted.update({r["id"]: top + i for i, r in enumerate(still, 1)})
    changes = [r for r in movable if wanted[r["id"]] != r["number"]]
    if changes:
        # Out of the way first (negative numbers), so no two versions ever share one.
        connection.execute(
            update(table).where(table.c.id == bindparam("b_id")).values(number=bindparam("b_n")),
            [{"b_id": r["id"], "b_n": -r["number"]} for r in changes])
    if new:
        connection.execute(insert(table), new)
    if changes:
        connection.execute(
            update(table).where(table.c.id == bindparam("b_id")).values(number=bindparam("b_n")),
            [{"b_id": r["id"], "b_n": wanted[r["id"]]} for r in changes])
    if settled:
        connection.execute(delete(O).where(O.c.kind == kind, O.c.key == bindparam("b_key")),
                           [{"b_key": vid} for vid in settled])
    changed = {r["id"] for r in changes}
    for r in movable:
        if r["id"] in settled or r["id"] in changed:
            report.moved(r["id"], shown, r["number"], wanted[r["id"]], r["id"] in settled)


def local_versions(connection: Connection, kind: str, groups: list[Any]) -> dict[Any, list[dict]]:
    """This store's versions of the given prompts (ids) or rubrics (names), with whether
    each waits in the outbox."""
    table, column = (V, V.c.prompt_id) if kind == "version" else (RV, RV.c.name)
    waiting = select(O.c.key).where(O.c.kind == kind)
    found: dict[Any, list[dict]] = {group: [] for group in groups}
    if not groups:
        return found
    for part in chunks(groups):
        for row in connection.execute(
                select(column, table.c.id, table.c.number, table.c.id.in_(waiting))
                .where(column.in_(part))):
            found[row[0]].append({"id": row[1], "number": row[2], "waiting": bool(row[3])})
    return found


def event_key(prompt: str, label: str, to_id: str, at: Any) -> tuple[str, str, str, Any]:
    """What a label move is known by across stores."""
    return (prompt, label, to_id, as_utc(at))


def approval_key(version_id: str, approver: str, at: Any) -> tuple[str, str, Any]:
    return (version_id, approver, as_utc(at))


def dataset_base_key(name: str) -> str:
    """``sync_state`` key of the registry's ``updated_at`` that this store's copy of a
    dataset is based on (a push is refused when the registry's has moved on since)."""
    return f"dataset-base:{name}"


def stamp(moment: Any) -> str:
    """A time as compared across databases: UTC, ISO 8601, microseconds."""
    return as_utc(moment).isoformat()


def set_state(connection: Connection, key: str, value: str) -> None:
    if connection.execute(update(S).where(S.c.key == key).values(value=value)).rowcount == 0:
        connection.execute(insert(S).values(key=key, value=value))
