"""Safe to open, safe to kill, one writer: the export writers and the run lock, without a warehouse."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pandas as pd
import pytest

from ml.activation.export import _csv_bytes, _swap_in, clean_leftovers, neutralize_formula
from ml.paths import REPO_ROOT
from ml.warehouse.run_lock import RunLockedError, exclusive_run


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ('=HYPERLINK("http://x","click")', '\'=HYPERLINK("http://x","click")'),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(1)", "'@SUM(1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("welcome_de_DE", "welcome_de_DE"),
        ("a=b", "a=b"),
        (None, None),
        (1.5, 1.5),
    ],
)
def test_a_cell_a_spreadsheet_would_run_is_written_as_text(value, written):
    assert neutralize_formula(value) == written


def test_csv_files_carry_no_formula_but_numbers_keep_their_sign():
    frame = pd.DataFrame(
        {
            "ds": [dt.date(2026, 10, 31)],
            "customer_id": ["C1"],
            "email": ["=1+1@example.com"],
            "score": [-0.5],
            "recommended_items": [["I1", "I2"]],
        }
    )
    text = _csv_bytes(frame).decode()
    assert "'=1+1@example.com" in text and ",-0.5," in text and "I1|I2" in text


def test_the_formula_guard_covers_pandas_string_columns_too():
    """pandas 3 makes `string` the default text dtype: the guard must not depend on `object`."""
    frame = pd.DataFrame(
        {
            "ds": [dt.date(2026, 10, 31)] * 2,
            "customer_id": pd.Series(["C1", "C2"], dtype="string"),
            "content_id": pd.Series(['=HYPERLINK("https://example.invalid","x")', None], dtype="string"),
            "score": [-0.5, 1.0],
            "recommended_items": [["I1"], []],
        }
    )
    text = _csv_bytes(frame).decode()
    assert "'=HYPERLINK" in text and "\n=" not in text and ",-0.5," in text


def test_a_folder_is_exchanged_whole_and_nothing_is_left_behind(tmp_path):
    final = tmp_path / "email" / "ds=2026-10-31"
    final.mkdir(parents=True)
    (final / "a.csv").write_text("old")
    staged = final.with_name(".staging-ds=2026-10-31-1")
    staged.mkdir()
    (staged / "a.csv").write_text("new")
    _swap_in(staged, final)
    assert (final / "a.csv").read_text() == "new"
    assert sorted(p.name for p in final.parent.iterdir()) == ["ds=2026-10-31"]


def test_leftovers_of_a_killed_publish_are_cleaned_and_a_retired_day_put_back(tmp_path):
    channel = tmp_path / "email"
    # Killed between the two renames of the fallback swap: the live folder is missing.
    retired = channel / ".retired-ds=2026-10-30-41"
    retired.mkdir(parents=True)
    (retired / "manifest.json").write_text("{}")
    # Killed while writing, and killed after an exchange: staging folders (they may hold emails).
    (channel / ".staging-ds=2026-10-31-42").mkdir()
    (channel / "ds=2026-10-31").mkdir()
    (channel / ".retired-ds=2026-10-31-43").mkdir()
    done = clean_leftovers(tmp_path)
    assert sorted(p.name for p in channel.iterdir()) == ["ds=2026-10-30", "ds=2026-10-31"]
    assert (channel / "ds=2026-10-30" / "manifest.json").exists()
    assert len(done) == 3


def test_a_second_run_fails_at_once_naming_the_run_that_holds_the_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PZ_DATA_DIR", str(tmp_path))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from ml.warehouse.run_lock import exclusive_run\n"
            "with exclusive_run('ml.orchestration.pipeline --ds 2026-10-31'):\n"
            "    print('held', flush=True); time.sleep(60)",
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "PZ_DATA_DIR": str(tmp_path)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunLockedError) as error, exclusive_run("ml.orchestration.pipeline --ds 2026-10-30"):
            pass
        assert f"pid {holder.pid}" in str(error.value) and "ml.orchestration.pipeline --ds 2026-10-31" in str(
            error.value
        )
    finally:
        holder.kill()
        holder.wait()
    with exclusive_run("after the holder was killed"):  # the kernel released the lock
        pass


@pytest.mark.parametrize("command", [["landing"], ["exports", "reload-tables"]])
def test_the_loader_and_the_table_reload_wait_for_no_one_beside_a_running_night(tmp_path, command):
    """Both write the warehouse: beside a running night they refuse at once, naming it."""
    (tmp_path / "landing").mkdir()
    env = {**os.environ, "PZ_DATA_DIR": str(tmp_path)}
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from ml.warehouse.run_lock import exclusive_run\n"
            "with exclusive_run('ml.orchestration run --ds 2026-10-31'):\n"
            "    print('held', flush=True); time.sleep(60)",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        refused = subprocess.run(
            [sys.executable, "-m", "ml", *command], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert refused.returncode == 2, refused.stderr[-2000:]
        assert "is in use by another run" in refused.stderr and "ml.orchestration run --ds 2026-10-31" in refused.stderr
    finally:
        holder.kill()
        holder.wait()
