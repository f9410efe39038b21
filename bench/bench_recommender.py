"""Recommender benchmarks (issue 5), results into bench/results.md.

1. Quality on the demo data: the nightly training for the demo end date, the model's holdout
   NDCG@10 beside the popularity baseline measured on the same split in the same run
   (target: at least 1.5x).
2. Scoring speed: 100,000 customers x 5,000 items, top 10 excluding each customer's purchases and
   inactive items. Batched matrix products (ml.recommender.ranking, what the nightly scoring uses)
   against LightFM's `predict` called per customer, side by side in this run (targets: at most
   20 s, at least 20x faster). The per-customer loop is timed on a sample of customers and
   extrapolated linearly; both paths are checked to return the same items for the sample.

Usage: python bench/bench_recommender.py [--skip-quality]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import time

import numpy as np
import scipy.sparse as sp
from common import REPO, WORK, machine, run_stage, write_section
from lightfm import LightFM

sys.path.insert(0, str(REPO))
from ml.recommender.ranking import top_k_scores

CUSTOMERS, ITEMS, K = 100_000, 5_000, 10
PER_USER_SAMPLE = 2_000
TARGET_SECONDS, TARGET_SPEEDUP, TARGET_LIFT = 20.0, 20.0, 1.5


def quality() -> tuple[list[str], dict[str, float]]:
    from ml.config import load_config

    config = load_config()
    data_dir = WORK / "recommender_demo"
    shutil.rmtree(data_dir, ignore_errors=True)
    env = {**os.environ, "PZ_DATA_DIR": str(data_dir), "PZ_REPORTS_DIR": str(data_dir / "reports")}
    python = sys.executable
    demo = config.demo
    run_stage(
        [
            python,
            "-m",
            "ml.synthetic",
            "--customers",
            str(demo.customers),
            "--days",
            str(demo.days),
            "--bad-rows",
            str(demo.bad_row_rate),
            "--out",
            str(data_dir / "landing"),
        ],
        env,
    )
    ds = demo.end_date.isoformat()
    run_stage(
        [
            python,
            "-c",
            f"from ml.pipeline import run; from ml.transform import run_dbt\n"
            f"from ml.stages import load_landing_files\nload_landing_files('{ds}'); run_dbt('build', '{ds}')",
        ],
        env,
    )
    seconds, gigabytes = run_stage(
        [python, "-c", f"from ml.stages import train_recommender; train_recommender('{ds}')"], env
    )
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(f"sqlite:///{data_dir / 'mlflow.db'}")
    client = MlflowClient()
    experiment = client.get_experiment_by_name("recommender")
    run = client.search_runs([experiment.experiment_id], f"tags.ds = '{ds}'")[0]
    m = run.data.metrics
    lift = m["ndcg_at_10"] / m["baseline_ndcg_at_10"]
    lines = [
        f"Demo data ({demo.customers:,} customers, {demo.days} days, seed {demo.seed}), ds {ds}, holdout the last "
        f"{config.recommender.holdout_days} days ({m['customers']:,.0f} customers bought in it, "
        f"{m['cold_start_customers']:,.0f} of them cold start). Training, search included: {seconds:.1f} s, "
        f"{gigabytes:.2f} GB.",
        "",
        "| metric | LightFM hybrid | popularity baseline | served (model + fallbacks) |",
        "|---|---:|---:|---:|",
    ]
    for name in (
        "ndcg_at_10",
        "precision_at_10",
        "recall_at_10",
        "map_at_10",
        "catalog_coverage_at_10",
        "cold_start_ndcg_at_10",
        "warm_ndcg_at_10",
    ):
        lines.append(f"| {name} | {m[name]:.4f} | {m['baseline_' + name]:.4f} | {m['served_' + name]:.4f} |")
    lines += [
        "",
        f"NDCG@10 lift over the baseline: {lift:.2f}x (target {TARGET_LIFT}x: "
        f"{'met' if lift >= TARGET_LIFT else 'MISSED'}).",
    ]
    return lines, {"lift": lift}


def scoring() -> list[str]:
    rng = np.random.default_rng(0)
    # A model fitted for one epoch on random interactions: scoring cost does not depend on the fit.
    rows = rng.integers(0, CUSTOMERS, 1_000_000)
    cols = np.minimum(rng.zipf(1.3, 1_000_000), ITEMS) - 1
    interactions = sp.coo_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(CUSTOMERS, ITEMS))
    interactions.sum_duplicates()
    model = LightFM(no_components=32, loss="warp", random_state=0)
    model.fit_partial(interactions, epochs=1, num_threads=2)
    bought = sp.csr_matrix(interactions, dtype=bool)
    eligible = rng.random(ITEMS) > 0.03

    started = time.perf_counter()
    item_biases, item_embeddings = model.get_item_representations()
    _, user_embeddings = model.get_user_representations()
    top, _ = top_k_scores(user_embeddings, item_embeddings, item_biases, K, exclude=bought, eligible=eligible)
    batched = time.perf_counter() - started

    sample = rng.choice(CUSTOMERS, PER_USER_SAMPLE, replace=False)
    all_items = np.arange(ITEMS, dtype=np.int32)
    started = time.perf_counter()
    loop_top = np.empty((PER_USER_SAMPLE, K), dtype=np.int64)
    for position, customer in enumerate(sample):
        scores = model.predict(int(customer), all_items, num_threads=2)
        scores[~eligible] = -np.inf
        scores[bought[customer].indices] = -np.inf
        best = np.argpartition(-scores, K)[:K]
        loop_top[position] = best[np.argsort(-scores[best], kind="stable")]
    per_user = (time.perf_counter() - started) / PER_USER_SAMPLE
    loop_total = per_user * CUSTOMERS
    agree = np.mean([set(a) == set(b) for a, b in zip(top[sample], loop_top, strict=True)])
    speedup = loop_total / batched
    return [
        f"{CUSTOMERS:,} customers x {ITEMS:,} items, 32 components, top {K} excluding each customer's purchases "
        f"({bought.nnz:,} in all) and {int((~eligible).sum())} inactive items:",
        "",
        "| path | seconds for all customers | per customer |",
        "|---|---:|---:|",
        f"| batched matrix products (ml.recommender.ranking, 4,096 customers a batch) | {batched:.1f} | "
        f"{batched / CUSTOMERS * 1e6:.0f} µs |",
        f"| LightFM `predict` per customer (timed on {PER_USER_SAMPLE:,}, extrapolated) | {loop_total:.0f} | "
        f"{per_user * 1e6:.0f} µs |",
        "",
        f"Same top {K} for {agree:.1%} of the sampled customers (ties aside). Batched: {batched:.1f} s "
        f"(target {TARGET_SECONDS:.0f} s: {'met' if batched <= TARGET_SECONDS else 'MISSED'}), "
        f"{speedup:.0f}x faster than the per-customer loop (target {TARGET_SPEEDUP:.0f}x: "
        f"{'met' if speedup >= TARGET_SPEEDUP else 'MISSED'}).",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-quality", action="store_true", help="only the scoring benchmark")
    args = parser.parse_args()
    lines = [
        "## Recommender: quality and scoring speed (issue 5)",
        "",
        f"Run {dt.date.today()} with `python bench/bench_recommender.py` on {machine()}.",
        "",
    ]
    if not args.skip_quality:
        quality_lines, _ = quality()
        lines += ["### Holdout quality", "", *quality_lines, ""]
    lines += ["### Batch scoring", "", *scoring()]
    write_section("recommender", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
