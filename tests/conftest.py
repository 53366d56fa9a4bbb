"""Shared fixtures: isolated XDG folders, no network beyond loopback, a real PostgreSQL."""

from __future__ import annotations

import contextlib
import glob
import ipaddress
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REQUIRE_POSTGRES = os.environ.get("WORKBENCH_REQUIRE_POSTGRES") == "1"


def _loopback_only(event: str, args: tuple) -> None:
    """Fail at once on any connection that would leave the machine."""
    if event != "socket.connect":
        return
    sock, address = args
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or not isinstance(address, tuple):
        return
    try:
        loopback = ipaddress.ip_address(address[0]).is_loopback
    except ValueError:
        loopback = address[0] == "localhost"
    if not loopback:
        raise ConnectionRefusedError(f"tests may not connect to {address[0]}: loopback only")


sys.addaudithook(_loopback_only)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every XDG folder at a temp dir and drop WORKBENCH_* settings of the machine."""
    for key in list(os.environ):
        if key.startswith("WORKBENCH_") and key != "WORKBENCH_REQUIRE_POSTGRES":
            monkeypatch.delenv(key)
    home = tmp_path / "home"
    for var, sub in (
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_CACHE_HOME", "cache"),
        ("XDG_STATE_HOME", "state"),
    ):
        (home / sub).mkdir(parents=True)
        monkeypatch.setenv(var, str(home / sub))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("WORKBENCH_USER__NAME", "tester")
    return home


def _postgres_bindir() -> Path | None:
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """One real PostgreSQL server on 127.0.0.1 for the whole run; yields its base URL."""
    bindir = _postgres_bindir()
    if bindir is None:
        if REQUIRE_POSTGRES:
            pytest.fail("PostgreSQL binaries (initdb, pg_ctl) not found, and they are required")
        pytest.skip("no PostgreSQL binaries on this machine")
    root = Path(tempfile.mkdtemp(prefix="workbench-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        # initdb refuses to run as root: run the server as `postgres` in a folder it owns.
        shutil.chown(root, "postgres", "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", _free_port()
    try:
        subprocess.run(
            [*prefix, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
             "-E", "UTF8", "--no-sync"],
            check=True, capture_output=True, text=True, timeout=120,
        )
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w",
             "-t", "60", "-o", f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off", "start"],
            check=True, capture_output=True, text=True, timeout=120,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        log = (root / "log").read_text() if (root / "log").exists() else ""
        out = getattr(exc, "stderr", "") or ""
        pytest.fail(f"could not start PostgreSQL: {exc}\n{out}\n{log}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True, timeout=60,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A fresh, empty database on the session's server."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    plain = postgres_server.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(f"{plain}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{postgres_server}/{name}"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test against SQLite and against PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(db_url: str):
    """An open, migrated store on each database kind."""
    from workbench.storage.db import open_store

    opened = open_store(db_url)
    yield opened
    opened.close()
