"""Settings: one TOML file under the XDG config dir, overridable from the environment.

Every path the workbench uses is named here. Environment variables take the prefix
``WORKBENCH_`` and nest with ``__`` (``WORKBENCH_DATABASE__URL``); the config file's
own path can be moved with ``WORKBENCH_CONFIG_FILE``.
"""

from __future__ import annotations

import getpass
import os
import re
import tomllib
from pathlib import Path
from typing import Any

from dataclasses import dataclass, fields

import platformdirs

from workbench.errors import WorkbenchError
from workbench.typedconfig import Invalid, build, dump, setting

APP_NAME = "workbench"
CONFIG_FILE_ENV = "WORKBENCH_CONFIG_FILE"


def config_dir() -> Path:
    """The folder of the config file (``$XDG_CONFIG_HOME/workbench`` on Linux)."""
    return platformdirs.user_config_path(APP_NAME)


def data_dir() -> Path:
    """The folder of the local store and other data (``$XDG_DATA_HOME/workbench``)."""
    return platformdirs.user_data_path(APP_NAME)


def config_path() -> Path:
    """The config file: ``$WORKBENCH_CONFIG_FILE`` or ``config.toml`` in :func:`config_dir`."""
    override = os.environ.get(CONFIG_FILE_ENV)
    return Path(override).expanduser() if override else config_dir() / "config.toml"


def cache_dir() -> Path:
    """The folder of caches (``$XDG_CACHE_HOME/workbench``)."""
    return platformdirs.user_cache_path(APP_NAME)


def default_database_url() -> str:
    """A SQLite file in the data dir."""
    return f"sqlite:///{data_dir() / 'workbench.db'}"


def default_user_name() -> str:
    """The login name, or ``unknown`` where the platform cannot tell."""
    try:
        return getpass.getuser()
    except Exception:  # getpass raises OSError or KeyError without a passwd entry
        return "unknown"


@dataclass
class DatabaseSettings:
    """Where prompts, versions, labels and datasets are stored."""

    url: str = setting("str", factory=default_database_url)
    """SQLAlchemy URL of the store: ``sqlite:///PATH`` or ``postgresql+psycopg://...``."""

    busy_timeout_s: float = setting("float", 10.0, gt=0, le=3600)
    """How long a write waits for another process's write to finish before failing."""


@dataclass
class UserSettings:
    """Who is working: the name recorded as author, label mover, reviewer and approver."""

    name: str = setting("str", factory=default_user_name, min_length=1, max_length=256)
    """Recorded on every version, label move, review and approval."""


@dataclass
class RegistrySettings:
    """The team's shared registry, and how applications read approved prompts from it."""

    url: str | None = setting("str", None, optional=True)
    """SQLAlchemy URL of the registry (``postgresql+psycopg://user@host/db``); its password
    comes from the environment (``PGPASSWORD``), never from this file."""

    cache_ttl_s: float = setting("float", 60.0, ge=0)
    """How long ``workbench.registry.get_prompt`` serves a fetched prompt before asking the
    registry again (a registry that cannot be reached: the cached copy goes on serving)."""


@dataclass
class ModelConfig:
    """A named model: which backend runs it, and how."""

    model: str = setting("str")
    """A GGUF path for llama_cpp; the provider's model id otherwise (``openai/gpt-4o-mini``)."""

    backend: str = setting("str", "litellm")
    """``llama_cpp`` (a GGUF file), ``openai`` (any OpenAI-compatible server) or ``litellm``."""

    api_base: str | None = setting("str", None, optional=True)
    """Base URL of an OpenAI-compatible server (``http://127.0.0.1:8080/v1``)."""

    provider: str | None = setting("str", None, optional=True)
    """Whose key to use (default: the prefix of ``model``, e.g. ``anthropic``)."""

    options: dict[str, Any] = setting("dict", factory=dict)
    """Backend options: ``n_ctx``, ``n_threads``, ``n_gpu_layers`` for llama_cpp; timeouts
    (``connect_timeout_s``, ``first_token_timeout_s``, ``total_timeout_s``) and
    ``max_retries`` for hosted backends."""

    params: dict[str, Any] = setting("dict", factory=dict)
    """Default sampling parameters (``temperature``, ``max_tokens``...)."""


@dataclass
class LocalSettings:
    """Local models (llama.cpp)."""

    price_per_hour_usd: float | None = setting("float", None, optional=True, ge=0)
    """What an hour of this machine costs; local runs are costed by wall time from it."""

    n_threads: int | None = setting("int", None, optional=True, ge=1)
    """CPU threads for local models (default: every core)."""

    n_gpu_layers: int = setting("int", 0)
    """Layers to offload to the GPU by default (-1: all); needs a CUDA or Metal build."""


@dataclass
class Settings:
    """All settings of the workbench (read them with :func:`load_settings`)."""

    database: DatabaseSettings = setting(DatabaseSettings, factory=DatabaseSettings)
    """The local store (or any SQLAlchemy URL)."""

    user: UserSettings = setting(UserSettings, factory=UserSettings)
    """The person using this machine."""

    local: LocalSettings = setting(LocalSettings, factory=LocalSettings)
    """Defaults for local models."""

    registry: RegistrySettings = setting(RegistrySettings, factory=RegistrySettings)
    """The shared registry (and the client API's cache)."""

    models: dict[str, ModelConfig] = setting(("map", ModelConfig), factory=dict)
    """Named models (``[models.NAME]`` tables)."""

    def model_dump(self) -> dict[str, Any]:
        """The settings as plain data (what ``workbench config show`` prints)."""
        return dump(self)


ENV_PREFIX = "WORKBENCH_"


def _environment() -> dict[str, Any]:
    """The ``WORKBENCH_*`` variables as nested values: ``WORKBENCH_DATABASE__URL`` is
    ``{"database": {"url": ...}}``. Names are case-insensitive; a setting that holds a
    table (a whole section such as ``WORKBENCH_DATABASE``, a model, its ``options`` or
    ``params``) is JSON, any other value is read as written.
    Variables that name no setting (``WORKBENCH_CONFIG_FILE``) are not settings.

    Raises:
        WorkbenchError: a value meant as JSON is not JSON.
    """
    import json

    found: dict[str, Any] = {}
    for name, text in sorted(os.environ.items()):
        if not name.upper().startswith(ENV_PREFIX):
            continue
        path = name[len(ENV_PREFIX):].lower().split("__")
        if path[0] not in {spec.name for spec in fields(Settings)} or not all(path):
            continue
        value: Any = text
        if _structured(path):
            try:
                value = json.loads(text)
            except ValueError as exc:
                raise WorkbenchError(
                    f"invalid WORKBENCH_* environment variable: {name} is not JSON ({exc})"
                ) from None
        node = found
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise WorkbenchError(
                    f"invalid WORKBENCH_* environment variable: {name} sets a part of "
                    f"{part!r}, which another variable sets whole"
                )
            node = child
        node[path[-1]] = value
    return found


def _structured(path: list[str]) -> bool:
    """Whether the setting a variable names holds a table (read as JSON) rather than text
    or a number (read as written): ``WORKBENCH_LOCAL``, ``..._OPTIONS``, ``..._MODELS__X``."""
    from dataclasses import is_dataclass

    kind: Any = Settings
    for part in path:
        if isinstance(kind, tuple):  # ("map", SECTION): the part names an entry
            kind = kind[1]
            continue
        if not is_dataclass(kind):
            return False
        spec = next((f for f in fields(kind) if f.name == part), None)
        if spec is None:
            return False  # unknown: left as text, and the check names it
        kind = spec.metadata.get("kind")
    return is_dataclass(kind) or isinstance(kind, tuple) or kind == "dict"


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``top`` laid over it, tables merged key by key."""
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_settings(**overrides: Any) -> Settings:
    """Read the settings: the config file, then ``WORKBENCH_*`` variables over it, then
    ``overrides`` over both; a broken file or variable is a clear error.

    Raises:
        WorkbenchError: the config file is not valid TOML or holds invalid values, or a
            variable is.
    """
    path = config_path()
    try:
        with path.open("rb") as handle:
            from_file = tomllib.load(handle)
    except FileNotFoundError:
        from_file = {}
    except tomllib.TOMLDecodeError as exc:
        raise WorkbenchError(f"config file {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise WorkbenchError(f"config file {path} is not UTF-8 text") from None
    except OSError as exc:
        raise WorkbenchError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    try:
        return build(Settings, _merge(_merge(from_file, _environment()), overrides))
    except Invalid as exc:
        raise WorkbenchError(
            f"invalid settings (config file {path} or WORKBENCH_* variables): {exc}"
        ) from None


_SECRET_PARAMS = ("password", "pass", "passwd", "secret", "token", "api_key", "apikey", "key")


def _url_secrets(url: str) -> tuple[str, list[str]]:
    """The URL with its secrets replaced by ``***``, and the secrets found."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url, []
    secrets: list[str] = []
    rest, qsep, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    userinfo, at, host = netloc.rpartition("@")  # a password may itself hold '@'
    if at:
        user, colon, password = userinfo.partition(":")
        if colon and password:
            secrets.append(password)
            netloc = f"{user}:***@{host}"
    if qsep:
        params = []
        for param in query.split("&"):
            name, eq, value = param.partition("=")
            if eq and value and name.lower() in _SECRET_PARAMS:
                secrets.append(value)
                value = "***"
            params.append(f"{name}{eq}{value}")
        query = "&".join(params)
    return f"{scheme}://{netloc}{slash}{path}{qsep}{query}", secrets


def redact_url(url: str) -> str:
    """A URL fit to show: password and secret query parameters replaced by ``***``."""
    return _url_secrets(url)[0]


def scrub_secrets(text: str, url: str) -> str:
    """``text`` (an error message, say) with every secret of ``url`` replaced by ``***``."""
    from urllib.parse import unquote

    for secret in _url_secrets(url)[1]:
        for form in {secret, unquote(secret)}:
            if form:
                text = text.replace(form, "***")
    return text.replace(url, redact_url(url))


def db_failure(exc: BaseException, url: str) -> str:
    """The first line of a database driver's error (SQLAlchemy's ``orig`` where there is
    one), with every secret of ``url`` replaced by ``***``."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return scrub_secrets(text.splitlines()[0] if text else type(exc).__name__, url)


def to_toml(data: dict[str, Any]) -> str:
    """Settings as TOML text. Unset values (None) are shown as comments."""
    import json

    lines: list[str] = []

    def table(prefix: str, values: dict[str, Any]) -> None:
        scalars = {k: v for k, v in values.items() if not isinstance(v, dict)}
        tables = {k: v for k, v in values.items() if isinstance(v, dict)}
        if prefix and (scalars or not tables):
            lines.append(f"[{prefix}]")
        for key, value in scalars.items():
            # JSON string, number, boolean and array syntax is valid TOML for these values.
            text = json.dumps(value) if value is not None else None
            lines.append(f"{key} = {text}" if text is not None else f"# {key} = (unset)")
        if prefix and (scalars or not tables):
            lines.append("")
        for key, value in tables.items():
            name = key if _BARE_KEY.match(key) else json.dumps(key)
            table(f"{prefix}.{name}" if prefix else name, value)

    table("", data)
    return "\n".join(lines).rstrip() + "\n"


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def add_model_section(name: str, model: ModelConfig, path: Path | None = None) -> Path:
    """Append ``[models.NAME]`` to the config file, keeping everything already there.

    The file's text is kept as it is (comments included); the new table goes at its end,
    and the file is replaced in one step, so a failure leaves the old file whole.

    Args:
        name: The model's name.
        model: Its settings; values left at their defaults are not written.
        path: The file (default: :func:`config_path`); created if missing.

    Returns:
        The path written.

    Raises:
        WorkbenchError: the file cannot be read or written, is not valid TOML, already
            has this model, or the section cannot be added to it (a ``models`` inline table).
    """
    path = path or config_path()
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        current = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise WorkbenchError(f"config file {path} is not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkbenchError(f"cannot read config file {path}: {exc}") from None
    models = current.get("models")
    if isinstance(models, dict) and name in models:
        raise WorkbenchError(f"config file {path} already has a model named {name!r}")
    values = {"backend": model.backend, **dump(model, exclude_defaults=True)}
    if text and not text.endswith("\n"):
        text += "\n"
    new_text = text + ("\n" if text.strip() else "") + to_toml({"models": {name: values}})
    try:
        added = tomllib.loads(new_text)["models"][name]
    except (tomllib.TOMLDecodeError, KeyError, TypeError):
        added = None
    if added != values:
        raise WorkbenchError(
            f"cannot add [models.{name}] to {path} (its models are not written as tables, "
            "or a value cannot be written as TOML): add the section by hand"
        )
    _replace_text(path, new_text)
    return path


def _replace_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` in one step (a temp file renamed over it), keeping the
    file's mode, and writing through a symlink rather than over it."""
    import tempfile

    target = path.resolve()
    tmp: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        tmp = Path(name)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        if target.exists():
            os.chmod(tmp, target.stat().st_mode & 0o7777)
        os.replace(tmp, target)
    except OSError as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise WorkbenchError(f"cannot write config file {path}: {exc.strerror or exc}") from None


def set_config_value(section: str, key: str, value: str, path: Path | None = None) -> Path:
    """Set ``[section] key = "value"`` in the config file, keeping everything else as it
    is (comments included); the file is replaced in one step.

    Raises:
        WorkbenchError: the file cannot be read or written, is not valid TOML, or the value
            cannot be set by editing it (the section written inline): edit it by hand.
    """
    import json

    path = path or config_path()
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise WorkbenchError(f"config file {path} is not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkbenchError(f"cannot read config file {path}: {exc}") from None
    line = f"{key} = {json.dumps(value)}"
    lines = text.splitlines()
    header = re.compile(r"^\s*\[([^\[\]]+)\]\s*(#.*)?$")
    start = next((i for i, raw in enumerate(lines)
                  if (m := header.match(raw)) and m.group(1).strip() == section), None)
    if start is None:
        lines += ([""] if lines and lines[-1].strip() else []) + [f"[{section}]", line]
    else:
        end = next((i for i in range(start + 1, len(lines))
                    if re.match(r"^\s*\[", lines[i])), len(lines))
        own = re.compile(rf"^\s*{re.escape(key)}\s*=")
        found = next((i for i in range(start + 1, end) if own.match(lines[i])), None)
        if found is None:
            lines.insert(end if not lines[end - 1].strip() == "" else end - 1, line)
        else:
            lines[found] = line
    new_text = "\n".join(lines) + "\n"
    try:
        written = tomllib.loads(new_text).get(section, {}).get(key)
    except tomllib.TOMLDecodeError:
        written = None
    if written != value:
        raise WorkbenchError(f"cannot set [{section}] {key} in {path} by editing it: set it by hand")
    _replace_text(path, new_text)
    return path
