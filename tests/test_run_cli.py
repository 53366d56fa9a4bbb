"""`workbench run` and `workbench models list`, in-process, with the real SmolLM2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from workbench.cli import cli
from workbench.models import demo_model_path

needs_demo = pytest.mark.skipif(demo_model_path() is None, reason="demo extra not installed")


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@needs_demo
def test_run_smollm2_json() -> None:
    result = run("run", "smollm2", "-m", "Say hi.", "--max-tokens", "12", "--temperature", "0", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    for key in ("output", "status", "ttft_ms", "tpot_ms", "e2e_ms", "tokens_per_s",
                "input_tokens", "output_tokens", "cost_usd", "cost_source", "run_id"):
        assert key in data
    assert data["status"] == "ok" and data["output"]
    assert data["output_tokens"] >= 1 and data["input_tokens"] > 5


@needs_demo
def test_run_stored_prompt_streams_and_prints_metrics(tmp_path: Path) -> None:
    prompt = tmp_path / "p.yaml"
    prompt.write_text(
        "name: colours\nmessages:\n  - role: user\n    content: Name {{ n }} colours.\n"
        "params:\n  max_tokens: 10\n  temperature: 0\n"
    )
    run("prompts", "commit", str(prompt), "-m", "first")
    result = run("run", "smollm2", "--prompt", "colours@1", "--var", "n=2")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip()
    assert "[ok] ttft" in result.stderr and "tok/s" in result.stderr and "run " in result.stderr


def test_run_needs_exactly_one_input() -> None:
    result = CliRunner().invoke(cli, ["run", "smollm2"])
    assert result.exit_code == 2 and "-m TEXT or --prompt" in result.stderr


def test_run_missing_gguf_is_recorded_error(tmp_path: Path) -> None:
    result = run("run", str(tmp_path / "missing.gguf"), "-m", "hi", "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["status"] == "error" and "does not exist" in data["error"]
    assert data["output_tokens"] is None and data["ttft_ms"] is None


@needs_demo
def test_models_list(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv(
        "WORKBENCH_MODELS",
        json.dumps({
            "gone": {"backend": "llama_cpp", "model": str(tmp_path / "gone.gguf")},
            "cloud": {"model": "anthropic/claude-3-5-haiku-20241022"},
            "server": {"backend": "openai", "model": "smollm2", "api_base": "http://127.0.0.1:9/v1"},
        }),
    )
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    rows = {r["name"]: r for r in json.loads(run("models", "list", "--json").stdout)}
    assert rows["smollm2"]["usable"] and rows["smollm2"]["source"] == "demo"
    assert not rows["gone"]["usable"] and "does not exist" in rows["gone"]["reason"]
    assert not rows["cloud"]["usable"] and "ANTHROPIC_API_KEY" in rows["cloud"]["reason"]
    assert not rows["server"]["usable"] and "not reachable" in rows["server"]["reason"]
    text = run("models", "list").stdout
    assert "smollm2" in text and "no: " in text
