"""The Models screen (F5), driven by key presses; adding models to the config; the themes."""

from __future__ import annotations

import html
import re
import stat
from pathlib import Path

import keyring.core
import pytest
from fault_server import closed_port
from pilot_helpers import opened
from textual.widgets import DataTable, Static

from workbench.config import ModelConfig, add_model_section, load_settings
from workbench.errors import ValidationError, WorkbenchError
from workbench.keys import ENV_VARS, get_key
from workbench.models import new_model_config
from workbench.screens.app import make_app
from workbench.screens.models import CHECKING
from workbench.themes import THEME_NAMES

KEY = "sk-test-0123456789abcdefXYZ"
PLAINTEXT = "keyrings.alt.file.PlaintextKeyring"
FAIL = "keyring.backends.fail.Keyring"
GGUF = b"GGUF" + bytes(28)


def use_keyring(monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", backend)
    monkeypatch.setattr(keyring.core, "_keyring_backend", None)  # keyring caches its choice


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh store and config file, the file keyring, and no key variables."""
    monkeypatch.setenv("WORKBENCH_DATABASE__URL", f"sqlite:///{tmp_path / 'app.db'}")
    config = tmp_path / "config.toml"
    monkeypatch.setenv("WORKBENCH_CONFIG_FILE", str(config))
    for var in ENV_VARS.values():
        monkeypatch.delenv(var, raising=False)
    use_keyring(monkeypatch, PLAINTEXT)
    return config


async def _settle(pilot) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def _wait_for(pilot, condition) -> None:
    for _ in range(200):
        await _settle(pilot)
        if condition():
            return
    raise AssertionError("the app never reached the expected state")


def _rows(app) -> dict[str, list[str]]:
    table = app.screen.query_one("#models", DataTable)
    rows = [table.get_row_at(i) for i in range(table.row_count)]
    return {str(row[0]): [str(c) for c in row] for row in rows}


def _status(app) -> str:
    return str(app.screen.query_one("#status", Static).render())


def _screen_text(app) -> str:
    """Everything on screen, as characters (the SVG screenshot without its markup)."""
    svg = app.export_screenshot(simplify=True)
    return html.unescape(re.sub(r"<[^>]+>", "", svg)).replace("\xa0", " ")


async def _open_models(pilot) -> None:
    await pilot.press("f5")
    def checked() -> bool:
        rows = _rows(pilot.app) if pilot.app.screen.query("#models") else {}
        return bool(rows) and all(r[4] != CHECKING for r in rows.values())

    await _wait_for(pilot, checked)


async def _type(pilot, text: str) -> None:
    await pilot.press(*text)


def _write_models(config: Path, text: str) -> None:
    config.write_text(text, encoding="utf-8")


async def test_statuses_say_why_a_model_cannot_be_used(isolated: Path, tmp_path: Path) -> None:
    port = closed_port()
    _write_models(isolated, f"""
[models.cloud]
model = "anthropic/claude-3-5-haiku-20241022"

[models.gone]
backend = "llama_cpp"
model = "{tmp_path / 'gone.gguf'}"

[models.server]
backend = "openai"
model = "smollm2"
api_base = "http://127.0.0.1:{port}/v1"
""")
    app = make_app(load_settings())
    async with app.run_test(size=(160, 40)) as pilot:
        await _open_models(pilot)
        rows = _rows(app)
        assert rows["echo"][4] == "✓ usable"
        assert "no key for anthropic" in rows["cloud"][4]
        assert "ANTHROPIC_API_KEY" in rows["cloud"][4]
        assert rows["cloud"][3] == "none"
        assert "does not exist" in rows["gone"][4]
        assert f"127.0.0.1:{port} is not reachable" in rows["server"][4]
        await pilot.press("down")  # the detail pane shows the highlighted model's whole story
        detail = str(app.screen.query_one("#detail", Static).render())
        assert "gone" in detail and "does not exist" in detail


async def test_set_and_delete_a_key_in_the_keyring(isolated: Path) -> None:
    _write_models(isolated, '[models.cloud]\nmodel = "openai/gpt-4o-mini"\n')
    app = make_app(load_settings())
    async with app.run_test(size=(160, 40)) as pilot:
        await _open_models(pilot)
        assert "no key for openai" in _rows(app)["cloud"][4]
        await pilot.press("k")
        await opened(pilot, "KeyModal")
        await _type(pilot, KEY)
        assert "API key for openai" in _screen_text(app) and KEY not in _screen_text(app)
        await pilot.press("enter")
        await _wait_for(pilot, lambda: "stored the openai key" in _status(app)
                        and _rows(app)["cloud"][4] == "✓ usable")
        assert get_key("openai") == (KEY, "keyring")
        assert _rows(app)["cloud"][3] == "keyring"
        assert KEY not in _screen_text(app) and "stored the openai key" in _screen_text(app)

        await pilot.press("d")
        assert "Delete the openai key" in _screen_text(app)
        await pilot.press("y")
        await _wait_for(pilot, lambda: "deleted the openai key" in _status(app)
                        and "no key for openai" in _rows(app)["cloud"][4])
        assert get_key("openai") == (None, "none")
        await pilot.press("d", "y")  # nothing left to delete: said, not fatal
        await _wait_for(pilot, lambda: "no key for openai in the keyring" in _status(app))
        assert app.screen.query_one("#status", Static).has_class("error-message")


async def test_without_a_keyring_the_message_names_the_variable(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_keyring(monkeypatch, FAIL)
    _write_models(isolated, '[models.cloud]\nmodel = "openai/gpt-4o-mini"\n')
    app = make_app(load_settings())
    async with app.run_test(size=(160, 40)) as pilot:
        await _open_models(pilot)
        await pilot.press("k", *KEY, "enter")
        await _wait_for(pilot, lambda: "no keyring is available" in _status(app))
        assert "set OPENAI_API_KEY in the environment instead" in _status(app)
        assert KEY not in _screen_text(app)
        # A model that takes no key says so instead of asking for one.
        table = app.screen.query_one("#models", DataTable)
        await pilot.press(*["down"] * (table.get_row_index("echo") - table.cursor_row), "k")
        assert "echo uses no provider key" in _status(app)


async def test_the_mouse_works_too(isolated: Path) -> None:
    _write_models(isolated, '[models.cloud]\nmodel = "openai/gpt-4o-mini"\n')
    app = make_app(load_settings())
    async with app.run_test(size=(160, 40)) as pilot:
        await _open_models(pilot)
        table = app.screen.query_one("#models", DataTable)
        echo = table.get_row_index("echo")
        await pilot.click("#models", offset=(4, 2 + echo))  # border, header, then the rows
        assert table.cursor_row == echo
        await pilot.click("#models", offset=(4, 2))
        await pilot.press("k")
        await opened(pilot, "KeyModal")
        await pilot.click("#ok")  # nothing typed
        assert "the key is empty" in str(app.screen.query_one("#problem", Static).render())
        await pilot.click("#cancel")
        await pilot.press("a")
        await opened(pilot, "AddModelModal")
        await pilot.click("#cancel")
        await _settle(pilot)
        assert app.screen.query("#models") and get_key("openai") == (None, "none")


async def test_add_a_gguf_model_refusing_a_bad_path(isolated: Path, tmp_path: Path) -> None:
    _write_models(isolated, '# my settings\n[user]\nname = "ada"  # me\n')
    before = isolated.read_text()
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(GGUF)
    app = make_app(load_settings())
    async with app.run_test(size=(160, 40)) as pilot:
        await _open_models(pilot)
        await pilot.press("a")
        await opened(pilot, "AddModelModal")
        await _type(pilot, "tiny")
        await pilot.press("tab")
        await _type(pilot, str(tmp_path / "nope.gguf"))
        await pilot.press("enter")
        await _settle(pilot)
        assert "no such file" in str(app.screen.query_one("#problem", Static).render())
        assert isolated.read_text() == before
        await pilot.press("ctrl+u")  # clear the path and give the real one
        await _type(pilot, str(gguf))
        await pilot.press("enter")
        await _wait_for(pilot, lambda: "added [models.tiny]" in _status(app)
                        and _rows(app).get("tiny", [""] * 5)[4] == "✓ usable")
        text = isolated.read_text()
        assert text.startswith(before) and "[models.tiny]" in text
        assert app.settings.models["tiny"] == ModelConfig(backend="llama_cpp", model=str(gguf))
        assert app.settings.user.name == "tester"  # the environment still wins over the file
        table = app.screen.query_one("#models", DataTable)
        assert table.cursor_row == table.get_row_index("tiny")  # the new model is selected


async def test_add_an_api_base_model_and_a_taken_name(isolated: Path) -> None:
    port = closed_port()
    app = make_app(load_settings())
    async with app.run_test(size=(160, 40)) as pilot:
        await _open_models(pilot)
        await pilot.press("a", *"echo", "tab", *"openai/x", "enter")
        assert "is taken" in str(app.screen.query_one("#problem", Static).render())
        await pilot.press("shift+tab", "ctrl+u", *"mine", "tab", "tab",
                          *f"http://127.0.0.1:{port}/v1", "enter")
        await _wait_for(pilot, lambda: "added [models.mine]" in _status(app)
                        and _rows(app).get("mine", [""] * 5)[4] != CHECKING)
        assert "is not reachable" in _rows(app)["mine"][4]
    assert load_settings().models["mine"] == ModelConfig(
        backend="openai", model="openai/x", api_base=f"http://127.0.0.1:{port}/v1"
    )


def test_add_model_section_keeps_the_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "config.toml"
    add_model_section("a", ModelConfig(model="openai/gpt-4o-mini"), path)  # created
    assert path.read_text() == '[models.a]\nbackend = "litellm"\nmodel = "openai/gpt-4o-mini"\n'
    path.write_text('# keep me\n[models.a]\nmodel = "x/y"\n[database]\nurl = "sqlite:///d.db"')
    path.chmod(0o600)
    add_model_section("b.c", ModelConfig(backend="llama_cpp", model="/m/q.gguf"), path)
    text = path.read_text()
    assert text.startswith('# keep me\n[models.a]\nmodel = "x/y"\n[database]\nurl = "sqlite:///d.db"\n')
    assert '[models."b.c"]' in text and stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(WorkbenchError, match="already has a model named 'a'"):
        add_model_section("a", ModelConfig(model="x/z"), path)
    inline = tmp_path / "inline.toml"
    inline.write_text('models = { a = { model = "x/y" } }\n')
    with pytest.raises(WorkbenchError, match="add the section by hand"):
        add_model_section("b", ModelConfig(model="x/z"), inline)
    assert inline.read_text() == 'models = { a = { model = "x/y" } }\n'
    broken = tmp_path / "broken.toml"
    broken.write_text("[models\n")
    with pytest.raises(WorkbenchError, match="not valid TOML"):
        add_model_section("b", ModelConfig(model="x/z"), broken)
    assert sorted(p.name for p in path.parent.iterdir()) == ["config.toml"]  # no temp files


@pytest.mark.parametrize(
    ("name", "source", "api_base", "problem"),
    [
        ("bad name", "x/y", "", "invalid name"),
        ("smollm2", "x/y", "", "is taken"),
        ("m", "gpt-4o", "", "names its provider"),
        ("m", "antropic/claude", "", "unknown provider 'antropic'"),
        ("m", "meta-llama/Llama-3", "http://h/v1", "openai/MODEL for an OpenAI-compatible"),
        ("m", "x/y", "ftp://h", "http(s) URL"),
        ("m", "./no.gguf", "", "no such file"),
        ("m", "./no.gguf", "http://h/v1", "not for a GGUF file"),
    ],
)
def test_new_model_config_refuses(name: str, source: str, api_base: str, problem: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(problem)):
        new_model_config(load_settings(), name, source, api_base)


def test_new_model_config_checks_the_gguf_magic(tmp_path: Path) -> None:
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"not a model")
    with pytest.raises(ValidationError, match="is not a GGUF file"):
        new_model_config(load_settings(), "m", str(fake))
    assert new_model_config(load_settings(), "m", "anthropic/claude", None).backend == "litellm"
    assert new_model_config(load_settings(), "m", "llama3", "http://h:1/v1").backend == "openai"


@pytest.mark.parametrize("theme", THEME_NAMES)
async def test_each_theme_renders_the_models_screen(theme: str) -> None:
    app = make_app(load_settings())
    async with app.run_test(size=(120, 30)) as pilot:
        assert set(THEME_NAMES) <= set(app.available_themes)
        app.theme = theme
        await _open_models(pilot)
        assert "echo" in _rows(app) and "usable" in _screen_text(app)


_DECLARATION = re.compile(r"^\s*([a-z-]+)\s*:(.*?);?\s*$")
_COLOUR_LITERAL = re.compile(
    r"#[0-9a-fA-F]{3,8}\b|\b(rgba?|hsla?)\(|"
    r"\b(red|green|blue|white|black|yellow|cyan|magenta|gr[ae]y|orange|purple|pink|ansi_\w+)\b"
)


def test_stylesheets_use_only_theme_variables() -> None:
    """Every theme works only if no stylesheet names a colour of its own."""
    root = Path(__file__).parent.parent
    sheets = [*(root / "screens").glob("*.tcss"), *(root / "themes").glob("*.tcss")]
    assert sheets
    for sheet in sheets:
        text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group().count("\n"), sheet.read_text(),
                      flags=re.S)
        for number, line in enumerate(text.splitlines(), start=1):
            declaration = _DECLARATION.match(line)
            if declaration and not declaration.group(2).strip().startswith("{"):
                value = declaration.group(2)
                assert not _COLOUR_LITERAL.search(value), f"{sheet.name}:{number}: {line.strip()}"


def _snapshot_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fixed data: relative paths (the same on every machine), no keyring, one key in env."""
    import workbench.models

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WORKBENCH_CONFIG_FILE", "config.toml")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-snapshot-not-shown")
    use_keyring(monkeypatch, FAIL)
    (tmp_path / "models").mkdir()
    for name in ("tiny.gguf", "SmolLM2-135M-Instruct.Q4_1.gguf"):
        (tmp_path / "models" / name).write_bytes(GGUF)
    demo = Path("models/SmolLM2-135M-Instruct.Q4_1.gguf")
    monkeypatch.setattr(workbench.models, "demo_model_path", lambda: demo)
    Path("config.toml").write_text("""
[models.cloud]
model = "anthropic/claude-3-5-haiku-20241022"

[models.gpt]
model = "openai/gpt-4o-mini"

[models.missing]
backend = "llama_cpp"
model = "models/missing.gguf"

[models.tiny]
backend = "llama_cpp"
model = "models/tiny.gguf"
""")


@pytest.mark.parametrize("theme", ["workbench-dark", "workbench-high-contrast"])
def test_models_screen_snapshot(snap_compare, tmp_path: Path, monkeypatch, theme: str) -> None:
    _snapshot_setup(tmp_path, monkeypatch)

    async def run_before(pilot) -> None:
        pilot.app.theme = theme
        await _open_models(pilot)

    assert snap_compare(make_app(load_settings()), terminal_size=(120, 24), run_before=run_before)
