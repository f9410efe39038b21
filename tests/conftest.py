"""Shared fixtures: small generated landing data sets and warehouses built from them (the helpers
they use are in tests/helpers.py), and each test marked with its tier."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from filelock import FileLock

from ml.synthetic.generate import generate
from tests.helpers import END_DATE, SMALL, copy_night, run_pipeline

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
def built_warehouse(small_landing, tmp_path_factory, worker_id) -> Path:
    """The small data set built for its last day: one night for the whole run, built by the first
    xdist worker that asks under a file lock, and copied into each worker's own directory (a copied
    data dir is a warehouse of its own, tests/e2e/test_erasure.py shows it), so tests that run stages
    on it still write only their worker's copy. Measured: each worker built its own, 85 s twice."""
    if worker_id == "master":  # one process: its own night, as before
        return _build_night(small_landing)
    shared_root = tmp_path_factory.getbasetemp().parent  # this run's temp root, common to its workers
    shared = shared_root / "built_warehouse"
    with FileLock(str(shared_root / "built_warehouse.lock")):
        if not (shared / "built.ok").exists():
            shutil.rmtree(shared, ignore_errors=True)
            shutil.copytree(small_landing, shared)  # the landing files and the generator's truth
            _build_night(shared)
            (shared / "built.ok").touch()
    return copy_night(shared, tmp_path_factory.mktemp("built") / "data")


def _build_night(data_dir: Path) -> Path:
    result = run_pipeline(data_dir, END_DATE.isoformat())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return data_dir
