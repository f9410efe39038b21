"""A deliberately weak model of each kind never becomes champion and never serves: the baseline does,
and the run, the version, the nightly summary and the KPI report say so with both numbers."""

from __future__ import annotations

import pytest
import yaml
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from ml.paths import REPO_ROOT
from ml.synthetic.generate import generate
from ml.synthetic.settings import GeneratorSettings
from tests.helpers import END_DATE, query, run_pipeline, run_python

WEAK = GeneratorSettings(customers=400, days=100, end_date=END_DATE, bad_row_rate=0.0, seed=17)
pytestmark = pytest.mark.xdist_group("weak_models")


@pytest.fixture(scope="module")
def weak_night(tmp_path_factory):
    """One night where both models are crippled: LightFM with one component, one epoch and a learning rate
    that moves nothing, and no other family to search; boosting that cannot split (every leaf needs more
    rows than there are), so it predicts one probability for everyone."""
    tmp = tmp_path_factory.mktemp("weak")
    raw = yaml.safe_load((REPO_ROOT / "config" / "personalization.yml").read_text())
    raw["recommender"]["model"].update(no_components=1, max_epochs=1, learning_rate=1e-9)
    raw["recommender"]["search"] = [{}]
    raw["recommender"]["exclude_interacted"] = False
    raw["propensity"]["model"].update(max_iter=1, min_samples_leaf=10_000_000)
    (tmp / "personalization.yml").write_text(yaml.safe_dump(raw))
    data_dir = tmp / "data"
    generate(WEAK, data_dir / "landing")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PZ_CONFIG", str(tmp / "personalization.yml"))
        result = run_pipeline(data_dir, END_DATE.isoformat())
        assert result.returncode == 0, result.stderr[-3000:]
        summary = run_python(
            data_dir,
            "import sys, datetime; from ml.orchestration.config import load_config; "
            "from ml.reports.summary import summary_text; "
            "print(summary_text(datetime.date.fromisoformat(sys.argv[1]), load_config().activation))",
            str(END_DATE),
        )
    assert summary.returncode == 0, summary.stderr[-3000:]
    return data_dir, summary.stdout


def champion_of(client: MlflowClient, model_name: str):
    try:
        return client.get_model_version_by_alias(model_name, "champion")
    except MlflowException:
        return None


@pytest.mark.parametrize(("model_name", "baseline"), [("recommender", "popularity"), ("propensity", "rfm_heuristic")])
def test_the_weak_version_is_no_champion_and_says_what_serves_with_both_numbers(weak_night, model_name, baseline):
    data_dir, summary = weak_night
    client = MlflowClient(tracking_uri=f"sqlite:///{data_dir / 'mlflow.db'}")
    assert champion_of(client, model_name) is None
    (version,) = client.search_model_versions(f"name = '{model_name}'")
    tags = version.tags
    assert tags["gate_promoted"] == "False" and tags["gate_serves"] == "baseline" and tags["gate_baseline"] == baseline
    assert float(tags["gate_challenger_value"]) < float(tags["gate_baseline_value"]) + float(tags["gate_margin"])
    assert f"vs {baseline} " in tags["gate_reason"]
    assert client.get_run(version.run_id).data.tags["gate_serves"] == "baseline"
    assert f"the {baseline} baseline serves: no version beats it" in summary
    kpi = (data_dir / "reports" / "kpi" / f"kpi_{END_DATE}.html").read_text()
    assert f"the {baseline} baseline serves" in kpi


def test_the_recommender_baseline_serves_every_customer(weak_night):
    data_dir, _ = weak_night
    recommendations = query(data_dir, "select * from marts.customer_recommendations where ds = ?", [END_DATE])
    customers = query(data_dir, "select customer_id from marts.customer_360 where ds = ?", [END_DATE])
    assert set(recommendations["customer_id"]) == set(customers["customer_id"])
    assert set(recommendations["strategy"]) <= {"popular_in_segment", "popular_overall"}
    assert recommendations["model_version"].isna().all()


def test_the_propensity_fallback_scores_every_customer_under_its_own_name(weak_night):
    data_dir, _ = weak_night
    scores = query(data_dir, "select * from marts.customer_scores where ds = ?", [END_DATE])
    customers = query(data_dir, "select customer_id from marts.customer_360 where ds = ?", [END_DATE])
    assert sorted(scores["customer_id"]) == sorted(customers["customer_id"])
    assert set(scores["model_name"]) == {"rfm_heuristic"} and scores["score"].between(0, 1).all()
    # A calibrated ranking, not a constant: customers with a better RFM score get a higher probability.
    assert scores["score"].nunique() > 3
