"""The `propensity` section: label, training cutoffs, model, calibration and gate."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ml.mlops.settings import ChampionGateConfig
from ml.settings import StrictSettings


class GradientBoostingSettings(StrictSettings):
    """scikit-learn HistGradientBoostingClassifier settings of the propensity model."""

    max_iter: int = Field(100, gt=0, description="Boosting iterations (early stopping may use fewer).")
    learning_rate: float = Field(0.05, gt=0, description="Shrinkage per iteration.")
    max_leaf_nodes: int = Field(15, gt=1, description="Leaves per tree.")
    min_samples_leaf: int = Field(100, gt=0, description="Customers per leaf at least.")
    l2_regularization: float = Field(1.0, ge=0, description="L2 penalty on leaf values.")


class PropensityConfig(StrictSettings):
    """Who will buy next: label, training cutoffs, model, calibration and the champion gate."""

    horizon_days: int = Field(30, gt=0, description="Label: a completed order within this many days after the cutoff.")
    training_window_days: int = Field(
        180,
        gt=0,
        description="Training cutoffs reach back this far before ds (the evaluation fit's as far before its"
        " validation cutoff); at least horizon_days + cutoff_every_days - 1.",
    )
    cutoff_every_days: int = Field(7, gt=0, description="Days between training cutoffs (and feature snapshots).")
    training_max_customers: int = Field(
        200_000,
        gt=0,
        description="Train on at most this many customers, a stable sample by a hash of the id, each with all its"
        " cutoffs (scoring covers every customer).",
    )
    training_max_rows: int = Field(
        1_000_000,
        gt=0,
        description="Train on at most this many rows (customer x cutoff): the same stable sample, taken while its"
        " customers' rows fit, so a fit costs about the same however long the history or large the customer base.",
    )
    model: GradientBoostingSettings = GradientBoostingSettings()
    calibration: Literal["isotonic", "sigmoid"] = Field("isotonic", description="Probability calibration method.")
    calibration_folds: int = Field(3, ge=2, description="Cross-validation folds of the calibration.")
    champion: ChampionGateConfig = ChampionGateConfig(metric="roc_auc", margin=0.002)

    @property
    def label_lag_days(self) -> int:
        """The horizon rounded up to the cutoff grid: the newest cutoff whose label is known by ds
        is this many days before ds, and the evaluation fit's newest one as many before that."""
        return -(-self.horizon_days // self.cutoff_every_days) * self.cutoff_every_days

    @property
    def feature_snapshot_days(self) -> int:
        """How far back feature snapshots are kept fresh: the evaluation fit's oldest cutoff (its
        window before the validation cutoff, one label lag before ds)."""
        return self.training_window_days + self.label_lag_days

    @property
    def shortest_training_window_days(self) -> int:
        """The window that holds a grid date with a known label whatever the weekday of ds: the
        newest such date is horizon_days to horizon_days + cutoff_every_days - 1 days before ds."""
        return self.horizon_days + self.cutoff_every_days - 1

    @model_validator(mode="after")
    def _window_holds_a_labelled_cutoff(self) -> PropensityConfig:
        if self.training_window_days < self.shortest_training_window_days:
            raise ValueError(
                f"training_window_days ({self.training_window_days}) must be at least horizon_days"
                f" ({self.horizon_days}) plus cutoff_every_days ({self.cutoff_every_days}) less one,"
                f" or some nights no training cutoff has a known label: set propensity.training_window_days to"
                f" {self.shortest_training_window_days} or more, or shorten propensity.horizon_days"
            )
        return self
