"""A randomized campaign's export through the importer, end to end; results into bench/results.md
(section "campaign_export").

What a company hands over after an e-mail test is one row per customer (the arm drawn, months since the
last purchase, last year's spend, an acquisition channel, the outcome). This writes such an export with
planted per-customer effects (ml.synthetic.campaign_export: a reminder that persuades recent big
spenders, a sale that persuades small spenders and puts off recent big spenders, a third kept as
control), lands it with `python -m ml campaign-export` and its YAML mapping, runs the platform on
nothing else (load, staging, metrics, feature store, read_experiments, train_uplift for the night the
goal window ends) and scores the uplift policy on the held-out customers against the truth, at its
own contact volume, beside propensity targeting, random targeting and the oracle (bench_uplift's
scoring), with the gate's Qini and the off-policy estimates.

Usage: python bench/bench_campaign_export.py [--rows 64000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import time

import numpy as np
import pandas as pd
import yaml
from bench_uplift import at_volumes, held_out_predictions, policy_profits
from common import REPO, WORK, machine, run_stage, write_section

sys.path.insert(0, str(REPO))

SENT_ON = dt.date(2026, 3, 2)
STAGES = ["build_feature_store", "read_experiments", "train_uplift"]


def land(rows: int) -> tuple[dict[str, str], str, pd.DataFrame]:
    """Write the export, its mapping and a configuration that names the campaign; land it. Returns the
    stages' environment, ds and the truth."""
    from ml.synthetic.campaign_export import MAPPING, planted_export

    data_dir = WORK / "campaign_export"
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    export, truth = planted_export(rows)
    export.to_csv(data_dir / "export.csv", index=False)
    mapping = {**MAPPING, "sent_on": SENT_ON.isoformat()}
    (data_dir / "mapping.yml").write_text(yaml.safe_dump(mapping, sort_keys=False))
    config = yaml.safe_load((REPO / "config" / "personalization.yml").read_text())
    config["uplift"]["campaigns"] = {
        mapping["campaign_id"]: {
            "goal": {"metric": "purchase", "window_days": mapping["window_days"]},
            "channel": "email",
        }
    }
    (data_dir / "personalization.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    env = {
        **os.environ,
        "PZ_DATA_DIR": str(data_dir),
        "PZ_REPORTS_DIR": str(data_dir / "reports"),
        "PZ_CONFIG": str(data_dir / "personalization.yml"),
    }
    command = [sys.executable, "-m", "ml", "campaign-export", str(data_dir / "export.csv")]
    run_stage([*command, "--mapping", str(data_dir / "mapping.yml"), "--out", str(data_dir / "landing")], env)
    ds = (SENT_ON + dt.timedelta(days=mapping["window_days"])).isoformat()
    return env, ds, truth


def evaluate(env: dict[str, str], ds: str, truth: pd.DataFrame) -> dict[str, object]:
    """In this process: the policies on the held-out sends against the truth, the gate, the OPE."""
    os.environ.update({key: env[key] for key in ("PZ_DATA_DIR", "PZ_REPORTS_DIR", "PZ_CONFIG")})
    from ml.synthetic.campaign_export import CONTROL_VALUE, MAPPING
    from ml.uplift.model import evaluate_campaign
    from ml.warehouse.engine import open_warehouse

    campaign = MAPPING["campaign_id"]
    found = held_out_predictions(ds, campaign)
    config, terms, day, rows = found["config"], found["terms"], found["day"], found["rows"]
    models, arms, expected, likely = found["models"], found["arms"], found["expected"], found["likely"]
    known = truth.set_index("customer").reindex(rows["customer_id"])
    untreated = terms.margin_share * known[f"spend_{CONTROL_VALUE}"].to_numpy()
    gains = np.column_stack(
        [
            terms.margin_share * known[f"spend_{arm}"].to_numpy()
            - untreated
            - terms.cost(campaign, arm).discount_share * known[f"spend_{arm}"].to_numpy()
            - terms.cost(campaign, arm).contact_cost
            for arm in arms
        ]
    )
    for model in models.values():
        model.serves = True  # the OPE of the policy over every learned arm, served or not
    ope = evaluate_campaign(campaign, rows, models, terms, config.uplift)
    send = expected.max(axis=1) > 0
    chosen = expected.argmax(axis=1)
    true_value = float(np.mean(untreated + np.where(send, gains[np.arange(len(rows)), chosen], 0.0)))
    with open_warehouse() as connection:
        gate = connection.execute("select * from marts.uplift_arms where ds = ? order by arm", [day]).df()
    return {
        "profits": policy_profits(expected, likely, gains),
        "volumes": at_volumes(expected, likely, gains),
        "ope": ope.values,
        "true_value": true_value,
        "gate": gate,
        "arms": arms,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=64_000)
    args = parser.parse_args()
    started = time.perf_counter()
    env, ds, truth = land(args.rows)
    timings = {
        "warehouse": run_stage(
            [sys.executable, "-m", "ml", "pipeline", "--ds", ds, "--warehouse-only", "--allow-stale"], env
        )
    }
    for stage in STAGES:
        code = f"from ml.orchestration.stages import run_stage; run_stage({stage!r}, '{ds}')"
        timings[stage] = run_stage([sys.executable, "-c", code], env)
    result = evaluate(env, ds, truth)
    write_section("campaign_export", report(result, timings, args.rows, time.perf_counter() - started))


def report(result: dict, timings: dict, rows: int, seconds: float) -> str:
    p = result["profits"]
    lines = [
        f"Machine: {machine()}. A planted export of {rows} customers (ml.synthetic.campaign_export), landed "
        "with `python -m ml campaign-export` and nothing else; ds = the end of the goal window; "
        f"{seconds / 60:.1f} minutes.",
        "",
        f"Held-out customers: {p['sends']}; the uplift policy contacts {p['volume']} of them.",
        "",
        "| policy (same contact volume) | true incremental profit | share of oracle |",
        "|---|---|---|",
    ]
    for name in ("uplift", "propensity", "propensity_best_fixed_arm", "random", "oracle"):
        share = f"{p[name] / p['oracle']:.0%}" if p["oracle"] > 0 else "-"
        lines.append(f"| {name} | {p[name]:.0f} | {share} |")
    lines.append(f"| everyone, best fixed arm ({p['sends']} contacts) | {p['everyone_best_fixed_arm']:.0f} | |")
    lines += [
        "",
        "| contacted | uplift | propensity (rules' arms) | propensity (best arm) | oracle |",
        "|---|---|---|---|---|",
    ]
    for v in result["volumes"]:
        lines.append(
            f"| {v['share']:.0%} | {v['uplift']:.0f} | {v['propensity']:.0f} | {v['propensity_best_fixed_arm']:.0f} "
            f"| {v['oracle']:.0f} |"
        )
    lines += ["", "Gate (held-out Qini, 95% interval; propensity-ranked Qini):", ""]
    for row in result["gate"].itertuples():
        lines.append(
            f"- `{row.arm}`: Qini {row.qini:.4f} [{row.qini_lower:.4f}, {row.qini_upper:.4f}] vs propensity "
            f"{row.propensity_qini:.4f}; serves: {row.serves}"
        )
    lines += ["", f"Off-policy value of the uplift policy per customer, true value {result['true_value']:.3f}:", ""]
    lines += ["| estimator | estimate | 95% interval | covers the truth |", "|---|---|---|---|"]
    for estimator, estimate in result["ope"]["uplift"].items():
        covers = estimate.lower <= result["true_value"] <= estimate.upper
        lines.append(
            f"| {estimator} | {estimate.value:.3f} | [{estimate.lower:.3f}, {estimate.upper:.3f}] | {covers} |"
        )
    rules = result["ope"]["rules"]["dr"]
    lines += ["", f"The rules (everyone sent), DR: {rules.value:.3f} [{rules.lower:.3f}, {rules.upper:.3f}]."]
    lines += ["", "| step | seconds | peak GB |", "|---|---|---|"]
    lines += [f"| {name} | {wall:.0f} | {gb:.2f} |" for name, (wall, gb) in timings.items()]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
