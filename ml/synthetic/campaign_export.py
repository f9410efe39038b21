"""A randomized campaign's export with planted per-customer effects: what a company hands over after an
e-mail test (one row per customer: the arm drawn, pre-campaign facts, the outcome), with the truth.

It is the input of `python -m ml campaign-export` (ml.warehouse.campaign_export) in the tests and in
bench/bench_campaign_export.py, which score the platform's uplift policy against the truth written
beside it. The effects depend on what the export says about the customer before the send, as a real
campaign's do:
- base rate: recent buyers (recency in months) and bigger past spenders buy more, e-mail or not;
- `reminder` persuades recent buyers with a high past spend (they were going to come back and the
  reminder brings some forward) and does nothing for the others;
- `sale` persuades the small spenders (price-sensitive) and puts off the recent big spenders, who buy
  less when they are offered a sale (sleeping dogs: the message costs an order).
Three equal groups: reminder, sale, no mail.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ARMS = ("reminder", "sale")
CONTROL_VALUE = "no mail"
CHANNELS = ("web", "phone", "multichannel")


def _potential_conversion(recency: np.ndarray, spend: np.ndarray) -> dict[str, np.ndarray]:
    """Each customer's conversion probability under every option (the planted truth)."""
    recent = recency <= 4
    big = spend >= np.quantile(spend, 0.6)
    small = spend <= np.quantile(spend, 0.4)
    base = 0.02 + 0.03 * recent + 0.02 * big
    return {
        CONTROL_VALUE: base,
        "reminder": base + 0.05 * (recent & big),
        "sale": np.clip(base + 0.04 * small - 0.03 * (recent & big), 0.0, 1.0),
    }


def planted_export(rows: int, seed: int = 11) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(export, truth): the export's columns as an analyst would hand them over, and per row and option
    the probability of converting and the expected spend (truth columns `p_<option>`, `spend_<option>`)."""
    rng = np.random.default_rng(seed)
    recency = rng.integers(1, 13, rows)
    spend = np.round(rng.lognormal(5.0, 0.8, rows), 2)
    channel = rng.choice(CHANNELS, rows, p=[0.45, 0.4, 0.15])
    group = rng.choice([*ARMS, CONTROL_VALUE], rows)
    chances = _potential_conversion(recency, spend)
    basket = np.round(rng.lognormal(4.4, 0.5, rows), 2)  # what a converting customer spends, any option
    uniform = rng.random(rows)  # common random numbers: one draw decides every option's outcome
    outcomes = {option: uniform < chance for option, chance in chances.items()}
    converted = np.select([group == option for option in chances], [outcomes[option] for option in chances])
    export = pd.DataFrame(
        {
            "customer": [f"k{i:06d}" for i in range(rows)],
            "months_since_purchase": recency,
            "spend_last_year": spend,
            "channel": channel,
            "group": group,
            "visited": (converted | (rng.random(rows) < 0.1)).astype(int),
            "converted": converted.astype(int),
            "spend": np.where(converted, basket, 0.0),
        }
    )
    truth = pd.DataFrame({"customer": export["customer"], "group": group})
    mean_basket = float(np.exp(4.4 + 0.5**2 / 2))
    for option, chance in chances.items():
        truth[f"p_{option}"] = chance
        truth[f"spend_{option}"] = chance * mean_basket
    return export, truth


MAPPING = {
    "campaign_id": "spring_test",
    "channel": "email",
    "window_days": 14,
    "arm_column": "group",
    "control_arms": [CONTROL_VALUE],
    "customer_id_column": "customer",
    "conversion_column": "converted",
    "revenue_column": "spend",
    "visit_column": "visited",
    "recency_column": "months_since_purchase",
    "recency_unit": "months",
    "prior_spend_column": "spend_last_year",
    "attributes": {"channel": "acquisition_channel"},
}
"""The mapping of this export (a YAML file of the same keys for the command line)."""
