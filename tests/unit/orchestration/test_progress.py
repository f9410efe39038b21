"""The run's console: one line per finished stage with its time and result, alerts beneath, Airflow's and
the children's output in the log file, and a closing line that says ok or why not."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ml.orchestration.progress import PROGRESS_FILE, one_line, quiet_run, record_stage, stage_line


def test_a_result_becomes_one_readable_line():
    result = {"rows_read": 120456, "quarantined": 31, "auc": 0.71234, "tables": ["a", "b"], "alerts": ["x"]}
    assert one_line(result) == "rows_read 120,456  quarantined 31  auc 0.712  tables 2"
    assert one_line({"summary": "3 audiences, 1,204 customers", "rows": 5}) == "3 audiences, 1,204 customers"
    assert one_line(None) == "" and one_line([{"shard": 0}, {"shard": 1}]) == "2 items"


def test_a_sharded_stage_is_one_line_unless_a_shard_fails():
    assert stage_line({"task": "score_propensity.shard 2/4", "seconds": 1.0, "result": "rows 5"}) == []
    assert stage_line({"task": "score_propensity.plan", "seconds": 1.0, "result": "4 items"}) == []
    (merged,) = stage_line({"task": "score_propensity.merge", "seconds": 1.2, "result": "rows 4,781"})
    assert merged.split()[:3] == ["score_propensity", "1.2", "s"]
    (failed,) = stage_line({"task": "score_propensity.shard 2/4", "seconds": 1.0, "error": "MemoryError: "})
    assert "FAILED: MemoryError" in failed


def test_nothing_is_recorded_outside_a_run(tmp_path, monkeypatch):
    monkeypatch.delenv(PROGRESS_FILE, raising=False)
    record_stage("build_staging", "2026-10-31", 1.0, {"rows": 1})
    assert not list(tmp_path.iterdir())


def test_the_console_shows_stages_and_alerts_and_the_log_file_gets_everything_else(tmp_path, capfd):
    with quiet_run("run", tmp_path / "logs", verbose=False) as console:
        console.say("night 1 of 1  ds=2026-10-31")
        print("an Airflow log line")
        subprocess.run([sys.executable, "-c", "import sys; print('dbt output'); print('a warning', file=sys.stderr)"])
        record_stage("build_staging", "2026-10-31", 14.24, {"rows_read": 1204, "alerts": ["erasure needs a person"]})
        record_stage("train_uplift", "2026-10-31", 2.0, error="UpliftError: no randomized sends")
    shown = capfd.readouterr().out
    assert "night 1 of 1" in shown and "build_staging" in shown and "14.2 s  rows_read 1,204" in shown
    assert "! erasure needs a person" in shown and "FAILED: UpliftError: no randomized sends" in shown
    assert "an Airflow log line" not in shown and "dbt output" not in shown and "a warning" not in shown
    assert shown.strip().splitlines()[-1].startswith("ok; ")
    log_file = next((tmp_path / "logs").glob("run_*.log"))
    logged = log_file.read_text()
    assert "an Airflow log line" in logged and "dbt output" in logged and "a warning" in logged
    assert str(log_file) in shown and PROGRESS_FILE not in os.environ


def test_a_failed_run_ends_on_its_cause(tmp_path, capfd):
    with pytest.raises(RuntimeError), quiet_run("demo", tmp_path / "logs", verbose=False):
        raise RuntimeError("nightly_personalization ds=2026-10-31 FAILED at build_staging: bad file")
    last = capfd.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("failed: nightly_personalization ds=2026-10-31 FAILED at build_staging: bad file; ")
