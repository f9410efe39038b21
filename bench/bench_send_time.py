"""Send-time benchmark, results into bench/results.md (section "send_time").

The demo data set (20,000 customers by default) built for the demo end date; every customer with
e-mail or push engagement gets an hour from four rules, each judged against the planted preferred
hour (synthetic_truth/customers.parquet, ml.synthetic.behaviour):
- fixed 10:00, what a marketer without a model sends at;
- the segment's hour (device type x age band, the model without the customer's own history);
- the customer's own most frequent hour, unshrunk (their history alone);
- the model: their history shrunk to their segment's (ml.activation.send_time).
Figures: hours from the best permitted hour, the share sent within an hour of it, and the planted
open probability in the chosen hour relative to the best permitted hour's (the opens a send at
that hour would get, in the synthetic world). Run: .venv/bin/python bench/bench_send_time.py
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from common import REPO, demo_warehouse, machine, write_section
from scipy.stats import norm

sys.path.insert(0, str(REPO))

from ml.activation.send_time import HOURS, best_hours, hour_error, read_send_time_inputs
from ml.synthetic.behaviour import OPEN_AT_PREFERRED_SHARE, OPEN_HOUR_SD, OPEN_HOURS
from ml.warehouse.engine import open_warehouse


def planted_open_share(hours: np.ndarray, preferred: np.ndarray) -> np.ndarray:
    """The planted probability that an open falls in local hour [h, h+1) for a customer who prefers
    `preferred` (the generator's mixture: near the preferred hour, or uniform over OPEN_HOURS)."""
    near = norm.cdf(hours + 1 - preferred, scale=OPEN_HOUR_SD) - norm.cdf(hours - preferred, scale=OPEN_HOUR_SD)
    uniform = np.where((hours >= OPEN_HOURS[0]) & (hours < OPEN_HOURS[1]), 1 / (OPEN_HOURS[1] - OPEN_HOURS[0]), 0.0)
    return OPEN_AT_PREFERRED_SHARE * near + (1 - OPEN_AT_PREFERRED_SHARE) * uniform


def own_mode(customers: pd.DataFrame, engagement: pd.DataFrame, settings) -> pd.Series:
    """Each customer's most engaged permitted hour, their history alone (ties: the earliest)."""
    table = engagement.pivot_table(index="customer_id", columns="hour_of_day", values="engagement", aggfunc="sum")
    table = table.reindex(index=customers["customer_id"], columns=range(HOURS)).fillna(0.0)
    quiet = [hour for hour in range(HOURS) if settings.is_quiet(hour)]
    table[quiet] = -1.0
    return pd.Series(table.to_numpy().argmax(axis=1), index=table.index)


def evaluate(ds: dt.date, truth: pd.DataFrame, settings) -> list[dict]:
    rows = []
    weekday = (ds + dt.timedelta(days=1)).isoweekday()
    for channel in settings.channels:
        with open_warehouse() as connection:
            engaged = [
                customer
                for (customer,) in connection.execute(
                    "select distinct customer_id from marts.customer_engagement_hours where ds = ? and channel = ? "
                    "order by 1",
                    [ds, channel],
                ).fetchall()
            ]
        customers, engagement, segments = read_send_time_inputs(ds, channel, engaged, settings)
        events = engagement.groupby("customer_id")["engagement"].sum().reindex(customers["customer_id"])
        rules = {
            "fixed 10:00": pd.Series(10, index=customers["customer_id"]),
            "segment's hour": best_hours(customers, engagement.iloc[:0], segments, settings, weekday).set_index(
                "customer_id"
            )["send_hour"],
            "own history, unshrunk": own_mode(customers, engagement, settings),
            "model (shrunk to segment)": best_hours(customers, engagement, segments, settings, weekday).set_index(
                "customer_id"
            )["send_hour"],
        }
        preferred = truth.loc[customers["customer_id"], "preferred_hour"]
        allowed = np.array([hour for hour in range(HOURS) if not settings.is_quiet(hour)])
        best_share = planted_open_share(allowed[None, :], preferred.to_numpy()[:, None]).max(axis=1)
        for history, members in (("all", events.index), ("1-2 events", events.index[events < 3]),
                                 ("3+ events", events.index[events >= 3])):  # fmt: skip
            for rule, hours in rules.items():
                chosen, planted = hours.loc[members], preferred.loc[members]
                error = hour_error(chosen, planted, settings)
                share = planted_open_share(chosen.to_numpy(float), planted.to_numpy())
                mask = events.index.isin(members)
                rows.append(
                    {
                        "channel": channel,
                        "history": history,
                        "customers": len(members),
                        "rule": rule,
                        "hours_off": error.mean(),
                        "within_1h": (error <= 1).mean(),
                        "open_share_vs_best": share.mean() / best_share[mask].mean(),
                    }
                )
    return rows


def report(rows: list[dict], customers: int, seconds: float) -> str:
    frame = pd.DataFrame(rows)
    lines = [
        "## Send time: the hour chosen per customer against the planted preferred hour",
        "",
        f"Machine: {machine()}. Demo data set with {customers:,} customers, 180 days; ds = the demo end date; "
        f"{seconds:.0f} s to evaluate. Truth: each customer's planted preferred local hour; every customer with "
        "engagement on the channel in the 90 days (`bench/bench_send_time.py`).",
        "",
        "| channel | customers' history | customers | rule | hours from the best permitted hour "
        "| within 1 hour | planted open share vs the best hour's |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in frame.itertuples():
        lines.append(
            f"| {r.channel} | {r.history} | {r.customers:,} | {r.rule} | {r.hours_off:.2f} | {r.within_1h:.0%} "
            f"| {r.open_share_vs_best:.0%} |"
        )
    return "\n".join(lines)


def main() -> None:
    from ml.orchestration.config import load_config

    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--data-dir", help="evaluate this built demo data dir instead of building one")
    args = parser.parse_args()
    started = time.perf_counter()
    if args.data_dir:
        data_dir = Path(args.data_dir)
        env = {"PZ_DATA_DIR": str(data_dir), "PZ_REPORTS_DIR": str(data_dir / "reports")}
        ds = load_config().demo.end_date.isoformat()
        args.customers = len(pd.read_parquet(data_dir / "synthetic_truth" / "customers.parquet"))
    else:
        data_dir, env, ds = demo_warehouse("send_time", args.customers)
    os.environ.update({"PZ_DATA_DIR": env["PZ_DATA_DIR"], "PZ_REPORTS_DIR": env["PZ_REPORTS_DIR"]})
    truth = pd.read_parquet(data_dir / "synthetic_truth" / "customers.parquet").set_index("customer_id")
    rows = evaluate(dt.date.fromisoformat(ds), truth, load_config().activation.send_time)
    write_section("send_time", report(rows, args.customers, time.perf_counter() - started))
    print(report(rows, args.customers, time.perf_counter() - started))


if __name__ == "__main__":
    main()
