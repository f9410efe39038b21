"""Audiences on a built warehouse: channel tables, files and manifests after a real pipeline run,
the invariants checked in the warehouse, byte-identical reruns, and checks that stop publishing."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import duckdb
import pandas as pd
import pytest

from ml.activation.export import (
    PublishCheckError,
    channel_rows,
    check_rows,
    purge_erased_from_exports,
)
from ml.activation.settings import CONTROL
from ml.activation.store import ASSIGNMENTS
from ml.orchestration.config import load_config
from ml.orchestration.stages import run_stage
from tests.helpers import END_DATE, export_digests, query

DS = END_DATE.isoformat()
ACTIVATION = load_config().activation
PERSONAL = {"city", "birth_year", "gender", "signup_at", "email", "email_sha256", "first_name"}


@pytest.fixture
def warehouse_env(built_warehouse, monkeypatch):
    monkeypatch.setenv("PZ_DATA_DIR", str(built_warehouse))
    monkeypatch.setenv("PZ_REPORTS_DIR", str(built_warehouse / "reports"))
    return built_warehouse


def test_each_channel_folder_holds_the_days_files_with_a_matching_manifest(built_warehouse):
    for channel in ACTIVATION.channels:
        folder = built_warehouse / "exports" / channel / f"ds={DS}"
        manifest = json.loads((folder / "manifest.json").read_text())
        table = query(built_warehouse, f"select * from channels.{channel} where ds = ?", [END_DATE])
        assert manifest["ds"] == DS and manifest["rows"] == len(table)
        audiences = [name for name, audience in ACTIVATION.audiences.items() if channel in audience.channels]
        assert [entry["audience"] for entry in manifest["audiences"]] == audiences
        listed = {"manifest.json"}
        for entry in manifest["audiences"]:
            for described in entry["files"]:
                data = (folder / described["path"]).read_bytes()
                assert hashlib.sha256(data).hexdigest() == described["sha256"] and len(data) == described["bytes"]
                listed.add(described["path"])
            csv = pd.read_csv(folder / f"{entry['audience']}.csv", dtype=str, keep_default_na=False)
            parquet = pd.read_parquet(folder / f"{entry['audience']}.parquet")
            assert len(csv) == len(parquet) == entry["rows"] == (table["audience"] == entry["audience"]).sum()
            assert list(csv.columns) == list(parquet.columns) == manifest["columns"]
            assert sum(entry["arms"].values()) == entry["rows"]
            changes = entry["changes"]  # the first published day: everyone has entered
            assert changes["since"] is None and changes["entered"] == entry["rows"]
            assert changes["exited"] == changes["changed"] == 0
            for described in changes["files"]:
                data = (folder / described["path"]).read_bytes()
                assert hashlib.sha256(data).hexdigest() == described["sha256"] and described["rows"] == entry["rows"]
                listed.add(described["path"])
        found = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
        assert found == listed  # nothing else, no staging leftovers
        assert not list(folder.parent.glob(".*"))
        assert manifest["model_versions"]["propensity"] and manifest["model_versions"]["recommender"]
        assert len(manifest["config_sha256"]) == 64


def test_the_demo_audiences_reach_customers_in_every_channel_type(built_warehouse):
    rows = {
        c: query(built_warehouse, f"select * from channels.{c} where ds = ?", [END_DATE]) for c in ACTIVATION.channels
    }
    assert sum(len(frame) for frame in rows.values()) > 50
    reached = pd.concat(rows.values())["audience"].unique()
    levels = {ACTIVATION.audiences[name].maturity for name in reached}
    assert levels == {"demographic", "behavioral", "predictive"}, reached


def test_the_invariants_hold_in_the_warehouse(built_warehouse):
    union = " union all ".join(
        f"select '{c}' as channel, '{ACTIVATION.consent_of(c)}' as consent, audience, customer_id, experiment_group, "
        f"array_to_string(recommended_items, '|') as items from channels.{c} where ds = $ds"
        for c in ACTIVATION.channels
    )
    rows = query(built_warehouse, union.replace("$ds", f"'{DS}'"))
    customers = query(built_warehouse, "select * from marts.customer_360 where ds = ?", [END_DATE]).set_index(
        "customer_id"
    )
    erased = set(query(built_warehouse, "select customer_id from audit.erased_customers")["customer_id"])
    assignments = query(built_warehouse, "select * from experiments.assignments where ds = ?", [END_DATE])
    decisions = query(built_warehouse, "select * from activation.decisions where ds = ?", [END_DATE])

    for row in rows.itertuples():
        assert customers.loc[row.customer_id, f"has_consent_{row.consent}"], row
    assert not erased & set(rows["customer_id"]) and not erased & set(assignments["customer_id"])
    treated = assignments.set_index(["audience", "customer_id"])["experiment_group"]
    groups = rows.set_index(["audience", "customer_id"])["experiment_group"]
    assert (treated.loc[groups.index] == groups).all() and CONTROL not in set(groups)
    assert (rows.groupby("customer_id")["audience"].nunique() == 1).all()
    assert (rows.groupby("customer_id")["items"].nunique(dropna=False) == 1).all()  # same items in every channel
    assert decisions["customer_id"].is_unique and set(decisions["customer_id"]) == set(customers.index)
    default = decisions[decisions["decision"] == "default_experience"]
    assert set(default["reason"]) <= {"too_little_data", "no_audience", "global_holdout"} and len(default) > 0
    held_out = set(default.loc[default["reason"] == "global_holdout", "customer_id"])
    assert held_out and not held_out & set(assignments["customer_id"])  # the global holdout gets no audience
    predictive = [name for name, audience in ACTIVATION.audiences.items() if audience.is_predictive]
    in_predictive = assignments[assignments["audience"].isin(predictive)]["customer_id"]
    assert (customers.loc[in_predictive, "frequency"] >= ACTIVATION.predictive_min_orders).all()
    assert (assignments["experiment_group"] == CONTROL).sum() > 0


def test_files_carry_the_configured_identifier_and_no_other_personal_data(built_warehouse):
    emails = query(built_warehouse, "select customer_id, email from marts.customer_360 where ds = ?", [END_DATE])
    emails = emails.set_index("customer_id")["email"]
    for channel, settings in ACTIVATION.channels.items():
        for path in (built_warehouse / "exports" / channel / f"ds={DS}").glob("*.csv"):
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
            personal = PERSONAL & set(frame.columns)
            expected = {"email": {"email"}, "email_sha256": {"email_sha256"}, "customer_id": set()}[settings.identifier]
            expected |= {"first_name"} if settings.first_name else set()
            assert personal == expected, (channel, path.name, personal)
            if "email" in frame:
                assert (frame["email"] == frame["customer_id"].map(emails)).all()
            if "email_sha256" in frame and len(frame):
                normalized = frame["customer_id"].map(emails).str.strip().str.lower()
                assert (frame["email_sha256"] == normalized.map(lambda e: hashlib.sha256(e.encode()).hexdigest())).all()
                assert not frame["email_sha256"].str.contains("@").any()


def test_rerunning_the_day_gives_byte_identical_files_and_the_same_tables(warehouse_env):
    before = export_digests(warehouse_env)
    tables = ["experiments.assignments", "activation.decisions", "activation.audience_funnel"]
    contents = {t: query(warehouse_env, f"select * from {t} order by all") for t in tables}
    run_stage("decide_audiences", DS)
    run_stage("publish_channels", DS)
    assert export_digests(warehouse_env) == before
    for table in tables:
        pd.testing.assert_frame_equal(query(warehouse_env, f"select * from {table} order by all"), contents[table])


def test_a_row_without_consent_erased_or_in_a_control_group_stops_publishing(warehouse_env):
    config = load_config()
    frames = channel_rows(config.activation, END_DATE)
    assert not [check for check in check_rows(frames, config.activation, END_DATE) if check.violations]

    customers = query(warehouse_env, "select * from marts.customer_360 where ds = ?", [END_DATE])
    no_email = customers.loc[~customers["has_consent_email"], "customer_id"].iloc[0]
    control = query(
        warehouse_env, "select * from experiments.assignments where ds = ? and experiment_group = 'control'", [END_DATE]
    ).iloc[0]
    erased = query(warehouse_env, "select customer_id from audit.erased_customers")["customer_id"].iloc[0]
    template = frames["email"].iloc[[0]] if len(frames["email"]) else None
    assert template is not None
    bad = pd.concat(
        [
            frames["email"],
            template.assign(customer_id=no_email, audience="x"),
            template.assign(customer_id=control["customer_id"], audience=control["audience"], experiment_group=CONTROL),
            template.assign(audience="win_back_at_risk"),  # the same customer in a second audience
            template.assign(customer_id=erased),
        ]
    )
    failed = {c.name: c for c in check_rows({**frames, "email": bad}, config.activation, END_DATE) if c.violations}
    assert {"consent", "erasure", "holdout", "one_decision"} <= set(failed)
    assert any(no_email in example for example in failed["consent"].examples)

    # A broken decision is refused before a single file or table row changes.
    before = export_digests(warehouse_env)
    table = query(warehouse_env, "select * from channels.email order by all")
    with duckdb.connect(str(warehouse_env / "warehouse.duckdb")) as connection:
        connection.execute(
            f"update {ASSIGNMENTS} set experiment_group = '{CONTROL}' where ds = ? and customer_id = ?",
            [END_DATE, frames["email"]["customer_id"].iloc[0]],
        )
        connection.execute(  # a second, distinct breach: a treated customer loses their consent
            "update marts.customer_360 set has_consent_email = false where ds = ? and customer_id = ?",
            [END_DATE, frames["email"]["customer_id"].iloc[-1]],
        )
    try:
        with pytest.raises(PublishCheckError, match="nothing published"):
            run_stage("publish_channels", DS)
        assert export_digests(warehouse_env) == before
        pd.testing.assert_frame_equal(query(warehouse_env, "select * from channels.email order by all"), table)
    finally:  # restore the consent, then decide and publish again: the original files come back
        with duckdb.connect(str(warehouse_env / "warehouse.duckdb")) as connection:
            connection.execute(
                "update marts.customer_360 set has_consent_email = true where ds = ? and customer_id = ?",
                [END_DATE, frames["email"]["customer_id"].iloc[-1]],
            )
        run_stage("decide_audiences", DS)
        run_stage("publish_channels", DS)
    assert export_digests(warehouse_env) == before


def test_the_marketer_summary_shows_the_maturity_curve(warehouse_env):
    html = (warehouse_env / "reports" / "audiences" / f"audiences_{DS}.html").read_text()
    for text in ("Maturity curve", "demographic", "behavioral", "predictive", "Experiments", "Funnel", "holdout"):
        assert text in html
    for name in ACTIVATION.audiences:
        assert name in html


def test_erasure_reaches_files_published_before_the_request(warehouse_env):
    before = export_digests(warehouse_env)
    folder = warehouse_env / "exports" / "email" / f"ds={DS}"
    manifest = json.loads((folder / "manifest.json").read_text())
    entry = next(e for e in manifest["audiences"] if e["rows"] > 1)
    audience = entry["audience"]
    customer = pd.read_csv(folder / f"{audience}.csv", dtype=str)["customer_id"].iloc[0]
    # The customer as the erasure ledger would list them once erased; the tables play no part.
    try:
        assert purge_erased_from_exports(ACTIVATION, [customer]) == 1
        after = json.loads((folder / "manifest.json").read_text())
        changed = next(e for e in after["audiences"] if e["audience"] == audience)
        assert changed["rows"] == entry["rows"] - 1 and after["rows"] == manifest["rows"] - 1
        assert after["erased_customers_removed"] == 1
        assert after["config_sha256"] == manifest["config_sha256"]
        for described in changed["files"]:
            data = (folder / described["path"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == described["sha256"]
        assert customer not in set(pd.read_csv(folder / f"{audience}.csv", dtype=str)["customer_id"])
        assert customer not in set(pd.read_parquet(folder / f"{audience}.parquet")["customer_id"])
        untouched = {p: d for p, d in before.items() if not p.startswith(f"email/ds={DS}/")}
        assert {p: d for p, d in export_digests(warehouse_env).items() if p in untouched} == untouched
        assert purge_erased_from_exports(ACTIVATION, [customer]) == 0  # nothing left to do: files are left alone
    finally:
        run_stage("publish_channels", DS)  # the customer is not really erased: publishing restores the day
    assert export_digests(warehouse_env) == before


def test_files_carry_what_a_template_needs(built_warehouse):
    """Item names, links, images and prices beside the ids (from the catalog), an offer's value,
    expiry and cost, a reason for every row, the first name beside the address, and send_at where
    the arm sets a send time (the welcome's send-time test)."""
    folder = built_warehouse / "exports" / "email" / f"ds={DS}"
    catalog = query(built_warehouse, "select item_id, item_name, url, price from staging.stg_items").set_index(
        "item_id"
    )
    rows = pd.concat([pd.read_parquet(path) for path in folder.glob("*.parquet")], ignore_index=True)
    assert len(rows) and rows["reason"].notna().all() and (rows["first_name"].notna()).all()
    assert (rows["utm_parameters"] == "utm_source=email&utm_medium=personalization&utm_campaign="
            + rows["audience"] + "&utm_content=" + rows["experiment_group"]).all()  # fmt: skip
    recommended = rows[rows["recommended_items"].notna()]
    for _, row in recommended.head(20).iterrows():
        items = list(row["recommended_items"])
        assert list(row["recommended_item_names"]) == catalog.loc[items, "item_name"].tolist()
        assert list(row["recommended_item_urls"]) == catalog.loc[items, "url"].tolist()
        assert list(row["recommended_item_prices"]) == catalog.loc[items, "price"].tolist()
    offers = rows[rows["offer_code"].notna()]
    assert offers[["offer_value", "offer_expires_on", "offer_cost"]].notna().all().all()
    assert (offers["offer_expires_on"] > DS).all()
    carts = rows[rows["audience"] == "cart_abandonment"]
    assert carts["reason"].str.startswith("added ").all()
    welcome = rows[rows["audience"] == "welcome_new_customers"]
    other = rows[rows["audience"] != "welcome_new_customers"]
    assert welcome["send_at"].notna().all() and other["send_at"].isna().all()
    fixed = welcome[welcome["experiment_group"] == "fixed_time"]
    by_zone = fixed.merge(
        query(built_warehouse, "select customer_id, country from marts.customer_360 where ds = ?", [END_DATE])
    )
    # 10:00 in Berlin on 2026-11-01 (winter time) is 09:00 UTC; in New York 15:00 UTC.
    assert set(by_zone.loc[by_zone["country"] == "DE", "send_at"]) <= {"2026-11-01T09:00:00Z"}
    assert set(by_zone.loc[by_zone["country"] == "US", "send_at"]) <= {"2026-11-01T15:00:00Z"}
    csv = pd.read_csv(folder / "cart_abandonment.csv", dtype=str, keep_default_na=False)
    assert "recommended_item_names" in csv and "send_at" in csv


def test_the_send_time_model_finds_the_planted_hours_better_than_the_segment_default(built_warehouse, monkeypatch):
    """Each customer's planted preferred hour (synthetic_truth) against the hour chosen for them
    from their own e-mail opens shrunk to their segment's, and against their segment's hour alone."""
    from ml.activation.send_time import best_hours, hour_error, read_send_time_inputs

    monkeypatch.setenv("PZ_DATA_DIR", str(built_warehouse))
    settings = ACTIVATION.send_time
    truth = pd.read_parquet(built_warehouse / "synthetic_truth" / "customers.parquet").set_index("customer_id")
    engaged = query(
        built_warehouse,
        "select distinct customer_id from marts.customer_engagement_hours where ds = ? and channel = 'email'",
        [END_DATE],
    )["customer_id"].tolist()
    customers, engagement, segments = read_send_time_inputs(END_DATE, "email", engaged, settings)
    weekday = (END_DATE + dt.timedelta(days=1)).isoweekday()  # the files' send day
    model = best_hours(customers, engagement, segments, settings, weekday).set_index("customer_id")
    segment_only = best_hours(customers, engagement.iloc[:0], segments, settings, weekday).set_index("customer_id")
    planted = truth.loc[model.index, "preferred_hour"]
    model_error = hour_error(model["send_hour"], planted, settings).mean()
    segment_error = hour_error(segment_only["send_hour"], planted, settings).mean()
    assert len(model) > 200 and (model["source"] == "customer").all()
    assert model_error < segment_error * 0.9, (model_error, segment_error)
