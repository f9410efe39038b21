"""Staging by arrival: a night parses only the landing files that arrived or changed, and gives the
same tables as a full refresh of the same landing files (new, re-sent, changed and withdrawn files).

The same two nights stitch anonymous visitors to customers and read back the online service's
decision log: an anonymous event waits in quarantine until a login links its anonymous id, then
becomes the customer's; the first login keeps an anonymous id; the counts reconcile every night."""

from __future__ import annotations

import csv
import datetime as dt
import shutil

import pyarrow.parquet as pq
import pytest

from ml.synthetic.generate import generate
from ml.synthetic.settings import GeneratorSettings
from ml.warehouse.contract import CONTRACT
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
    visitors = online_history(first_night / "landing")
    run(first_night, FIRST)
    built = {"visitors": visitors, "first_night": identity_state(first_night, FIRST)}
    for name, extra in (("by_arrival", ()), ("full_refresh", ("--full-refresh",))):
        data_dir = root / name
        shutil.copytree(first_night, data_dir)  # the first night once; a copy is a warehouse of its own
        the_day_arrives(data_dir / "landing")
        built[name] = (data_dir, run(data_dir, SECOND, *extra))
    return built


def write_landing(landing, table: str, rows: list[dict]) -> None:
    folder = landing / table
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "zz_online.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CONTRACT[table].columns)
        writer.writeheader()
        writer.writerows(rows)


def online_history(landing) -> dict[str, str]:
    """What the online service writes, landed before the first night: anonymous events of V1 (one on
    each night) and V2 (never linked), V1's login to one customer on the second day and a later login
    to another, and three served decisions (one of an anonymous visitor, one naming nobody)."""
    customers = pq.read_table(sorted((landing / "customers").glob("*.parquet"))[0]).column("customer_id")
    first, second = customers[0].as_py(), customers[1].as_py()
    event = {"event_type": "page_view", "channel": "web", "device": "desktop", "customer_id": ""}
    write_landing(
        landing,
        "events",
        [
            {**event, "event_id": "A-1", "anonymous_id": "V1", "occurred_at": f"{FIRST}T08:00:00Z"},
            {**event, "event_id": "A-2", "anonymous_id": "V1", "occurred_at": f"{SECOND}T09:00:00Z"},
            {**event, "event_id": "A-3", "anonymous_id": "V2", "occurred_at": f"{FIRST}T08:00:00Z"},
        ],
    )
    links = [(first, f"{SECOND}T10:00:00Z"), (second, f"{SECOND}T11:00:00Z")]  # the second is a later login
    write_landing(
        landing,
        "identity_links",
        [{"anonymous_id": "V1", "customer_id": customer, "linked_at": at} for customer, at in links],
    )
    served = {"ds": FIRST, "channel": "web", "default_experience": "true", "decision_reason": "no_audience"}
    write_landing(
        landing,
        "served_decisions",
        [
            {**served, "decision_id": "d1", "served_at": f"{SECOND}T09:01:00Z", "customer_id": first},
            {**served, "decision_id": "d2", "served_at": f"{SECOND}T09:02:00Z", "anonymous_id": "V1"},
            {**served, "decision_id": "d3", "served_at": f"{SECOND}T09:03:00Z"},  # nobody: rejected
        ],
    )
    return {"first": first, "second": second}


def identity_state(data_dir, ds: str) -> dict:
    return {
        "events": query(data_dir, "select event_id, customer_id from staging.stg_events where event_id like 'A-%'"),
        "quarantine": query(
            data_dir,
            "select raw_event_id as event_id, reason_code from quarantine.events "
            "where ds = ? and raw_event_id like 'A-%'",
            [ds],
        ),
        "graph": query(data_dir, "select * from staging.stg_identity_graph"),
        "reconciliation": query(data_dir, "select * from audit.landing_reconciliation where ds = ?", [ds]),
    }


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


def test_an_anonymous_event_waits_for_its_login_then_becomes_the_customers(two_nights):
    first_night = two_nights["first_night"]
    second_night = identity_state(two_nights["by_arrival"][0], SECOND)
    assert first_night["events"].empty and first_night["graph"].empty
    assert dict(zip(first_night["quarantine"]["event_id"], first_night["quarantine"]["reason_code"], strict=True)) == {
        "A-1": "unlinked_anonymous_id",
        "A-3": "unlinked_anonymous_id",
    }  # A-2 happens on the second day: later-dated, not an error
    accepted = dict(zip(second_night["events"]["event_id"], second_night["events"]["customer_id"], strict=True))
    assert accepted == {"A-1": two_nights["visitors"]["first"], "A-2": two_nights["visitors"]["first"]}
    assert second_night["quarantine"]["event_id"].tolist() == ["A-3"]  # V2 never logged in
    graph = second_night["graph"]
    assert graph[["anonymous_id", "customer_id", "links", "conflicting_links"]].values.tolist() == [
        ["V1", two_nights["visitors"]["first"], 2, 1]
    ]  # the first login keeps the anonymous id


def test_served_decisions_are_read_back_and_every_row_is_accounted_for(two_nights):
    data_dir = two_nights["by_arrival"][0]
    served = query(data_dir, "select decision_id from staging.stg_served_decisions order by 1")
    assert served["decision_id"].tolist() == ["d1", "d2"]
    rejected = query(data_dir, "select reason from quarantine.served_decisions where ds = ?", [SECOND])
    assert rejected["reason"].tolist() == ["missing_required: customer_id and anonymous_id are both empty"]
    for ds, night in ((FIRST, two_nights["first_night"]), (SECOND, identity_state(data_dir, SECOND))):
        rows = night["reconciliation"].set_index("table_name")
        for table in ("events", "identity_links", "served_decisions"):
            assert rows.loc[table, "is_reconciled"] and rows.loc[table, "rows_read"] > 0, (ds, table)
