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

import platformdirs
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from workbench.errors import WorkbenchError

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


def default_database_url() -> str:
    """A SQLite file in the data dir."""
    return f"sqlite:///{data_dir() / 'workbench.db'}"


def default_user_name() -> str:
    """The login name, or ``unknown`` where the platform cannot tell."""
    try:
        return getpass.getuser()
    except Exception:  # getpass raises OSError or KeyError without a passwd entry
        return "unknown"


class DatabaseSettings(BaseModel):
    """Where prompts, versions, labels and datasets are stored."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(default_factory=default_database_url)
    """SQLAlchemy URL of the store: ``sqlite:///PATH`` or ``postgresql+psycopg://...``."""

    busy_timeout_s: float = Field(default=10.0, gt=0)
    """How long a write waits for another process's write to finish before failing."""


class UserSettings(BaseModel):
    """Who is working: the name recorded as author, label mover, reviewer and approver."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default_factory=default_user_name, min_length=1)
    """Recorded on every version, label move, review and approval."""


class Settings(BaseSettings):
    """All settings of the workbench."""

    model_config = SettingsConfigDict(
        env_prefix="WORKBENCH_", env_nested_delimiter="__", extra="forbid"
    )

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    """The local store (or any SQLAlchemy URL)."""

    user: UserSettings = Field(default_factory=UserSettings)
    """The person using this machine."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Precedence: explicit arguments, then the environment, then the file.
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, config_path()))


def load_settings(**overrides: Any) -> Settings:
    """Read the settings, turning a broken file or variable into a clear error.

    Raises:
        WorkbenchError: the config file is not valid TOML or holds invalid values.
    """
    path = config_path()
    try:
        return Settings(**overrides)
    except tomllib.TOMLDecodeError as exc:
        raise WorkbenchError(f"config file {path} is not valid TOML: {exc}") from None
    except PydanticValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise WorkbenchError(
            f"invalid settings (config file {path} or WORKBENCH_* variables): {problems}"
        ) from None


_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^@\s]*)@")


def redact_url(url: str) -> str:
    """Hide the password of a database URL: ``postgresql://u:***@host/db``."""
    return _URL_PASSWORD.sub(lambda m: f"{m['head']}***@", url)


def to_toml(data: dict[str, Any]) -> str:
    """Settings as TOML text (tables of scalars, which is all the settings hold)."""
    import json

    lines: list[str] = []
    for section, values in data.items():
        if isinstance(values, dict):
            lines.append(f"[{section}]")
            # JSON string and number syntax is valid TOML for these scalars.
            lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
            lines.append("")
        else:
            lines.insert(0, f"{section} = {json.dumps(values)}")
    return "\n".join(lines).rstrip() + "\n"
