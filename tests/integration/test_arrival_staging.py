"""Staging by arrival: a night parses only the landing files that arrived or changed, and gives the
same tables as a full refresh of the same landing files (new, re-sent, changed and withdrawn files)."""

from __future__ import annotations

import csv
import datetime as dt
import shutil

import pyarrow.parquet as pq
import pytest

from ml.synthetic.generate import generate
from ml.synthetic.settings import GeneratorSettings
from tests.helpers import END_DATE, query, run_pipeline
from tools.demo_outputs import compare, record

FIRST, SECOND = (END_DATE - dt.timedelta(days=1)).isoformat(), END_DATE.isoformat()
TINY = GeneratorSettings(customers=300, days=60, end_date=END_DATE, bad_row_rate=0.02, seed=5)
EVENT_COLUMNS = ["event_id", "customer_id", "occurred_at", "event_type", "item_id", "channel", "device"]


def run(data_dir, ds, *options):
    result = run_pipeline(data_dir, ds, False, *options)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def the_day_arrives(landing):
    """What lands between the two nights: a new events file (a new event, a re-sent one with another
    device, a bad one), a re-exported items file (one row fewer), and a consents file withdrawn."""
    events = pq.read_table(sorted((landing / "events").glob("*.parquet"))[0]).to_pylist()
    resent = dict(events[0], device="tablet")
    customer = events[1]["customer_id"]
    rows = [
        {**resent},
        {"event_id": "E-new-1", "customer_id": customer, "occurred_at": f"{SECOND}T09:00:00Z",
         "event_type": "page_view", "item_id": "", "channel": "web", "device": "desktop"},
        {"event_id": "E-new-2", "customer_id": customer, "occurred_at": f"{SECOND}T09:05:00Z",
         "event_type": "teleport", "item_id": "", "channel": "web", "device": "desktop"},
    ]  # fmt: skip
    with (landing / "events" / "zz_arrival.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=EVENT_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    items = sorted((landing / "items").glob("*resend*.csv"))[0]
    lines = items.read_text(encoding="utf-8").splitlines(keepends=True)
    items.write_text("".join(lines[:-1]), encoding="utf-8")
    for consents in (landing / "consents").glob("*resend*.csv"):
        consents.unlink()


@pytest.fixture(scope="module")
def two_nights(tmp_path_factory):
    """The same landing history built twice: night by night (the second night by arrival), and with
    the second night a full refresh."""
    root = tmp_path_factory.mktemp("arrival")
    first_night = root / "first_night"
    generate(TINY, first_night / "landing")
    run(first_night, FIRST)
    built = {}
    for name, extra in (("by_arrival", ()), ("full_refresh", ("--full-refresh",))):
        data_dir = root / name
        shutil.copytree(first_night, data_dir)  # the first night once; a copy is a warehouse of its own
        the_day_arrives(data_dir / "landing")
        built[name] = (data_dir, run(data_dir, SECOND, *extra))
    return built


def test_a_night_by_arrival_gives_the_tables_of_a_full_refresh(two_nights):
    by_arrival, _ = two_nights["by_arrival"]
    full, _ = two_nights["full_refresh"]
    assert compare(record(full), record(by_arrival)) == []


def test_a_night_parses_only_what_arrived_and_says_what_it_replaced(two_nights):
    data_dir, result = two_nights["by_arrival"]
    checked = query(data_dir, "select _source_file, count(*) as n from staging.stg_events__checked group by 1")
    assert "zz_arrival.csv" in set(checked["_source_file"])
    assert "items_2026-resend-001.csv changed since it was loaded" in result.stderr
    assert "left the landing folder" in result.stderr and "consents" in result.stderr
    files = query(data_dir, "select * from audit.landing_file_reconciliation where ds = ?", [END_DATE])
    assert files["is_reconciled"].all()
    arrival = files[files["file_name"] == "zz_arrival.csv"].iloc[0]
    assert (arrival["rows_read"], arrival["rows_accepted"], arrival["rows_rejected"]) == (3, 2, 1)
    assert not (files["table_name"] == "consents").any() or "resend" not in " ".join(
        files.loc[files["table_name"] == "consents", "file_name"]
    )
    ledger = query(data_dir, "select table_name, file_name, records from raw.landing_files")
    held = query(data_dir, "select count(*) as n from raw.events")["n"][0]
    assert ledger.loc[ledger["table_name"] == "events", "records"].sum() == held
