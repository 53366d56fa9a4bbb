"""The command line, in-process through click's runner, in a fresh XDG home per test."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from workbench.cli import cli

PROMPT = """\
name: greet
description: Greets a person
tags: [demo, greeting]
messages:
  - role: system
    content: You are terse.
  - role: user
    content: |
      Say hello to {{ name }}.
      Mood: {{ mood }}
params:
  model: smollm2
  temperature: 0.2
  max_tokens: 64
  stop: ["\\n\\n"]
variables:
  name: null
  mood: cheerful
"""


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


@pytest.fixture
def prompt_file(tmp_path: Path) -> Path:
    path = tmp_path / "greet.yaml"
    path.write_text(PROMPT)
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def any_db(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the CLI against the default SQLite file, or against PostgreSQL."""
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        monkeypatch.setenv("WORKBENCH_DATABASE__URL", url)
        return url
    return "sqlite"


def test_commit_show_log_label_render(prompt_file: Path, any_db: str) -> None:
    result = run("prompts", "commit", str(prompt_file), "-m", "first")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "greet@1"

    unchanged = run("prompts", "commit", str(prompt_file), "-m", "again")
    assert unchanged.exit_code == 0
    assert "nothing to commit" in unchanged.stdout

    # A new description alone makes no version, and says what it did.
    prompt_file.write_text(PROMPT.replace("Greets a person", "Greets anyone"))
    described = run("prompts", "commit", str(prompt_file), "-m", "words")
    assert described.stdout.strip() == ("greet: description and tags updated (no new version: "
                                        "the messages and parameters equal greet@1)")
    [listed] = json.loads(run("prompts", "list", "--json").stdout)
    assert listed["description"] == "Greets anyone" and listed["latest"] == 1
    prompt_file.write_text(PROMPT.replace("[demo, greeting]", "[demo]"))
    tagged = json.loads(run("prompts", "commit", str(prompt_file), "-m", "tags", "--json").stdout)
    assert (tagged["created"], tagged["described"], tagged["version"]) == (False, True, 1)

    prompt_file.write_text(PROMPT.replace("terse", "kind"))
    assert run("prompts", "commit", str(prompt_file), "-m", "kinder").stdout.strip() == "greet@2"

    assert run("prompts", "label", "greet@1", "approved").exit_code == 0
    log = json.loads(run("prompts", "log", "greet", "--json").stdout)
    assert [v["version"] for v in log] == [2, 1]
    for entry in log:
        assert {"version", "content_hash", "message", "author", "created_at", "labels"} <= set(entry)
    assert log[0]["labels"] == ["latest"] and log[1]["labels"] == ["approved"]
    assert log[0]["author"] == "tester" and log[0]["message"] == "kinder"

    shown = json.loads(run("prompts", "show", "greet:approved", "--json").stdout)
    assert shown["version"] == 1
    assert shown["params"] == {
        "model": "smollm2", "temperature": 0.2, "max_tokens": 64, "stop": ["\n\n"]
    }
    assert shown["variables"] == {"name": None, "mood": "cheerful"}
    assert "You are terse." in run("prompts", "show", "greet@1").stdout

    rendered = run("prompts", "render", "greet", "--var", "name=Ada", "--json")
    messages = json.loads(rendered.stdout)["messages"]
    assert messages[1]["content"] == "Say hello to Ada.\nMood: cheerful\n"

    listing = json.loads(run("prompts", "list", "--json").stdout)
    assert listing[0]["name"] == "greet" and listing[0]["latest"] == 2
    assert listing[0]["labels"] == {"approved": 1}
    assert "greet" in run("prompts", "list").stdout

    history = json.loads(run("prompts", "history", "greet", "--json").stdout)
    assert [(h["label"], h["from"], h["to"], h["by"]) for h in history] == [
        ("approved", None, 1, "tester")
    ]


def test_diff(prompt_file: Path) -> None:
    run("prompts", "commit", str(prompt_file), "-m", "one")
    prompt_file.write_text(PROMPT.replace("temperature: 0.2", "temperature: 0.7"))
    run("prompts", "commit", str(prompt_file), "-m", "two")
    out = run("prompts", "diff", "greet@1", "greet@2").stdout
    assert "--- greet@1" in out and "+++ greet@2" in out
    assert "-  temperature: 0.2" in out and "+  temperature: 0.7" in out


def test_render_missing_variable_is_an_error(prompt_file: Path) -> None:
    run("prompts", "commit", str(prompt_file), "-m", "one")
    result = run("prompts", "render", "greet@1")
    assert result.exit_code == 1
    assert "message 2 (user), line 1: variable 'name' is undefined" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("prompts", "show", "nope"), "unknown prompt 'nope'"),
        (("prompts", "show", "greet@7"), "greet has no version 7"),
        (("prompts", "show", "greet:gold"), "no label 'gold'"),
        (("prompts", "show", "greet@x"), "invalid reference"),
        (("prompts", "label", "greet@1", "latest"), "'latest' always means"),
        (("prompts", "log", "nope"), "unknown prompt"),
        (("datasets", "show", "nope"), "unknown dataset"),
    ],
)
def test_unknown_things_are_clear_errors(prompt_file: Path, args: tuple, message: str) -> None:
    run("prompts", "commit", str(prompt_file), "-m", "one")
    result = run(*args)
    assert result.exit_code != 0
    assert message in result.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\nmessages: [\n", "greet.yaml:3: invalid YAML"),
        ("name: x\nmessages:\n  - role: user\n    content: 'Hi {{ name }'\n", "greet.yaml:4:"),
        (
            "name: x\nmessages:\n  - role: user\n    content: |\n      ok\n      {% if x %}\n",
            "greet.yaml:",
        ),
        ("name: x\nmessages:\n  - role: robot\n    content: hi\n", "greet.yaml:3: messages.0.role"),
        ("name: x\nmesages: []\n", "allowed keys"),
        ("name: 'bad name!'\nmessages:\n  - {role: user, content: hi}\n", "invalid name"),
        ("- just\n- a list\n", "a prompt file is a mapping"),
        ("name: x\nmessages:\n  - {role: user, content: \"a\\0b\"}\n", "NUL"),
    ],
)
def test_invalid_prompt_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "greet.yaml"
    path.write_text(text)
    result = run("prompts", "commit", str(path), "-m", "bad")
    assert result.exit_code == 1
    assert message in result.stderr
    assert run("prompts", "list", "--json").stdout.strip() == "[]"


def test_template_error_points_at_file_line(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "name: x\nmessages:\n  - role: user\n    content: |\n      line one\n      {{ oops( }}\n"
    )
    result = run("prompts", "commit", str(path), "-m", "bad")
    assert "p.yaml:6: message 1 (user), line 2:" in result.stderr


def test_export_import_round_trip_is_lossless(
    prompt_file: Path, tmp_path: Path, any_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    run("prompts", "commit", str(prompt_file), "-m", "one")
    prompt_file.write_text(PROMPT.replace("terse", "multi\n      line\n      text  with  spaces"))
    run("prompts", "commit", str(prompt_file), "-m", "two: ünïcode ✓")
    other = tmp_path / "other.yaml"
    other.write_text("name: other\nmessages:\n  - {role: user, content: 'plain [b]markup[/b]'}\n")
    run("prompts", "commit", str(other), "-m", "other")
    run("prompts", "label", "greet@1", "production")
    run("prompts", "label", "greet@2", "production")
    run("prompts", "label", "greet@2", "approved")
    before = json.loads(run("prompts", "log", "greet", "--json").stdout)

    first = tmp_path / "export1"
    assert run("prompts", "export", str(first)).exit_code == 0
    assert sorted(p.name for p in first.iterdir()) == ["greet.yaml", "other.yaml"]

    # Into an empty store: everything comes back, ids and hashes equal.
    monkeypatch.setenv("WORKBENCH_DATABASE__URL", f"sqlite:///{tmp_path / 'second.db'}")
    imported = run("prompts", "import", str(first))
    assert imported.exit_code == 0, imported.output
    after = json.loads(run("prompts", "log", "greet", "--json").stdout)
    second = tmp_path / "export2"
    run("prompts", "export", str(second))
    history = json.loads(run("prompts", "history", "greet", "--json").stdout)
    again = run("prompts", "import", str(first))
    assert "0 versions, 0 label moves added" in again.stdout
    assert after == before
    assert [(h["label"], h["from"], h["to"]) for h in history] == [
        ("production", None, 1), ("production", 1, 2), ("approved", None, 2)
    ]
    for name in ("greet.yaml", "other.yaml"):
        assert (first / name).read_bytes() == (second / name).read_bytes()


def test_import_rejects_tampered_file_and_writes_nothing(
    prompt_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run("prompts", "commit", str(prompt_file), "-m", "one")
    ok = tmp_path / "aok.yaml"
    ok.write_text("name: aok\nmessages:\n  - {role: user, content: fine}\n")
    run("prompts", "commit", str(ok), "-m", "fine")
    folder = tmp_path / "export"
    run("prompts", "export", str(folder))
    tampered = (folder / "greet.yaml").read_text().replace("You are terse.", "You are evil.")
    (folder / "greet.yaml").write_text(tampered)
    monkeypatch.setenv("WORKBENCH_DATABASE__URL", f"sqlite:///{tmp_path / 'second.db'}")
    result = run("prompts", "import", str(folder))
    listing = run("prompts", "list", "--json").stdout
    assert result.exit_code == 1
    assert "does not match its hash" in result.stderr
    assert json.loads(listing) == []


def test_datasets_csv_and_jsonl(tmp_path: Path, any_db: str) -> None:
    csv_file = tmp_path / "cases.csv"
    csv_file.write_text(
        "question,context,__expected,__metadata:topic,__description\n"
        'What is 2+2?,"math, simple",4,math,easy one\n'
        "Capital of France?,,Paris,geo,\n"
    )
    assert run("datasets", "import", str(csv_file), "--name", "qa").stdout.strip() == "qa: 2 cases"
    shown = json.loads(run("datasets", "show", "qa", "--json").stdout)
    assert shown["cases"][0] == {
        "vars": {"question": "What is 2+2?", "context": "math, simple"},
        "expected": "4",
        "metadata": {"topic": "math", "description": "easy one"},
    }
    jsonl = tmp_path / "cases.jsonl"
    jsonl.write_text(
        '{"vars": {"q": "hi", "n": 3}, "expected": ["a", "b"], "metadata": {"k": 1}}\n'
        "\n"
        '{"vars": {"q": "there"}}\n'
    )
    assert run("datasets", "import", str(jsonl), "--name", "chat").exit_code == 0
    chat = json.loads(run("datasets", "show", "chat", "--json").stdout)["cases"]
    assert chat == [
        {"vars": {"q": "hi", "n": 3}, "expected": ["a", "b"], "metadata": {"k": 1}},
        {"vars": {"q": "there"}, "expected": None, "metadata": {}},
    ]
    names = [(d["name"], d["size"]) for d in json.loads(run("datasets", "list", "--json").stdout)]
    assert names == [("chat", 2), ("qa", 2)]
    exists = run("datasets", "import", str(jsonl), "--name", "chat")
    assert exists.exit_code == 1 and "--replace" in exists.stderr
    assert run("datasets", "import", str(csv_file), "--name", "chat", "--replace").exit_code == 0


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.jsonl", '{"vars": {}}\n{not json}\n', "bad.jsonl:2: invalid JSON"),
        ("bad.jsonl", '{"vars": {}, "extra": 1}\n', "unknown keys extra"),
        ("bad.txt", "a,b\n", "dataset files are .csv or .jsonl"),
        ("bad.csv", "a,b\n1,2,3\n", "more fields than columns"),
        ("bad.csv", "a\n", "no test cases"),
        ("bad.jsonl", '{"vars": {"a": "x\\u0000y"}}\n', "NUL"),
    ],
)
def test_bad_datasets(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    result = run("datasets", "import", str(path), "--name", "d")
    assert result.exit_code == 1
    assert message in result.stderr
    assert json.loads(run("datasets", "list", "--json").stdout) == []


def test_locked_database_is_a_clear_error(prompt_file: Path, tmp_path: Path, monkeypatch) -> None:
    db = tmp_path / "locked.db"
    monkeypatch.setenv("WORKBENCH_DATABASE__URL", f"sqlite:///{db}")
    monkeypatch.setenv("WORKBENCH_DATABASE__BUSY_TIMEOUT_S", "0.2")
    run("prompts", "list")  # creates and migrates it
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result = run("prompts", "commit", str(prompt_file), "-m", "blocked")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.exit_code == 1
    assert "is locked by another process" in result.stderr
    assert json.loads(run("prompts", "list", "--json").stdout) == []


def test_unwritable_database_is_a_clear_error(prompt_file: Path, tmp_path: Path, monkeypatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("WORKBENCH_DATABASE__URL", f"sqlite:///{blocker}/sub/store.db")
    result = run("prompts", "commit", str(prompt_file), "-m", "nowhere")
    assert result.exit_code == 1
    assert "cannot create the folder" in result.stderr


def test_unreachable_postgres_is_a_clear_error(prompt_file: Path, monkeypatch) -> None:
    monkeypatch.setenv(
        "WORKBENCH_DATABASE__URL", "postgresql+psycopg://bob:s3cret-pw@127.0.0.1:1/db"
    )
    result = run("prompts", "list")
    assert result.exit_code == 1
    assert "database error" in result.stderr
    assert "s3cret-pw" not in result.stderr


def test_bad_var_syntax(prompt_file: Path) -> None:
    run("prompts", "commit", str(prompt_file), "-m", "one")
    result = run("prompts", "render", "greet", "--var", "novalue")
    assert result.exit_code == 2 and "KEY=VALUE" in result.stderr


def test_import_conflict_rolls_back_everything(
    prompt_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok = tmp_path / "aok.yaml"
    ok.write_text("name: aok\nmessages:\n  - {role: user, content: fine}\n")
    run("prompts", "commit", str(ok), "-m", "fine")
    run("prompts", "commit", str(prompt_file), "-m", "one")
    folder = tmp_path / "export"
    run("prompts", "export", str(folder))
    # A second store where greet@1 already exists with other content: histories diverged.
    monkeypatch.setenv("WORKBENCH_DATABASE__URL", f"sqlite:///{tmp_path / 'second.db'}")
    prompt_file.write_text(PROMPT.replace("terse", "different"))
    run("prompts", "commit", str(prompt_file), "-m", "elsewhere")
    result = run("prompts", "import", str(folder))
    assert result.exit_code == 1 and "histories have diverged" in result.stderr
    names = [p["name"] for p in json.loads(run("prompts", "list", "--json").stdout)]
    assert names == ["greet"]  # aok (imported before the clash) was rolled back


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\nmessages:\n  - {role: user, content: hi}\nvariables:\n  x: {1: a}\n", "non-string key"),
        ("name: x\nmessages:\n  - {role: user, content: hi}\nvariables:\n  x: .nan\n", "JSON cannot"),
        ("name: x\nmessages:\n  - {role: user, content: hi}\nvariables:\n  x: !!binary aGk=\n", "bytes"),
        ("name: x\nmessages:\n  - {role: user, content: hi}\nvariables:\n  x: !!set {a}\n", "set"),
        ("name: x\nmessages:\n  - {role: user, content: hi}\nvariables:\n  x: " + "[" * 5000 + "]" * 5000 + "\n", "nested"),
        ("a: &a [1, 2]\nb: *a\n", "aliases"),
        ("name: x\nmessages:\n  - {role: user, content: '" + "{% for i in [1] %}" * 30 + "'}\n", "greet.yaml:"),
    ],
)
def test_more_invalid_prompt_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "greet.yaml"
    path.write_text(text)
    result = run("prompts", "commit", str(path), "-m", "bad")
    assert result.exit_code == 1, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_dates_in_prompt_files_are_text(tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    path.write_text("name: d\nmessages:\n  - {role: user, content: '{{ day }}'}\nvariables:\n  day: 2024-01-01\n")
    assert run("prompts", "commit", str(path), "-m", "d").exit_code == 0
    assert run("prompts", "render", "d").stdout == "[user]\n2024-01-01\n"


@pytest.mark.parametrize("ref", ["greet@²", "greet@99999999999999999999", "greet@0", "greet@-1", "greet:"])
def test_odd_references(prompt_file: Path, ref: str) -> None:
    run("prompts", "commit", str(prompt_file), "-m", "one")
    result = run("prompts", "show", ref)
    assert result.exit_code == 1 and "invalid reference" in result.stderr


def test_big_csv_cells_and_odd_jsonl(tmp_path: Path) -> None:
    big = tmp_path / "big.csv"
    big.write_text("doc\n" + "x" * 200_000 + "\n")
    assert run("datasets", "import", str(big), "--name", "big").exit_code == 0
    for name, text, message in [
        ("nan.jsonl", '{"vars": {"a": NaN}}\n', "JSON cannot represent"),
        ("deep.jsonl", '{"vars": {"a": ' + "[" * 5000 + "]" * 5000 + "}}\n", "nested"),
    ]:
        path = tmp_path / name
        path.write_text(text)
        result = run("datasets", "import", str(path), "--name", "d")
        assert result.exit_code == 1 and message in result.stderr, result.output


@pytest.mark.parametrize(
    ("env", "value", "message"),
    [
        ("WORKBENCH_DATABASE", "{bad", "invalid WORKBENCH_* environment variable"),
        ("WORKBENCH_DATABASE__BUSY_TIMEOUT_S", "inf", "busy_timeout_s"),
        ("WORKBENCH_DATABASE__URL", "foo://x/y", "unsupported database URL"),
        ("WORKBENCH_DATABASE__URL", "not a url", "invalid database URL"),
        ("WORKBENCH_USER__NAME", "x" * 300, "user.name"),
    ],
)
def test_bad_settings_are_clear_errors(monkeypatch, env: str, value: str, message: str) -> None:
    monkeypatch.setenv(env, value)
    result = run("prompts", "list")
    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_non_utf8_config_file() -> None:
    from workbench.config import config_path

    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"[user]\nname = \"\xff\xfe\"\n")
    result = run("prompts", "list")
    assert result.exit_code == 1 and "not UTF-8" in result.stderr


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://bob:my secret@127.0.0.1:1/db",
        "postgresql+psycopg://bob@127.0.0.1:1/db?password=hunter2",
        "postgresql+psycopg://bob:p%40ss%20word@127.0.0.1:1/db",
    ],
)
def test_passwords_never_printed(monkeypatch, url: str) -> None:
    monkeypatch.setenv("WORKBENCH_DATABASE__URL", url)
    shown = run("config", "show").stdout + run("config", "show", "--json").stdout
    failed = run("prompts", "list")
    assert failed.exit_code == 1
    for secret in ("my secret", "hunter2", "p%40ss%20word", "p@ss word"):
        assert secret not in shown + failed.output
    assert "***" in shown


def test_show_yaml_recommits_to_the_same_version(prompt_file: Path, tmp_path: Path) -> None:
    run("prompts", "commit", str(prompt_file), "-m", "one")
    again = tmp_path / "again.yaml"
    again.write_text(run("prompts", "show", "greet@1", "--yaml").stdout)
    result = run("prompts", "commit", str(again), "-m", "same content")
    assert "nothing to commit" in result.stdout


def test_history_filters_by_label(prompt_file: Path) -> None:
    run("prompts", "commit", str(prompt_file), "-m", "one")
    run("prompts", "label", "greet@1", "approved")
    run("prompts", "label", "greet@1", "production")
    moves = json.loads(run("prompts", "history", "greet", "--label", "production", "--json").stdout)
    assert [m["label"] for m in moves] == ["production"]
    assert "production: (new) -> @1" in run("prompts", "history", "greet").stdout
