"""The client API for applications: fetch a prompt's approved (or labelled) version from
the team's registry, render it, and keep working when the registry cannot be reached.

    from workbench.registry import get_prompt

    prompt = get_prompt("support-answer", label="production")
    request = prompt.render(question="Where is my parcel?")
    # request["messages"]: the chat messages; request["params"]: temperature, max_tokens...

The registry is ``WORKBENCH_REGISTRY__URL`` (or ``[registry] url`` in the config file, or the
``url`` argument): any Workbench store, normally the team's PostgreSQL. Importing this module
loads neither Textual, litellm nor llama.cpp; the database driver loads at the first fetch.

Caching: each fetched prompt is kept in memory and on disk (``$XDG_CACHE_HOME/workbench/
registry``), so a restarted application still has it. For ``cache_ttl_s`` seconds (default
60) it is served from there; after that the registry is asked again. When the registry
cannot be reached, the cached copy is served (and a warning logged on the
``workbench.registry`` logger); with no cached copy, :class:`RegistryUnavailableError`. A
label or version the registry no longer has is an error, and its cached copy is dropped:
a removed label is never served from the cache after a refresh.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from workbench.errors import NotFoundError, WorkbenchError

log = logging.getLogger("workbench.registry")

_FORMAT = 1


class RegistryUnavailableError(WorkbenchError):
    """The registry cannot be reached and there is no cached copy to serve."""


@dataclass(frozen=True)
class RegistryPrompt:
    """One version of a prompt, as fetched (or cached)."""

    name: str
    version: int
    version_id: str
    messages: tuple[dict[str, str], ...]
    params: dict[str, Any]
    variables: dict[str, Any]
    label: str | None = None
    fetched_at: float = 0.0
    """When the registry gave it (``time.time()``)."""
    from_cache: bool = field(default=False, compare=False)
    """Served from the cache because the registry could not be reached."""

    def render(self, **values: Any) -> dict[str, Any]:
        """The chat messages with ``values`` filled in, and the parameters.

        Raises:
            TemplateError: a variable without a value, or a broken template.
        """
        from workbench import templates
        from workbench.domain import Message

        messages = [Message(role=m["role"], content=m["content"]) for m in self.messages]
        return {"messages": templates.render_messages(messages, values, self.variables),
                "params": dict(self.params)}

    def as_data(self) -> dict[str, Any]:
        return {"format": _FORMAT, "name": self.name, "version": self.version,
                "version_id": self.version_id, "messages": list(self.messages),
                "params": self.params, "variables": self.variables, "label": self.label,
                "fetched_at": self.fetched_at}


class Client:
    """A registry and its cache (``get_prompt`` uses one per URL)."""

    def __init__(self, url: str, *, ttl_s: float = 60.0, cache_folder: Path | None = None,
                 timeout_s: float = 5.0):
        from workbench.config import cache_dir, redact_url

        self.url = url
        self.shown_url = redact_url(url)
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s
        key = hashlib.sha256(url.encode()).hexdigest()[:16]
        self.folder = (cache_folder or cache_dir() / "registry") / key
        self._memory: dict[tuple[str, str], RegistryPrompt] = {}
        self._engine: Any = None
        self._down_until = 0.0
        """After a failed fetch: until when cached copies are served without asking again
        (a registry that is down would otherwise cost a connection attempt per call)."""

    def get(self, name: str, *, label: str | None = None, version: int | None = None) -> RegistryPrompt:
        """The version ``label`` (default ``approved``) or number ``version`` points to."""
        if label is not None and version is not None:
            raise WorkbenchError("give a label or a version, not both")
        wanted = f"@{version}" if version is not None else f":{label or 'approved'}"
        key = (name, wanted)
        now = time.time()
        cached = self._memory.get(key)
        if cached is None:
            cached = self._read(key)
        if cached is not None and now - cached.fetched_at < self.ttl_s:
            self._memory[key] = cached
            return cached
        if cached is not None and now < self._down_until:
            return replace(cached, from_cache=True)
        try:
            fresh = self._fetch(name, label=None if version is not None else (label or "approved"),
                                version=version)
        except NotFoundError:
            self._forget(key)  # removed from the registry: never served again
            raise
        except RegistryUnavailableError as exc:
            self._down_until = time.time() + min(max(self.ttl_s, 1.0), 30.0)
            if cached is None:
                raise RegistryUnavailableError(
                    f"{exc}; and no cached copy of {name}{wanted} to serve") from None
            log.warning("%s; serving the cached copy of %s%s (version %d, fetched %s)", exc, name,
                        wanted, cached.version,
                        time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(cached.fetched_at)))
            return replace(cached, from_cache=True)
        self._down_until = 0.0
        self._write(key, fresh)
        self._memory[key] = fresh
        return fresh

    # --- the registry -----------------------------------------------------------------------

    def _connect(self) -> Any:
        if self._engine is None:
            from sqlalchemy import create_engine

            args = {"connect_timeout": max(1, int(self.timeout_s))} if self.url.startswith(
                "postgresql") else {"timeout": self.timeout_s}
            self._engine = create_engine(self.url, connect_args=args, pool_pre_ping=True)
        return self._engine

    def _fetch(self, name: str, *, label: str | None, version: int | None) -> RegistryPrompt:
        from sqlalchemy import text
        from sqlalchemy.exc import SQLAlchemyError

        from workbench.config import db_failure

        if version is not None:
            sql = ("SELECT v.id, v.number, v.messages, v.params, v.variables FROM prompt p "
                   "JOIN prompt_version v ON v.prompt_id = p.id "
                   "WHERE p.name = :name AND v.number = :number")
            args: dict[str, Any] = {"name": name, "number": version}
        else:
            sql = ("SELECT v.id, v.number, v.messages, v.params, v.variables FROM prompt p "
                   "JOIN label l ON l.prompt_id = p.id JOIN prompt_version v ON v.id = l.version_id "
                   "WHERE p.name = :name AND l.name = :label")
            args = {"name": name, "label": label}
        try:
            with self._connect().connect() as connection:
                row = connection.execute(text(sql), args).first()
        except SQLAlchemyError as exc:
            reason = db_failure(exc, self.url)
            raise RegistryUnavailableError(
                f"the registry {self.shown_url} cannot be reached ({reason})") from None
        if row is None:
            what = f"version {version}" if version is not None else f"label {label!r}"
            raise NotFoundError(f"the registry {self.shown_url} has no {what} of prompt {name!r}")

        def plain(value: Any) -> Any:
            return json.loads(value) if isinstance(value, str) else value

        return RegistryPrompt(name, int(row[1]), row[0], tuple(plain(row[2])),
                              plain(row[3]) or {}, plain(row[4]) or {}, label, time.time())

    # --- the cache ----------------------------------------------------------------------------

    def _path(self, key: tuple[str, str]) -> Path:
        digest = hashlib.sha256("\x00".join(key).encode()).hexdigest()[:32]
        return self.folder / f"{digest}.json"

    def _read(self, key: tuple[str, str]) -> RegistryPrompt | None:
        try:
            data = json.loads(self._path(key).read_text(encoding="utf-8"))
            if data.get("format") != _FORMAT or data.get("name") != key[0]:
                return None
            return RegistryPrompt(data["name"], data["version"], data["version_id"],
                                  tuple(data["messages"]), data["params"], data["variables"],
                                  data.get("label"), float(data["fetched_at"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None  # no copy, or an unreadable one: as good as none

    def _write(self, key: tuple[str, str], prompt: RegistryPrompt) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".prompt-", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump(prompt.as_data(), handle, ensure_ascii=False)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:  # a cache we cannot write costs a fetch next time, nothing more
            log.warning("cannot write the registry cache %s: %s", path.parent, exc)

    def _forget(self, key: tuple[str, str]) -> None:
        self._memory.pop(key, None)
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError:
            pass


_clients: dict[tuple[str, float], Client] = {}
_clients_lock = threading.Lock()


def get_prompt(name: str, *, label: str | None = None, version: int | None = None,
               url: str | None = None) -> RegistryPrompt:
    """The version of ``name`` that ``label`` (default ``approved``) or ``version`` names,
    from the registry (``url``, else ``WORKBENCH_REGISTRY__URL`` or the config file).

    Raises:
        NotFoundError: the registry has no such prompt, label or version.
        RegistryUnavailableError: the registry cannot be reached and nothing is cached.
        WorkbenchError: no registry is configured.
    """
    from workbench.config import load_settings

    settings = load_settings()
    chosen = url or settings.registry.url
    if not chosen:
        raise WorkbenchError("no registry configured: set WORKBENCH_REGISTRY__URL or [registry] url "
                             "in the config file")
    key = (chosen, settings.registry.cache_ttl_s)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = Client(chosen, ttl_s=settings.registry.cache_ttl_s)
    return client.get(name, label=label, version=version)
