"""A randomized campaign's export (one row per customer: sent an arm or kept as control, with the
outcome) onto the landing contract, so the uplift models can be measured on a company's past campaign.

Such an export is what an ESP or an analyst hands over after a test: a row per customer with the arm
drawn for them, what they did within the campaign's window (converted, spent, visited) and a few
pre-campaign facts (months since the last purchase, spend over the past year, an acquisition channel).
Which column is which differs per export, so the mapping is data (`CampaignExport`); nothing here
knows a particular data set.

How a row becomes landing rows:
- the customer (`customers`): id from `customer_id_column` or `<id_prefix><row number>`, signed up
  `default_tenure_days` before the send (or at their last known purchase when that is earlier), with
  the mapped attribute columns (`attributes`: export column -> an optional `customers` column);
- the pre-campaign history (`orders`): one completed order `recency` before the send, worth the prior
  spend, so the feature store's recency and monetary columns carry what the export knew;
- the send (`campaign_sends`): its arm, whether it is the control group, the send time and, when the
  export has one, its assignment probability (else the platform uses the arm's share of the day);
- with `customers_known` (the ids are customers the company already lands, their orders included)
  only the sends are landed: the outcomes are in the orders;
- the outcome: a converting row is a completed order worth its spend in the middle of the goal window,
  a visit (when mapped) a `page_view` event there too; the outcomes' exact times are not in such an
  export, the window is what the goal counts.

The campaign's goal must be configured under `uplift.campaigns.<campaign_id>` (`suggested_config`
prints the section). Land the folder, then run the nightly DAG for `sent_on + window_days`
(docs/uplift.md, "Your own past campaign").

Usage:
    python -m ml campaign-export EXPORT.csv --mapping MAPPING.yml --out "$PZ_DATA_DIR/landing"
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ml.errors import PlatformError
from ml.warehouse.contract import CONTRACT

DAYS_PER_UNIT = {"days": 1.0, "weeks": 7.0, "months": 365.25 / 12, "years": 365.25}
VISIT_EVENT = "page_view"


class CampaignExportError(PlatformError, ValueError):
    """The export does not match its mapping, or a row cannot be landed."""


class CampaignExport(BaseModel):
    """Which export column is which (a YAML file: docs/uplift.md, "Your own past campaign")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    campaign_id: str = Field(min_length=1)
    sent_on: dt.date
    channel: str = "email"
    window_days: int = Field(default=14, ge=1)
    arm_column: str
    control_arms: tuple[str, ...] = Field(min_length=1, description="the arm column's values of the control group")
    customer_id_column: str | None = None
    id_prefix: str = ""
    customers_known: bool = Field(
        default=False, description="the ids are customers already landed: land only the sends (their orders count)"
    )
    probability_column: str | None = None
    conversion_column: str | None = None
    revenue_column: str | None = None
    visit_column: str | None = None
    recency_column: str | None = None
    recency_unit: str = "days"
    prior_spend_column: str | None = None
    default_tenure_days: int = Field(default=365, ge=1)
    currency: str | None = None
    attributes: dict[str, str] = Field(default_factory=dict, description="export column -> customers column")

    @model_validator(mode="after")
    def _known_targets(self) -> CampaignExport:
        if self.recency_unit not in DAYS_PER_UNIT:
            raise ValueError(f"recency_unit {self.recency_unit!r}: use one of {sorted(DAYS_PER_UNIT)}")
        if self.customers_known and self.customer_id_column is None:
            raise ValueError("customers_known needs customer_id_column: the ids the landed customers have")
        if self.customers_known:
            return self
        if self.conversion_column is None and self.revenue_column is None and self.visit_column is None:
            raise ValueError("map at least one outcome: conversion_column, revenue_column or visit_column")
        allowed = set(CONTRACT["customers"].optional)
        unknown = sorted(set(self.attributes.values()) - allowed)
        if unknown:
            raise ValueError(f"attributes map to {unknown}, not customers columns; use one of {sorted(allowed)}")
        return self

    def columns(self) -> list[str]:
        """Every export column the mapping reads."""
        named = [
            self.arm_column,
            self.customer_id_column,
            self.probability_column,
            self.conversion_column,
            self.revenue_column,
            self.visit_column,
            self.recency_column,
            self.prior_spend_column,
            *self.attributes,
        ]
        return [column for column in named if column is not None]


def read_export(path: Path, mapping: CampaignExport) -> pd.DataFrame:
    """The export's mapped columns as text; a missing column is named with the ones the file has."""
    path = Path(path)
    if not path.exists():
        raise CampaignExportError(f"{path}: no such file; pass the campaign's export (CSV, one row per customer)")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [column for column in mapping.columns() if column not in frame.columns]
    if missing:
        raise CampaignExportError(
            f"{path}: no column {missing} named by the mapping; the file has {list(frame.columns)}: fix the mapping"
        )
    return frame[mapping.columns()]


def _numbers(frame: pd.DataFrame, column: str | None, path: Path, low: float = 0.0) -> pd.Series | None:
    """The column as numbers >= `low` (empty: missing); the first bad row is named (line of the file)."""
    if column is None:
        return None
    text = frame[column].str.strip()
    values = pd.to_numeric(text.replace("", np.nan), errors="coerce")
    bad = (values.isna() & text.ne("")) | (values < low)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise CampaignExportError(
            f"{path}, line {row + 2}, column {column!r}: {frame[column].iloc[row]!r} is not a number >= {low}; "
            "correct the export or leave the value empty"
        )
    return values


def _timestamps(moments: pd.Series) -> pd.Series:
    return moments.dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _customer_ids(frame: pd.DataFrame, mapping: CampaignExport, path: Path) -> pd.Series:
    if mapping.customer_id_column is None:
        numbers = pd.Series(np.arange(1, len(frame) + 1), index=frame.index).astype(str)
        return mapping.id_prefix + mapping.campaign_id + "-" + numbers
    ids = frame[mapping.customer_id_column].str.strip()
    repeated = ids.duplicated(keep=False) | ids.eq("")
    if repeated.any():
        row = int(np.flatnonzero(repeated.to_numpy())[0])
        raise CampaignExportError(
            f"{path}, line {row + 2}: customer id {ids.iloc[row]!r} is empty or repeated; an export has one row "
            "per customer and campaign"
        )
    return mapping.id_prefix + ids


def landing_tables(frame: pd.DataFrame, mapping: CampaignExport, path: Path) -> dict[str, pd.DataFrame]:
    """The export's landing tables (customers, orders, campaign_sends, events when visits are mapped;
    only campaign_sends when its customers are already landed)."""
    customer = _customer_ids(frame, mapping, path)
    sent_at = pd.Timestamp(mapping.sent_on, tz="UTC") + pd.Timedelta(hours=9)
    probability = _numbers(frame, mapping.probability_column, path)
    sends = _sends(frame, customer, probability, sent_at, mapping)
    if mapping.customers_known:
        return {"campaign_sends": sends}
    outcome_at = sent_at + pd.Timedelta(days=mapping.window_days / 2)
    recency = _numbers(frame, mapping.recency_column, path)
    prior_spend = _numbers(frame, mapping.prior_spend_column, path)
    revenue = _numbers(frame, mapping.revenue_column, path)
    conversion = _numbers(frame, mapping.conversion_column, path)
    visit = _numbers(frame, mapping.visit_column, path)

    default_signup = sent_at.floor("D") - pd.Timedelta(days=mapping.default_tenure_days)
    signup = pd.Series(default_signup, index=frame.index)
    prior_at = None
    if recency is not None:
        days_before = pd.to_timedelta(recency * DAYS_PER_UNIT[mapping.recency_unit], unit="D")
        prior_at = (sent_at.floor("D") - days_before).dt.floor("D") + pd.Timedelta(hours=12)
        signup = prior_at.where(prior_at < default_signup, default_signup).fillna(default_signup)
    customers = pd.DataFrame({"customer_id": customer, "signup_at": _timestamps(signup)})
    for source, target in mapping.attributes.items():
        customers[target] = frame[source].str.strip().replace("", None)

    outcome = conversion if conversion is not None else revenue
    converted = outcome > 0 if outcome is not None else pd.Series(False, index=frame.index)
    orders = [_outcome_orders(customer, converted, revenue, outcome_at, mapping)]
    if prior_at is not None:
        known = prior_at.notna()
        amount = prior_spend[known] if prior_spend is not None else None
        orders.append(_orders(customer[known], prior_at[known], amount, "prior", mapping))
    tables = {"customers": customers, "orders": pd.concat(orders, ignore_index=True)}
    tables["campaign_sends"] = sends
    if visit is not None:
        visited = visit > 0
        tables["events"] = pd.DataFrame(
            {
                "event_id": mapping.campaign_id + "-visit-" + customer[visited],
                "customer_id": customer[visited],
                "occurred_at": _timestamps(pd.Series(outcome_at, index=customer[visited].index)),
                "event_type": VISIT_EVENT,
            }
        )
    return tables


def _orders(customer: pd.Series, at: pd.Series, amount: pd.Series | None, kind: str, mapping: CampaignExport):
    return pd.DataFrame(
        {
            "order_id": mapping.campaign_id + f"-{kind}-" + customer,
            "customer_id": customer,
            "ordered_at": _timestamps(at),
            "total_amount": amount.round(2) if amount is not None else None,
            "currency": mapping.currency,
            "status": "completed",
        }
    )


def _outcome_orders(customer, converted, revenue, outcome_at, mapping: CampaignExport) -> pd.DataFrame:
    converted = converted.fillna(False).astype(bool)
    at = pd.Series(outcome_at, index=customer[converted].index)
    amount = revenue[converted] if revenue is not None else None
    return _orders(customer[converted], at, amount, "outcome", mapping)


def _sends(frame, customer, probability, sent_at, mapping: CampaignExport) -> pd.DataFrame:
    arm = frame[mapping.arm_column].str.strip()
    is_control = arm.isin(mapping.control_arms)
    if not is_control.any():
        raise CampaignExportError(
            f"no row's {mapping.arm_column!r} is one of control_arms {list(mapping.control_arms)}; the column has "
            f"{sorted(arm.unique())[:10]}: name the control group's value"
        )
    return pd.DataFrame(
        {
            "campaign_id": mapping.campaign_id,
            "customer_id": customer,
            "channel": mapping.channel,
            "arm": arm.where(~is_control, "control"),
            "is_control": np.where(is_control, "true", "false"),
            "sent_at": _timestamps(pd.Series(sent_at, index=frame.index)),
            "assignment_probability": probability,
        }
    )


def suggested_config(mapping: CampaignExport, goal: str) -> str:
    """The `uplift.campaigns` entry the platform needs to learn from the landed campaign."""
    return (
        "uplift:\n  campaigns:\n"
        f"    {mapping.campaign_id}:\n"
        f"      goal: {{metric: {goal}, window_days: {mapping.window_days}}}\n"
        f"      channel: {mapping.channel}\n"
    )


def write_landing(path: Path, mapping: CampaignExport, out: Path) -> dict[str, int]:
    """Write the export's landing files under `out` (one CSV per table, replacing this campaign's);
    returns the row count per table. Every export row becomes exactly one send."""
    frame = read_export(path, mapping)
    tables = landing_tables(frame, mapping, Path(path))
    counts = {}
    for table, rows in tables.items():
        folder = Path(out) / table
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"campaign_{mapping.campaign_id}.csv"
        staged = target.with_suffix(".csv.partial")
        rows.to_csv(staged, index=False)
        shutil.move(staged, target)  # a half-written file is never picked up by the loader
        counts[table] = len(rows)
    return counts
