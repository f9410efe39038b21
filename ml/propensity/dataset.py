"""Training rows for the propensity model: one per customer and cutoff, features as of the cutoff
(the Feast source's snapshot of that date: ml.mlops.feature_store.snapshot_features) and the label
"a completed order within horizon_days after it".

Cutoffs lie on a calendar grid that does not move with ds (every cutoff_every_days days from
FEATURE_GRID_ANCHOR: every Sunday by default), the dates dbt builds feature snapshots for; which ones
each fit learns from is the CutoffPlan. Above training_max_customers customers or
training_max_rows rows, a stable sample of customers (by a hash of the id) brings all their
cutoffs: the model needs rows, not every customer, and the fit's time and memory grow with the
rows (scoring always covers every customer).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import pandas as pd

from ml.constants import CUSTOMER_ID, FEATURE_GRID_ANCHOR
from ml.dates import end_of
from ml.mlops.feature_store import TIMESTAMP, snapshot_features
from ml.propensity.settings import PropensityConfig
from ml.warehouse.engine import open_warehouse

log = logging.getLogger(__name__)

LABEL = "label"
CUTOFF = "cutoff"
SNAPSHOT_DATE = "feature_date"

# A stable sample of customers when there are more than the caps: ordered by a hash of the id, so the
# same customers are drawn every night and each brings all of its cutoffs, taken while both the
# customers and their rows fit (max_customers, max_rows). `customers_available` counts them all
# before the sample, in the same pass. The labels read only the orders the cutoffs' windows can see:
# a longer history does not make the label pass longer. Written in the SQL both warehouse engines
# read alike (the cutoff dates and the horizon, values of ours, are written into it).
ENTITY_ROWS_SQL = """
with candidates as (
    select customer_id, feature_date, feature_timestamp
    from marts.customer_features_daily
    where {cutoffs_condition}
),
ranked as (
    select
        customer_id,
        count(*) over () as customers_available,
        row_number() over (order by md5(customer_id), customer_id) as customers_through,
        sum(cutoffs) over (
            order by md5(customer_id), customer_id rows between unbounded preceding and current row
        ) as rows_through
    from (select customer_id, count(*) as cutoffs from candidates group by customer_id) as per_customer
),
sampled as (
    select customer_id, customers_available
    from ranked
    where customers_through <= $max_customers and rows_through <= $max_rows
),
window_orders as (
    select customer_id, ordered_at
    from staging.stg_orders
    where status = 'completed'
      and ordered_at >= (select min(feature_timestamp) from candidates)
      and ordered_at < (select max(feature_timestamp) from candidates) + interval {horizon_days} day
),
labelled as (
    select candidates.customer_id, candidates.feature_date
    from candidates
    inner join window_orders as orders
        on orders.customer_id = candidates.customer_id
        and orders.ordered_at >= candidates.feature_timestamp
        and orders.ordered_at < candidates.feature_timestamp + interval {horizon_days} day
    group by candidates.customer_id, candidates.feature_date
)
select candidates.customer_id, candidates.feature_date as cutoff, candidates.feature_timestamp as event_timestamp,
       labelled.customer_id is not null as label,
       sampled.customers_available
from candidates
inner join sampled on candidates.customer_id = sampled.customer_id
left join labelled
    on labelled.customer_id = candidates.customer_id and labelled.feature_date = candidates.feature_date
order by candidates.feature_date, candidates.customer_id
"""


def entity_rows_sql(cutoffs: list[dt.date], horizon_days: int) -> str:
    """ENTITY_ROWS_SQL for these cutoffs and horizon."""
    dates = ", ".join(f"date '{cutoff.isoformat()}'" for cutoff in cutoffs)
    return ENTITY_ROWS_SQL.format(
        cutoffs_condition=f"feature_date in ({dates})" if cutoffs else "false", horizon_days=int(horizon_days)
    )


def on_grid_at_or_before(day: dt.date, step_days: int) -> dt.date:
    """The newest date of the snapshot grid at or before `day`."""
    return day - dt.timedelta(days=(day - FEATURE_GRID_ANCHOR).days % step_days)


@dataclass(frozen=True)
class CutoffPlan:
    """The cutoffs of one night on the snapshot grid, oldest first. The validation cutoff is the
    newest grid date whose label window has ended by ds (horizon_days or more before it); the scoring
    fit learns from the grid dates of the training window up to it, and the evaluation fit from as
    many grid dates ending one label lag (the horizon rounded up to the grid) before it, so nothing
    it learns overlaps the validation labels and it sees as much history as the scoring fit."""

    validation: dt.date | None
    scoring: list[dt.date]
    evaluation: list[dt.date]
    first_day: dt.date | None  # the first day any customer existed
    needed_from: dt.date  # the evaluation fit's oldest cutoff: history should reach back to it

    @property
    def all(self) -> list[dt.date]:
        return sorted({*self.scoring, *self.evaluation})

    def problem(self, config: PropensityConfig) -> str | None:
        """Why the plan cannot train and evaluate, in one line with what to change; None when it can."""
        fix = (
            f"land history from {self.needed_from} on, or shorten propensity.horizon_days ({config.horizon_days})"
            f" or propensity.training_window_days ({config.training_window_days})"
        )
        if self.validation is None:
            return f"no customer existed by the validation cutoff {self.needed_from}: {fix}"
        if not self.evaluation:
            return (
                f"history starts {self.first_day}: no cutoff {config.label_lag_days} days before the validation"
                f" cutoff {self.validation} for the evaluation fit to learn from; {fix}"
            )
        return None


def plan_cutoffs(ds: dt.date, config: PropensityConfig, first_day: dt.date | None) -> CutoffPlan:
    step, lag, window = config.cutoff_every_days, config.label_lag_days, config.training_window_days

    def existing(days: list[dt.date]) -> list[dt.date]:
        return [day for day in days if first_day is None or day >= first_day]

    validation = on_grid_at_or_before(ds - dt.timedelta(days=config.horizon_days), step)
    oldest = ds - dt.timedelta(days=window)
    scoring = [validation - dt.timedelta(days=back) for back in range(0, (validation - oldest).days + 1, step)][::-1]
    evaluation_newest = validation - dt.timedelta(days=lag)
    evaluation = [evaluation_newest - dt.timedelta(days=back * step) for back in range(len(scoring))][::-1]
    needed_from = evaluation[0]
    scoring, evaluation = existing(scoring), existing(evaluation)
    usable = validation if first_day is None or validation >= first_day else None
    plan = CutoffPlan(usable, scoring, evaluation, first_day, needed_from)
    if first_day is not None and first_day > needed_from:
        log.warning(
            "propensity ds=%s: history starts %s, so %d evaluation and %d scoring cutoffs in the %d-day training"
            " window are usable (history from %s would give every one)",
            ds,
            first_day,
            len(evaluation),
            len(scoring),
            window,
            needed_from,
        )
    return plan


@dataclass(frozen=True)
class TrainingSet:
    rows: pd.DataFrame  # customer_id, cutoff, event_timestamp, label, features...
    plan: CutoffPlan
    customers_available: int  # customers with a snapshot at a cutoff, before the sample

    @property
    def cutoffs(self) -> list[dt.date]:
        return self.plan.all

    @property
    def customers(self) -> int:
        return int(self.rows[CUSTOMER_ID].nunique())

    def at(self, selected: list[dt.date]) -> pd.DataFrame:
        return self.rows[self.rows[CUTOFF].isin(selected)].reset_index(drop=True)


def first_snapshot_day(connection) -> dt.date | None:
    """The first date any customer existed (snapshots before it are empty)."""
    value = connection.execute("select min(cast(signup_at as date)) from staging.stg_customers").fetchone()[0]
    return value


def training_set(ds: dt.date, config: PropensityConfig) -> TrainingSet:
    with open_warehouse() as connection:
        plan = plan_cutoffs(ds, config, first_snapshot_day(connection))
        selected = plan.all
        entity_rows = connection.execute(
            entity_rows_sql(selected, config.horizon_days),
            {"max_customers": config.training_max_customers, "max_rows": config.training_max_rows},
        ).df()
    available = int(entity_rows.pop("customers_available").max()) if len(entity_rows) else 0
    sampled = entity_rows[CUSTOMER_ID].nunique()
    if sampled < available:
        log.info(
            "propensity ds=%s: training on a sample of %d of %d customers (%d rows; training_max_customers %d,"
            " training_max_rows %d)",
            ds,
            sampled,
            available,
            len(entity_rows),
            config.training_max_customers,
            config.training_max_rows,
        )
    if entity_rows.empty:
        return TrainingSet(entity_rows, plan, available)
    entity_rows[LABEL] = entity_rows[LABEL].astype(int)
    rows = snapshot_features(entity_rows, CUTOFF)
    rows[CUTOFF] = pd.to_datetime(rows[CUTOFF]).dt.date
    rows = rows.sort_values([CUTOFF, CUSTOMER_ID]).reset_index(drop=True)
    return TrainingSet(rows, plan, available)


def scoring_customers(ds: dt.date) -> pd.Series:
    """Every customer known at ds (customer_360), sorted."""
    with open_warehouse() as connection:
        return connection.execute(
            "select customer_id from marts.customer_360 where ds = ? order by customer_id", [ds]
        ).df()[CUSTOMER_ID]


def scoring_rows(ds: dt.date, customer_ids: pd.Series) -> pd.DataFrame:
    """Features of `customer_ids` as of the end of ds (the snapshot of ds), sorted by customer."""
    customers = pd.DataFrame({CUSTOMER_ID: customer_ids.to_numpy(), SNAPSHOT_DATE: ds})
    customers[TIMESTAMP] = pd.Timestamp(end_of(ds), tz="UTC")
    rows = snapshot_features(customers, SNAPSHOT_DATE).drop(columns=SNAPSHOT_DATE)
    return rows.sort_values(CUSTOMER_ID).reset_index(drop=True)
