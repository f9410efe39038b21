"""The `champion` gates and the `monitoring` section: model operations shared by every model."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ml.settings import StrictSettings


class ChampionGateConfig(StrictSettings):
    """When a newly trained version replaces the champion (ml.mlops.registry, shared by every model)."""

    metric: str = Field(description="Primary metric, higher is better, as logged to MLflow.")
    margin: float = Field(0.0, ge=0, description="The challenger must beat the champion by at least this much.")


DriftMethod = Literal["psi", "jensenshannon", "wasserstein", "ks", "chisquare", "kl_div", "hellinger", "z"]


class DriftCheckConfig(StrictSettings):
    """One Evidently drift check: the method, the per-column threshold, and the dataset verdict."""

    method: DriftMethod = Field("psi", description="Evidently stattest of the numerical columns.")
    threshold: float = Field(0.2, gt=0, description="Its threshold (a distance; a p-value for ks, chisquare, z).")
    categorical_method: DriftMethod = Field("psi", description="Evidently stattest of the categorical columns.")
    categorical_threshold: float = Field(0.2, gt=0, description="Its threshold.")
    drift_share: float = Field(0.5, gt=0, le=1, description="Dataset drift when at least this share of columns drift.")


class MonitoringConfig(StrictSettings):
    """Drift checks of ml.mlops.monitoring and what dataset drift does to the day's exports."""

    features: DriftCheckConfig = DriftCheckConfig()
    predictions: DriftCheckConfig = DriftCheckConfig(method="psi", threshold=0.2, drift_share=1.0)
    recommendations: DriftCheckConfig = DriftCheckConfig(
        categorical_method="jensenshannon", categorical_threshold=0.1, drift_share=0.5
    )
    coverage_change_threshold: float = Field(
        0.25, gt=0, description="Catalog coverage of the recommendations drifts when it changes by this share."
    )
    on_dataset_drift: Literal["warn", "block_exports"] = Field(
        "warn", description="warn: record and publish; block_exports: keep earlier exports and fail publishing."
    )
