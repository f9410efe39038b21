"""Anonymous visitors stitched to customers by the nightly build, and the service's decision log read
back: an anonymous event waits in quarantine until a login links its anonymous id, then becomes the
customer's; the first login keeps an anonymous id; the counts reconcile every night."""

from __future__ import annotations

import csv
import datetime as dt

import pyarrow.parquet as pq
import pytest

from ml.synthetic.generate import generate
from ml.synthetic.settings import GeneratorSettings
from ml.warehouse.contract import CONTRACT
from tests.helpers import END_DATE, query, run_pipeline

FIRST, SECOND = (END_DATE - dt.timedelta(days=1)).isoformat(), END_DATE.isoformat()
TINY = GeneratorSettings(customers=300, days=60, end_date=END_DATE, bad_row_rate=0.02, seed=11)


def write(landing, table: str, rows: list[dict]) -> None:
    folder = landing / table
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "zz_online.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CONTRACT[table].columns)
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture(scope="module")
def stitched(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("identity")
    landing = data_dir / "landing"
    generate(TINY, landing)
    customers = pq.read_table(sorted((landing / "customers").glob("*.parquet"))[0]).column("customer_id").to_pylist()
    first, second = customers[0], customers[1]
    event = {"event_type": "page_view", "channel": "web", "device": "desktop", "customer_id": ""}
    write(
        landing,
        "events",
        [
            {**event, "event_id": "A-1", "anonymous_id": "V1", "occurred_at": f"{FIRST}T08:00:00Z"},
            {**event, "event_id": "A-2", "anonymous_id": "V1", "occurred_at": f"{SECOND}T09:00:00Z"},
            {**event, "event_id": "A-3", "anonymous_id": "V2", "occurred_at": f"{FIRST}T08:00:00Z"},
        ],
    )
    write(
        landing,
        "identity_links",
        [
            {"anonymous_id": "V1", "customer_id": first, "linked_at": f"{SECOND}T10:00:00Z"},
            {"anonymous_id": "V1", "customer_id": second, "linked_at": f"{SECOND}T11:00:00Z"},  # a later login
        ],
    )
    decision = {
        "ds": FIRST,
        "channel": "web",
        "audience": "",
        "default_experience": "true",
        "decision_reason": "no_audience",
    }
    write(
        landing,
        "served_decisions",
        [
            {**decision, "decision_id": "d1", "served_at": f"{SECOND}T09:01:00Z", "customer_id": first},
            {**decision, "decision_id": "d2", "served_at": f"{SECOND}T09:02:00Z", "anonymous_id": "V1"},
            {**decision, "decision_id": "d3", "served_at": f"{SECOND}T09:03:00Z"},  # nobody: rejected
        ],
    )
    nights = {}
    for ds in (FIRST, SECOND):
        result = run_pipeline(data_dir, ds, False)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        nights[ds] = {
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
    return {"data_dir": data_dir, "first": first, "second": second, "nights": nights}


def test_an_anonymous_event_waits_for_its_login_then_becomes_the_customers(stitched):
    first_night, second_night = stitched["nights"][FIRST], stitched["nights"][SECOND]
    assert first_night["events"].empty and first_night["graph"].empty
    assert dict(zip(first_night["quarantine"]["event_id"], first_night["quarantine"]["reason_code"], strict=True)) == {
        "A-1": "unlinked_anonymous_id",
        "A-3": "unlinked_anonymous_id",
    }  # A-2 happens on the second day: later-dated, not an error
    accepted = dict(zip(second_night["events"]["event_id"], second_night["events"]["customer_id"], strict=True))
    assert accepted == {"A-1": stitched["first"], "A-2": stitched["first"]}
    assert second_night["quarantine"]["event_id"].tolist() == ["A-3"]  # V2 never logged in


def test_the_first_login_keeps_an_anonymous_id(stitched):
    graph = stitched["nights"][SECOND]["graph"]
    assert graph[["anonymous_id", "customer_id", "links", "conflicting_links"]].values.tolist() == [
        ["V1", stitched["first"], 2, 1]
    ]


def test_served_decisions_are_read_back_and_every_row_is_accounted_for(stitched):
    data_dir = stitched["data_dir"]
    served = query(
        data_dir, "select decision_id, customer_id, anonymous_id from staging.stg_served_decisions order by 1"
    )
    assert served["decision_id"].tolist() == ["d1", "d2"]
    rejected = query(data_dir, "select reason from quarantine.served_decisions where ds = ?", [SECOND])
    assert rejected["reason"].tolist() == ["missing_required: customer_id and anonymous_id are both empty"]
    for ds, night in stitched["nights"].items():
        rows = night["reconciliation"].set_index("table_name")
        for table in ("events", "identity_links", "served_decisions"):
            assert rows.loc[table, "is_reconciled"] and rows.loc[table, "rows_read"] > 0, (ds, table)
