"""The `demo` section: the size, dates and planted truth of the demo data set."""

from __future__ import annotations

import datetime as dt

from pydantic import Field, model_validator

from ml.constants import DEMO_BAD_ROW_RATE, DEMO_CUSTOMERS, DEMO_DAYS, DEMO_END_DATE, SEED
from ml.settings import StrictSettings


class PlantedLiftConfig(StrictSettings):
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


class DemoConfig(StrictSettings):
    customers: int = Field(DEMO_CUSTOMERS, gt=0, description="Customers in the demo data set.")
    days: int = Field(DEMO_DAYS, gt=0, description="Days of history in the demo data set.")
    end_date: dt.date = Field(dt.date.fromisoformat(DEMO_END_DATE), description="Last day of demo data.")
    bad_row_rate: float = Field(DEMO_BAD_ROW_RATE, ge=0, le=0.5, description="Share of injected bad rows.")
    seed: int = SEED
    planted_lift: PlantedLiftConfig | None = None
