"""Model ids name a provider litellm knows, checked without importing litellm."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from workbench.cli import cli
from workbench.config import load_settings
from workbench.errors import NotFoundError
from workbench.models import resolve_model
from workbench.providers import LITELLM_PROVIDERS, unknown_provider


def test_the_copy_equals_litellms_own_list() -> None:
    # The import costs seconds: here only, never when a suite is checked.
    from workbench.backends.litellm import load_litellm

    litellm = load_litellm()
    from litellm.llms.openai_like.json_loader import JSONProviderRegistry

    theirs = {p.value for p in litellm.provider_list} | set(JSONProviderRegistry.list_providers())
    assert theirs == LITELLM_PROVIDERS, (
        f"litellm {litellm.version if hasattr(litellm, 'version') else ''} changed its providers: "
        f"add {sorted(theirs - LITELLM_PROVIDERS)}, drop {sorted(LITELLM_PROVIDERS - theirs)} "
        "in workbench/providers.py"
    )


def test_known_and_unknown_prefixes() -> None:
    for model_id in ("openai/gpt-4o-mini", "anthropic/claude", "ollama_chat/llama3",
                     "huggingface/meta-llama/Llama-3-8B", "together_ai/x"):
        assert unknown_provider(model_id) is None
    problem = unknown_provider("antropic/claude-3")
    assert problem is not None
    assert "unknown provider 'antropic' in model id 'antropic/claude-3'" in problem
    assert "did you mean anthropic" in problem


def test_resolve_refuses_an_unknown_provider_before_any_call() -> None:
    settings = load_settings()
    with pytest.raises(NotFoundError, match="unknown provider 'nosuch-provider'"):
        resolve_model(settings, "nosuch-provider/foo")
    with pytest.raises(NotFoundError, match=re.escape("openai/MODEL")):
        resolve_model(settings, "meta-llama/Llama-3", api_base="http://127.0.0.1:9/v1")
    assert resolve_model(settings, "groq/llama3").backend == "litellm"


def test_a_suite_with_an_unknown_provider_exits_2(tmp_path: Path, monkeypatch) -> None:
    calls = []
    import workbench.engine

    monkeypatch.setattr(workbench.engine.Engine, "run", lambda *a, **k: calls.append(a))
    (tmp_path / "suite.yaml").write_text(
        "prompts: [{name: p, messages: [{role: user, content: hi}]}]\n"
        "models: [echo, nosuch-provider/foo]\ntests: [{vars: {}}]\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["eval", str(tmp_path / "suite.yaml")])
    assert result.exit_code == 2, result.output
    assert "suite.yaml:2: unknown provider 'nosuch-provider' in model id 'nosuch-provider/foo'" in (
        result.stderr)
    assert calls == []

