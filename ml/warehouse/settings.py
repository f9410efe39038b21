"""The `metrics` section: settings of the customer metrics layer, passed to dbt as vars."""

from __future__ import annotations

from pydantic import Field, model_validator

from ml.settings import StrictSettings


class MetricsConfig(StrictSettings):
    """Settings of the customer metrics layer; passed to dbt as vars (see ml.warehouse.transform)."""

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
