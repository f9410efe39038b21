"""The generator plants a true lift in one demo audience and none anywhere else; the nightly readout,
run on the platform's own decisions over several days, finds the planted lift and, at the configured
significance level, nothing in the A/A audience (issue 8, part 5)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from ml.activation.settings import CONTROL
from ml.config import load_config
from ml.synthetic import GeneratorSettings, PlantedLift, generate
from tests.conftest import query, run_pipeline, run_python

# One worker builds the planted warehouse once for the module's tests.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("planted")]

END_DATE = dt.date(2026, 10, 31)
NIGHTS = 4  # the last 4 days: the 2-day windows of the first two have ended by the last


def run_stages(data_dir: Path, ds: str, *stages: str) -> None:
    """Run ml.stages functions for ds in a subprocess (its own dbt and DuckDB state, like the DAG)."""
    script = "import sys\nfrom ml import stages\nfor name in sys.argv[2:]:\n    getattr(stages, name)(sys.argv[1])"
    result = run_python(data_dir, script, ds, *stages)
    assert result.returncode == 0, result.stderr[-3000:]


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
        planted_lift=PlantedLift.from_config(config),
    )
    generate(settings, data_dir / "landing")
    for offset in reversed(range(NIGHTS)):
        ds = (END_DATE - dt.timedelta(days=offset)).isoformat()
        result = run_pipeline(data_dir, ds, models=False)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        run_stages(data_dir, ds, "read_experiments", "decide_audiences")
    return data_dir


def results(data_dir: Path, audience: str) -> pd.Series:
    frame = query(
        data_dir, "select * from marts.fct_experiment_results where ds = ? and audience = ?", [END_DATE, audience]
    )
    assert len(frame) == 1, frame
    return frame.iloc[0]


def test_the_readout_finds_the_planted_lift(planted_warehouse):
    planted = load_config().demo.planted_lift
    row = results(planted_warehouse, planted.audience)
    assert row["arm_customers"] >= 100 and row["control_customers"] >= 30  # a real sample, not a handful
    assert row["is_significant"], row.to_dict()
    assert row["conclusion"] == "reject the null hypothesis: positive lift"
    # The planted share is an upper bound of the lift: some would have bought anyway, some never buy.
    assert row["ci_lower"] > 0 and row["absolute_lift"] < planted.arms[row["arm"]]


def test_the_aa_audience_shows_no_lift(planted_warehouse):
    row = results(planted_warehouse, "aa_default_experience")
    assert row["arm_customers"] >= 500 and row["control_customers"] >= 500
    assert row["p_value_holm"] >= row["significance_level"] and not row["is_significant"], row.to_dict()
    assert row["ci_lower"] < 0 < row["ci_upper"]
    assert row["conclusion"] == "cannot reject the null hypothesis"


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
