"""Paths from the environment and the validated platform configuration (DESIGN section 6)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ml.activation.settings import ActivationConfig
from ml.constants import (
    DEMO_BAD_ROW_RATE,
    DEMO_CUSTOMERS,
    DEMO_DAYS,
    DEMO_END_DATE,
    SCORING_BATCH_SIZE,
    SEED,
    WAREHOUSE_FILE,
)

REPO_ROOT = Path(__file__).resolve().parent.parent


def dbt_project_dir() -> Path:
    """The dbt project; PZ_DBT_PROJECT_DIR points at another copy (a fork, a test double)."""
    return Path(os.environ.get("PZ_DBT_PROJECT_DIR", REPO_ROOT / "dbt_project")).resolve()


class ConfigError(ValueError):
    """The configuration file is missing, unreadable or invalid; the message names file and key."""


def data_dir() -> Path:
    return Path(os.environ.get("PZ_DATA_DIR", REPO_ROOT / "data")).resolve()


def reports_dir() -> Path:
    return Path(os.environ.get("PZ_REPORTS_DIR", REPO_ROOT / "reports")).resolve()


def config_path() -> Path:
    return Path(os.environ.get("PZ_CONFIG", REPO_ROOT / "config" / "personalization.yml")).resolve()


def landing_dir() -> Path:
    return data_dir() / "landing"


def warehouse_path() -> Path:
    return data_dir() / WAREHOUSE_FILE


def mlflow_tracking_uri() -> str:
    """MLFLOW_TRACKING_URI, or a SQLite store under the data dir (DESIGN section 6)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{data_dir() / 'mlflow.db'}"


class _Strict(BaseModel):
    # Unknown keys are errors: a typo in a key must not silently fall back to a default.
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlantedLiftConfig(_Strict):
    """The true effect the demo data hold for the experiment readouts to find (ml.synthetic)."""

    audience: str = Field(description="The demo audience whose treated customers respond.")
    arms: dict[str, float] = Field(
        description="Per arm: the share of treated, reachable customers who qualified the day before and "
        "come back to buy because of the message."
    )
    days: int = Field(gt=0, description="The effect holds in the last this many days of the demo data.")

    @model_validator(mode="after")
    def _shares(self) -> PlantedLiftConfig:
        for arm, share in self.arms.items():
            if not 0 < share <= 1:
                raise ValueError(f"arms.{arm}: {share} is not a share in (0, 1]")
        return self


class DemoConfig(_Strict):
    customers: int = Field(DEMO_CUSTOMERS, gt=0, description="Customers in the demo data set.")
    days: int = Field(DEMO_DAYS, gt=0, description="Days of history in the demo data set.")
    end_date: dt.date = Field(dt.date.fromisoformat(DEMO_END_DATE), description="Last day of demo data.")
    bad_row_rate: float = Field(DEMO_BAD_ROW_RATE, ge=0, le=0.5, description="Share of injected bad rows.")
    seed: int = SEED
    planted_lift: PlantedLiftConfig | None = None


class MetricsConfig(_Strict):
    """Settings of the customer metrics layer; passed to dbt as vars (see ml.transform)."""

    churn_days: int = Field(90, gt=0, description="No completed order for this many days: churned.")
    at_risk_days: int = Field(45, gt=0, description="No completed order for this many days: at risk.")
    new_customer_days: int = Field(30, gt=0, description="Signed up or first ordered this recently: new.")
    low_sample_threshold: int = Field(30, gt=0, description="Fewer responses than this: is_low_sample.")
    incremental_lookback_days: int = Field(
        3, ge=0, description="Daily facts also rebuild this many days before ds, for late-arriving rows."
    )

    @model_validator(mode="after")
    def _at_risk_before_churn(self) -> MetricsConfig:
        if self.at_risk_days >= self.churn_days:
            raise ValueError(f"at_risk_days ({self.at_risk_days}) must be below churn_days ({self.churn_days})")
        return self


class ScheduleConfig(_Strict):
    """When the nightly DAG runs; read by dags/ when Airflow parses the DAG file."""

    start_date: dt.date = Field(dt.date(2026, 5, 4), description="First logical date the DAG may run for.")
    catchup: bool = Field(False, description="Let the scheduler create runs for missed dates since start_date.")
    cron: str = Field("0 2 * * *", description="When a night runs (UTC); it builds the day that just ended.")
    demo_days: int = Field(3, gt=0, description="`make demo` runs the DAG for this many last days of demo data.")
    retries: int = Field(1, ge=0, description="Retries of a failed task before the run fails.")
    retry_delay_minutes: float = Field(5, ge=0, description="Wait before a retry.")


INTERACTION_KINDS = ("purchase", "add_to_cart", "product_view")


class LightFMSettings(_Strict):
    """Hyperparameters of the hybrid LightFM model; the search tries overrides of these."""

    family: Literal["lightfm"] = Field("lightfm", description="Model family (search entries may pick `ease`).")
    loss: Literal["warp", "bpr", "warp-kos", "logistic"] = Field("warp", description="LightFM loss.")
    no_components: int = Field(32, gt=0, description="Embedding dimension.")
    learning_rate: float = Field(0.05, gt=0, description="SGD learning rate (adagrad schedule).")
    item_alpha: float = Field(0.0, ge=0, description="L2 penalty on item features.")
    user_alpha: float = Field(0.0, ge=0, description="L2 penalty on user features.")
    max_epochs: int = Field(30, gt=0, description="Upper bound on epochs; early stopping picks the number.")
    user_feature_weight: float = Field(
        0.1, ge=0, description="Weight of a customer's segment features next to their own id (0: ids only)."
    )
    item_feature_weight: float = Field(
        1.0, ge=0, description="Weight of an item's category, tags and price band next to its id (0: ids only)."
    )
    sample_weight_power: float = Field(
        0.0, ge=0, le=1, description="Train on decayed weight ** power: 0 counts every interaction once, 1 linearly."
    )


class EaseSettings(_Strict):
    """EASE (Steck 2019): a closed-form item-item model, the search's second family (ml.recommender.ease)."""

    family: Literal["ease"] = "ease"
    l2: float = Field(200.0, gt=0, description="L2 penalty of the item-item weights (lambda in the paper).")
    view_weight: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Weight of an item viewed or carted and not bought in a customer's row (0: purchases only).",
    )
    max_items: int = Field(
        10_000, gt=0, description="The most bought items it models (its cost grows with the cube of this number)."
    )


ModelSettings = LightFMSettings | EaseSettings


class ChampionGateConfig(_Strict):
    """When a newly trained version replaces the champion (ml.registry, shared by every model)."""

    metric: str = Field(description="Primary metric, higher is better, as logged to MLflow.")
    margin: float = Field(0.0, ge=0, description="The challenger must beat the champion by at least this much.")


class RecommenderConfig(_Strict):
    """How interactions are weighted, the hybrid model trained and evaluated, and customers scored."""

    k: int = Field(10, gt=0, description="Recommendations per customer.")
    holdout: Literal["auto", "recent_days", "last_purchases"] = Field(
        "auto",
        description="Evaluation split: the purchases of the last holdout_days (recent_days), each customer's"
        " latest holdout_share of purchases (last_purchases), or auto: recent_days when it holds"
        " min_holdout_customers buyers.",
    )
    holdout_days: int = Field(14, gt=0, description="Evaluation window: the last days before the end of ds.")
    holdout_share: float = Field(
        0.2, gt=0, lt=1, description="last_purchases: the share of each customer's purchases held out (at least one)."
    )
    min_holdout_customers: int = Field(
        50, ge=1, description="auto: fewer buyers in the recent window than this, and last_purchases is used."
    )
    half_life_days: float = Field(30, gt=0, description="An interaction counts half as much after this many days.")
    interaction_weights: dict[str, float] = Field(
        {"purchase": 3.0, "add_to_cart": 1.0, "product_view": 0.25},
        description="Weight of one interaction of each kind (a purchase counts per unit).",
    )
    user_features: list[str] = Field(
        ["country", "age_band", "gender", "device_type", "acquisition_channel"],
        description="customer_360 columns used as demographic features (behavioral ones are derived).",
    )
    model: LightFMSettings = LightFMSettings()
    search: list[dict[str, Any]] = Field(
        [{}, {"no_components": 16}, {"user_feature_weight": 0.3}, {"family": "ease"}],
        description="Overrides of `model` tried in the hyperparameter search ({} = the settings as they are);"
        " an entry with `family: ease` is EASE settings instead.",
    )
    eval_every_epochs: int = Field(5, gt=0, description="Early stopping: validation NDCG every this many epochs.")
    patience: int = Field(2, ge=1, description="Early stopping: stop after this many evaluations without gain.")
    num_threads: int = Field(1, gt=0, description="LightFM threads; above 1 training is no longer reproducible.")
    parallel_fits: int = Field(
        2,
        gt=0,
        description="LightFM fits run side by side, one thread each (the search settings, then the evaluation and"
        " scoring fits): as reproducible as one at a time, and about that many times faster on as many cores.",
    )
    cold_start_max_items: int = Field(
        2, ge=0, description="Customers with at most this many items in their history are reported as cold start."
    )
    model_min_items: int = Field(
        1, ge=0, description="Customers with fewer items in their history get the popularity fallback (0: none)."
    )
    exclude_purchased: bool = Field(True, description="Never recommend an item the customer already bought.")
    exclude_interacted: bool | Literal["auto"] = Field(
        "auto",
        description="Also never recommend an item the customer viewed or carted: true, false, or auto (whichever"
        " serves better on the validation window; items consumed once, like films, favour true).",
    )
    fallback_segment: str = Field(
        "country", description="customer_360 column whose most popular items cold customers get first."
    )
    scoring_batch_size: int = Field(SCORING_BATCH_SIZE, gt=0, description="Customers scored per matrix product.")
    champion: ChampionGateConfig = ChampionGateConfig(metric="ndcg_at_10", margin=0.002)

    @model_validator(mode="after")
    def _known_kinds(self) -> RecommenderConfig:
        unknown = set(self.interaction_weights) - set(INTERACTION_KINDS)
        if unknown:
            raise ValueError(f"unknown interaction kinds {sorted(unknown)}; known: {', '.join(INTERACTION_KINDS)}")
        if any(weight < 0 for weight in self.interaction_weights.values()):
            raise ValueError("interaction weights must be 0 or more")
        for position, overrides in enumerate(self.search):
            try:
                self.settings_of(overrides)
            except ValidationError as error:
                problems = "; ".join(f"{'.'.join(map(str, p['loc']))}: {p['msg']}" for p in error.errors())
                raise ValueError(f"search[{position}] {overrides}: {problems}") from None
        return self

    def settings_of(self, overrides: dict[str, Any]) -> ModelSettings:
        """One search entry: EASE settings when it names `family: ease`, else overrides of `model`."""
        if overrides.get("family") == "ease":
            return EaseSettings.model_validate(overrides)
        return LightFMSettings.model_validate(self.model.model_dump() | overrides)

    def search_settings(self) -> list[ModelSettings]:
        """The settings the search tries, each validated."""
        return [self.settings_of(overrides) for overrides in self.search]


class GradientBoostingSettings(_Strict):
    """scikit-learn HistGradientBoostingClassifier settings of the propensity model."""

    max_iter: int = Field(100, gt=0, description="Boosting iterations (early stopping may use fewer).")
    learning_rate: float = Field(0.05, gt=0, description="Shrinkage per iteration.")
    max_leaf_nodes: int = Field(15, gt=1, description="Leaves per tree.")
    min_samples_leaf: int = Field(100, gt=0, description="Customers per leaf at least.")
    l2_regularization: float = Field(1.0, ge=0, description="L2 penalty on leaf values.")


class PropensityConfig(_Strict):
    """Who will buy next: label, training cutoffs, model, calibration and the champion gate."""

    horizon_days: int = Field(30, gt=0, description="Label: a completed order within this many days after the cutoff.")
    training_window_days: int = Field(
        180,
        gt=0,
        description="Training cutoffs reach back this far before ds (the evaluation fit's as far before its"
        " validation cutoff); at least horizon_days rounded up to cutoff_every_days.",
    )
    cutoff_every_days: int = Field(7, gt=0, description="Days between training cutoffs (and feature snapshots).")
    training_max_customers: int = Field(
        200_000,
        gt=0,
        description="Train on at most this many customers, a stable sample by a hash of the id, each with all its"
        " cutoffs (scoring covers every customer).",
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

    @model_validator(mode="after")
    def _window_holds_a_labelled_cutoff(self) -> PropensityConfig:
        if self.training_window_days < self.label_lag_days:
            raise ValueError(
                f"training_window_days ({self.training_window_days}) must be at least horizon_days"
                f" ({self.horizon_days}) rounded up to a multiple of cutoff_every_days ({self.cutoff_every_days}),"
                f" or no training cutoff has a known label: set propensity.training_window_days to"
                f" {self.label_lag_days} or more, or shorten propensity.horizon_days"
            )
        return self


DriftMethod = Literal["psi", "jensenshannon", "wasserstein", "ks", "chisquare", "kl_div", "hellinger", "z"]


class DriftCheckConfig(_Strict):
    """One Evidently drift check: the method, the per-column threshold, and the dataset verdict."""

    method: DriftMethod = Field("psi", description="Evidently stattest of the numerical columns.")
    threshold: float = Field(0.2, gt=0, description="Its threshold (a distance; a p-value for ks, chisquare, z).")
    categorical_method: DriftMethod = Field("psi", description="Evidently stattest of the categorical columns.")
    categorical_threshold: float = Field(0.2, gt=0, description="Its threshold.")
    drift_share: float = Field(0.5, gt=0, le=1, description="Dataset drift when at least this share of columns drift.")


class MonitoringConfig(_Strict):
    """Drift checks of ml.monitoring and what dataset drift does to the day's exports."""

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


class ScoringConfig(_Strict):
    """How the nightly scoring stages split their customers (ml.shards)."""

    shards: int = Field(
        4,
        ge=1,
        le=1024,
        description="Customer shards per scoring stage: Airflow maps one task over each, so up to this "
        "many workers score at once. Set it to at least the worker slots (workers x concurrency).",
    )


class PlatformConfig(_Strict):
    demo: DemoConfig = DemoConfig()
    metrics: MetricsConfig = MetricsConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    recommender: RecommenderConfig = RecommenderConfig()
    propensity: PropensityConfig = PropensityConfig()
    activation: ActivationConfig = ActivationConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    scoring: ScoringConfig = ScoringConfig()

    @model_validator(mode="after")
    def _recommendations_within_k(self) -> PlatformConfig:
        for name, audience in self.activation.audiences.items():
            for tactic in audience.tactics():
                if tactic.kind == "recommendations" and (tactic.k or 0) > self.recommender.k:
                    raise ValueError(
                        f"audience {name!r}, key 'tactic.k': {tactic.k} items, but the recommender scores "
                        f"recommender.k = {self.recommender.k} per customer"
                    )
        return self

    @model_validator(mode="after")
    def _planted_lift_in_a_demo_audience(self) -> PlatformConfig:
        planted = self.demo.planted_lift
        if planted is None:
            return self
        audience = self.activation.audiences.get(planted.audience)
        if audience is None:
            raise ValueError(
                f"demo.planted_lift.audience: {planted.audience!r} is not an audience of activation.audiences"
            )
        arms = {arm.name for arm in audience.arms()}
        unknown = set(planted.arms) - arms
        if unknown:
            raise ValueError(
                f"demo.planted_lift.arms: {sorted(unknown)} are not arms of {planted.audience!r} ({sorted(arms)})"
            )
        return self


def _format_validation_error(path: Path, error: ValidationError) -> str:
    lines = [f"Invalid configuration in {path}:"]
    for problem in error.errors():
        key = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        lines.append(f"  - key '{key}': {problem['msg']} (got {problem.get('input')!r})")
    lines.append("Fix these keys (see config/personalization.yml for the documented defaults).")
    return "\n".join(lines)


def load_config(path: Path | str | None = None) -> PlatformConfig:
    """Load and validate the platform configuration; raise ConfigError naming file and key."""
    path = Path(path) if path is not None else config_path()
    if not path.exists():
        raise ConfigError(f"Configuration file {path} does not exist. Set PZ_CONFIG or create it.")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"Configuration file {path} is not valid YAML: {error}") from error
    if not isinstance(raw, dict):
        raise ConfigError(f"Configuration file {path} must hold a mapping at the top level.")
    try:
        return PlatformConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(_format_validation_error(path, error)) from error
