"""Contracts of the package: fast CLI import, a headless engine, one top-level package."""

from __future__ import annotations

import ast
import subprocess
import sys
from importlib.metadata import distribution
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("litellm", "chromadb", "llama_cpp", "textual", "sqlalchemy", "sqlmodel", "alembic")


@pytest.mark.parametrize("module", ["workbench.cli", "workbench.start"])
def test_cli_import_loads_nothing_heavy(tmp_path: Path, module: str) -> None:
    code = (
        f"import sys, {module}\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert out.stdout.strip() == ""


def test_help_runs_without_heavy_imports(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from workbench.cli import cli\n"
        "try:\n    cli(['--help'], prog_name='workbench')\n"
        "except SystemExit as e:\n    assert e.code == 0\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "prompts" in result.stdout and "datasets" in result.stdout


def _imports(tree: ast.AST) -> list[tuple[str, bool]]:
    """(module, at module level) for every import in a tree."""
    found = []
    top = {id(n) for n in ast.iter_child_nodes(tree)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, id(node) in top) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, id(node) in top))
    return found


@pytest.mark.parametrize("folder", ["workbench", "storage", "backends"])
def test_engine_never_imports_textual(folder: str) -> None:
    for path in (ROOT / folder).rglob("*.py"):
        where = path.relative_to(ROOT)
        for name, module_level in _imports(ast.parse(path.read_text(), str(path))):
            assert not name.startswith("textual"), f"{where} imports {name}"
            if name.startswith(("workbench.screens", "workbench.themes")):
                # Only the script and the CLI may start the app, inside what starts it.
                assert str(where) in ("workbench/cli.py", "workbench/start.py"), f"{where}: {name}"
                assert not module_level, f"{where}: {name}"


def test_only_workbench_is_installed_at_top_level() -> None:
    import importlib.util

    files = distribution("prompt-workbench").files or []
    tops = {f.parts[0] for f in files if f.suffix == ".py" and len(f.parts) > 1}
    assert tops <= {"workbench"}  # an editable install lists no package files at all
    for generic in ("storage", "screens", "backends", "themes"):
        assert importlib.util.find_spec(generic) is None, f"{generic} is importable"


def test_data_files_are_installed() -> None:
    import workbench.screens
    import workbench.storage.migrations
    import workbench.themes

    assert (Path(workbench.themes.__file__).parent / "global.tcss").is_file()
    assert (Path(workbench.screens.__file__).parent / "prompts.tcss").is_file()
    versions = Path(workbench.storage.migrations.__file__).parent / "versions"
    assert len(list(versions.glob("0*.py"))) >= 2
