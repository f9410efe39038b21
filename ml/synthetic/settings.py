"""What a synthetic data set is: its size, dates, seed, bad-row rate and planted experiment effect."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ml.activation.decisions import assignment_buckets, experiment_groups, in_global_holdout
from ml.activation.settings import ActivationConfig
from ml.constants import DEMO_BAD_ROW_RATE, DEMO_CUSTOMERS, DEMO_DAYS, SEED
from ml.synthetic.behaviour import CONSENT_CHANNELS, DEMO_END

if TYPE_CHECKING:
    from ml.synthetic.demo_settings import DemoConfig


@dataclass(frozen=True)
class PlantedLift:
    """A true effect of one audience's arms, assigned by the platform's own hash (ml.activation).

    The simulation knows one moment, the abandoned browse (a product view with no cart add and no
    order that day), so only audiences with that moment can carry it."""

    audience: str
    arms: Mapping[str, float]  # arm -> share of qualified, treated, reachable customers who come back and buy
    days: int  # the effect holds in the last `days` days
    activation: ActivationConfig = field(repr=False)

    @classmethod
    def from_config(cls, demo: DemoConfig, activation: ActivationConfig) -> PlantedLift | None:
        """The effect `demo.planted_lift` plants in one of `activation`'s audiences (None: no effect)."""
        planted = demo.planted_lift
        if planted is None:
            return None
        kind = activation.audiences[planted.audience].moment.kind
        if kind != "browse_abandoned":
            raise ValueError(
                f"demo.planted_lift.audience: {planted.audience!r} has moment {kind!r}; the generator "
                "plants effects for the browse_abandoned moment only"
            )
        return cls(planted.audience, dict(planted.arms), planted.days, activation)

    def response_rates(self, customer_ids: list[str], consent_granted: np.ndarray) -> np.ndarray:
        """Per customer: the chance of coming back to buy after qualifying (0 in control, in the global
        holdout, in arms without an effect, and for customers no channel of the audience may reach)."""
        audience = self.activation.audiences[self.audience]
        held_out = in_global_holdout(pd.Series(customer_ids), self.activation.global_holdout)
        buckets = assignment_buckets(pd.Series(customer_ids), self.audience, audience.salt or self.activation.salt)
        groups = experiment_groups(buckets, audience)
        consent_index = [
            list(CONSENT_CHANNELS).index(self.activation.consent_of(channel)) for channel in audience.channels
        ]
        reachable = consent_granted[:, consent_index].any(axis=1)
        rates = np.array([self.arms.get(group, 0.0) for group in groups], dtype=float)
        return np.where(reachable & ~held_out, rates, 0.0)


@dataclass(frozen=True)
class PlantedCampaign:
    """A past randomized e-mail campaign the generator plants (ml.synthetic.campaigns): its arms and their
    shares, the effects by customer type, and when it is sent."""

    campaign_id: str = "newsletter"
    channel: str = "email"
    # arm -> probability of being sent it; the rest is the control group
    arms: dict[str, float] = field(default_factory=lambda: {"reminder": 0.35, "discount": 0.35})
    # arm -> a persuadable customer's chance of an order the message caused (before the engagement factor)
    response: dict[str, float] = field(default_factory=lambda: {"reminder": 0.14, "discount": 0.26})
    deter_probability: float = 0.5
    sure_thing_days: int = 10
    persuadable_days: int = 150
    window_days: int = 14
    every_days: int = 14
    first_day: int = 35
    quiet_days: int = 21

    @property
    def control_probability(self) -> float:
        return 1.0 - sum(self.arms.values())

    def send_days(self, days: int, start: dt.date) -> list[int]:
        """Mondays from first_day on, every `every_days` days, whose goal window ends quiet_days before the end."""
        first = self.first_day + (7 - (start + dt.timedelta(days=self.first_day)).weekday()) % 7
        return list(range(first, days - self.quiet_days - self.window_days + 1, self.every_days))


@dataclass(frozen=True)
class GeneratorSettings:
    customers: int = DEMO_CUSTOMERS
    days: int = DEMO_DAYS
    end_date: dt.date = DEMO_END
    bad_row_rate: float = DEMO_BAD_ROW_RATE
    seed: int = SEED
    planted_lift: PlantedLift | None = None
    # A past randomized e-mail campaign with heterogeneous effects (ml.synthetic.campaigns); None: no campaign history.
    planted_campaign: PlantedCampaign | None = field(default_factory=PlantedCampaign)

    @property
    def n_items(self) -> int:
        return int(np.clip(self.customers // 10, 300, 5_000))

    @property
    def start_epoch(self) -> int:
        start = self.end_date - dt.timedelta(days=self.days - 1)
        return int(dt.datetime(start.year, start.month, start.day, tzinfo=dt.UTC).timestamp())
