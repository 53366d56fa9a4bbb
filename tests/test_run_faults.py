"""Faults through `workbench run`: a clear message naming model and cause, a recorded run
with the right status, no crash, and never the key, in output, database, WAL or exports."""

from __future__ import annotations

import base64
import json
import urllib.parse
from pathlib import Path

import pytest
from click.testing import CliRunner
from fault_server import FaultServer, Scenario, closed_port
from llama_server import llama_server  # noqa: F401  (session fixture)

from workbench.cli import cli

CANARY = "sk-canary-Zq8x7Wv6Ut5Sr4Qp"


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _runs() -> list[dict]:
    from workbench.config import load_settings
    from workbench.storage import runs
    from workbench.storage.db import open_store

    store = open_store(load_settings().database.url)
    try:
        return [r.__dict__ for r in runs.list_runs(store)]
    finally:
        store.close()


@pytest.fixture
def server():
    with FaultServer() as fault:
        yield fault


@pytest.mark.parametrize(
    ("scenario", "status", "message"),
    [
        (Scenario(kind="rate_limit", times=1, retry_after="0.2"), "ok", None),
        (Scenario(kind="rate_limit", times=10, retry_after="0.1"), "error", "rate limited (HTTP 429)"),
        (Scenario(kind="server_error", times=None), "error", "HTTP 500"),
        (Scenario(kind="drop", drop_after=2), "partial", "connection"),
        (Scenario(kind="invalid_json"), "partial", "invalid"),
        (Scenario(kind="unauthorized"), "error", "HTTP 401"),
        (Scenario(kind="not_found"), "error", "not found"),
    ],
)
def test_faults_are_recorded_with_the_right_status(
    server: FaultServer, monkeypatch, scenario: Scenario, status: str, message: str | None
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    server.scenario = scenario
    result = run("run", "openai/faulty", "--api-base", server.base_url, "-m", "hi", "--json")
    data = json.loads(result.stdout)
    assert data["status"] == status, data
    assert result.exit_code == (0 if status == "ok" else 1)
    if message:
        assert message.lower() in data["error"].lower()
        assert "openai/faulty" in data["error"]  # names the model
    [stored] = _runs()
    assert stored["status"] == status and stored["id"] == data["run_id"]
    assert CANARY not in result.output


def test_stall_times_out_on_the_first_token(server: FaultServer, monkeypatch) -> None:
    monkeypatch.setenv(
        "WORKBENCH_MODELS",
        json.dumps({"slow": {"backend": "openai", "model": "slow", "api_base": server.base_url,
                             "options": {"first_token_timeout_s": 0.3}}}),
    )
    server.scenario = Scenario(kind="stall", stall_s=3)
    data = json.loads(run("run", "slow", "-m", "hi", "--json").stdout)
    assert data["status"] == "error" and "first token" in data["error"]


def test_closed_port_and_unknown_model() -> None:
    data = json.loads(run("run", "openai/x", "--api-base", f"http://127.0.0.1:{closed_port()}/v1",
                          "-m", "hi", "--json").stdout)
    assert data["status"] == "error" and "connect" in data["error"].lower()
    unknown = CliRunner().invoke(cli, ["run", "nosuchmodel", "-m", "hi"])
    assert unknown.exit_code == 1 and "unknown model 'nosuchmodel'" in unknown.stderr


def test_canary_key_never_stored_or_exported(server: FaultServer, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    for scenario in (
        Scenario(kind="unauthorized"),
        Scenario(kind="stall", stall_s=2),
        Scenario(kind="drop", drop_after=1),
        Scenario(kind="invalid_json"),
        Scenario(kind="server_error", times=None),
        Scenario(kind="ok"),
    ):
        server.scenario = scenario
        monkeypatch.setenv(
            "WORKBENCH_MODELS",
            json.dumps({"m": {"backend": "openai", "model": "m", "api_base": server.base_url,
                              "provider": "openai", "options": {"first_token_timeout_s": 0.3, "max_retries": 1,
                                          "backoff_s": 0.01}}}),
        )
        out = run("run", "m", "-m", "hello", "--json")
        assert CANARY not in out.output
    assert any(r["headers"].get("authorization") == f"Bearer {CANARY}" for r in
               [req.__dict__ for req in server.requests])  # the key really was sent
    prompt = tmp_path / "p.yaml"
    prompt.write_text("name: p\nmessages:\n  - {role: user, content: hi}\n")
    run("prompts", "commit", str(prompt), "-m", "x")
    run("prompts", "export", str(tmp_path / "export"))
    forms = {
        CANARY,
        urllib.parse.quote(CANARY),
        base64.b64encode(CANARY.encode()).decode(),
        base64.b64encode(f"Bearer {CANARY}".encode()).decode()[:20],
    }
    from workbench.config import data_dir

    files = [p for p in data_dir().rglob("*") if p.is_file()]
    files += [p for p in (tmp_path / "export").rglob("*") if p.is_file()]
    assert any(p.name == "workbench.db" for p in files)
    for path in files:
        blob = path.read_bytes()
        for form in forms:
            assert form.encode() not in blob, f"{form!r} found in {path}"
    statuses = sorted(r["status"] for r in _runs())
    assert statuses == ["error", "error", "error", "ok", "partial", "partial"]


def test_run_through_llama_cpp_server(llama_server: str, monkeypatch) -> None:  # noqa: F811
    direct = json.loads(run("run", "openai/smollm2", "--api-base", llama_server, "-m",
                            "Say hi.", "--max-tokens", "12", "--temperature", "0", "--json").stdout)
    monkeypatch.setenv(
        "WORKBENCH_MODELS",
        json.dumps({"via-litellm": {"backend": "litellm", "model": "openai/smollm2",
                                    "api_base": llama_server}}),
    )
    through = json.loads(run("run", "via-litellm", "-m", "Say hi.", "--max-tokens", "12",
                             "--temperature", "0", "--json").stdout)
    for data in (direct, through):
        assert data["status"] == "ok" and data["output"], data
        for key in ("ttft_ms", "tpot_ms", "e2e_ms", "tokens_per_s", "input_tokens", "output_tokens"):
            assert data[key] is not None, key
        assert data["tokens_estimated"] is True  # llama_cpp.server sends no usage when streaming


def test_api_base_gets_no_stored_key_and_no_list_price(server: FaultServer, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    server.scenario = Scenario(kind="ok")
    data = json.loads(run("run", "openai/gpt-4o-mini", "--api-base", server.base_url, "-m", "hi",
                          "--json").stdout)
    assert data["status"] == "ok"
    assert server.requests[-1].headers["authorization"] == "Bearer sk-no-key"
    assert data["cost_usd"] is None and "own server" in data["cost_source"]


def test_bad_model_config_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setenv("WORKBENCH_MODELS", json.dumps({
        "badmax": {"backend": "openai", "model": "x", "api_base": "http://127.0.0.1:9/v1",
                   "params": {"max_tokens": "lots"}},
    }))
    result = CliRunner().invoke(cli, ["run", "badmax", "-m", "hi"])
    assert result.exit_code == 1 and "model badmax: invalid params: max_tokens" in result.stderr
    monkeypatch.setenv("WORKBENCH_MODELS", json.dumps({
        "badport": {"backend": "openai", "model": "x", "api_base": "http://127.0.0.1:99999/v1"},
    }))
    rows = json.loads(run("models", "list", "--json").stdout)
    bad = next(r for r in rows if r["name"] == "badport")
    assert not bad["usable"] and "invalid api_base" in bad["reason"]
