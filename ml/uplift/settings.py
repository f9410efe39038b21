"""The `uplift` section: the landed campaigns' goals and offers, the learners, the gate and exploration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field, model_validator

from ml.settings import StrictSettings


class CampaignGoal(StrictSettings):
    metric: Literal["purchase", "engagement", "revenue"] = Field(
        description="purchase: a completed order; engagement: any event or order; revenue: completed orders' value."
    )
    window_days: int = Field(gt=0, description="Measured within this many days after the send.")


class Campaign(StrictSettings):
    """A landed campaign (campaign_sends.campaign_id): its goal, and what its arms cost."""

    goal: CampaignGoal
    channel: str = Field(
        "email", description="The channel it was sent in: what a contact costs (activation.economics)."
    )
    offers: dict[str, str] = Field(
        {}, description="arm -> offer code (activation.economics.offers): what the arm gives away per order."
    )
    description: str = ""


class LearnerSettings(StrictSettings):
    """scikit-learn HistGradientBoostingRegressor settings of every stage of the DR-learner."""

    max_iter: int = Field(100, gt=0)
    learning_rate: float = Field(0.05, gt=0)
    max_leaf_nodes: int = Field(8, gt=1)
    min_samples_leaf: int = Field(100, gt=0)
    l2_regularization: float = Field(1.0, ge=0)


class UpliftConfig(StrictSettings):
    """Who a message persuades: learned per campaign and arm from randomized sends (docs/uplift.md)."""

    enabled: bool = Field(True, description="false: no uplift model is trained; every audience decides by its rules.")
    campaigns: dict[str, Campaign] = Field(
        {}, description="Landed campaigns the models learn from; the audiences are campaigns too (their own goal)."
    )
    min_sends_per_group: int = Field(
        200, gt=0, description="A campaign arm is learned when it and its control both have this many sends."
    )
    min_conversions_per_group: int = Field(
        20, gt=0, description="...and this many converting sends each (fewer: too little signal to rank by)."
    )
    evaluation_share: float = Field(
        0.3, gt=0, lt=1, description="Share of customers (by a hash of the id) held out for the gate and the OPE."
    )
    cross_fitting_folds: int = Field(2, ge=2, description="Folds of the DR-learner's nuisance models.")
    spread_fits: int = Field(
        5, ge=2, description="Half-sample fits of the effect model: their spread is the uplift's standard error."
    )
    bootstrap_samples: int = Field(300, ge=50, description="Bootstrap resamples of the Qini and OPE intervals.")
    interval_level: float = Field(0.95, gt=0.5, lt=1, description="Two-sided level of every interval.")
    learner: LearnerSettings = LearnerSettings()
    exploration_percent: float = Field(
        10,
        gt=0,
        lt=100,
        description="Share of each audience's customers (by a hash) that keeps random arm assignment when an uplift"
        " policy serves: the data stay unbiased for the next models and the readouts stay valid.",
    )
    training_max_sends: int = Field(
        400_000,
        gt=0,
        description="Learn from at most this many sends: a stable sample of customers by a hash of the id, each"
        " with all its sends, taken while their sends fit (scoring covers every customer).",
    )
    max_snapshot_age_days: int = Field(
        14, gt=0, description="A send learns from the latest feature snapshot at most this many days before it."
    )

    @model_validator(mode="after")
    def _offers_name_arms(self) -> UpliftConfig:
        for name, campaign in self.campaigns.items():
            if "control" in campaign.offers:
                raise ValueError(f"campaigns.{name}.offers: the control group gets no offer")
        return self


@dataclass(frozen=True)
class OptionCost:
    """What sending one option (a campaign's arm) costs: per contact, and per order it brings."""

    contact_cost: float = 0.0
    discount_share: float = 0.0  # share of the treated customer's order value given away
    cost_per_order: float = 0.0


@dataclass(frozen=True)
class ProfitTerms:
    """The economics the uplift models turn effects into money with (from activation.economics, put
    together by the orchestrator): margin share, and each campaign arm's costs."""

    margin_share: float
    costs: dict[tuple[str, str], OptionCost]  # (campaign_id, arm) -> its costs

    def cost(self, campaign_id: str, arm: str) -> OptionCost:
        """The arm's costs; an arm without its own entry costs its campaign's contact ("*")."""
        return self.costs.get((campaign_id, arm)) or self.costs.get((campaign_id, "*"), OptionCost())
