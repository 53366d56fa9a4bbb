"""The outbox: local changes waiting for the registry, written in each change's own
transaction (a crash never leaves a change without its outbox row), and what this store
knows of its registry (``sync_state``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, col, select

from workbench.storage.db import Store
from workbench.storage.models import LabelEvent, Outbox, Prompt, SyncState, utcnow

KINDS = ("version", "rubric", "dataset", "approval", "label", "prompt")
"""What the outbox holds: ``prompt`` is a change of a prompt's description or tags."""
WAITING, CONFLICT, REFUSED = "waiting", "conflict", "refused"
REGISTRY_ID = "registry_id"
"""The key under which ``sync_state`` holds the identity of the registry this store syncs
with: once set, versions that wait in the outbox have provisional numbers."""


def enqueue(session: Session, kind: str, key: object) -> None:
    """Queue a change for the registry (call inside the change's transaction, after a
    flush gave the row its id)."""
    session.add(Outbox(kind=kind, key=str(key), state=WAITING, detail="", created_at=utcnow()))


def waiting_text(counts: dict[str, int]) -> str:
    """What waits, in words: ``2 versions, 1 label``."""
    nouns = {"prompt": "prompt detail"}
    return ", ".join(f"{n} {nouns.get(kind, kind)}{'s' if n != 1 else ''}"
                     for kind, n in counts.items() if n)


def enqueue_once(session: Session, kind: str, key: str) -> None:
    """Queue what is pushed whole, as it is when pushed (a dataset, a prompt's details):
    once, however often it changes before the push."""
    waiting = session.exec(select(Outbox.id).where(
        Outbox.kind == kind, Outbox.key == key, Outbox.state == WAITING)).first()
    if waiting is None:
        enqueue(session, kind, key)


def linked(session: Session) -> bool:
    """Whether this store has synced with a registry (provisional numbers mean something)."""
    return session.get(SyncState, REGISTRY_ID) is not None


def provisional_ids(session: Session, ids: list[str], kind: str = "version") -> set[str]:
    """Which of ``ids`` have a provisional number (linked, and still waiting to be pushed)."""
    if not ids or not linked(session):
        return set()
    return set(session.exec(select(Outbox.key).where(
        Outbox.kind == kind, col(Outbox.key).in_(ids))).all())


@dataclass(frozen=True)
class Conflict:
    """A change the registry refused: a label move (``label`` set) or a dataset."""

    kind: str
    name: str
    label: str | None
    detail: str


@dataclass(frozen=True)
class Pending:
    """What waits to be pushed, by kind, and the conflicts to resolve."""

    waiting: dict[str, int]
    conflicts: list[str]
    """What each conflict says, oldest first."""
    items: tuple[Conflict, ...] = ()
    """The conflicts, one per label or dataset (the newest refusal of each)."""

    @property
    def total(self) -> int:
        return sum(self.waiting.values())


def pending(store: Store) -> Pending:
    """What the outbox holds (works offline)."""
    with store.read() as session:
        counts = Counter({kind: n for kind, n in session.exec(
            select(Outbox.kind, func.count()).where(Outbox.state == WAITING)
            .group_by(col(Outbox.kind)))})
        rows = session.exec(select(Outbox).where(Outbox.state == CONFLICT)
                            .order_by(col(Outbox.id))).all()
        items: dict[tuple[str, str, str | None], Conflict] = {}
        for row in rows:
            if row.kind == "label":
                event = session.get(LabelEvent, int(row.key))
                prompt = session.get(Prompt, event.prompt_id) if event is not None else None
                if event is None or prompt is None:
                    continue
                key = ("label", prompt.name, event.label)
            else:
                key = (row.kind, row.key, None)
            items[key] = Conflict(*key, row.detail)
    return Pending({kind: counts.get(kind, 0) for kind in KINDS}, [r.detail for r in rows],
                   tuple(items.values()))
