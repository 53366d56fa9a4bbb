"""Checking a Chroma folder and copying it without writing to it; calls under a time limit.

chromadb cannot open a persistent folder read-only: ``PersistentClient`` opens
``chroma.sqlite3`` for writing, applies migrations and rewrites HNSW segment files even
when only reading (with chromadb 1.5 a list and a query changed the SQLite file and a
segment's ``length.bin``). SQLite's ``mode=ro`` and ``immutable=1`` are out of reach,
because chromadb's Rust bindings open the file themselves. So inspection works on a
private copy (:func:`snapshot`):

1. The folder is checked without opening anything for writing (:func:`store_file`).
2. A read-only SQLite connection (``mode=ro``) takes SQLite's shared lock on the original,
   waiting at most ``lock_wait_s`` for a writer in another process (then
   :class:`IndexLockedError`), so no commit lands halfway through the copy. A journal
   left by a writer that died is refused, not rolled back.
3. The folder is copied to a temp folder under that lock (without the rollback journal).
4. The copy's schema is checked (:func:`check_schema`: a store from a newer Chroma is
   refused), then chromadb opens the copy; whatever it writes lands in the copy.

A database in WAL mode is copied with its ``-wal`` file and without the lock, since a
read-only connection would write to its ``-shm`` file.
"""

from __future__ import annotations

import functools
import os
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from queue import SimpleQueue
from typing import Any, TypeVar

from workbench.errors import NotFoundError, ValidationError, WorkbenchError
from workbench.rag.errors import (
    IndexLockedError,
    IndexTimeoutError,
    IndexUnavailableError,
    RagError,
)

T = TypeVar("T")

DB_FILE = "chroma.sqlite3"
DEFAULT_LOCK_WAIT_S = 5.0
_TABLES = {"migrations", "collections", "segments", "embeddings"}
_RESERVED_BYTE = 0x40000001  # SQLite's lock bytes start at PENDING_BYTE, 1 GiB into the file


class Worker:
    """Runs calls on one daemon thread and waits for each at most a given time."""

    def __init__(self, name: str) -> None:
        self._queue: SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = SimpleQueue()
        self.stuck: str | None = None
        self.stopped = False
        threading.Thread(target=self._loop, name=name, daemon=True).start()

    def _loop(self) -> None:
        while (item := self._queue.get()) is not None:
            future, fn = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except BaseException as exc:  # handed to the waiting caller
                    future.set_exception(exc)

    def call(self, fn: Callable[[], T], timeout_s: float, what: str) -> T:
        """``fn()``'s result, or its exception; :class:`IndexTimeoutError` after ``timeout_s``."""
        if self.stopped:
            raise RagError("the index is closed")
        if self.stuck is not None:
            raise IndexTimeoutError(f"the index stopped answering earlier ({self.stuck})")
        future: Future[T] = Future()
        self._queue.put((future, fn))
        try:
            return future.result(timeout_s)
        except FutureTimeout:
            self.stuck = what
            raise IndexTimeoutError(f"{what} took longer than {timeout_s:g} s; gave up") from None

    def stop(self) -> None:
        """Let the thread end once the calls queued before are done."""
        if not self.stopped:
            self.stopped = True
            self._queue.put(None)


def chroma_settings() -> Any:
    from chromadb.config import Settings

    return Settings(anonymized_telemetry=False)


def store_file(path: Path) -> Path:
    """``chroma.sqlite3`` of folder ``path``, after checks that open nothing for writing."""
    if not path.exists():
        raise IndexUnavailableError(f"{path} does not exist")
    if not path.is_dir():
        raise IndexUnavailableError(f"{path} is not a folder: a Chroma index is a folder")
    db = path / DB_FILE
    if not db.is_file():
        if any(path.glob("chroma-*.parquet")):
            raise IndexUnavailableError(
                f"{path} is a store of Chroma < 0.4 (DuckDB and Parquet), which chromadb "
                "1.x cannot read: convert it with the chroma-migrate tool"
            )
        raise IndexUnavailableError(f"{path} is not a Chroma store: it has no {DB_FILE}")
    with db.open("rb") as fh:
        header = fh.read(100)
    if not header.startswith(b"SQLite format 3\x00"):
        raise IndexUnavailableError(f"{db} is corrupt: not a SQLite database")
    return db


def _wal(db: Path) -> bool:
    with db.open("rb") as fh:
        header = fh.read(20)
    return len(header) == 20 and header[18] == 2


def _writer_holds_lock(db: Path) -> bool:
    """Whether another process holds SQLite's RESERVED lock (is writing) on ``db``."""
    if not hasattr(os, "lockf"):
        return False
    fd = os.open(db, os.O_RDONLY)
    try:
        os.lseek(fd, _RESERVED_BYTE, os.SEEK_SET)
        os.lockf(fd, os.F_TEST, 1)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def _check_journal(db: Path) -> None:
    journal = db.with_name(db.name + "-journal")
    try:
        with journal.open("rb") as fh:
            head = fh.read(28)
    except FileNotFoundError:
        return
    if head.strip(b"\x00") and not _writer_holds_lock(db):
        raise IndexUnavailableError(
            f"{db.parent} holds an unfinished write ({journal.name}) from a process that "
            "stopped: open it once with chromadb to roll the write back, then inspect it"
        )


def _sqlite_failure(exc: sqlite3.Error, label: str) -> IndexUnavailableError:
    name = getattr(exc, "sqlite_errorname", "")
    if name in ("SQLITE_BUSY", "SQLITE_LOCKED") or "locked" in str(exc):
        return IndexLockedError(
            f"{label} is locked by another process that is writing to it; try again when it is done"
        )
    return IndexUnavailableError(f"{label} is corrupt or unreadable: {exc}")


def _connect_ro(db: Path, timeout_s: float) -> sqlite3.Connection:
    return sqlite3.connect(
        f"{db.as_uri()}?mode=ro",
        uri=True,
        timeout=timeout_s,
        isolation_level=None,
        check_same_thread=False,
    )


def snapshot(folder: Path, db: Path, lock_wait_s: float) -> Path:
    """Copy ``folder`` to a new temp folder under SQLite's shared lock; the copy's path."""
    wal = _wal(db)
    if not wal:
        _check_journal(db)
    root = Path(tempfile.mkdtemp(prefix="workbench-rag-"))
    copy = root / "index"
    skip = shutil.ignore_patterns(f"{DB_FILE}-journal", f"{DB_FILE}-shm")
    try:
        if wal:
            shutil.copytree(folder, copy, ignore=skip)
            return copy
        conn = _connect_ro(db, lock_wait_s)
        try:
            conn.execute("BEGIN")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the shared lock
            shutil.copytree(folder, copy, ignore=skip)
        except sqlite3.Error as exc:
            raise _sqlite_failure(exc, str(folder)) from None
        finally:
            conn.close()
    except OSError as exc:
        shutil.rmtree(root, ignore_errors=True)
        raise IndexUnavailableError(
            f"cannot copy {folder} to a private snapshot in {root.parent}: {exc}"
        ) from None
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return copy


@functools.cache
def _known_migrations() -> dict[str, int]:
    """The newest schema migration per part that the installed chromadb applies."""
    import chromadb

    with tempfile.TemporaryDirectory(prefix="workbench-rag-ref-") as tmp:
        client = chromadb.PersistentClient(tmp, settings=chroma_settings())
        try:
            return _migrations(Path(tmp) / DB_FILE, "a fresh store")
        finally:
            client.close()  # type: ignore[attr-defined]  # Client has it, ClientAPI not


def _migrations(db: Path, label: str) -> dict[str, int]:
    try:
        conn = _connect_ro(db, DEFAULT_LOCK_WAIT_S)
        try:
            rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            missing = _TABLES - {r[0] for r in rows}
            if missing:
                raise IndexUnavailableError(
                    f"{label} is not a Chroma store: its {DB_FILE} has no table "
                    + ", ".join(sorted(missing))
                )
            found = conn.execute("SELECT dir, MAX(version) FROM migrations GROUP BY dir")
            return {str(d): int(v) for d, v in found}
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise _sqlite_failure(exc, label) from None


def check_schema(db: Path, label: str) -> None:
    import chromadb

    have, known = _migrations(db, label), _known_migrations()
    newer = {d: v for d, v in sorted(have.items()) if v > known.get(d, 0)}
    if newer:
        parts = ", ".join(f"{d} v{v} (knows v{known.get(d, 0)})" for d, v in newer.items())
        raise IndexUnavailableError(
            f"{label} was written by a newer Chroma than the installed chromadb "
            f"{chromadb.__version__}: {parts}; upgrade chromadb to read it"
        )


def chroma_failure(exc: BaseException, label: str) -> WorkbenchError:
    """A chromadb exception as an error for people."""
    from chromadb import errors

    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, errors.NotFoundError):
        return NotFoundError(f"{label}: {text}")
    if "Inconsistent hash" in text or isinstance(exc, errors.VersionMismatchError):
        return IndexUnavailableError(
            f"{label} was written by an incompatible Chroma version ({text})"
        )
    if "malformed" in text or "not a database" in text:
        return IndexUnavailableError(f"{label} is corrupt: {text}")
    if "locked" in text:
        return IndexLockedError(f"{label} is locked by another process ({text})")
    if isinstance(exc, OSError):
        return IndexUnavailableError(f"{label}: {exc.strerror or text}")
    if "Could not connect" in text:
        return IndexUnavailableError(f"no Chroma server answers at {label} ({text})")
    if isinstance(exc, errors.InvalidArgumentError | ValueError | TypeError):
        return ValidationError(f"{label}: {text}")
    return RagError(f"{label}: chromadb failed: {type(exc).__name__}: {text}")
