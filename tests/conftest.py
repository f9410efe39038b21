"""Shared fixtures: small generated landing data sets and warehouses built from them (the helpers
they use are in tests/helpers.py), and each test marked with its tier."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml.synthetic.generate import generate
from tests.helpers import END_DATE, SMALL, run_pipeline

TIERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(items) -> None:
    """Mark each test with its tier, the folder it sits in: `make test-fast` runs tests/unit alone,
    and `pytest -m "not e2e"` everything but the end-to-end runs."""
    for item in items:
        tier = next((part for part in item.path.parts if part in TIERS), None)
        if tier:
            item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(scope="session")
def small_landing(tmp_path_factory) -> Path:
    """A small generated data set with every bad-row class injected; returns its data dir."""
    data_dir = tmp_path_factory.mktemp("small")
    generate(SMALL, data_dir / "landing")
    return data_dir


@pytest.fixture(scope="session")
def built_warehouse(small_landing) -> Path:
    """The small data set built for its last day."""
    result = run_pipeline(small_landing, END_DATE.isoformat())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return small_landing
