"""Experiment readouts read every night: error rates and coverage by simulation, and the speed of the
pure readout at scale. Writes the `experiments` section of bench/results.md.

    python bench/bench_experiments.py [--runs 1000]

A/A: 200 customers a night, 10% holdout, 8% conversion, 60 nightly looks (the report that led to
the always-valid readout). The old readout was a fixed-horizon z-test read every night; it is replayed
night by night from the same sums. Revenue A/A: 10% buyers with lognormal order values, 30 looks.
Coverage: a revenue effect of 2.0 per customer with a pre-period habit (CUPED), 10 looks.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time

import numpy as np
import pandas as pd
from common import REPO, machine, write_section

sys.path.insert(0, str(REPO))

from ml.activation.readout import feedback, readout
from ml.activation.sequential import Looks, fixed_horizon_p_values
from ml.activation.settings import CONTROL, ActivationConfig

DS = dt.date(2026, 10, 31)
ALPHA = 0.05
AUDIENCE = {
    "goal": {"metric": "purchase", "window_days": 2},
    "segment": "true",
    "behavioral_identifier": "simulated",
    "moment": {"kind": "daily"},
    "channels": ["email"],
    "tactic": {"kind": "content", "content_id": "c"},
    "holdout_percent": 10,
    "hypothesis": "h",
    "null_hypothesis": "h0",
    "priority": 1,
}


def activation(metric: str) -> ActivationConfig:
    return ActivationConfig.model_validate(
        {"audiences": {"sim": {**AUDIENCE, "goal": {"metric": metric, "window_days": 2}}}}
    )


def exposures(rng, nights: int, per_night: int, holdout: float, outcome) -> pd.DataFrame:
    size = nights * per_night
    group = np.where(rng.random(size) < holdout, CONTROL, "treatment")
    assigned = pd.Timestamp(DS) - pd.to_timedelta(2 + nights - 1 - np.repeat(np.arange(nights), per_night), unit="D")
    frame = pd.DataFrame({"audience": "sim", "customer_id": np.arange(size).astype(str), "experiment_group": group})
    frame["assigned_on"] = assigned
    return outcome(frame, rng)


def conversions(frame, rng):
    return frame.assign(converted=rng.random(len(frame)) < 0.08)


def revenues(frame, rng):
    revenue = np.where(rng.random(len(frame)) < 0.1, rng.lognormal(3.5, 1.0, len(frame)), 0.0)
    return frame.assign(revenue=revenue, converted=revenue > 0)


def fixed_horizon_any_night(frame: pd.DataFrame) -> bool:
    """The old readout: a fixed-horizon test each night, acted on at alpha."""
    ready = (pd.to_datetime(frame["assigned_on"]) + pd.Timedelta(days=2)).to_numpy()
    groups = frame["experiment_group"].to_numpy()
    y = frame["converted"].to_numpy(float)
    arm, control = (
        Looks.accumulate(ready[groups == g], np.unique(ready), y[groups == g], 0 * y[groups == g], y[groups == g] > 0)
        for g in ("treatment", CONTROL)
    )
    return bool((fixed_horizon_p_values(arm, control, min_outcomes=5) < ALPHA).any())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    runs = parser.parse_args().runs
    rng = np.random.default_rng(2026)
    purchase, revenue_goal = activation("purchase"), activation("revenue")
    no_status = pd.DataFrame(
        columns=["ds", "audience", "status", "reason", "experiment_version", "base_version", "shipped_arm"]
    )

    fixed = valid = paused = 0
    for _ in range(runs):
        frame = exposures(rng, 60, 200, 0.1, conversions)
        results = readout(frame, purchase, DS)
        valid += bool(results.iloc[0]["is_significant"])
        paused += int((feedback(results, purchase, DS, no_status)[0]["status"] == "paused").sum())
        fixed += fixed_horizon_any_night(frame)

    revenue_valid = 0
    for _ in range(runs):
        revenue_valid += bool(
            readout(exposures(rng, 30, 200, 0.5, revenues), revenue_goal, DS).iloc[0]["is_significant"]
        )

    covered = 0
    reductions, widths, plain_widths = [], [], []
    for _ in range(runs):

        def with_effect(frame, rng):
            habit = rng.gamma(0.5, 40, len(frame))
            treated = (frame["experiment_group"] == "treatment").to_numpy()
            revenue = np.maximum(
                habit * rng.lognormal(0, 0.5, len(frame)) + 2.0 * treated + rng.normal(0, 5, len(frame)), 0
            )
            return frame.assign(
                revenue=revenue, converted=revenue > 0, pre_revenue=habit * rng.lognormal(0, 0.5, len(frame))
            )

        frame = exposures(rng, 10, 200, 0.5, with_effect)
        row = readout(frame, revenue_goal, DS).iloc[0]
        plain = readout(frame.assign(pre_revenue=0.0), revenue_goal, DS).iloc[0]
        covered += row["ci_lower"] <= 2.0 <= row["ci_upper"]
        reductions.append(row["variance_reduction"])
        widths.append(row["ci_upper"] - row["ci_lower"])
        plain_widths.append(plain["ci_upper"] - plain["ci_lower"])

    timings = []
    for size in (100_000, 1_000_000):
        frame = exposures(rng, 30, size // 30, 0.1, revenues)
        started = time.perf_counter()
        readout(frame, revenue_goal, DS)
        timings.append((size, time.perf_counter() - started))

    standard_error = np.sqrt(ALPHA * (1 - ALPHA) / runs)
    lines = [
        "## Experiment readouts: error rates under nightly looks, coverage, speed",
        "",
        f"Run {dt.date.today()} with `python bench/bench_experiments.py --runs {runs}` on {machine()}.",
        f"Each rate from {runs} simulated experiments (Monte Carlo standard error at 5%: {standard_error:.3f}).",
        "",
        "| simulation | rate |",
        "|---|---:|",
        f"| A/A, 60 nightly looks: fixed-horizon z-test significant on some night (old) | {fixed / runs:.1%} |",
        f"| A/A, 60 nightly looks: always-valid readout significant on some night | {valid / runs:.1%} |",
        f"| A/A, 60 nightly looks: audience paused by the feedback loop | {paused / runs:.1%} |",
        f"| revenue A/A, 30 nightly looks: always-valid readout significant | {revenue_valid / runs:.1%} |",
        f"| revenue effect 2.0 per customer: always-valid interval (with CUPED) covers it | {covered / runs:.1%} |",
        "",
        f"CUPED on that simulation removed {np.mean(reductions):.0%} of the variance on average; the "
        f"always-valid interval was {np.mean(widths):.2f} wide with CUPED and {np.mean(plain_widths):.2f} without.",
        "",
        "The pure readout (`ml.activation.readout.readout`, one audience, 30 nights of revenue exposures): "
        + ", ".join(f"{size:,} exposures in {seconds:.2f} s" for size, seconds in timings)
        + ".",
    ]
    write_section("experiments", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
