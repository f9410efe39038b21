"""The code stays lint-clean: ruff for Python, sqlfluff (dbt templater) for the dbt models."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ml.paths import REPO_ROOT

BIN = Path(sys.executable).parent


def test_ruff_finds_nothing():
    result = subprocess.run([BIN / "ruff", "check", "."], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


@pytest.mark.slow
def test_sqlfluff_finds_nothing_in_the_dbt_models(tmp_path):
    # The dbt templater opens the warehouse to compile: give it a scratch one.
    env = {**os.environ, "PZ_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [BIN / "sqlfluff", "lint", "models"],
        cwd=REPO_ROOT / "dbt_project",
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-5000:]
