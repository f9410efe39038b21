"""The uplift rows' SQL on a DuckDB of a few hundred sends: the stable customer sample under
uplift.training_max_sends, the landed sends' day shares over every send, each send's snapshot."""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml.uplift.dataset import SENDS, SENDS_SQL

DS = dt.date(2026, 10, 31)
SNAPSHOTS = [DS - dt.timedelta(days=days) for days in (35, 28, 21, 14, 7, 0)]


def sends_frame(customers: int, seed: int) -> pd.DataFrame:
    """1 to 5 sends a customer of a campaign with two arms and a control, sent over four weeks."""
    rng = np.random.default_rng(seed)
    rows = []
    for number in range(customers):
        for _ in range(rng.integers(1, 6)):
            sent_at = pd.Timestamp(DS) - pd.Timedelta(days=int(rng.integers(3, 30)), hours=int(rng.integers(0, 24)))
            rows.append(
                {
                    "send_source": "campaign_sends",
                    "campaign_id": "newsletter",
                    "experiment_version": None,
                    "customer_id": f"C{number:05d}",
                    "arm": rng.choice(["control", "discount", "reminder"], p=[0.2, 0.4, 0.4]),
                    "sent_at": sent_at,
                    "decided_on": sent_at.date() - dt.timedelta(days=1),
                    "assignment_probability": None,
                    "offer_code": None,
                    "policy_arm": None,
                    "goal_metric": "purchase",
                    "orders": 0,
                    "revenue": 0.0,
                    "converted": False,
                }
            )
    sends = pd.DataFrame(rows)
    sends["is_control"] = sends["arm"] == "control"
    return sends


def read(sends: pd.DataFrame, max_sends: int) -> pd.DataFrame:
    with duckdb.connect() as connection:
        connection.execute("create schema intermediate; create schema marts")
        connection.register("sends_frame", sends)
        connection.execute(f"create table {SENDS} as select * from sends_frame")
        features = pd.DataFrame(
            [(customer, day) for customer in sends["customer_id"].unique() for day in SNAPSHOTS],
            columns=["customer_id", "feature_date"],
        )
        connection.register("features_frame", features)
        connection.execute("create table marts.customer_features_daily as select * from features_frame")
        return connection.execute(SENDS_SQL, [max_sends, DS, 14]).df()


@pytest.fixture(scope="module")
def sends() -> pd.DataFrame:
    return sends_frame(300, seed=3)


def test_under_the_cap_every_send_is_read(sends):
    read_back = read(sends, max_sends=10_000)
    assert len(read_back) == len(sends)


def test_the_sample_takes_whole_customers_up_to_the_cap(sends):
    cap = len(sends) // 3
    sampled = read(sends, max_sends=cap)
    assert cap - 5 <= len(sampled) <= cap  # a customer sends at most 5: the next would not fit
    per_customer = sends.groupby("customer_id").size()
    taken = sampled.groupby("customer_id").size()
    assert (taken == per_customer[taken.index]).all(), "a sampled customer brings all of their sends"


def test_the_sample_is_the_same_customers_whatever_the_row_order_and_grows_with_the_cap(sends):
    cap = len(sends) // 3
    first = set(read(sends, max_sends=cap)["customer_id"])
    shuffled = set(read(sends.sample(frac=1, random_state=9), max_sends=cap)["customer_id"])
    larger = set(read(sends, max_sends=2 * cap)["customer_id"])
    assert first == shuffled and first < larger


def test_day_shares_count_every_send_not_only_the_sample(sends):
    everyone = read(sends, max_sends=10_000)
    sampled = read(sends, max_sends=len(sends) // 3)
    day = pd.to_datetime(sends["sent_at"]).dt.date
    expected = sends.groupby([day, sends["arm"]]).size() / sends.groupby(day).size()
    for frame in (everyone, sampled):
        keys = zip(pd.to_datetime(frame["sent_at"]).dt.date, frame["arm"], strict=True)
        np.testing.assert_allclose(frame["day_share"], [expected[key] for key in keys])


def test_each_send_learns_from_the_latest_snapshot_on_or_before_its_decision_day(sends):
    read_back = read(sends, max_sends=10_000).dropna(subset=["feature_date"])
    decided = pd.to_datetime(read_back["decided_on"]).dt.date
    snapshot = pd.to_datetime(read_back["feature_date"]).dt.date
    assert (snapshot <= decided).all() and ((decided - snapshot).map(lambda gap: gap.days) < 7).all()
