"""The `champion` gates and the `monitoring` section: model operations shared by every model."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ml.settings import StrictSettings


class ChampionGateConfig(StrictSettings):
    """When a newly trained version replaces the champion (ml.mlops.registry, shared by every model)."""

    metric: str = Field(description="Primary metric, higher is better, as logged to MLflow.")
    margin: float = Field(
        0.0,
        ge=0,
        description="A version must beat the baseline by at least this much; a challenger's mean gain over "
        "the champion must reach it too.",
    )
    alpha: float = Field(
        0.025,
        gt=0,
        lt=0.5,
        description="Error rate of the one-sided paired t-tests on per-customer scores: a challenger replaces the "
        "champion only when better at this level (its 1 - 2 alpha interval above 0: 95% at 0.025); a champion "
        "serves until significantly worse than the baseline.",
    )


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
    reference_days: int = Field(
        7,
        ge=1,
        le=90,
        description="Days in each model's drift reference, ending on the day its version in use was trained for "
        "(the day before ds when it was trained tonight); sampled to tonight's size.",
    )
    sample_size: int = Field(
        20_000,
        ge=1_000,
        description="Rows each side of a check holds at most: a seeded sample of customers (the same customers "
        "on both sides where they exist), so the check's cost stops growing with customers.",
    )
    coverage_change_threshold: float = Field(
        0.25, gt=0, description="Catalog coverage of the recommendations drifts when it changes by this share."
    )
    on_dataset_drift: Literal["warn", "block_exports"] = Field(
        "warn", description="warn: record and publish; block_exports: keep earlier exports and fail publishing."
    )
