"""Settings: XDG paths, the TOML file, WORKBENCH_* variables, and what `config` prints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from workbench.cli import cli
from workbench.config import config_path, load_settings, redact_url
from workbench.errors import WorkbenchError


def test_defaults_follow_xdg(isolated_env: Path) -> None:
    settings = load_settings()
    assert config_path() == isolated_env / "config" / "workbench" / "config.toml"
    assert settings.database.url == f"sqlite:///{isolated_env / 'data' / 'workbench' / 'workbench.db'}"
    assert settings.user.name == "tester"  # from WORKBENCH_USER__NAME in conftest


def test_file_then_environment(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text('[database]\nurl = "sqlite:////tmp/from-file.db"\n[user]\nname = "filer"\n')
    monkeypatch.delenv("WORKBENCH_USER__NAME")
    settings = load_settings()
    assert settings.database.url == "sqlite:////tmp/from-file.db"
    assert settings.user.name == "filer"
    monkeypatch.setenv("WORKBENCH_DATABASE__URL", "sqlite:////tmp/from-env.db")
    assert load_settings().database.url == "sqlite:////tmp/from-env.db"


def test_config_file_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "elsewhere.toml"
    other.write_text('[user]\nname = "elsewhere"\n')
    monkeypatch.setenv("WORKBENCH_CONFIG_FILE", str(other))
    monkeypatch.delenv("WORKBENCH_USER__NAME")
    assert config_path() == other
    assert load_settings().user.name == "elsewhere"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[database\nurl = 1", "is not valid TOML"),
        ('[database]\nurl = "x"\nspeed = 3\n', "database.speed"),
        ("[database]\nbusy_timeout_s = -1\n", "database.busy_timeout_s"),
    ],
)
def test_broken_config_is_a_clear_error(text: str, message: str) -> None:
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(WorkbenchError, match=message):
        load_settings()
    result = CliRunner().invoke(cli, ["prompts", "list"])
    assert result.exit_code == 1 and message in result.stderr


def test_config_commands(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["config", "path"]).stdout.strip() == str(config_path())
    monkeypatch.setenv("WORKBENCH_DATABASE__URL", "postgresql://ann:hunter2@db.local/reg")
    shown = runner.invoke(cli, ["config", "show"]).stdout
    assert "[database]" in shown and 'url = "postgresql://ann:***@db.local/reg"' in shown
    assert "hunter2" not in shown
    data = json.loads(runner.invoke(cli, ["config", "show", "--json"]).stdout)
    assert data["database"]["url"] == "postgresql://ann:***@db.local/reg"
    assert data["user"]["name"] == "tester"
    assert data["config_file"] == str(config_path())


def test_redact_url() -> None:
    assert redact_url("postgresql+psycopg://u:p%40ss@h:5432/d") == "postgresql+psycopg://u:***@h:5432/d"
    assert redact_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
    assert redact_url("postgresql://u@h/d") == "postgresql://u@h/d"
