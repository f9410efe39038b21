"""The anchored form that decides which customers the online store takes, and the day counts brought
to the store's night when read (ml.mlops.online_store)."""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
import pytest

from ml.mlops import online_store

FEATURES = ["recency_days", "tenure_days", "frequency_7d", "lifecycle_stage"]


def digests(rows: list[tuple]) -> list[int]:
    frame = pd.DataFrame(rows, columns=["feature_date", *FEATURES])
    frame["feature_date"] = pd.to_datetime(frame["feature_date"]).dt.date
    with duckdb.connect() as connection:
        connection.register("snapshot", frame.assign(customer_id="C1"))
        return [digest for _, digest in connection.execute(online_store.digests_query(FEATURES)).fetchall()]


def test_a_customer_who_did_nothing_keeps_the_digest_and_a_real_change_does_not():
    yesterday = ("2026-10-30", 5, 100, 2, "active")
    same_facts_tonight = ("2026-10-31", 6, 101, 2, "active")  # the day counts moved with the calendar
    assert digests([yesterday])[0] == digests([same_facts_tonight])[0]
    for changed in (
        ("2026-10-31", 0, 101, 3, "active"),  # ordered tonight
        ("2026-10-31", 6, 101, 1, "active"),  # an order left the 7-day window
        ("2026-10-31", 6, 101, 2, "at_risk"),  # crossed a lifecycle threshold
        ("2026-10-31", None, 101, 2, "active"),  # a day count turned missing
    ):
        assert digests([changed])[0] != digests([yesterday])[0], changed


def test_changed_rows_are_the_new_customers_and_those_whose_digest_moved():
    snapshot = pd.DataFrame(
        {
            "customer_id": ["A", "B", "C"],
            "feature_date": [dt.date(2026, 10, 31)] * 3,
            "feature_timestamp": pd.Timestamp("2026-11-01", tz="UTC"),
            "recency_days": [6, 3, 1],
            "tenure_days": [101, 50, 1],
            "frequency_7d": [2, 1, 1],
            "lifecycle_stage": ["active", "active", "new"],
        }
    )
    columns = ["customer_id", "feature_timestamp", *FEATURES]
    with duckdb.connect() as connection:
        connection.register("snapshot", snapshot)
        written = connection.execute(online_store.digests_query(FEATURES)).df()
        written.loc[written["customer_id"] == "B", "row_digest"] = 0  # B's features changed since
        connection.register("written", written[written["customer_id"] != "C"])  # C is new
        changed = connection.execute(online_store.changed_rows_query(columns, FEATURES, full=False)).df()
        everyone = connection.execute(online_store.changed_rows_query(columns, FEATURES, full=True)).df()
    assert sorted(changed["customer_id"]) == ["B", "C"] and list(changed.columns) == columns
    assert sorted(everyone["customer_id"]) == ["A", "B", "C"]


def test_day_counts_of_an_older_row_are_brought_to_the_stores_night():
    written_on = {
        night: int(pd.Timestamp(night, tz="UTC").timestamp()) + 86_400 for night in ("2026-10-29", "2026-10-31")
    }
    response = {
        "customer_id": ["A", "B", "UNKNOWN"],
        "recency_days": [4, 0, None],
        "frequency_7d": [1, 2, None],
        "recency_days__ts": [written_on["2026-10-29"], written_on["2026-10-31"], 0],
        "frequency_7d__ts": [written_on["2026-10-29"], written_on["2026-10-31"], 0],
    }
    frame = online_store.as_of(response, "2026-10-31")
    assert list(frame.columns) == ["customer_id", "recency_days", "frequency_7d"]
    assert frame["recency_days"].tolist()[:2] == [6, 0] and pd.isna(frame["recency_days"][2])
    assert frame["frequency_7d"].tolist()[:2] == [1, 2]  # not a day count: as written
    assert online_store.as_of(response, None)["recency_days"].tolist()[:2] == [4, 0]  # no record: as written


@pytest.mark.parametrize(
    ("manifest", "state", "rows_present", "reason"),
    [
        (None, False, True, "no record of what the online store holds"),
        ({"ds": "2026-10-30", "schema": "old"}, True, True, "the features or their anchored form changed"),
        ({"ds": "2026-10-30", "schema": "now"}, True, False, "the online table was empty or missing"),
        ({"ds": "2026-10-30", "schema": "now"}, True, True, None),
    ],
)
def test_a_full_rewrite_happens_only_for_a_reason(tmp_path, manifest, state, rows_present, reason):
    if manifest:
        online_store.write_manifest(tmp_path, manifest)
    if state:
        online_store.state_path(tmp_path).write_bytes(b"")
    assert online_store.full_rewrite_reason(tmp_path, "now", rows_present) == reason


def test_an_erasure_forgets_the_customers_digests(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.table({"customer_id": ["A", "B", "C"], "row_digest": [1, 2, 3]}), online_store.state_path(tmp_path)
    )
    assert online_store.forget(tmp_path, ["B", "NOT-THERE"]) == 1
    assert pq.read_table(online_store.state_path(tmp_path)).column("customer_id").to_pylist() == ["A", "C"]
    assert online_store.forget(tmp_path, ["B"]) == 0
