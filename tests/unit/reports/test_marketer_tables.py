"""The marketer's tables from readout rows: money with intervals and ROI (or why none), and what a
waiting comparison still needs."""

from __future__ import annotations

import pandas as pd

from ml.reports.audiences import READOUT_COLUMNS, money_table, waiting_table


def readout(**values) -> dict:
    row = dict.fromkeys(READOUT_COLUMNS)
    row.update(
        audience="win_back", version_number=1, arm="ten_percent", baseline="control", goal_metric="purchase",
        looks=3, arm_customers=1000, baseline_customers=200, arm_conversions=80, baseline_conversions=10,
        arm_value=0.08, baseline_value=0.05, effect=0.03, ci_lower=-0.01, ci_upper=0.07, p_value=0.2,
        incremental_profit=500.0, incremental_profit_ci_lower=-0.2, incremental_profit_ci_upper=1.2,
        cost_per_arm_customer=0.8, roi=0.6, roi_ci_lower=-0.25, roi_ci_upper=1.5, conclusion="keep running",
    )  # fmt: skip
    row.update(values)
    return row


def test_money_is_in_all_with_its_interval_and_roi_or_why_there_is_none():
    rows = pd.DataFrame(
        [
            readout(),
            readout(arm="reminder", cost_per_arm_customer=0.002),
            readout(arm="web", roi=None, cost_per_arm_customer=0.0),
            readout(arm="ten_percent", baseline="reminder"),  # arm against arm: no money row
            readout(arm="waiting", looks=0),
        ]
    )
    table = money_table(rows, "EUR").set_index("Arm")
    assert list(table.index) == ["ten_percent", "reminder", "web"]
    # The per-customer profit interval times the arm's customers: the total's interval.
    assert table.loc["ten_percent", "Incremental profit in all [95% interval]"] == (
        "+500.00 EUR [-200.00 EUR, +1,200.00 EUR]"
    )
    assert table.loc["ten_percent", "ROI [95% interval]"] == "+0.6x [-0.2x, +1.5x]"
    assert table.loc["reminder", "ROI [95% interval]"] == "n/a: it cost under 0.01 EUR per customer"
    assert table.loc["web", "ROI [95% interval]"] == "n/a: it cost nothing"
    assert table.loc["ten_percent", "Difference [95% interval]"] == "+3.0 pts [-1.0 pts, +7.0 pts]"


def test_a_waiting_comparison_says_how_many_more_customers_it_needs():
    rows = pd.DataFrame(
        [
            readout(looks=0, arm_customers=40, baseline_customers=10, arm_conversions=4, baseline_conversions=1),
            readout(arm="none_yet", looks=0, arm_customers=5, baseline_customers=5, arm_conversions=0,
                    baseline_conversions=0),
            readout(arm="read", looks=2),
        ]
    )  # fmt: skip
    table = waiting_table(rows, min_outcomes=5).set_index("Comparison")
    assert list(table.index) == ["ten_percent vs control", "none_yet vs control"]
    # 5 conversions in 50 customers (10%); control lacks 4 conversions: about 40 more customers per group.
    assert table.loc["ten_percent vs control", "Still needs"].startswith("about 40 more customers per group")
    assert table.loc["none_yet vs control", "Still needs"] == "a first conversion"
