"""Opening the store: engines, SQLite pragmas, write transactions, migrations.

SQLite runs with WAL, foreign keys and a busy timeout; a write transaction starts
with ``BEGIN IMMEDIATE`` so two writers queue up instead of failing half-way.
PostgreSQL write transactions lock the rows they build on (see ``repo``).
"""

from __future__ import annotations


from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError
from sqlmodel import Session

from workbench.config import redact_url, scrub_secrets
from workbench.errors import StoreConflictError, StoreError
from workbench.storage.migrations import HEAD_REVISION

_WRITE = "workbench_write"
T = TypeVar("T")


class Store:
    """An open store. Use :meth:`read` and :meth:`write` for sessions.

    Args:
        url: SQLAlchemy URL (``sqlite:///PATH``, ``postgresql+psycopg://...``).
        busy_timeout_s: how long a SQLite write waits for another writer.
    """

    def __init__(self, url: str, *, busy_timeout_s: float = 10.0):
        self.url = url
        self.display_url = redact_url(url)
        self.engine = _make_engine(url, busy_timeout_s)
        self.dialect = self.engine.dialect.name
        self._writer = self.engine.execution_options(**{_WRITE: True})

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for queries; nothing it does is committed."""
        with self._errors(), Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on any error."""
        with self._errors(), Session(self._writer, expire_on_commit=False) as session:
            with session.begin():
                yield session

    def close(self) -> None:
        """Release every connection."""
        self.engine.dispose()

    @property
    def writer(self) -> Engine:
        """The engine whose transactions begin as writers (for Core statements)."""
        return self._writer

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Turn driver errors into :class:`StoreError` with a clear, secret-free message."""
        with self._errors():
            yield

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except IntegrityError as exc:
            raise StoreConflictError(self._describe(exc)) from None
        except DBAPIError as exc:  # operational, data and programming errors alike
            raise StoreError(self._describe(exc)) from None

    def _describe(self, exc: DBAPIError) -> str:
        detail = scrub_secrets(str(exc.orig) if exc.orig is not None else str(exc), self.url)
        if self.dialect == "sqlite":
            lowered = detail.lower()
            if "locked" in lowered or "busy" in lowered:
                return (
                    f"the database {self.display_url} is locked by another process "
                    "(a write did not finish in time); try again"
                )
            if "readonly" in lowered or "unable to open" in lowered or "disk" in lowered:
                return f"cannot write the database {self.display_url}: {detail}"
        return f"database error ({self.display_url}): {detail.strip()}"


def _make_engine(url: str, busy_timeout_s: float) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(f"invalid database URL {redact_url(url)!r}") from None
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            try:
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the folder of {database}: {exc}") from None
        engine = create_engine(
            parsed, connect_args={"timeout": busy_timeout_s, "check_same_thread": False}
        )
        _sqlite_setup(engine, busy_timeout_s)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")  # psycopg 3, not psycopg2
    # A registry on a host that drops packets must not hang a push forever. Sessions in
    # UTC: SQLite hands back naive UTC times, which PostgreSQL reads in the session's time
    # zone; a server set to another zone would shift every one of them.
    args = {"connect_timeout": 10, "options": "-c TimeZone=UTC"} \
        if parsed.get_backend_name() == "postgresql" else {}
    try:
        return create_engine(parsed, pool_pre_ping=True, connect_args=args)
    except ModuleNotFoundError as exc:
        raise StoreError(
            f"no driver for {redact_url(url)}: install the 'postgres' extra ({exc.name})"
        ) from None
    except ArgumentError:
        raise StoreError(
            f"unsupported database URL {redact_url(url)!r}: use sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST/DB"
        ) from None


def _sqlite_setup(engine: Engine, busy_timeout_s: float) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        # Writers take the write lock at BEGIN: a read-then-write transaction can then
        # never fail with SQLITE_BUSY half-way, and numbering stays gapless.
        write = connection.get_execution_options().get(_WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


IN_LIST = 900
"""Values per ``IN (...)`` list: under SQLite's 999 bound parameters."""


def chunks(items: Sequence[T], size: int = IN_LIST) -> Iterator[Sequence[T]]:
    """``items`` in slices of ``size``, for ``IN (...)`` lists a database accepts."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def open_store(url: str, *, busy_timeout_s: float = 10.0, migrate: bool = True) -> Store:
    """Open (and create or upgrade) the store at ``url``.

    Raises:
        StoreError: the database cannot be opened, created or migrated.
    """
    store = Store(url, busy_timeout_s=busy_timeout_s)
    return up_to_date(store) if migrate else store


def up_to_date(store: Store) -> Store:
    """``store``, created or upgraded to this version's schema (closed if that fails).

    Raises:
        StoreError: the database cannot be created or migrated.
    """
    try:
        if current_revision(store) != HEAD_REVISION:
            upgrade(store)
    except StoreError:
        store.close()
        raise
    except DBAPIError as exc:
        store.close()
        raise StoreError(store._describe(exc)) from None
    return store


def current_revision(store: Store) -> str | None:
    """The Alembic revision the database is at (None for a new database)."""
    with store._errors(), store.engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        row = connection.execute(text("SELECT version_num FROM alembic_version")).first()
        return row[0] if row else None


def upgrade(store: Store, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` (Alembic is imported only when needed)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with store._writer.connect() as connection:
        if store.dialect == "postgresql":
            # Two processes opening a new registry at once must not both create tables.
            connection.execute(text("SELECT pg_advisory_xact_lock(7270311)"))
        config.attributes["connection"] = connection
        try:
            command.upgrade(config, revision)
        except DBAPIError as exc:
            raise StoreError(store._describe(exc)) from None
        connection.commit()
