"""Propensity and feature store benchmark, results into bench/results.md.

On the demo data for the demo end date: each stage's time and memory, the out-of-time validation
of the calibrated model beside the RFM heuristic on the same rows (targets: AUC at least the
heuristic's + 0.03, Brier below the base rate's), and the latency of single-customer online lookups.

Usage: python bench/bench_propensity.py
"""

from __future__ import annotations

import datetime as dt
import json
import sys

from common import REPO, demo_warehouse, machine, run_stage, write_section

sys.path.insert(0, str(REPO))

LOOKUPS = 200
AUC_MARGIN = 0.03

LATENCY_PROBE = f"""
import json, statistics, time, duckdb
from ml.paths import warehouse_path
from ml.mlops.feature_store import online_features
with duckdb.connect(str(warehouse_path()), read_only=True) as connection:
    ids = [row[0] for row in connection.execute(
        "select customer_id from marts.customer_360 using sample {LOOKUPS} rows (reservoir, 7)").fetchall()]
online_features(ids[:1])  # warm-up: registry and connection
times = []
for customer_id in ids:
    started = time.perf_counter()
    online_features([customer_id])
    times.append((time.perf_counter() - started) * 1000)
times.sort()
print(json.dumps({{"p50": statistics.median(times), "p95": times[int(0.95 * len(times)) - 1], "n": len(times)}}))
"""


def main() -> None:
    from ml.orchestration.config import load_config

    config = load_config()
    demo = config.demo
    data_dir, env, ds = demo_warehouse("propensity_demo")
    python = sys.executable
    timings = {}
    for stage in ("build_feature_store", "train_propensity", "score_propensity"):
        timings[stage] = run_stage(
            [python, "-c", f"from ml.orchestration.stages import run_stage; run_stage({stage!r}, '{ds}')"], env
        )

    import subprocess

    latency = json.loads(
        subprocess.run([python, "-c", LATENCY_PROBE], cwd=REPO, env=env, capture_output=True, text=True, check=True)
        .stdout.strip()
        .splitlines()[-1]
    )
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(f"sqlite:///{data_dir / 'mlflow.db'}")
    client = MlflowClient()
    experiment = client.get_experiment_by_name("propensity")
    run = client.search_runs(
        [experiment.experiment_id], f"tags.ds = '{ds}' and attributes.run_name LIKE 'propensity%'"
    )[0]
    m, p = run.data.metrics, run.data.params
    auc_met = m["roc_auc"] >= m["baseline_roc_auc"] + AUC_MARGIN
    brier_met = m["brier"] < m["brier_base_rate"]
    lines = [
        "## Propensity and feature store",
        "",
        f"Run {dt.date.today()} with `python bench/bench_propensity.py` on {machine()}.",
        f"Demo data ({demo.customers:,} customers, {demo.days} days, seed {demo.seed}), ds {ds}; label: a completed "
        f"order within {config.propensity.horizon_days} days of the cutoff.",
        "",
        "| stage | seconds | peak GB |",
        "|---|---:|---:|",
        *(f"| {stage} | {seconds:.1f} | {gigabytes:.2f} |" for stage, (seconds, gigabytes) in timings.items()),
        "",
        f"Training set: {p['cutoffs']} weekly cutoffs from {p['first_cutoff']}, {int(p['all_rows']):,} rows by Feast "
        f"point-in-time joins. Out-of-time validation on cutoff {p['validation_cutoff']} "
        f"({int(p['validation_rows']):,} customers, base rate {m['base_rate']:.3f}); the evaluation fit learnt "
        f"from {int(p['training_rows']):,} rows whose label windows ended by then.",
        "",
        "| metric | calibrated gradient boosting | RFM heuristic |",
        "|---|---:|---:|",
        *(
            f"| {name} | {m[name]:.4f} | {m['baseline_' + name]:.4f} |"
            for name in ("roc_auc", "pr_auc", "top_decile_lift", "top_decile_capture")
        ),
        f"| brier (base rate forecast {m['brier_base_rate']:.4f}) | {m['brier']:.4f} | n/a (a rank, no probability) |",
        f"| log_loss | {m['log_loss']:.4f} | n/a |",
        "",
        f"AUC {m['roc_auc']:.3f} vs heuristic {m['baseline_roc_auc']:.3f} + {AUC_MARGIN} (target: "
        f"{'met' if auc_met else 'MISSED'}); Brier {m['brier']:.3f} below the base rate's {m['brier_base_rate']:.3f} "
        f"(target: {'met' if brier_met else 'MISSED'}).",
        "",
        "Online lookup of one customer's features from the SQLite online store "
        f"(`ml.mlops.feature_store.online_features`, {latency['n']} customers, warm): p50 {latency['p50']:.1f} ms, "
        f"p95 {latency['p95']:.1f} ms.",
    ]
    write_section("propensity", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
