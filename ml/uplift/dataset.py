"""The uplift models' rows: every randomized send whose goal window ended by ds
(intermediate.int_uplift_sends: landed campaign sends and the platform's own assignments), its
logged assignment probability, and the customer's features from the feature store as of the send.

Point in time: a send decided on day d learns from the latest feature snapshot on or before d (the
Feast source's snapshots: ml.mlops.feature_store.snapshot_features), never a later one; a send with no
snapshot within `max_snapshot_age_days` is left out and counted. The probability of the arm sent is
the one the sender logged; for the platform's assignments it is read from the experiment version's
definition; a landed send without one takes its arm's share of the campaign's sends of that day (an
ESP splits a send at fixed shares).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.assignment import CONTROL, arm_probability
from ml.constants import CUSTOMER_ID
from ml.mlops.feature_store import snapshot_features
from ml.warehouse.engine import open_warehouse
from ml.warehouse.partitions import existing_tables

log = logging.getLogger(__name__)

SENDS = "intermediate.int_uplift_sends"
FEATURE_DATE = "feature_date"
DAY_SHARE = "day_share"
SEND_COLUMNS = [
    "send_source",
    "campaign_id",
    "experiment_version",
    CUSTOMER_ID,
    "arm",
    "is_control",
    "sent_at",
    "decided_on",
    "assignment_probability",
    "offer_code",
    "policy_arm",
    "goal_metric",
    "orders",
    "revenue",
    "converted",
]

# A stable sample of customers when there are more sends than the cap: ordered by a hash of the id,
# so the same customers are drawn every night, each with all of its sends, taken while their sends
# fit (as propensity samples its training customers). The landed sends' fallback probability, the
# arm's share of its campaign's sends that day, is counted over every send, before the sample.
# Then each send's snapshot: the latest one on or before the day it was decided, within the age
# limit, and only sends whose customer is in it (a customer who signed up after the snapshot is not).
SENDS_SQL = f"""
with per_customer as (
    select customer_id, count(*) as send_count from {SENDS} group by customer_id
),
sampled_customers as (
    select customer_id
    from (
        select
            customer_id,
            sum(send_count) over (
                order by md5(customer_id), customer_id rows between unbounded preceding and current row
            ) as sends_through
        from per_customer
    ) as ranked
    where sends_through <= ?
),
day_shares as (
    select
        campaign_id,
        cast(sent_at as date) as sent_on,
        arm,
        count(*) / sum(count(*)) over (partition by campaign_id, cast(sent_at as date)) as day_share
    from {SENDS}
    group by campaign_id, cast(sent_at as date), arm
),
sampled_sends as (
    select sends.*, day_shares.day_share
    from {SENDS} as sends
    inner join sampled_customers on sampled_customers.customer_id = sends.customer_id
    left join day_shares
        on day_shares.campaign_id = sends.campaign_id
        and day_shares.sent_on = cast(sends.sent_at as date)
        and day_shares.arm = sends.arm
),
snapshot_dates as (
    select distinct feature_date from marts.customer_features_daily where feature_date <= ?
),
dated as (
    select sends.campaign_id, sends.experiment_version, sends.customer_id, sends.sent_at,
           max(snapshot_dates.feature_date) as feature_date
    from sampled_sends as sends
    inner join snapshot_dates
        on snapshot_dates.feature_date <= sends.decided_on
        and snapshot_dates.feature_date >= sends.decided_on - ?
    group by all
)
select {", ".join(f"sends.{column}" for column in SEND_COLUMNS)}, sends.day_share, dated.feature_date
from sampled_sends as sends
left join dated
    on dated.campaign_id = sends.campaign_id
    and dated.customer_id = sends.customer_id
    and dated.sent_at = sends.sent_at
    and coalesce(dated.experiment_version, '') = coalesce(sends.experiment_version, '')
left join marts.customer_features_daily as known
    on known.customer_id = sends.customer_id and known.feature_date = dated.feature_date
where known.customer_id is not null or dated.feature_date is null
order by sends.campaign_id, sends.sent_at, sends.customer_id
"""


@dataclass(frozen=True)
class Sends:
    rows: pd.DataFrame  # one per send with a snapshot: SEND_COLUMNS, feature_date, the features
    without_snapshot: int  # sends of the sample left out: no feature snapshot within the age limit
    available: int = 0  # sends with a completed goal window, before the sample


def read_sends(ds: dt.date, max_snapshot_age_days: int, max_sends: int) -> Sends:
    """The sends to learn from (a stable customer sample of at most `max_sends` when there are more),
    each with its logged probability and its features as of the send."""
    with open_warehouse() as connection:
        if "int_uplift_sends" not in existing_tables(connection, "intermediate"):
            return Sends(pd.DataFrame(columns=[*SEND_COLUMNS, FEATURE_DATE]), 0)
        available = connection.execute(f"select count(*) from {SENDS}").fetchall()[0][0]
        sends = connection.execute(SENDS_SQL, [max_sends, ds, max_snapshot_age_days]).df()
        versions = (
            connection.execute("select audience, experiment_version, definition from experiments.versions").df()
            if "versions" in existing_tables(connection, "experiments")
            else pd.DataFrame(columns=["audience", "experiment_version", "definition"])
        )
    sends["assignment_probability"] = logged_probabilities(sends, versions)
    sends = sends.drop(columns=DAY_SHARE)
    if len(sends) < available:
        log.info("uplift ds=%s: a sample of %d of %d sends (uplift.training_max_sends)", ds, len(sends), available)
    dated = sends[sends[FEATURE_DATE].notna()].reset_index(drop=True)
    without = len(sends) - len(dated)
    if without:
        log.info(
            "uplift ds=%s: %d sends have no feature snapshot within %d days before them; left out",
            ds,
            without,
            max_snapshot_age_days,
        )
    if dated.empty:
        return Sends(dated, without, available)
    dated[FEATURE_DATE] = pd.to_datetime(dated[FEATURE_DATE]).dt.date
    return Sends(snapshot_features(dated, FEATURE_DATE), without, available)


def logged_probabilities(sends: pd.DataFrame, versions: pd.DataFrame) -> pd.Series:
    """The probability of the arm sent: as logged; from the version's definition for the platform's
    assignments; else the arm's share of its campaign's sends that day (`day_share`, counted in SQL over
    every send)."""
    definitions = {(row.audience, row.experiment_version): row.definition for row in versions.itertuples()}
    from_versions = [
        arm_probability(definitions.get((campaign, version)), arm) if source == "audience" else None
        for source, campaign, version, arm in zip(
            sends["send_source"], sends["campaign_id"], sends["experiment_version"], sends["arm"], strict=True
        )
    ]
    probability = sends["assignment_probability"].astype(float).fillna(pd.Series(from_versions, dtype=float))
    return probability.fillna(sends[DAY_SHARE].astype(float))


def arm_pairs(sends: pd.DataFrame) -> list[tuple[str, str]]:
    """(campaign, arm) pairs with a control group to learn the arm's effect against."""
    with_control = set(sends.loc[sends["is_control"].astype(bool), "campaign_id"])
    treated = sends.loc[~sends["is_control"].astype(bool), ["campaign_id", "arm"]].drop_duplicates()
    return sorted((c, a) for c, a in treated.itertuples(index=False) if c in with_control and a != CONTROL)


def held_out(customer_ids: pd.Series, share: float) -> np.ndarray:
    """A stable split by customer: the same customer is always on the same side, on every night."""
    hashed = pd.util.hash_pandas_object(customer_ids.astype(str), index=False).to_numpy()
    return (hashed % 10_000) < share * 10_000
