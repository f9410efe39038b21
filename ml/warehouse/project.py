"""The dbt project's shared lists (its vars): the landing contract's event types, order statuses,
survey types and consent channels, and the feature windows. One list each, read by dbt's models and
tests, the segment allowlist, the Feast definitions and the demo data generator."""

from __future__ import annotations

import hashlib
from functools import cache

import yaml

from ml.paths import dbt_project_dir


@cache
def dbt_project_vars() -> dict:
    """The vars of dbt_project.yml (the defaults; ds and the metrics settings come per run)."""
    return yaml.safe_load((dbt_project_dir() / "dbt_project.yml").read_text(encoding="utf-8"))["vars"]


# What judges a landing row in staging's parse-once and classified models: their SQL, the macros, and
# the project's vars (the allowed values). A change to any of them checks every row again.
STAGING_CHECKS_SOURCES = (
    "dbt_project.yml",
    "macros/**/*.sql",
    "models/staging/checked/*.sql",
    "models/staging/classified/*.sql",
)


def staging_checks_version() -> str:
    """A hash of the staging checks (STAGING_CHECKS_SOURCES), the dbt var `checks_version`."""
    project = dbt_project_dir()
    digest = hashlib.sha256()
    for pattern in STAGING_CHECKS_SOURCES:
        for path in sorted(project.glob(pattern)):
            digest.update(path.relative_to(project).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]
