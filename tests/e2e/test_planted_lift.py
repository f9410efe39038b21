"""The generator plants a true revenue effect in one demo audience and none anywhere else; the nightly
always-valid readout, run on the platform's own decisions over seven nights, finds it with an
interval that covers the truth (the orders only the planted effect caused), finds nothing in the A/A
audience, narrows its intervals with CUPED, and the program readout compares everyone with the
global holdout."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from ml.activation.settings import CONTROL
from ml.orchestration.config import load_config
from ml.synthetic.generate import generate
from ml.synthetic.settings import GeneratorSettings, PlantedLift
from tests.helpers import query, run_pipeline

# One worker builds the planted warehouse once for the module's tests.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("planted")]

END_DATE = dt.date(2026, 10, 31)
NIGHTS = 7  # the last 7 days: the 2-day windows of the first five have ended by the last (five looks)


# The warehouse, then the day's readout and decisions: no models (the planted and the A/A audiences
# need none), in one process per night as the in-process pipeline runs them.
NIGHT_STAGES = ("load_landing", "build_staging", "build_metrics", "read_experiments", "decide_audiences")


# Session scope: under xdist a worker may run another module's tests between these two, which
# would tear a module-scoped fixture down and build it again (measured: twice 87 s).
@pytest.fixture(scope="session")
def planted_warehouse(tmp_path_factory) -> Path:
    """A clean data set with the demo config's planted lift, decided night after night without
    models (the planted and the A/A audiences need none) and read out on the last night."""
    config = load_config()
    data_dir = tmp_path_factory.mktemp("planted")
    settings = GeneratorSettings(
        customers=4_000,
        days=90,
        end_date=END_DATE,
        bad_row_rate=0,
        seed=3,
        planted_lift=PlantedLift.from_config(config.demo, config.activation),
    )
    generate(settings, data_dir / "landing")
    for offset in reversed(range(NIGHTS)):
        ds = (END_DATE - dt.timedelta(days=offset)).isoformat()
        result = run_pipeline(data_dir, ds, True, *(f"--stage={name}" for name in NIGHT_STAGES))
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return data_dir


def results(data_dir: Path, audience: str) -> pd.Series:
    frame = query(
        data_dir,
        "select * from marts.fct_experiment_results where ds = ? and audience = ? and baseline = 'control'",
        [END_DATE, audience],
    )
    assert len(frame) == 1, frame
    return frame.iloc[0]


def true_effect(data_dir: Path, audience: str) -> float:
    """Revenue per treated, exposed customer of the orders only the planted effect caused (in EUR)."""
    economics = load_config().activation.economics
    rates = {economics.currency: 1.0, **economics.exchange_rates}
    planted = pd.read_parquet(data_dir / "synthetic_truth" / "planted_orders.parquet")
    planted = planted[planted["incremental"] & (planted["status"] == "completed")]
    planted = planted.assign(revenue=planted["total_amount"] * planted["currency"].map(rates))
    window = load_config().activation.audiences[audience].goal.window_days
    exposed = query(
        data_dir,
        "select customer_id, min(ds) as assigned_on from experiments.assignments where audience = ? and ds < ? "
        "group by customer_id having min(ds) + ? <= ? and arg_min(experiment_group, ds) = 'treatment'",
        [audience, END_DATE, window, END_DATE],
    )
    joined = exposed.merge(planted, on="customer_id")
    start = pd.to_datetime(joined["assigned_on"]) + pd.Timedelta(days=1)
    ordered = pd.to_datetime(joined["ordered_at"], utc=True).dt.tz_localize(None)  # the warehouse's naive UTC
    in_window = (ordered >= start) & (ordered < start + pd.Timedelta(days=window))
    return float(joined.loc[in_window, "revenue"].sum() / len(exposed))


def test_the_readout_finds_the_planted_revenue_effect_and_its_interval_covers_the_truth(planted_warehouse):
    planted = load_config().demo.planted_lift
    row = results(planted_warehouse, planted.audience)
    assert row["goal_metric"] == "revenue" and row["looks"] >= 4
    assert row["arm_customers"] >= 100 and row["baseline_customers"] >= 100  # a real sample, not a handful
    assert row["is_significant"] and row["ci_lower"] > 0, row.to_dict()
    assert row["conclusion"] == "treatment is better than control (always-valid)"
    truth = true_effect(planted_warehouse, planted.audience)
    assert truth > 0 and row["ci_lower"] <= truth <= row["ci_upper"], (truth, row.to_dict())
    # The always-valid interval is wider than the one-look interval it stands beside.
    assert row["ci_upper"] - row["ci_lower"] > row["fixed_horizon_ci_upper"] - row["fixed_horizon_ci_lower"]


def test_the_aa_audience_shows_no_lift(planted_warehouse):
    row = results(planted_warehouse, "aa_default_experience")
    assert row["arm_customers"] >= 500 and row["baseline_customers"] >= 500
    assert row["p_value"] > row["significance_level"] and not row["is_significant"], row.to_dict()
    assert row["ci_lower"] < 0 < row["ci_upper"]
    assert row["conclusion"] == "no evidence of a difference yet (keep running)"


def test_cuped_narrows_the_intervals_on_the_demo_data(planted_warehouse):
    read = query(
        planted_warehouse,
        "select audience, variance_reduction from marts.fct_experiment_results where ds = ? and looks > 0",
        [END_DATE],
    )
    assert len(read) >= 2 and (read["variance_reduction"] > 0).all(), read


def test_the_program_readout_compares_everyone_with_the_global_holdout(planted_warehouse):
    program = query(planted_warehouse, "select * from marts.fct_program_readout where ds = ?", [END_DATE])
    assert len(program) == 1
    row = program.iloc[0]
    customers = row["holdout_customers"] + row["personalized_customers"]
    assert abs(row["holdout_customers"] / customers - 0.05) < 0.015 and row["currency"] == "EUR"
    assert (
        row["incremental_profit_ci_lower"] < row["incremental_profit_per_customer"] < row["incremental_profit_ci_upper"]
    )
    held_out = query(
        planted_warehouse, "select customer_id from activation.decisions where reason = 'global_holdout'", []
    )
    assigned = query(planted_warehouse, "select distinct customer_id from experiments.assignments", [])
    assert len(held_out) and not set(held_out["customer_id"]) & set(assigned["customer_id"])


def test_every_assignment_carries_its_experiment_version(planted_warehouse):
    versions = query(planted_warehouse, "select * from experiments.versions", [])
    assigned = query(planted_warehouse, "select distinct audience, experiment_version from experiments.assignments", [])
    assert assigned["experiment_version"].notna().all()
    assert set(map(tuple, assigned.values)) <= set(map(tuple, versions[["audience", "experiment_version"]].values))
    assert versions.groupby("audience").size().max() == 1  # one configuration all week: one version each
    first_night = END_DATE - dt.timedelta(days=NIGHTS - 1)
    assert (versions["first_ds"] == pd.Timestamp(first_night)).all() and (
        versions["last_ds"] == pd.Timestamp(END_DATE)
    ).all()


def test_only_treated_customers_were_planted_and_the_generator_agrees_with_the_assignment(planted_warehouse):
    """The generator hashes customers into groups with the platform's own function: no customer it
    made respond is in the audience's control group, and its truth file says what it planted."""
    planted = load_config().demo.planted_lift
    truth = pd.read_parquet(planted_warehouse / "synthetic_truth" / "customers.parquet")
    responders = set(truth.loc[truth["planted_orders"] > 0, "customer_id"])
    assigned = query(
        planted_warehouse,
        "select customer_id, any_value(experiment_group) as experiment_group from experiments.assignments "
        "where audience = ? group by customer_id",
        [planted.audience],
    )
    assert responders and set(assigned["customer_id"]) & responders
    assert not responders & set(assigned.loc[assigned["experiment_group"] == CONTROL, "customer_id"])
    summary = json.loads((planted_warehouse / "synthetic_truth" / "planted_lift.json").read_text())
    assert summary["audience"] == planted.audience and summary["orders_placed_because_of_it"] == sum(
        truth["planted_orders"]
    )
