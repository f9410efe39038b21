"""The layers of `ml` (pyproject.toml, [tool.importlinter]): the orchestrator on top, the base at the
bottom; only the orchestrator loads the configuration."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

from ml.paths import REPO_ROOT

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=root,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_layer_contract_is_kept():
    result = lint_imports(REPO_ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_an_upward_import_breaks_the_layers(tmp_path):
    """The same contracts on a copy of `ml` whose warehouse imports the configuration (which sits in
    the orchestrator): the check fails and names the import."""
    shutil.copytree(REPO_ROOT / "ml", tmp_path / "ml", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    engine = tmp_path / "ml" / "warehouse" / "engine.py"
    engine.write_text(engine.read_text() + "\nfrom ml.orchestration.config import load_config  # noqa\n")
    result = lint_imports(tmp_path)
    assert result.returncode == 1
    assert "ml.warehouse.engine -> ml.orchestration.config" in result.stdout


def calls_of(path: Path, name: str) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == name
    ]


def test_only_the_orchestrator_loads_the_configuration():
    """Every stage takes the section it needs; `load_config()` is called in ml/orchestration and the
    DAG file only."""
    outside = [
        f"{path.relative_to(REPO_ROOT)}:{line}"
        for path in sorted((REPO_ROOT / "ml").rglob("*.py"))
        if "orchestration" not in path.relative_to(REPO_ROOT / "ml").parts
        for line in calls_of(path, "load_config")
    ]
    assert outside == []
