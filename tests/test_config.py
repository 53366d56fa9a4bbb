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


def test_environment_variables_nest_and_parse(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text('[models.fast]\nmodel = "m"\noptions = { n_ctx = 512 }\n[database]\nbusy_timeout_s = 3\n')
    monkeypatch.setenv("workbench_models__fast__options", '{"n_threads": 2}')  # any case
    monkeypatch.setenv("WORKBENCH_MODELS__SLOW__MODEL", "other")
    monkeypatch.setenv("WORKBENCH_LOCAL", '{"n_gpu_layers": -1}')  # a whole section, as JSON
    monkeypatch.setenv("WORKBENCH_DATABASE__URL", "sqlite:////tmp/x.db")
    monkeypatch.setenv("WORKBENCH_REQUIRE_POSTGRES", "1")  # names no setting: not one
    settings = load_settings()
    assert settings.models["fast"].model == "m"
    assert settings.models["fast"].options == {"n_ctx": 512, "n_threads": 2}  # merged
    assert settings.models["slow"].model == "other"
    assert settings.local.n_gpu_layers == -1
    # The file's other values stay under the variables' (tables merge key by key).
    assert settings.database.busy_timeout_s == 3 and settings.database.url == "sqlite:////tmp/x.db"
    assert load_settings(user={"name": "ada"}).user.name == "ada"  # arguments win over both


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("WORKBENCH_DATABASE", "{not json", "WORKBENCH_DATABASE is not JSON"),
        ("WORKBENCH_DATABASE__BUSY_TIMEOUT_S", "soon", "database.busy_timeout_s"),
        ("WORKBENCH_USER__NICK", "x", "user.nick"),
    ],
)
def test_a_broken_variable_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, name: str, value: str,
                                             message: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(WorkbenchError, match=message):
        load_settings()


def test_every_problem_is_named_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORKBENCH_USER__NAME")
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text('[user]\nname = ""\n[local]\nn_threads = 0\nn_gpu_layers = true\n'
                    '[models.a]\nbackend = "openai"\n[models.b]\nmodel = 3\n')
    with pytest.raises(WorkbenchError) as caught:
        load_settings()
    message = str(caught.value)
    for part in ("user.name: String should have at least 1 character",
                 "local.n_threads: Input should be greater than or equal to 1",
                 "local.n_gpu_layers: Input should be a valid integer",
                 "models.a.model: Field required",
                 "models.b.model: Input should be a valid string"):
        assert part in message


def test_values_are_read_as_pydantic_reads_them_leniently(monkeypatch: pytest.MonkeyPatch) -> None:
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text("[local]\nprice_per_hour_usd = 1\nn_threads = 4.0\n")
    monkeypatch.setenv("WORKBENCH_DATABASE__BUSY_TIMEOUT_S", " 2.5 ")
    settings = load_settings()
    assert settings.local.price_per_hour_usd == 1.0 and isinstance(settings.local.price_per_hour_usd, float)
    assert settings.local.n_threads == 4 and settings.database.busy_timeout_s == 2.5
    monkeypatch.setenv("WORKBENCH_DATABASE__BUSY_TIMEOUT_S", "nan")
    with pytest.raises(WorkbenchError, match="finite"):
        load_settings()


def test_the_script_reports_a_broken_config_and_starts_nothing(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    broken = tmp_path / "config.toml"
    broken.write_text("[database\n")
    env = {**os.environ, "WORKBENCH_CONFIG_FILE": str(broken)}
    # From a folder of its own: in the repository's root, ./workbench would shadow the
    # installed package.
    done = subprocess.run([sys.executable, "-m", "workbench"], env=env, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL, cwd=tmp_path)
    assert done.returncode == 1 and done.stderr.startswith("Error: config file")
    assert "is not valid TOML" in done.stderr
    version = subprocess.run([sys.executable, "-m", "workbench", "--version"], env=env,
                             capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert version.returncode == 0 and "workbench, version" in version.stdout


def test_text_settings_from_the_environment_are_read_as_written(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_USER__NAME", "[ci] nightly")
    monkeypatch.setenv("WORKBENCH_DATABASE__URL", '{"not": "json here"}')
    settings = load_settings()
    assert settings.user.name == "[ci] nightly" and settings.database.url == '{"not": "json here"}'
