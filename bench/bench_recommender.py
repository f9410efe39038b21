"""Recommender benchmarks, results into bench/results.md.

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
import sys
import time

import numpy as np
import scipy.sparse as sp
from common import REPO, demo_warehouse, machine, run_stage, write_section
from lightfm import LightFM

sys.path.insert(0, str(REPO))
from ml.constants import SCORING_BATCH_SIZE
from ml.recommender.ranking import top_k_scores

CUSTOMERS, ITEMS, K = 100_000, 5_000, 10
PER_USER_SAMPLE = 2_000
TARGET_SECONDS, TARGET_SPEEDUP, TARGET_LIFT = 20.0, 20.0, 1.5


def quality() -> tuple[list[str], dict[str, float]]:
    from ml.orchestration.config import load_config

    config = load_config()
    demo = config.demo
    data_dir, env, ds = demo_warehouse("recommender_demo")
    python = sys.executable
    seconds, gigabytes = run_stage(
        [python, "-c", f"from ml.orchestration.stages import run_stage; run_stage('train_recommender', '{ds}')"], env
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


def random_features(rng, n: int, groups: list[tuple[int, int]]) -> sp.csr_matrix:
    """Identity plus one-hot groups like the production encoders: (values in the group, values per row)."""
    blocks = [sp.identity(n, dtype=np.float32, format="csr")]
    for size, per_row in groups:
        rows = np.repeat(np.arange(n), per_row)
        cols = rng.integers(0, size, n * per_row)
        blocks.append(sp.csr_matrix((np.full(len(rows), 0.5, np.float32), (rows, cols)), shape=(n, size)))
    matrix = sp.hstack(blocks, format="csr")
    return sp.csr_matrix(sp.diags(1 / np.asarray(matrix.sum(axis=1)).ravel()) @ matrix, dtype=np.float32)


def compare(model, interactions, eligible, rng, user_features=None, item_features=None) -> dict[str, float]:
    """Seconds of both paths for all customers (the loop extrapolated from a sample) and agreement."""
    bought = sp.csr_matrix(interactions, dtype=bool)
    started = time.perf_counter()
    item_biases, item_embeddings = model.get_item_representations(item_features)
    _, user_embeddings = model.get_user_representations(user_features)
    top, _ = top_k_scores(user_embeddings, item_embeddings, item_biases, K, exclude=bought, eligible=eligible)
    batched = time.perf_counter() - started

    sample = rng.choice(CUSTOMERS, PER_USER_SAMPLE, replace=False)
    all_items = np.arange(ITEMS, dtype=np.int32)
    loop_top = np.empty((PER_USER_SAMPLE, K), dtype=np.int64)
    started = time.perf_counter()
    for position, customer in enumerate(sample):
        scores = model.predict(
            int(customer), all_items, item_features=item_features, user_features=user_features, num_threads=2
        )
        scores[~eligible] = -np.inf
        scores[bought[customer].indices] = -np.inf
        best = np.argpartition(-scores, K)[:K]
        loop_top[position] = best[np.argsort(-scores[best], kind="stable")]
    per_user = (time.perf_counter() - started) / PER_USER_SAMPLE
    agree = np.mean([set(a) == set(b) for a, b in zip(top[sample], loop_top, strict=True)])
    return {
        "batched": batched,
        "loop": per_user * CUSTOMERS,
        "per_user": per_user,
        "agree": agree,
        "purchases": bought.nnz,
    }


def scoring() -> list[str]:
    rng = np.random.default_rng(0)
    # Fitted for one epoch on random interactions: scoring cost does not depend on what was learnt.
    rows = rng.integers(0, CUSTOMERS, 1_000_000)
    cols = np.minimum(rng.zipf(1.3, 1_000_000), ITEMS) - 1
    interactions = sp.coo_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(CUSTOMERS, ITEMS))
    interactions.sum_duplicates()
    eligible = rng.random(ITEMS) > 0.03
    # As in production: customers have their id and 7 segment features, items their id, a category,
    # two tags and a price band (ml.recommender.features).
    user_features = random_features(rng, CUSTOMERS, [(20, 1), (6, 1), (4, 1), (3, 1), (6, 1), (12, 1), (5, 1)])
    item_features = random_features(rng, ITEMS, [(12, 1), (60, 2), (5, 1)])
    hybrid = LightFM(no_components=32, loss="warp", random_state=0)
    hybrid.fit_partial(interactions, user_features=user_features, item_features=item_features, epochs=1, num_threads=2)
    ids_only = LightFM(no_components=32, loss="warp", random_state=0)
    ids_only.fit_partial(interactions, epochs=1, num_threads=2)
    deployed_name = "hybrid: ids + side features, as deployed"
    results = {
        deployed_name: compare(hybrid, interactions, eligible, rng, user_features, item_features),
        "ids only, no side features": compare(ids_only, interactions, eligible, rng),
    }
    deployed = results[deployed_name]
    lines = [
        f"{CUSTOMERS:,} customers x {ITEMS:,} items, 32 components, top {K} excluding each customer's purchases "
        f"({deployed['purchases']:,} in all) and {int((~eligible).sum())} inactive items. Batched: "
        f"ml.recommender.ranking, {SCORING_BATCH_SIZE} customers a matrix product, representations included. "
        f"Loop: LightFM `predict` for one customer and every item, timed on {PER_USER_SAMPLE:,} customers and "
        "extrapolated to all.",
        "",
        "| model | batched, all customers | predict loop, all customers | speed-up | same top 10 (sample) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, result in results.items():
        lines.append(
            f"| {name} | {result['batched']:.2f} s | {result['loop']:.0f} s ({result['per_user'] * 1e6:.0f} µs "
            f"each) | {result['loop'] / result['batched']:.0f}x | {result['agree']:.1%} |"
        )
    speedup = deployed["loop"] / deployed["batched"]
    seconds_verdict = "met" if deployed["batched"] <= TARGET_SECONDS else "MISSED"
    speedup_verdict = "met" if speedup >= TARGET_SPEEDUP else "MISSED"
    lines += [
        "",
        f"Deployed model: {deployed['batched']:.2f} s (target {TARGET_SECONDS:.0f} s: {seconds_verdict}), "
        f"{speedup:.0f}x the per-customer loop (target {TARGET_SPEEDUP:.0f}x: {speedup_verdict}).",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-quality", action="store_true", help="only the scoring benchmark")
    args = parser.parse_args()
    lines = [
        "## Recommender: quality and scoring speed",
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
