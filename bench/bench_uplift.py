"""Uplift benchmark, results into bench/results.md (section "uplift").

The generator plants a randomized e-mail campaign with heterogeneous effects (ml.synthetic.campaigns:
persuadables, sure things, lost causes, sleeping dogs) and writes every send's potential outcomes to
synthetic_truth/campaign_effects.parquet. This runs the platform on that data (warehouse, feature
store, read_experiments, train_uplift), then scores targeting policies on the held-out customers'
sends against the truth, at the uplift policy's own contact volume:

  uplift       each send's most profitable arm by the model's expected incremental profit, nobody when
               none is expected to pay
  propensity   the same number of sends to the customers likeliest to buy when sent (the response
               model), the arms at the campaign's shares as the rules send them (the target's baseline);
               also with the single arm that earns most in hindsight (generous: no policy can know it)
  random       the same number at random, the best fixed arm in hindsight (mean of 200 draws)
  oracle       the same number, the sends and arms with the highest true expected incremental profit

True incremental profit per send and arm = margin x (revenue if sent - revenue if not) - the offer's
discount on the revenue if sent - the contact cost, in the reporting currency, with the revenues
expected over the message's own chances (the truth's expected_revenue). Targets: uplift >= 1.3x
propensity and >= 70% of the oracle. Also: the gate's Qini with its interval, and the off-policy
estimates of the uplift policy's value against its true value.

Usage: python bench/bench_uplift.py [--customers 30000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import pandas as pd
from common import REPO, demo_warehouse, machine, run_stage, write_section

sys.path.insert(0, str(REPO))

CAMPAIGN = "newsletter"
STAGES = ["build_feature_store", "read_experiments", "train_uplift"]
RANDOM_DRAWS = 200


def true_gains(rows: pd.DataFrame, truth: pd.DataFrame, arms: list[str], terms, rates: dict[str, float]):
    """(sends x arms) true expected incremental profit, and each send's true expected profit untreated."""
    key = ["customer_id", "sent_at"]
    rows = rows.assign(sent_at=pd.to_datetime(rows["sent_at"], utc=True).astype("datetime64[ns, UTC]"))
    truth = truth.assign(sent_at=pd.to_datetime(truth["sent_at"], utc=True).astype("datetime64[ns, UTC]"))
    wide = truth.pivot_table(index=key, columns="option", values="expected_revenue").reset_index()
    currency = truth.drop_duplicates(key).set_index(key)["currency"]
    aligned = rows[key].merge(wide, on=key, how="left")
    rate = currency.reindex(pd.MultiIndex.from_frame(rows[key])).map(rates).fillna(1.0).to_numpy()
    control = aligned["control"].to_numpy() * rate
    gains = np.column_stack(
        [
            terms.margin_share * (aligned[arm].to_numpy() * rate - control)
            - terms.cost(CAMPAIGN, arm).discount_share * aligned[arm].to_numpy() * rate
            - terms.cost(CAMPAIGN, arm).contact_cost
            for arm in arms
        ]
    )
    return gains, terms.margin_share * control


def policy_profits(expected: np.ndarray, likely: np.ndarray, gains: np.ndarray) -> dict[str, float]:
    """True incremental profit of each policy at the uplift policy's volume (see the module docstring)."""
    n = len(expected)
    send = expected.max(axis=1) > 0
    volume = int(send.sum())
    uplift = gains[np.arange(n), expected.argmax(axis=1)][send].sum()
    best_fixed = int(gains.sum(axis=0).argmax())  # the fixed arm that earns most, in hindsight: generous
    top = np.argsort(-likely, kind="stable")[:volume]
    propensity = gains[top].mean(axis=1).sum()  # the rules' arms at their (equal) shares, as the platform sends
    propensity_best_arm = gains[top, best_fixed].sum()
    rng = np.random.default_rng(7)
    random = np.mean([gains[rng.choice(n, volume, replace=False), best_fixed].sum() for _ in range(RANDOM_DRAWS)])
    best = gains.max(axis=1)
    oracle = np.sort(best)[::-1][:volume].clip(min=0).sum()
    everyone = gains[:, best_fixed].sum()
    return {
        "sends": n,
        "volume": volume,
        "uplift": float(uplift),
        "propensity": float(propensity),
        "propensity_best_fixed_arm": float(propensity_best_arm),
        "random": float(random),
        "oracle": float(oracle),
        "everyone_best_fixed_arm": float(everyone),
    }


def at_volumes(expected: np.ndarray, likely: np.ndarray, gains: np.ndarray, shares=(0.1, 0.2, 0.3, 0.5)) -> list[dict]:
    """True incremental profit of each ranking when a fixed share of the sends is contacted."""
    n = len(expected)
    best_fixed = int(gains.sum(axis=0).argmax())
    rows = []
    for share in shares:
        k = int(share * n)
        uplift = np.argsort(-expected.max(axis=1), kind="stable")[:k]
        top = np.argsort(-likely, kind="stable")[:k]
        rows.append(
            {
                "share": share,
                "uplift": float(gains[uplift, expected[uplift].argmax(axis=1)].sum()),
                "propensity": float(gains[top].mean(axis=1).sum()),
                "propensity_best_fixed_arm": float(gains[top, best_fixed].sum()),
                "oracle": float(np.sort(gains.max(axis=1))[::-1][:k].sum()),
            }
        )
    return rows


def held_out_predictions(ds: str, campaign: str) -> dict[str, object]:
    """In this process (PZ_DATA_DIR set): the campaign's held-out sends of ds, the newest uplift
    version's arms, each send's expected profit per arm and its likelihood to buy when sent."""
    import datetime as dt

    from ml.orchestration.config import load_config
    from ml.uplift.dataset import held_out, read_sends
    from ml.uplift.model import expected_profit
    from ml.uplift.scoring import newest_version_by
    from ml.uplift.training import MODEL_NAME, load_bundle

    config = load_config()
    terms = config.profit_terms()
    day = dt.date.fromisoformat(ds)
    bundle = load_bundle(f"models:/{MODEL_NAME}/{newest_version_by(day).version}")
    sends = read_sends(day, config.uplift.max_snapshot_age_days).rows
    rows = sends[(sends["campaign_id"] == campaign) & held_out(sends["customer_id"], config.uplift.evaluation_share)]
    rows = rows.reset_index(drop=True)
    models = {a.arm: a for a in bundle.arms if a.campaign_id == campaign}
    arms = sorted(models)
    predicted = {arm: models[arm].predict(rows) for arm in arms}
    return {
        "config": config,
        "terms": terms,
        "day": day,
        "rows": rows,
        "models": models,
        "arms": arms,
        "expected": np.column_stack([expected_profit(predicted[arm], terms, campaign, arm) for arm in arms]),
        "likely": np.mean([predicted[arm]["treated_goal"] for arm in arms], axis=0),
    }


def evaluate(data_dir, ds: str) -> dict[str, object]:
    """In this process, on the bench's data directory: the policies against the truth, the gate's
    figures and the OPE estimates against the uplift policy's true value."""
    os.environ["PZ_DATA_DIR"] = str(data_dir)
    from ml.uplift.model import evaluate_campaign
    from ml.warehouse.engine import open_warehouse

    found = held_out_predictions(ds, CAMPAIGN)
    config, terms, day, rows = found["config"], found["terms"], found["day"], found["rows"]
    models, arms, expected, likely = found["models"], found["arms"], found["expected"], found["likely"]
    truth = pd.read_parquet(data_dir / "synthetic_truth" / "campaign_effects.parquet")
    rates = {config.activation.economics.currency: 1.0, **config.activation.economics.exchange_rates}
    gains, untreated = true_gains(rows, truth, arms, terms, rates)
    profits = policy_profits(expected, likely, gains)

    # OPE of the uplift policy over every learned arm (served or not) against its true value.
    for model in models.values():
        model.serves = True
    ope = evaluate_campaign(CAMPAIGN, rows, models, terms, config.uplift)
    send = expected.max(axis=1) > 0
    chosen = np.where(send, expected.argmax(axis=1), -1)
    true_value = float(np.mean(untreated + np.where(chosen >= 0, gains[np.arange(len(rows)), chosen.clip(0)], 0.0)))
    with open_warehouse() as connection:
        gate = connection.execute("select * from marts.uplift_arms where ds = ? order by campaign_id, arm", [day]).df()
    volumes = at_volumes(expected, likely, gains)
    return {"profits": profits, "volumes": volumes, "ope": ope.values, "true_value": true_value, "gate": gate}


def bandit_simulation(runs: int = 50, nights: int = 30, per_night: int = 300, window: int = 7) -> dict[str, object]:
    """Thompson allocation (ml.activation.bandit, the platform's own function and guards) on three arms
    converting at 10%, 12% and 15%, against the fixed equal split: the best arm's share of the treated
    customers by night, and the regret (conversions lost against sending everyone the best arm)."""
    from ml.activation.bandit import arm_statistics, thompson_weights
    from ml.activation.settings import Audience, BanditSettings

    rates = {"a": 0.10, "b": 0.12, "c": 0.15}
    audience = Audience.model_validate(
        {
            "goal": {"metric": "purchase", "window_days": window},
            "segment": "true",
            "behavioral_identifier": "everyone",
            "moment": {"kind": "daily"},
            "channels": ["email"],
            "variants": [{"name": arm, "tactic": {"kind": "content", "content_id": arm}} for arm in rates],
            "holdout_percent": 10,
            "hypothesis": "h",
            "null_hypothesis": "h0",
            "priority": 1,
            "allocation": "thompson",
        }
    )
    settings = BanditSettings()
    shares, regret = np.zeros((runs, nights)), np.zeros(runs)
    for run in range(runs):
        rng = np.random.default_rng(run)
        history = []
        for night in range(nights):
            ended = [h for h in history if h[0] + window <= night]
            frame = pd.DataFrame(
                [(arm, converted) for _, arm, converted in ended], columns=["experiment_group", "converted"]
            ).assign(revenue=0.0)
            weights, _, _ = thompson_weights(arm_statistics(frame, "purchase"), audience, settings, run * 100 + night)
            arms = list(weights)
            drawn = rng.choice(arms, per_night, p=np.array([weights[a] for a in arms]))
            shares[run, night] = np.mean(drawn == "c")
            regret[run] += sum(rates["c"] - rates[a] for a in drawn)
            history += [(night, a, rng.random() < rates[a]) for a in drawn]
    fixed_regret = nights * per_night * (rates["c"] - np.mean(list(rates.values())))
    return {
        "share_by_night": {n: float(shares[:, n - 1].mean()) for n in (7, 10, 15, 20, 30) if n <= nights},
        "regret": float(regret.mean()),
        "fixed_regret": float(fixed_regret),
        "runs": runs,
        "nights": nights,
        "per_night": per_night,
    }


def rebuilt_environment(name: str):
    """The environment of a data directory an earlier run of this bench built (to rerun its last stages)."""
    from common import WORK

    from ml.orchestration.config import load_config

    data_dir = WORK / name
    env = {**os.environ, "PZ_DATA_DIR": str(data_dir), "PZ_REPORTS_DIR": str(data_dir / "reports")}
    return data_dir, env, load_config().demo.end_date.isoformat()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=30_000)
    parser.add_argument("--stages", nargs="*", default=STAGES, help="rerun only these stages on the bench's data")
    args = parser.parse_args()
    started = time.perf_counter()
    if args.stages == STAGES:
        data_dir, env, ds = demo_warehouse("uplift", args.customers)
    else:
        data_dir, env, ds = rebuilt_environment("uplift")
    timings = {}
    for stage in args.stages:
        timings[stage] = run_stage(
            [sys.executable, "-c", f"from ml.orchestration.stages import run_stage; run_stage({stage!r}, '{ds}')"], env
        )
    result = evaluate(data_dir, ds)
    result["bandit"] = bandit_simulation()
    write_section("uplift", report(result, timings, args.customers, time.perf_counter() - started))


def _against(uplift: float, baseline: float, label: str) -> str:
    """The 1.3x target against one baseline; a baseline that loses money has no meaningful ratio."""
    if baseline <= 0:
        return f">= 1.3x {label}: met ({baseline:.0f} loses money, uplift earns {uplift:.0f})"
    ratio = uplift / baseline
    return f">= 1.3x {label}: {ratio:.2f}x ({'met' if ratio >= 1.3 else 'NOT met'})"


def report(result: dict, timings: dict, customers: int, seconds: float) -> str:
    p = result["profits"]
    lines = [
        f"Machine: {machine()}. Demo data set with {customers} customers; the planted campaign `{CAMPAIGN}` "
        f"(ml.synthetic.campaigns), ds = the demo end date; {seconds / 60:.1f} minutes in all.",
        "",
        f"Held-out customers' sends: {p['sends']}; the uplift policy contacts {p['volume']} of them.",
        "",
        "| policy (same contact volume) | true incremental profit | vs propensity | share of oracle |",
        "|---|---|---|---|",
    ]
    for name in ("uplift", "propensity", "propensity_best_fixed_arm", "random", "oracle"):
        lines.append(
            f"| {name} | {p[name]:.0f} | {p[name] / p['propensity']:.2f}x | {p[name] / p['oracle']:.0%} |"
            if p["propensity"] > 0 and p["oracle"] > 0
            else f"| {name} | {p[name]:.0f} | - | - |"
        )
    lines.append(f"| everyone, best fixed arm ({p['sends']} contacts) | {p['everyone_best_fixed_arm']:.0f} | | |")
    lines += [
        "",
        "At fixed contact volumes (share of the held-out sends, each policy's own ranking):",
        "",
        "| contacted | uplift | propensity (rules' arms) | propensity (best arm in hindsight) | oracle "
        "| uplift / oracle |",
        "|---|---|---|---|---|---|",
    ]
    for v in result["volumes"]:
        lines.append(
            f"| {v['share']:.0%} | {v['uplift']:.0f} | {v['propensity']:.0f} | {v['propensity_best_fixed_arm']:.0f} | "
            f"{v['oracle']:.0f} | {v['uplift'] / v['oracle']:.0%} |"
        )
    share = p["uplift"] / p["oracle"] if p["oracle"] > 0 else float("nan")
    lines += [
        "",
        f"Targets: >= 70% of the oracle: {share:.0%} ({'met' if share >= 0.7 else 'NOT met'}); "
        + "; ".join(
            _against(p["uplift"], p[name], label)
            for name, label in (
                ("propensity", "propensity targeting as the rules send it"),
                ("propensity_best_fixed_arm", "propensity targeting with the best arm in hindsight"),
            )
        )
        + ".",
    ]
    lines += [
        "",
        "Gate (held-out customers, bootstrap 95% intervals):",
        "",
        "| arm | Qini | interval | propensity-ranked Qini | gain interval | serves |",
        "|---|---|---|---|---|---|",
    ]
    for row in result["gate"].itertuples():
        lines.append(
            f"| {row.campaign_id}/{row.arm} | {row.qini:.4f} | [{row.qini_lower:.4f}, {row.qini_upper:.4f}] | "
            f"{row.propensity_qini:.4f} | [{row.qini_gain_lower:.4f}, {row.qini_gain_upper:.4f}] | {row.serves} |"
        )
    lines += [
        "",
        f"Off-policy value of the uplift policy (profit per customer), true value {result['true_value']:.3f}:",
        "",
    ]
    lines += ["| estimator | estimate | 95% interval | covers the truth |", "|---|---|---|---|"]
    for estimator, estimate in result["ope"]["uplift"].items():
        covers = estimate.lower <= result["true_value"] <= estimate.upper
        lines.append(
            f"| {estimator} | {estimate.value:.3f} | [{estimate.lower:.3f}, {estimate.upper:.3f}] | {covers} |"
        )
    b = result["bandit"]
    lines += [
        "",
        f"Thompson allocation ({b['runs']} simulated runs, three arms converting at 10%, 12% and 15%, "
        f"{b['per_night']} treated customers a night, 7-day goal windows, the platform's guards: 100 exposures per "
        "arm before moving, a 10% floor): the best arm's share of the treated by night "
        + ", ".join(f"{n}: {share:.0%}" for n, share in b["share_by_night"].items())
        + f"; regret over {b['nights']} nights {b['regret']:.0f} conversions against {b['fixed_regret']:.0f} for the "
        f"fixed equal split ({b['regret'] / b['fixed_regret']:.0%} of it).",
    ]
    rules = result["ope"]["rules"]["dr"]
    lines += [
        "",
        f"The rules (everyone sent, arms at their shares), DR: {rules.value:.3f} "
        f"[{rules.lower:.3f}, {rules.upper:.3f}].",
        "",
        "Stage times (s, peak GB): " + ", ".join(f"{name} {t:.0f} s / {m:.2f} GB" for name, (t, m) in timings.items()),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
