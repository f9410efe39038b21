"""The platform configuration: every package's settings section, combined, validated and loaded.

Each package owns its section (ml.synthetic.demo_settings, ml.warehouse.settings,
ml.orchestration.settings, ml.recommender.settings, ml.propensity.settings, ml.activation.settings,
ml.mlops.settings, ml.serving.settings); this module only puts them together, checks what spans sections, and reads the
YAML file (config/personalization.yml, or PZ_CONFIG).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml
from pydantic import ValidationError, model_validator

from ml.activation.settings import ActivationConfig
from ml.errors import ConfigError
from ml.mlops.settings import MonitoringConfig
from ml.orchestration.settings import NotificationsConfig, ScheduleConfig, ScoringConfig
from ml.paths import config_path
from ml.propensity.settings import PropensityConfig
from ml.recommender.settings import RecommenderConfig
from ml.serving.settings import ServingConfig
from ml.settings import StrictSettings
from ml.synthetic.demo_settings import DemoConfig
from ml.uplift.settings import OptionCost, ProfitTerms, UpliftConfig
from ml.warehouse.settings import MetricsConfig

__all__ = ["ConfigError", "PlatformConfig", "load_config"]


class PlatformConfig(StrictSettings):
    demo: DemoConfig = DemoConfig()
    metrics: MetricsConfig = MetricsConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    recommender: RecommenderConfig = RecommenderConfig()
    propensity: PropensityConfig = PropensityConfig()
    activation: ActivationConfig = ActivationConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    scoring: ScoringConfig = ScoringConfig()
    notifications: NotificationsConfig = NotificationsConfig()
    serving: ServingConfig = ServingConfig()
    uplift: UpliftConfig = UpliftConfig()

    def dbt_vars(self) -> dict[str, object]:
        """The dbt vars that come from configuration (ml.warehouse.transform adds ds and the fixed ones):
        the metrics settings, the propensity model's feature snapshot grid, and what the experiment
        readouts' inputs need of activation (models/experiments)."""
        return {
            **self.metrics.model_dump(),
            "feature_snapshot_days": self.propensity.feature_snapshot_days,
            "feature_snapshot_every_days": self.propensity.cutoff_every_days,
            **self.activation.readout_vars(),
            **self.activation.send_time.dbt_vars(),
            "campaign_goals": [
                {"campaign_id": name, "goal_metric": campaign.goal.metric, "window_days": campaign.goal.window_days}
                for name, campaign in self.uplift.campaigns.items()
            ],
        }

    def profit_terms(self) -> ProfitTerms:
        """What the uplift models turn effects into money with: the margin, and per campaign arm (the
        landed campaigns' and the audiences') its contact and offer costs from activation.economics."""
        economics = self.activation.economics

        def cost(channel: str, offer_code: str | None) -> OptionCost:
            offer = economics.offers.get(offer_code) if offer_code else None
            return OptionCost(
                contact_cost=float(economics.contact_cost.get(channel, 0.0)),
                discount_share=float(offer.discount_share) if offer else 0.0,
                cost_per_order=float(offer.cost_per_order) if offer else 0.0,
            )

        costs = {
            (name, arm): cost(campaign.channel, offer)
            for name, campaign in self.uplift.campaigns.items()
            for arm, offer in campaign.offers.items()
        }
        costs |= {
            (name, arm.name): cost(audience.channels[0], arm.tactic.offer_code)
            for name, audience in self.activation.audiences.items()
            for arm in audience.arms()
        }
        # A landed campaign's arm without an offer still costs its contact.
        costs |= {(name, "*"): cost(campaign.channel, None) for name, campaign in self.uplift.campaigns.items()}
        return ProfitTerms(economics.margin_share, costs)

    def sha256(self) -> str:
        """A digest of the whole configuration a night ran with (in every export manifest)."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()

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
