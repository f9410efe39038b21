"""A broken model never stops the decisions: after a night, the serving versions' artifacts are
truncated (recommender) and deleted (propensity), and the night is run again; then the other way
round. Each time the night ends with rc 0, the broken versions are demoted with a tag naming the
error, what serves is a version that loads or the baseline, every channel is published, and the
summary names the version and the command to run.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlparse

import mlflow
import pytest
from mlflow import MlflowClient

from ml.mlops.registry import serving_for
from tests.helpers import END_DATE, copy_night, query, run_pipeline

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("broken_models")]

END = END_DATE
DS = END.isoformat()


def serving_version(client: MlflowClient, model_name: str) -> str:
    """The version whose artifact tonight's scoring loads (the propensity version also carries the
    RFM fallback, so it is loaded even when that serves)."""
    serving = serving_for(client, model_name, END)
    assert serving.version is not None and (serving.serves_model or model_name == "propensity"), serving.why
    return str(serving.version.version)


def break_artifact(client: MlflowClient, model_name: str, version: str, how: str) -> None:
    """Truncate the version's pickled bundle, or delete its whole model folder."""
    folder = Path(urlparse(client.get_model_version_download_uri(model_name, version)).path)
    assert folder.is_dir(), folder
    if how == "truncated":
        bundle = next(folder.rglob("bundle.pkl"))
        bundle.write_bytes(bundle.read_bytes()[:100])
    else:
        shutil.rmtree(folder)


def night(data_dir: Path):
    result = run_pipeline(data_dir, DS, True, "--summary")
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def test_a_broken_serving_version_is_demoted_and_the_night_goes_on(built_warehouse, tmp_path):
    # The session's night for DS, copied (a copied data dir is a warehouse of its own), is the
    # night whose serving versions are broken: one night fewer than building its own.
    data_dir = copy_night(built_warehouse, tmp_path / "data")
    mlflow.set_tracking_uri(f"sqlite:///{data_dir / 'mlflow.db'}")
    client = MlflowClient()
    for how in (("truncated", "deleted"), ("deleted", "truncated")):
        broken = {model: serving_version(client, model) for model in ("recommender", "propensity")}
        break_artifact(client, "recommender", broken["recommender"], how[0])
        break_artifact(client, "propensity", broken["propensity"], how[1])
        summary = night(data_dir).stdout
        for model, version in broken.items():
            tags = client.get_model_version(model, version).tags
            assert "artifact_error" in tags, (model, version, tags)
            assert f"{model} v{version} DEMOTED, its artifact cannot be loaded" in summary
            assert f"--stage train_{model}" in summary
            champion = client.get_model_version_by_alias(model, "champion") if _has_champion(client, model) else None
            assert champion is None or str(champion.version) != version
        recommendations = query(data_dir, "select * from marts.customer_recommendations where ds = ?", [END])
        assert not recommendations.empty
        assert not recommendations["model_version"].isin([broken["recommender"]]).any()
        scores = query(data_dir, "select * from marts.customer_scores where ds = ?", [END])
        assert not scores.empty and not scores["model_version"].isin([broken["propensity"]]).any()
        manifests = sorted((data_dir / "exports").glob(f"*/ds={DS}/manifest.json"))
        assert len(manifests) == 4


def _has_champion(client: MlflowClient, model_name: str) -> bool:
    return "champion" in client.get_registered_model(model_name).aliases
