"""The generator is deterministic and carries the structure later models must find."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from ml.synthetic.behaviour import CATEGORIES
from ml.synthetic.generate import generate
from ml.synthetic.settings import GeneratorSettings
from ml.warehouse.contract import CONTRACT

pytestmark = pytest.mark.xdist_group("synthetic")

CLEAN = GeneratorSettings(customers=4_000, days=180, bad_row_rate=0.0, seed=11)


def read_table(landing, table) -> pd.DataFrame:
    return pd.concat([pq.read_table(path).to_pandas() for path in sorted((landing / table).glob("*.parquet"))])


@pytest.fixture(scope="module")
def clean_landing(tmp_path_factory):
    landing = tmp_path_factory.mktemp("clean") / "landing"
    generate(CLEAN, landing)
    return landing


@pytest.fixture(scope="module")
def tables(clean_landing):
    return {name: read_table(clean_landing, name) for name in CONTRACT}


@pytest.fixture(scope="module")
def truth(clean_landing):
    return pd.read_parquet(clean_landing.parent / "synthetic_truth" / "customers.parquet")


def test_same_seed_gives_identical_files_and_another_seed_does_not(tmp_path):
    settings = GeneratorSettings(customers=300, days=40, bad_row_rate=0.02, seed=3)
    generate(settings, tmp_path / "a" / "landing")
    generate(settings, tmp_path / "b" / "landing")
    generate(GeneratorSettings(customers=300, days=40, bad_row_rate=0.02, seed=4), tmp_path / "c" / "landing")
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.*"))
    assert files_a == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.*"))
    for relative in files_a:
        assert (tmp_path / "a" / relative).read_bytes() == (tmp_path / "b" / relative).read_bytes(), relative
    orders = "landing/orders/orders_2026-part-000.parquet"
    assert (tmp_path / "a" / orders).read_bytes() != (tmp_path / "c" / orders).read_bytes()


def test_every_contract_column_is_written(tables):
    for name, contract in CONTRACT.items():
        assert list(tables[name].columns) == list(contract.columns), name


def test_orders_concentrate_in_each_customers_preferred_category(tables, truth):
    lines = tables["order_items"].merge(tables["orders"][["order_id", "customer_id"]], on="order_id")
    lines = lines.merge(tables["items"][["item_id", "category"]], on="item_id").merge(truth, on="customer_id")
    share_in_preferred = (lines["category"] == lines["preferred_category"]).mean()
    # Uniform choice would give 1/12; latent preferences drive most purchases.
    assert share_in_preferred > 3 / len(CATEGORIES)


def test_item_popularity_has_a_long_tail(tables):
    sales = tables["order_items"]["item_id"].value_counts()
    top_decile = sales.head(max(1, len(tables["items"]) // 10)).sum()
    assert top_decile / sales.sum() > 0.3


def test_some_customers_never_order_and_signups_grow(tables):
    buyers = tables["orders"]["customer_id"].nunique()
    assert 0.1 < 1 - buyers / CLEAN.customers < 0.8
    signups = tables["customers"]["signup_at"]
    middle = signups.min() + (signups.max() - signups.min()) / 2
    assert (signups > middle).sum() > 1.2 * (signups <= middle).sum()


def test_engaged_and_satisfied_customers_buy_more(tables, truth):
    orders = tables["orders"].groupby("customer_id").size().rename("orders")
    frame = truth.set_index("customer_id").join(orders).fillna({"orders": 0})
    frame = frame[~frame["is_browser_only"]]
    assert np.corrcoef(np.log(frame["engagement"]), frame["orders"])[0, 1] > 0.2
    assert np.corrcoef(frame["satisfaction"], frame["orders"])[0, 1] > 0.05


def test_detractors_churn_more_than_promoters(tables, truth):
    nps = tables["survey_responses"].query("survey_type == 'nps'").sort_values("responded_at")
    latest = nps.groupby("customer_id")["score"].first().rename("first_nps")
    frame = truth.set_index("customer_id").join(latest, how="inner")
    churned = frame["churn_day"] >= 0
    detractor_churn = churned[frame["first_nps"] <= 6].mean()
    promoter_churn = churned[frame["first_nps"] >= 9].mean()
    assert detractor_churn > 1.3 * promoter_churn


def test_survey_scores_follow_their_scales_and_ces_drives_nps(tables):
    surveys = tables["survey_responses"]
    ranges = {"csat": (1, 5), "ces": (1, 7), "nps": (0, 10)}
    for survey_type, (low, high) in ranges.items():
        scores = surveys.loc[surveys["survey_type"] == survey_type, "score"]
        assert len(scores) > 50, survey_type
        assert scores.between(low, high).all(), survey_type
    per_customer = surveys.pivot_table(index="customer_id", columns="survey_type", values="score", aggfunc="mean")
    both = per_customer.dropna(subset=["ces", "nps"])
    assert both["ces"].corr(both["nps"]) > 0.2


def test_consents_have_realistic_opt_in_and_revocations(tables):
    consents = tables["consents"]
    first = consents.sort_values("recorded_at").groupby(["customer_id", "channel"]).first()
    email_opt_in = first.xs("email", level="channel")["granted"].mean()
    assert 0.4 < email_opt_in < 0.8
    records = consents.groupby(["customer_id", "channel"]).size()
    assert (records > 1).mean() > 0.02  # later revocations
    assert 0 < len(tables["erasure_requests"]) < 0.02 * CLEAN.customers


def test_bad_rows_inject_every_class_with_a_ledger(small_landing):
    ledger = pd.read_csv(small_landing / "synthetic_truth" / "bad_rows_ledger.csv")
    expected_classes = {
        "missing_required",
        "unparseable_timestamp",
        "unparseable_number",
        "invalid_value",
        "out_of_range",
        "unknown_customer",
        "unknown_order",
        "unknown_item",
        "broken_encoding",
        "malformed_row",
        "duplicate_key",
        "future_timestamp",
    }
    assert set(ledger["bad_class"]) == expected_classes
    assert ledger.groupby("table_name").size().min() > 0
