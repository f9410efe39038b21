"""The dbt project's shared lists (its vars): the landing contract's event types, order statuses,
survey types and consent channels, and the feature windows. One list each, read by dbt's models and
tests, the segment allowlist, the Feast definitions and the demo data generator."""

from __future__ import annotations

from functools import cache

import yaml

from ml.paths import dbt_project_dir


@cache
def dbt_project_vars() -> dict:
    """The vars of dbt_project.yml (the defaults; ds and the metrics settings come per run)."""
    return yaml.safe_load((dbt_project_dir() / "dbt_project.yml").read_text(encoding="utf-8"))["vars"]
