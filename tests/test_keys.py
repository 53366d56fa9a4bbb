"""API keys: real keyring backends (keyrings.alt's plaintext file, keyring's ``fail``, a
deliberately hanging backend), the environment variables, the CLI and redaction."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import keyring
import keyring.core
import pytest
from click.testing import CliRunner, Result
from keyring.backend import KeyringBackend

from workbench import cli_keys, keys
from workbench.cli import cli
from workbench.errors import NotFoundError, ValidationError
from workbench.keys import (
    ENV_VARS,
    KeyringUnavailable,
    delete_key,
    env_var,
    get_key,
    list_keys,
    redact,
    scan_keys,
    set_key,
)

KEY = "sk-test-0123456789abcdefXYZ"
PLAINTEXT = "keyrings.alt.file.PlaintextKeyring"
FAIL = "keyring.backends.fail.Keyring"


class HangingKeyring(KeyringBackend):
    """A keyring that never answers in time, like a locked Secret Service."""

    # Negative: keyring's own detection and its chainer never pick it; tests select it.
    priority = -5

    def __init__(self, release: threading.Event | None = None) -> None:
        super().__init__()
        self.release = release or threading.Event()
        self.calls = 0

    def _hang(self) -> None:
        self.calls += 1
        self.release.wait(60)  # far beyond any limit the tests set

    def get_password(self, service: str, username: str) -> str | None:
        self._hang()
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        self._hang()

    def delete_password(self, service: str, username: str) -> None:
        self._hang()


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def use_backend(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", name)
    monkeypatch.setattr(keyring.core, "_keyring_backend", None)


@pytest.fixture(autouse=True)
def plaintext_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    """keyrings.alt's file backend (under the per-test XDG_DATA_HOME), no key variables."""
    for var in ENV_VARS.values():
        monkeypatch.delenv(var, raising=False)
    # keyring caches its backend in the process: drop it so this test's choice counts.
    use_backend(monkeypatch, PLAINTEXT)


@pytest.fixture
def hanging(monkeypatch: pytest.MonkeyPatch) -> Iterator[HangingKeyring]:
    backend = HangingKeyring()
    monkeypatch.setattr(keyring.core, "_keyring_backend", None)
    keyring.set_keyring(backend)
    yield backend
    # Let the stuck worker threads finish, so the next test starts with none.
    backend.release.set()
    for thread in list(keys._stuck):
        thread.join(10)


def test_env_var_names() -> None:
    assert env_var("openai") == "OPENAI_API_KEY"
    assert env_var("together_ai") == "TOGETHERAI_API_KEY"
    assert env_var("deep-seek") == "DEEP_SEEK_API_KEY"
    assert env_var("x.ai") == "X_AI_API_KEY"


def test_importing_keys_does_not_import_keyring(tmp_path: Path) -> None:
    code = "import sys, workbench.keys, workbench.cli; print('keyring' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert out.stdout.strip() == "False"


def test_round_trip_in_the_plaintext_file_under_xdg_data_home(isolated_env: Path) -> None:
    assert get_key("openai") == (None, "none")
    set_key("openai", KEY)
    assert (isolated_env / "data" / "python_keyring" / "keyring_pass.cfg").is_file()
    assert get_key("openai") == (KEY, "keyring")
    assert get_key("anthropic") == (None, "none")
    delete_key("openai")
    assert get_key("openai") == (None, "none")
    with pytest.raises(NotFoundError, match="no key for openai in the keyring"):
        delete_key("openai")


def test_environment_wins_over_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    set_key("openai", KEY)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env-9876")
    assert get_key("openai") == ("sk-from-env-9876", "env:OPENAI_API_KEY")
    monkeypatch.setenv("OPENAI_API_KEY", "")  # an empty variable counts as unset
    assert get_key("openai") == (KEY, "keyring")
    monkeypatch.setenv("DEEP_SEEK_API_KEY", "sk-other-1234")
    assert get_key("deep-seek") == ("sk-other-1234", "env:DEEP_SEEK_API_KEY")


@pytest.mark.parametrize(
    "name", ["", "OpenAI", "open ai", "-openai", "openai\n", "../openai", "a" * 65, KEY.upper()]
)
def test_invalid_provider_names_are_refused_without_echo(name: str) -> None:
    for call in (lambda: set_key(name, KEY), lambda: get_key(name), lambda: list_keys([name])):
        with pytest.raises(ValidationError, match="invalid provider name") as info:
            call()
        assert name.strip() == "" or name not in str(info.value)
    result = run("keys", "set", "--stdin", "--", name, input=KEY)
    assert result.exit_code == 1
    assert "Error: invalid provider name" in result.stderr
    assert KEY not in result.output


@pytest.mark.parametrize("bad", ["", " sk-abcdef", "sk-abc def", "sk-abc\x00def", "sk\tabcdef"])
def test_empty_or_spaced_keys_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError, match="nothing was stored") as info:
        set_key("openai", bad)
    assert bad.strip() == "" or bad not in str(info.value)
    assert get_key("openai") == (None, "none")


def test_cli_set_list_delete_round_trip() -> None:
    result = run("keys", "set", "openai", input=KEY + "\n")
    assert result.exit_code == 0, result.output
    assert "API key for openai" in result.stderr  # the prompt, on stderr
    assert KEY not in result.output  # hidden input: never echoed
    result = run("keys", "set", "anthropic", "--stdin", input="sk-ant-secret-42\n")
    assert result.exit_code == 0, result.output
    assert get_key("openai") == (KEY, "keyring")
    assert get_key("anthropic") == ("sk-ant-secret-42", "keyring")  # newline stripped

    listing = run("keys", "list")
    assert listing.exit_code == 0, listing.output
    assert KEY not in listing.output and "sk-ant-secret-42" not in listing.output
    line = next(x for x in listing.stdout.splitlines() if x.startswith("openai "))
    assert line.split()[1:] == ["yes", "OPENAI_API_KEY", "keyring"]
    as_json = run("keys", "list", "--json")
    assert KEY not in as_json.output and "sk-ant-secret-42" not in as_json.output
    rows = {r["provider"]: r for r in json.loads(as_json.stdout)}
    assert set(rows) == set(ENV_VARS)
    assert rows["openai"] == {
        "provider": "openai",
        "keyring": True,
        "env": False,
        "env_var": "OPENAI_API_KEY",
    }
    assert rows["gemini"]["keyring"] is False

    result = run("keys", "delete", "openai")
    assert result.exit_code == 0, result.output
    assert json.loads(run("keys", "list", "--json").stdout)[0]["keyring"] is False
    result = run("keys", "delete", "openai")
    assert result.exit_code == 1
    assert "Error: no key for openai in the keyring" in result.stderr


def test_cli_list_checks_extra_providers_and_notes_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_key("deepseek", KEY)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-secret-77")
    result = run("keys", "set", "openai", "--stdin", input=KEY)
    assert "OPENAI_API_KEY is set in the environment and takes precedence" in result.stderr
    rows = {r["provider"]: r for r in json.loads(run("keys", "list", "deepseek", "--json").stdout)}
    assert rows["deepseek"] == {
        "provider": "deepseek",
        "keyring": True,
        "env": False,
        "env_var": "DEEPSEEK_API_KEY",
    }
    assert rows["openai"]["env"] is True and rows["openai"]["keyring"] is True
    text = run("keys", "list").stdout
    assert "OPENAI_API_KEY (set)" in text and "sk-env-secret-77" not in text


def test_no_keyring_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    use_backend(monkeypatch, FAIL)
    assert get_key("openai") == (None, "none")
    with pytest.raises(KeyringUnavailable) as info:
        set_key("openai", KEY)
    assert str(info.value) == (
        "no keyring is available on this machine (keyring backend: fail.Keyring); "
        "set OPENAI_API_KEY in the environment instead"
    )
    with pytest.raises(KeyringUnavailable):
        delete_key("openai")

    result = run("keys", "set", "openai", "--stdin", input=KEY + "\n")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: no keyring is available on this machine")
    assert "OPENAI_API_KEY" in result.stderr and KEY not in result.output

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    assert get_key("openai") == (KEY, "env:OPENAI_API_KEY")
    result = run("keys", "list")
    assert result.exit_code == 0
    assert "keyring unavailable: no keyring is available" in result.stderr
    assert "OPENAI_API_KEY (set)" in result.stdout and KEY not in result.output
    result = run("keys", "list", "--json")
    assert result.exit_code == 0 and KEY not in result.output
    rows = {r["provider"]: r for r in json.loads(result.stdout)}
    assert rows["openai"] == {
        "provider": "openai",
        "keyring": False,
        "env": True,
        "env_var": "OPENAI_API_KEY",
    }


def test_a_broken_backend_setting_is_unavailable_not_a_crash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_backend(monkeypatch, "keyring.backends.no_such_module.Keyring")
    assert get_key("openai") == (None, "none")
    with pytest.raises(KeyringUnavailable, match="the keyring failed") as info:
        set_key("openai", KEY)
    assert "no_such_module" in str(info.value) and KEY not in str(info.value)


def test_hanging_keyring_set_key_gives_up_at_the_time_limit(hanging: HangingKeyring) -> None:
    started = time.monotonic()
    with pytest.raises(KeyringUnavailable) as info:
        set_key("openai", KEY, timeout_s=0.2)
    # A guard against hanging, not a benchmark: the backend would wait 60 s.
    assert time.monotonic() - started < 10
    message = str(info.value)
    assert "did not answer within the time limit of 0.2 s" in message
    assert "HangingKeyring" in message and "set OPENAI_API_KEY" in message
    assert KEY not in message


def test_hanging_keyring_get_key_falls_back_to_the_environment(
    hanging: HangingKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = time.monotonic()
    assert get_key("anthropic", timeout_s=0.2) == (None, "none")
    assert time.monotonic() - started < 10
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    assert get_key("openai", timeout_s=0.2) == (KEY, "env:OPENAI_API_KEY")
    # While the first request is stuck, later ones fail fast instead of queueing up.
    with pytest.raises(KeyringUnavailable, match="has not yet answered an earlier request"):
        set_key("openai", KEY, timeout_s=0.2)
    assert hanging.calls == 1
    # Once the keyring answers (unlocked), calls work again.
    hanging.release.set()
    for thread in list(keys._stuck):
        thread.join(10)
    assert get_key("anthropic", timeout_s=5) == (None, "none")
    assert hanging.calls == 2


def test_hanging_keyring_cli_list_waits_once(
    hanging: HangingKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_keys, "TIMEOUT_S", 0.2)
    monkeypatch.setenv("GROQ_API_KEY", KEY)
    result = run("keys", "list", "--json")
    assert result.exit_code == 0
    assert "time limit of 0.2 s" in result.stderr
    assert hanging.calls == 1  # the first timeout stops the keyring checks
    rows = {r["provider"]: r for r in json.loads(result.stdout)}
    assert rows["groq"]["env"] is True and KEY not in result.output
    _, problem = scan_keys(timeout_s=0.2)
    assert problem is not None and "earlier request" in problem


def test_redact_plain_url_encoded_and_base64() -> None:
    secret = "sk/Ab+cd=ef&g~h?9"
    text = "\n".join(
        [
            f"plain {secret} end",
            f"url https://api.example/v1?key={quote(secret)}&x=1",
            f"safe {quote(secret, safe='')} / plus {quote_plus(secret)}",
            f"lower {re.sub('%..', lambda m: m.group().lower(), quote(secret, safe=''))}",
            f"b64 {base64.b64encode(secret.encode()).decode()}",
            f"urlsafe {base64.urlsafe_b64encode(secret.encode()).decode().rstrip('=')}",
        ]
    )
    out = redact(text, [secret])
    assert out.count("***") == 7
    for form in (secret, quote(secret), quote_plus(secret), "Ab", "cd"):
        assert form not in out
    assert "https://api.example/v1?key=***&x=1" in out


@pytest.mark.parametrize("prefix", ["u:", "ab:", "abc:"])
def test_redact_base64_inside_a_longer_value(prefix: str) -> None:
    header = base64.b64encode(f"{prefix}{KEY}".encode()).decode()
    out = redact(f"Authorization: Basic {header}", [KEY])
    assert "***" in out
    core = base64.b64encode(KEY.encode()).decode()[4:-4]
    assert core not in out and header not in out


def test_redact_leaves_short_secrets_and_other_text_alone() -> None:
    assert redact("a key abc here", ["abc", "", "zz"]) == "a key abc here"
    assert redact("nothing secret", [KEY]) == "nothing secret"
    assert redact(f"{KEY}{KEY}", [KEY, KEY[:-3]]) == "******"


def test_file_keyring_is_not_used_unless_chosen(monkeypatch) -> None:
    """keyrings.alt (a test dependency) must not silently become the place keys go."""
    import keyring
    from keyrings.alt.file import PlaintextKeyring

    from workbench import keys

    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    previous = keyring.get_keyring()
    keyring.set_keyring(PlaintextKeyring())
    try:
        with pytest.raises(keys.KeyringUnavailable):
            keys.set_key("openai", "sk-should-not-be-stored-1234")
        assert keys.get_key("openai") == (None, "none")
    finally:
        keyring.set_keyring(previous)
