"""The link between this machine's store and the team's registry: connecting (the URL in
the config file, its password in the keyring), and what differs between the two.

Push and pull build on this (see docs/registry-sync.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.config import Settings
    from workbench.storage.db import Store

KEYRING_SERVICE = "workbench-registry"


def split_password(url: str) -> tuple[str, str | None, str]:
    """``url`` without its password, the password, and the keyring account it goes under
    (``user@host:port/database``)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise WorkbenchError(f"not a database URL: {exc}") from None
    account = f"{parsed.username or ''}@{parsed.host or ''}:{parsed.port or ''}/{parsed.database or ''}"
    # (URL.set(password=None) would keep the password: None there means "unchanged".)
    bare = parsed._replace(password=None).render_as_string(hide_password=False)
    return bare, parsed.password, account


@dataclass
class Connected:
    url: str
    """As written to the config file (no password)."""
    password_stored: bool
    note: str = ""


def connect(url: str, *, keyring_timeout_s: float = 3.0) -> Connected:
    """Check that ``url`` is a reachable store (creating or upgrading its schema), then keep
    the URL without its password in the config file and the password in the keyring.

    Raises:
        StoreError: the registry cannot be opened (the password never shows).
        WorkbenchError: the config file cannot be written.
    """
    from workbench.config import set_config_value
    from workbench.keys import KeyringUnavailable, _call
    from workbench.storage.db import open_store

    from sqlalchemy import delete

    from workbench.storage.models import Outbox

    bare, password, account = split_password(url)
    registry = open_store(url)  # reachable, and at the current schema
    try:
        # A registry pushes nowhere: what its own outbox holds (everything, if it was a
        # working store before) would only keep its numbers changeable.
        with registry.errors(), registry.writer.begin() as connection:
            connection.execute(delete(Outbox))
    finally:
        registry.close()
    stored, note = False, ""
    if password:
        try:
            _call(lambda kr: kr.set_password(KEYRING_SERVICE, account, password),
                  keyring_timeout_s, "give the password through PGPASSWORD instead")
            stored = True
        except KeyringUnavailable as exc:
            note = (f"the password is not stored ({exc}): give it through the environment, "
                    "PGPASSWORD, whenever the registry is used")
    set_config_value("registry", "url", bare)
    return Connected(bare, stored, note)


def registry_url(settings: Settings, *, keyring_timeout_s: float = 3.0) -> str:
    """The configured registry URL, with the password from the keyring where the URL and
    the environment (``PGPASSWORD``) have none.

    Raises:
        WorkbenchError: no registry is configured.
    """
    import os

    from workbench.keys import KeyringUnavailable, _call, remember

    url = settings.registry.url
    if not url:
        raise WorkbenchError("no registry: run `workbench registry connect URL` first")
    bare, password, account = split_password(url)
    if password or os.environ.get("PGPASSWORD"):
        return url
    try:
        stored = _call(lambda kr: kr.get_password(KEYRING_SERVICE, account), keyring_timeout_s, "")
    except KeyringUnavailable:
        return url
    if not stored:
        return url
    remember(stored)
    from sqlalchemy.engine import make_url

    return make_url(bare).set(password=stored).render_as_string(hide_password=False)


@dataclass
class Status:
    registry: str
    """The registry's URL as shown (no password)."""
    reachable: bool
    reason: str = ""
    local_only: list[str] = field(default_factory=list)
    """``NAME@N`` of versions here that the registry does not have (to push)."""
    registry_only: list[str] = field(default_factory=list)
    """``NAME@N`` of the registry's versions this store does not have (to pull)."""
    labels_differ: list[str] = field(default_factory=list)
    """``NAME:LABEL here @N, registry @M`` where a label points elsewhere."""


def status(local: Store, url: str) -> Status:
    """What differs between this store and the registry, by version id and label."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    from workbench.config import db_failure, redact_url

    query_versions = text("SELECT p.name, v.number, v.id FROM prompt_version v "
                          "JOIN prompt p ON p.id = v.prompt_id")
    query_labels = text("SELECT p.name, l.name, v.number, v.id FROM label l "
                        "JOIN prompt p ON p.id = l.prompt_id JOIN prompt_version v ON v.id = l.version_id")
    with local.engine.connect() as connection:
        mine = {row[2]: f"{row[0]}@{row[1]}" for row in connection.execute(query_versions)}
        my_labels = {(r[0], r[1]): (r[2], r[3]) for r in connection.execute(query_labels)}
    shown = redact_url(url)
    args = {"connect_timeout": 5} if url.startswith("postgresql") else {}
    engine = create_engine(url, connect_args=args)
    try:
        with engine.connect() as connection:
            theirs = {row[2]: f"{row[0]}@{row[1]}" for row in connection.execute(query_versions)}
            their_labels = {(r[0], r[1]): (r[2], r[3]) for r in connection.execute(query_labels)}
    except SQLAlchemyError as exc:
        reason = db_failure(exc, url)
        return Status(shown, False, reason)
    finally:
        engine.dispose()
    differ = [
        f"{name}:{label} here @{mine_at[0]}, registry @{their_labels[(name, label)][0]}"
        for (name, label), mine_at in sorted(my_labels.items())
        if (name, label) in their_labels and their_labels[(name, label)][1] != mine_at[1]
    ]
    return Status(shown, True, "",
                  sorted(ref for vid, ref in mine.items() if vid not in theirs),
                  sorted(ref for vid, ref in theirs.items() if vid not in mine),
                  differ)


def open_registry(settings: Settings, local: Store) -> Store:
    """The configured registry, opened (and brought to this version's schema).

    Raises:
        WorkbenchError: no registry is configured.
        RegistryUnavailable: it cannot be reached (saying what waits in ``local``).
    """
    from workbench.storage.db import Store, up_to_date
    from workbench.storage.sync import reaching

    registry = Store(registry_url(settings))
    try:  # first whether it answers at all: said as "cannot be reached", with what waits
        with reaching(registry, local), registry.engine.connect():
            pass
    except BaseException:
        registry.close()
        raise
    return up_to_date(registry)


def resolve(local: Store, registry: Store, target: str, label: str | None, *, mine: bool,
            actor: str, dataset: bool = False) -> str:
    """Settle a conflict: ``mine`` moves the label to our version again (or sends our
    dataset again) on top of the registry's, then pushes; otherwise keeps theirs. The
    refused change stays on record as refused (the audit log says so). Returns what was done.

    Raises:
        NotFoundError: no such conflict.
        ConflictError: ours cannot go on top (a protected label, say); the conflict stays.
    """
    from sqlalchemy import String, cast, insert, select, update

    from workbench.domain import Ref
    from workbench.errors import NotFoundError
    from workbench.storage import repo
    from workbench.storage.models import utcnow
    from workbench.storage.outbox import CONFLICT, REFUSED, WAITING
    from workbench.storage.sync import D, E, O, P, V, dataset_base_key, reaching, set_state, stamp
    from workbench.storage.sync_pull import pull
    from workbench.storage.sync_push import push

    what = f"dataset {target}" if dataset else f"{target}:{label}"
    if dataset:
        query = select(O.c.id, O.c.key).where(
            O.c.kind == "dataset", O.c.key == target, O.c.state == CONFLICT)
    else:
        query = (select(O.c.id, E.c.to_version_id).join(E, O.c.key == cast(E.c.id, String))
                 .join(P, P.c.id == E.c.prompt_id)
                 .where(O.c.kind == "label", O.c.state == CONFLICT, P.c.name == target,
                        E.c.label == label).order_by(O.c.id))
    with local.errors(), local.engine.connect() as connection:
        rows = connection.execute(query).all()
    if not rows:
        raise NotFoundError(f"no conflict on {what} (see `workbench registry status`)")
    refuse = update(O).where(O.c.id.in_([r[0] for r in rows])).values(state=REFUSED)
    if not mine:
        with local.errors(), local.writer.begin() as connection:
            connection.execute(refuse)
        pull(local, registry)  # their pointer (or dataset) here; a later pull if this fails
        return f"{what}: kept the registry's"
    pull(local, registry)  # their side here first: ours then goes on top of it
    if dataset:
        with reaching(registry, local), registry.engine.connect() as connection:
            theirs = connection.execute(select(D.c.updated_at).where(D.c.name == target)).scalar()
        with local.errors(), local.writer.begin() as connection:
            connection.execute(refuse)
            if theirs is not None:
                set_state(connection, dataset_base_key(target), stamp(theirs))
            connection.execute(update(D).where(D.c.name == target).values(updated_at=utcnow()))
            connection.execute(insert(O).values(kind="dataset", key=target, state=WAITING,
                                                detail="", created_at=utcnow()))
    else:
        def again(session):  # type: ignore[no-untyped-def]
            session.execute(refuse)
            number = session.execute(select(V.c.number).where(V.c.id == rows[-1][1])).scalar_one()
            repo._set_label_once(session, Ref(name=target, number=number), label or "", actor,
                                 "conflict resolved: kept mine")

        repo._retrying(local, again)  # one transaction: refused only if ours is moved again
    report = push(local, registry)
    if report.conflicts:
        return f"{what}: sent again, and refused again: {report.conflicts[-1]}"
    return f"{what}: yours is in the registry now"
