"""Targeting by expected incremental profit: what the uplift models say about tonight's customers
(marts.customer_uplift, ml.uplift), as the decisions use it.

An audience whose uplift model serves (its arms passed their gate and its campaign's policy shipped,
docs/uplift.md) decides most of its customers by it: each gets the arm with the highest expected
incremental profit (margin x incremental revenue - offer cost - contact cost), and a customer whose best
arm is not expected to pay gets no message (the sleeping dogs and the lost causes). A stable share of
customers (exploration_percent, by a hash of its own) keeps the rules and random arms, with logged
probabilities: the next models learn from unbiased data and the randomized comparisons go on. The
holdout stays random for everyone: the uplift-decided customers are an experiment version of their own
(Audience.experiment_version(by_uplift=True)) whose readout compares each arm with the holdout of the
customers that arm was chosen for (policy_arm).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.constants import CUSTOMER_ID
from ml.warehouse.engine import open_warehouse
from ml.warehouse.partitions import existing_tables

RULES, UPLIFT, EXPLORATION = "rules", "uplift", "exploration"
EXPLORATION_KEY = "uplift_exploration"  # hashed in place of an audience: independent of every assignment


@dataclass(frozen=True)
class UpliftPolicy:
    scores: pd.DataFrame  # customer_id, campaign_id (the audience), arm, expected_profit: serving arms only
    exploration_percent: float
    salt: str

    @property
    def audiences(self) -> set[str]:
        return set(self.scores["campaign_id"]) if len(self.scores) else set()

    def exploring(self, customer_ids: pd.Series) -> np.ndarray:
        """The stable exploration share: the lowest exploration_percent of a hash of the customer."""
        buckets = np.array(
            [
                int.from_bytes(hashlib.sha256(f"{self.salt}|{EXPLORATION_KEY}|{c}".encode()).digest()[:8], "big")
                / 2**64
                for c in customer_ids
            ]
        )
        return buckets < self.exploration_percent / 100

    def best_arms(self, audience: str, customer_ids: pd.Series, arms: list[str]) -> pd.DataFrame:
        """Per customer (aligned with customer_ids): the most profitable serving arm among `arms` (the
        audience's served arms), its expected incremental profit, and the second-best arm with its
        value (NaN/None when there is none)."""
        mine = self.scores[(self.scores["campaign_id"] == audience) & self.scores["arm"].isin(arms)]
        mine = mine.sort_values([CUSTOMER_ID, "expected_profit", "arm"], ascending=[True, False, True])
        ranked = mine.assign(rank=mine.groupby(CUSTOMER_ID).cumcount())
        first = ranked[ranked["rank"] == 0].set_index(CUSTOMER_ID)
        second = ranked[ranked["rank"] == 1].set_index(CUSTOMER_ID)
        return pd.DataFrame(
            {
                "policy_arm": customer_ids.map(first["arm"]).to_numpy(),
                "expected_value": customer_ids.map(first["expected_profit"]).to_numpy(dtype=float),
                "second_arm": customer_ids.map(second["arm"]).to_numpy(),
                "second_value": customer_ids.map(second["expected_profit"]).to_numpy(dtype=float),
            }
        )


def read_uplift_policy(ds: dt.date, exploration_percent: float, salt: str) -> UpliftPolicy | None:
    """The serving arms' expected profits of ds, or None when no uplift model serves tonight."""
    with open_warehouse() as connection:
        if "customer_uplift" not in existing_tables(connection, "marts"):
            return None
        scores = connection.execute(
            "select customer_id, campaign_id, arm, expected_profit from marts.customer_uplift "
            "where ds = ? and serves order by customer_id, campaign_id, arm",
            [ds],
        ).df()
    return UpliftPolicy(scores, exploration_percent, salt) if len(scores) else None
