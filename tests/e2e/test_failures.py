"""Fail fast, say why, tell someone: a night whose input is missing or corrupted, or whose ds is far
past the data, fails at once (no retry after 5 minutes), its run ends on one line naming the first
failing task and its cause, and the configured webhook receives that line. A local HTTP receiver on
127.0.0.1 stands in for Slack; every request the test makes goes to loopback only.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from ml.paths import REPO_ROOT
from tests.helpers import END_DATE, orchestrate, run_pipeline

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("failures")]

# Each failure must show in well under the 5-minute retry delay (setup of Airflow's database included).
FAST_SECONDS = 60


class Receiver(ThreadingHTTPServer):
    """Collects the JSON bodies POSTed to it."""

    def __init__(self):
        self.messages: list[dict] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(handler) -> None:
                body = handler.rfile.read(int(handler.headers.get("Content-Length", 0)))
                self.messages.append(json.loads(body))
                handler.send_response(200)
                handler.end_headers()

            def log_message(handler, *arguments) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


@pytest.fixture
def receiver():
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def notifying_config(receiver, tmp_path) -> Path:
    raw = yaml.safe_load((REPO_ROOT / "config" / "personalization.yml").read_text())
    raw["notifications"] = {"webhook_url": "${PZ_TEST_WEBHOOK}"}
    path = tmp_path / "personalization.yml"
    path.write_text(yaml.safe_dump(raw))
    return path


def run_night(data_dir: Path, config: Path, receiver: Receiver, ds: dt.date = END_DATE):
    started = time.monotonic()
    result = orchestrate(
        data_dir,
        "run",
        "--ds",
        ds.isoformat(),
        env_extra={
            "PZ_CONFIG": str(config),
            "PZ_TEST_WEBHOOK": f"http://127.0.0.1:{receiver.server_address[1]}/hook",
        },
    )
    return result, time.monotonic() - started


def final_line(result) -> str:
    return result.stderr.strip().splitlines()[-1]


def test_a_missing_landing_folder_fails_at_once_named_and_notified(tmp_path, notifying_config, receiver):
    data_dir = tmp_path / "no_landing"
    data_dir.mkdir()
    result, seconds = run_night(data_dir, notifying_config, receiver)
    assert result.returncode == 2
    line = final_line(result)
    assert line.startswith("error: nightly_personalization ds=2026-10-31 FAILED at load_landing: LandingError:")
    assert "does not exist" in line and "Set PZ_DATA_DIR or run `make data`" in line
    assert seconds < FAST_SECONDS, f"{seconds:.0f} s: was it retried?"
    assert "try=2" not in result.stderr
    texts = [message["text"] for message in receiver.messages]
    assert len(texts) == 1 and texts[0] == line.removeprefix("error: ").rsplit(" (", 1)[0], texts


def test_a_corrupted_warehouse_fails_at_once_naming_the_file(small_landing, tmp_path, notifying_config, receiver):
    data_dir = tmp_path / "corrupted"
    shutil.copytree(small_landing / "landing", data_dir / "landing")
    (data_dir / "warehouse.duckdb").write_bytes(b"not a database" * 1000)
    result, seconds = run_night(data_dir, notifying_config, receiver)
    assert result.returncode == 2 and seconds < FAST_SECONDS
    line = final_line(result)
    assert "FAILED at load_landing: WarehouseUnreadableError" in line and "warehouse.duckdb" in line
    assert "Restore it from a backup" in line
    assert receiver.messages and "WarehouseUnreadableError" in receiver.messages[0]["text"]


def test_a_stale_ds_refuses_and_allow_stale_overrides_it(small_landing, tmp_path, notifying_config, receiver):
    data_dir = tmp_path / "stale"
    shutil.copytree(small_landing / "landing", data_dir / "landing")
    stale = END_DATE + dt.timedelta(days=76)
    result, seconds = run_night(data_dir, notifying_config, receiver, stale)
    assert result.returncode == 2 and seconds < FAST_SECONDS
    line = final_line(result)
    # The small data set carries a few rows dated after END_DATE (its later-dated bad rows): at this ds
    # they have landed, so the newest landed row is the newest of those.
    found = re.search(rf"ds={stale} is (\d+) days past the newest landed row \((\d{{4}}-\d\d-\d\d)\)", line)
    assert found, line
    newest = dt.date.fromisoformat(found.group(2))
    assert newest >= END_DATE and int(found.group(1)) == (stale - newest).days > 2
    assert "schedule.max_staleness_days (2)" in line and "--allow-stale" in line
    # A deliberate backfill: the same load passes with the override.
    allowed = run_pipeline(data_dir, stale.isoformat(), True, "--stage", "load_landing", "--allow-stale")
    assert allowed.returncode == 0, allowed.stderr[-2000:]
    assert "--allow-stale: running all the same" in allowed.stderr


def test_a_bad_configuration_fails_before_any_task_naming_the_key(tmp_path):
    data_dir = tmp_path / "bad_config"
    data_dir.mkdir()
    config = tmp_path / "personalization.yml"
    config.write_text("schedule:\n  max_staleness_days: -3\n")
    started = time.monotonic()
    result = orchestrate(data_dir, "run", "--ds", END_DATE.isoformat(), env_extra={"PZ_CONFIG": str(config)})
    assert result.returncode == 2 and time.monotonic() - started < FAST_SECONDS
    assert "schedule.max_staleness_days" in result.stderr and "Invalid configuration" in result.stderr
