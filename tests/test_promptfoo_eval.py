"""promptfoo configs through the whole `workbench eval` path (engine, echo backend, grading,
results), compared with promptfoo 0.120.0's own recorded verdicts."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from llama_server import llama_server  # noqa: F401 - the session fixture

from workbench.cli import cli
from workbench.models import demo_model_path

PARITY = Path(__file__).parent / "promptfoo_parity"
FOLDERS = sorted(p.name for p in PARITY.iterdir() if (p / "promptfooconfig.yaml").is_file())


def recorded(folder: str) -> dict[tuple[str, str, int], dict[str, Any]]:
    output = json.loads((PARITY / folder / "promptfoo-output.json").read_text(encoding="utf-8"))
    return {
        (row["provider"]["label"] or row["provider"]["id"], row["prompt"]["label"], row["testIdx"]): row
        for row in output["results"]["results"]
    }


def _timed(row: dict[str, Any]) -> bool:
    """Whether a verdict depends on the call's latency (ours and promptfoo's differ)."""
    components = (row.get("gradingResult") or {}).get("componentResults") or []
    kinds = {(c.get("assertion") or {}).get("type", "") for c in components}
    return any(k.removeprefix("not-") == "latency" for k in kinds)


@pytest.mark.parametrize("folder", FOLDERS)
def test_eval_gives_promptfoos_verdicts(folder: str, tmp_path: Path) -> None:
    old = os.getcwd()
    os.chdir(PARITY / folder)  # promptfoo was run from the folder (labels of file prompts)
    try:
        result = CliRunner().invoke(
            cli, ["eval", "promptfooconfig.yaml", "--json", "--no-cache"], catch_exceptions=False
        )
    finally:
        os.chdir(old)
    assert result.exit_code in (0, 1), result.output
    rows = json.loads(result.stdout)["results"]
    expected = recorded(folder)
    assert len(rows) == len(expected)
    compared = 0
    for row in rows:
        theirs = expected[(row["model"], row["variant"], row["test_idx"])]
        assert row["status"] == "ok", row
        if _timed(theirs):
            continue
        assert row["pass"] == theirs["success"], (row, theirs.get("gradingResult"))
        compared += 1
    assert compared >= len(rows) - 3
    all_passed = all(r["success"] for r in expected.values())
    assert (result.exit_code == 0) == all_passed or any(_timed(r) for r in expected.values())


def test_promptfoo_config_on_smollm2_through_llama_cpp_server(
    tmp_path: Path, llama_server: str  # noqa: F811
) -> None:
    (tmp_path / "tests.csv").write_text("who,__expected\nAnn,not-is-json\nBob,not-is-json\n",
                                        encoding="utf-8")
    config = tmp_path / "promptfooconfig.yaml"
    config.write_text(
        "description: SmolLM2 served\n"
        "prompts:\n  - 'Say hello to {{who}}.'\n  - label: formal\n    raw: 'Greet {{who}} formally.'\n"
        "providers:\n  - id: openai:chat:smollm2\n    label: served\n"
        f"    config: {{apiBaseUrl: '{llama_server}', temperature: 0, max_tokens: 12}}\n"
        "tests: file://tests.csv\n"
        "evaluateOptions: {maxConcurrency: 1}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["eval", str(config), "--json"], catch_exceptions=False)
    assert result.exit_code in (0, 1), result.output
    rows = json.loads(result.stdout)["results"]
    assert [(r["variant"], r["model"], r["test_idx"]) for r in rows] == [
        ("Say hello to {{who}}.", "served", 0), ("Say hello to {{who}}.", "served", 1),
        ("formal", "served", 0), ("formal", "served", 1),
    ]
    assert all(r["status"] == "ok" and r["output"] for r in rows), rows
    assert all(r["ttft_ms"] is not None for r in rows)


@pytest.mark.skipif(demo_model_path() is None, reason="demo extra not installed")
def test_promptfoo_config_on_smollm2_locally(tmp_path: Path) -> None:
    config = tmp_path / "promptfooconfig.yaml"
    config.write_text(
        "prompts: ['Name a {{thing}}.']\n"
        "providers:\n  - id: workbench:smollm2\n    config: {temperature: 0, max_tokens: 8}\n"
        "tests:\n  - vars: {thing: colour}\n    assert: [{type: not-is-json}]\n"
        "  - vars: {thing: fruit}\n    assert: [{type: not-is-json}]\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["eval", str(config), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["results"]
    assert [r["model"] for r in rows] == ["workbench:smollm2"] * 2
    assert all(r["status"] == "ok" and r["output"] and r["output_tokens"] >= 1 for r in rows)


def test_workbench_provider_with_an_unknown_model_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "promptfooconfig.yaml"
    config.write_text("prompts: ['x']\nproviders: [workbench:nosuch]\ntests: [{vars: {}}]\n",
                      encoding="utf-8")
    result = CliRunner().invoke(cli, ["eval", str(config)], catch_exceptions=False)
    assert result.exit_code == 2
    assert "promptfooconfig.yaml:2" in result.stderr and "unknown model 'nosuch'" in result.stderr


def _served_config(tmp_path: Path, base_url: str, options: str, cases: int = 3) -> Path:
    config = tmp_path / "promptfooconfig.yaml"
    tests = "".join(f"  - vars: {{q: question {i}}}\n" for i in range(cases))
    config.write_text(
        "prompts: ['{{q}}']\n"
        "providers:\n  - id: openai:chat:fake\n"
        f"    config: {{apiBaseUrl: '{base_url}', temperature: 0}}\n"
        f"tests:\n{tests}evaluateOptions: {options}\n",
        encoding="utf-8",
    )
    return config


def test_evaluate_options_cache_false_calls_the_model_again(tmp_path: Path) -> None:
    from fault_server import FaultServer, Scenario

    with FaultServer(Scenario("ok", chunks=2)) as server:
        cached = _served_config(tmp_path, server.base_url, "{showProgressBar: false}")
        for _ in range(2):
            assert CliRunner().invoke(cli, ["eval", str(cached)]).exit_code == 0
        assert len(server.requests) == 3  # the second run came from the cache
        uncached = _served_config(tmp_path, server.base_url, "{cache: false}")
        result = CliRunner().invoke(cli, ["eval", str(uncached), "--json"])
        assert result.exit_code == 0, result.output
        assert len(server.requests) == 6
        assert [r["cached"] for r in json.loads(result.stdout)["results"]] == [False] * 3


def test_evaluate_options_delay_spaces_calls_one_at_a_time(tmp_path: Path) -> None:
    from fault_server import FaultServer, Scenario

    with FaultServer(Scenario("ok", chunks=2, delay_s=0.02)) as server:
        config = _served_config(tmp_path, server.base_url, "{delay: 150, maxConcurrency: 4}")
        result = CliRunner().invoke(cli, ["eval", str(config), "--no-cache", "-j", "4"])
        assert result.exit_code == 0, result.output
        assert len(server.requests) == 3
        for before, after in zip(server.sent_at, server.requests[1:], strict=False):
            # The next call starts only after the previous one ended, and 150 ms later.
            assert after.at - before[-1] >= 0.15
