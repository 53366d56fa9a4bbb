"""The installed `workbench` script, as a user runs it, in a fresh HOME."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def _script() -> str:
    return str(Path(sys.executable).parent / "workbench")


def test_fresh_home_commit_list_render(tmp_path: Path, isolated_env: Path) -> None:
    prompt = tmp_path / "p.yaml"
    prompt.write_text(
        "name: hello\nmessages:\n  - role: user\n    content: Hi {{ who }}\nvariables:\n  who: you\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_USER__NAME"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [_script(), *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
        )

    assert run("--help").returncode == 0
    committed = run("prompts", "commit", str(prompt), "-m", "first")
    assert committed.returncode == 0, committed.stderr
    assert committed.stdout.strip() == "hello@1"
    assert (isolated_env / "data" / "workbench" / "workbench.db").is_file()
    listing = json.loads(run("prompts", "list", "--json").stdout)
    assert [(p["name"], p["latest"]) for p in listing] == [("hello", 1)]
    rendered = run("prompts", "render", "hello")
    assert rendered.stdout == "[user]\nHi you\n"
    missing = run("prompts", "show", "nope")
    assert missing.returncode == 1
    assert missing.stderr.strip() == "Error: unknown prompt 'nope'"
    assert "Traceback" not in missing.stderr
