"""Fault injection: every stage that writes the warehouse or the exports is killed (SIGKILL, in a
subprocess, at a random point of its run) and then rerun. After the rerun, every table and every
published file equals those of the uninterrupted night; right after each kill, every published day
is still a complete folder whose files match their manifest's checksums.

Training stages are left out: each run registers a new model version by design, so their outputs
differ from run to run whether killed or not.
"""

from __future__ import annotations

import hashlib
import json
import random
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from ml.paths import REPO_ROOT
from tests.helpers import END_DATE, copy_night, export_digests, pipeline_env, query

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("faults")]

DS = END_DATE.isoformat()
WRITING_STAGES = (
    "load_landing",
    "build_staging",
    "build_metrics",
    "build_feature_store",
    "decide_audiences",
    "publish_channels",
)
SCHEMAS = ("raw", "staging", "quarantine", "audit", "marts", "activation", "experiments", "channels")


def stage_command(stage: str) -> list[str]:
    return [sys.executable, "-c", f"from ml.orchestration.stages import run_stage; run_stage({stage!r}, '{DS}')"]


def tables(data_dir) -> dict[str, pd.DataFrame]:
    names = query(
        data_dir,
        "select table_schema || '.' || table_name as name from information_schema.tables "
        f"where table_type = 'BASE TABLE' and table_schema in {SCHEMAS} order by 1",
    )["name"]
    return {name: query(data_dir, f"select * from {name} order by all") for name in names}


def assert_published_days_complete(data_dir) -> None:
    manifests = sorted((data_dir / "exports").glob("*/ds=*/manifest.json"))
    assert manifests
    for manifest_path in manifests:
        manifest = json.loads(manifest_path.read_text())
        for audience in manifest["audiences"]:
            for described in audience["files"]:
                data = (manifest_path.parent / described["path"]).read_bytes()
                assert hashlib.sha256(data).hexdigest() == described["sha256"], manifest_path.parent


@pytest.fixture(scope="module")
def night(built_warehouse, tmp_path_factory):
    """A copy of the session's night for DS (built once per run, tests/conftest.py): a copied data
    directory is a warehouse of its own (tests/e2e/test_erasure.py shows it)."""
    return copy_night(built_warehouse, tmp_path_factory.mktemp("faults") / "data")


def test_a_stage_killed_at_a_random_point_and_rerun_leaves_the_outputs_of_an_uninterrupted_night(night):
    rng = random.Random(18)
    expected_tables, expected_files = tables(night), export_digests(night)
    env = pipeline_env(night)
    for stage in WRITING_STAGES:
        started = time.monotonic()
        uninterrupted = subprocess.run(stage_command(stage), cwd=REPO_ROOT, env=env, capture_output=True, text=True)
        assert uninterrupted.returncode == 0, f"{stage}: {uninterrupted.stderr[-3000:]}"
        duration = time.monotonic() - started
        kill_after = rng.uniform(0.1, duration)
        process = subprocess.Popen(
            stage_command(stage), cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(kill_after)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert_published_days_complete(night)
        rerun = subprocess.run(stage_command(stage), cwd=REPO_ROOT, env=env, capture_output=True, text=True)
        assert rerun.returncode == 0, f"{stage} rerun after a kill at {kill_after:.1f} s: {rerun.stderr[-3000:]}"
        got = tables(night)
        assert sorted(got) == sorted(expected_tables), stage
        for name, frame in expected_tables.items():
            pd.testing.assert_frame_equal(got[name], frame, obj=f"{name} after {stage} killed at {kill_after:.1f} s")
        assert export_digests(night) == expected_files, f"{stage} killed at {kill_after:.1f} s"
        leftovers = [p for p in (night / "exports").rglob(".*") if p.name.startswith((".staging-", ".retired-"))]
        assert not leftovers
