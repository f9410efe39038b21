"""The platform's two models on real public data, beside strong peers on the same split, in one run.

Data: a MovieLens release read where it lies (default ../shared/datasets/ml-latest-small; GroupLens
research license: cite Harper and Konstan, ACM TiiS 5(4):19, 2015), put onto the landing contract by
ml.warehouse.movielens (a rating of 4 or more is a purchase, a lower one a product view).

Recommender split: each user's last 20% of ratings in time (at least one) are held out and never
landed; the platform builds the warehouse, trains and scores for ds = the day of the latest landed
rating. The truth is each user's held-out purchases (ratings of 4 or more); every approach ranks
items the user has not rated in the landed data (the classic "seen items filtered" protocol),
scored for the users with a held-out purchase. Peers, trained on the same landed data:
- popularity: the most purchased movies;
- LightFM WARP with the library's default settings on the purchases only (30 epochs);
- implicit ALS with the library's default settings on the purchases only.
The platform's number is what it serves (marts.customer_recommendations), whatever the gate chose.

Propensity split: for each of `--propensity-dates` month ends, everything up to ds is landed and the
platform trains and scores as of ds; the label is "rates anything in the 30 days after ds". The
rows of all dates are pooled (one date holds too few buyers to compare AUCs). Peers on the same
rows, computed from the landed ratings of any value: the RFM heuristic (ml.propensity.model) and
BG/NBD (lifetimes' BetaGeoFitter, daily transactions, P(at least one rating in 30 days)).

Usage: python bench/bench_real_data.py [--movielens PATH] [--propensity-dates 8]
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import shutil
import sys
import time
import warnings
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO, WORK, machine, write_section
from ml.constants import SEED
from ml.paths import warehouse_path
from ml.recommender.metrics import ranking_metrics
from ml.warehouse.movielens import (
    CUSTOMER_PREFIX,
    ITEM_PREFIX,
    PURCHASE_MIN_RATING,
    MovieLens,
    read_movielens,
    write_landing,
)

log = logging.getLogger("bench_real_data")

DEFAULT_MOVIELENS = REPO.parent / "shared" / "datasets" / "ml-latest-small"
K = 10
HELD_OUT_SHARE = 0.2
LIGHTFM_EPOCHS = 30
PROPENSITY_HORIZON_DAYS = 30
RECOMMENDER_METRICS = ("precision_at_10", "recall_at_10", "ndcg_at_10")


def use_data_dir(path: Path) -> None:
    """Point the platform at a fresh data dir (its config reads the environment on every call)."""
    shutil.rmtree(path, ignore_errors=True)
    os.environ["PZ_DATA_DIR"] = str(path)
    os.environ["PZ_REPORTS_DIR"] = str(path / "reports")
    os.environ.pop("MLFLOW_TRACKING_URI", None)


def per_user_split(ratings: pd.DataFrame, share: float = HELD_OUT_SHARE) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(landed, held out): each user's last `share` of ratings in time, at least one, held out."""
    ordered = ratings.sort_values(["user_id", "rated_at", "movie_id"], kind="stable")
    position = ordered.groupby("user_id").cumcount(ascending=False)  # 0 for the latest rating
    held_count = np.maximum(1, np.ceil(ordered.groupby("user_id")["movie_id"].transform("size") * share))
    held = position < held_count
    return ordered[~held].reset_index(drop=True), ordered[held].reset_index(drop=True)


# --- recommender -------------------------------------------------------------------------------


def peer_lists(landed: pd.DataFrame, users: pd.Index, items: pd.Index) -> dict[str, tuple[np.ndarray, float]]:
    """Top K item indices of each peer for `users` (rows) and its training seconds."""
    from implicit.als import AlternatingLeastSquares
    from lightfm import LightFM
    from threadpoolctl import threadpool_limits

    from ml.recommender.ranking import top_k_scores

    bought = landed[landed["rating"] >= PURCHASE_MIN_RATING]
    user_index = pd.Index(sorted(landed["user_id"].unique()))

    def matrix(frame: pd.DataFrame) -> sp.csr_matrix:
        return sp.csr_matrix(
            (
                np.ones(len(frame), dtype=np.float32),
                (user_index.get_indexer(frame["user_id"]), items.get_indexer(frame["movie_id"])),
            ),
            shape=(len(user_index), len(items)),
        )

    purchases, seen = matrix(bought), matrix(landed)
    rows = user_index.get_indexer(users)
    exclude = seen[rows].astype(bool)
    lists: dict[str, tuple[np.ndarray, float]] = {}

    started = time.perf_counter()
    popularity = np.asarray(purchases.sum(axis=0)).ravel()
    scores = np.broadcast_to(popularity, (len(users), len(items))).copy()
    scores[exclude.nonzero()] = -np.inf
    lists["popularity"] = (np.argsort(-scores, axis=1, kind="stable")[:, :K], time.perf_counter() - started)

    started = time.perf_counter()
    lightfm = LightFM(loss="warp", random_state=np.random.RandomState(SEED))
    lightfm.fit(purchases.tocoo(), epochs=LIGHTFM_EPOCHS, num_threads=1)
    _, item_biases = lightfm.get_item_representations()
    item_biases, item_embeddings = lightfm.get_item_representations()
    _, user_embeddings = lightfm.get_user_representations()
    top, _ = top_k_scores(user_embeddings[rows], item_embeddings, item_biases, K, exclude=exclude)
    lists["lightfm_warp_defaults"] = (top, time.perf_counter() - started)

    started = time.perf_counter()
    with threadpool_limits(1, "blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        als = AlternatingLeastSquares(random_state=SEED)
        als.fit(purchases, show_progress=False)
        scores = als.user_factors[rows] @ als.item_factors.T
    scores[exclude.nonzero()] = -np.inf
    lists["implicit_als_defaults"] = (np.argsort(-scores, axis=1, kind="stable")[:, :K], time.perf_counter() - started)
    return lists


def served_lists(ds: str, users: pd.Index, items: pd.Index) -> np.ndarray:
    with duckdb.connect(str(warehouse_path())) as connection:
        served = connection.execute(
            "select customer_id, rank, item_id from marts.customer_recommendations where ds = ?", [ds]
        ).df()
    top = np.full((len(users), K), -1, dtype=np.int64)
    rows = pd.Index(CUSTOMER_PREFIX + users.astype(str)).get_indexer(served["customer_id"])
    columns = items.get_indexer(served["item_id"].str.removeprefix(ITEM_PREFIX).astype(int))
    keep = (rows >= 0) & (columns >= 0) & (served["rank"].to_numpy() <= K)
    top[rows[keep], served["rank"].to_numpy()[keep] - 1] = columns[keep]
    return top


def bench_recommender(data: MovieLens, work: Path) -> tuple[pd.DataFrame, dict[str, object]]:
    from mlflow import MlflowClient

    from ml.orchestration.pipeline import run
    from ml.orchestration.stages import run_stage

    landed, held = per_user_split(data.ratings)
    ds = landed["rated_at"].max().date().isoformat()
    use_data_dir(work / "recommender")
    write_landing(MovieLens(landed, data.movies, data.users), work / "recommender" / "landing")
    run(ds, models=False)
    started = time.perf_counter()
    trained = run_stage("train_recommender", ds)
    training_seconds = time.perf_counter() - started
    run_stage("score_recommendations", ds)

    items = pd.Index(sorted(data.movies["movie_id"]))
    truth_rows = held[held["rating"] >= PURCHASE_MIN_RATING]
    users = pd.Index(sorted(truth_rows["user_id"].unique()))
    truth = sp.csr_matrix(
        (
            np.ones(len(truth_rows), dtype=bool),
            (users.get_indexer(truth_rows["user_id"]), items.get_indexer(truth_rows["movie_id"])),
        ),
        shape=(len(users), len(items)),
    )
    lists = peer_lists(landed, users, items)
    lists["platform_served"] = (served_lists(ds, users, items), training_seconds)
    table = pd.DataFrame(
        [
            {"approach": name, **ranking_metrics(truth, top, len(items), K), "train_seconds": seconds}
            for name, (top, seconds) in lists.items()
        ]
    )[["approach", *RECOMMENDER_METRICS, "train_seconds"]]
    client = MlflowClient()
    facts = {
        "ds": ds,
        "landed_ratings": len(landed),
        "held_out_ratings": len(held),
        "evaluated_users": len(users),
        "held_out_purchases": len(truth_rows),
        "gate": trained.get("reason", trained),
        "registered": [
            (v.version, dict(v.aliases) if hasattr(v, "aliases") else None)
            for v in client.search_model_versions("name = 'recommender'")
        ],
    }
    return table, facts


# --- propensity --------------------------------------------------------------------------------


def peer_scores(landed: pd.DataFrame, ds: dt.date, customers: pd.Index) -> pd.DataFrame:
    """RFM heuristic and BG/NBD P(any rating within the horizon) from every landed rating up to ds."""
    from lifetimes import BetaGeoFitter
    from lifetimes.utils import summary_data_from_transaction_data

    from ml.propensity.model import rfm_heuristic

    end = pd.Timestamp(ds + dt.timedelta(days=1))
    days = landed.assign(day=landed["rated_at"].dt.floor("D"))
    summary = summary_data_from_transaction_data(
        days, "user_id", "day", observation_period_end=end - pd.Timedelta(days=1), freq="D"
    ).reindex(customers)
    fitter = BetaGeoFitter(penalizer_coef=0.001)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitter.fit(summary["frequency"], summary["recency"], summary["T"])
        alive = fitter.conditional_probability_alive(summary["frequency"], summary["recency"], summary["T"])
    # P(at least one rating within the horizon | history): alive, times 1 - P(no event in the horizon)
    # under the posterior Gamma(r + x, alpha + T) of the rate. It ignores a dropout within the
    # horizon, so it overstates a little; lifetimes has no closed form of it for BG/NBD.
    r, alpha = fitter.params_["r"], fitter.params_["alpha"]
    quiet = ((alpha + summary["T"]) / (alpha + summary["T"] + PROPENSITY_HORIZON_DAYS)) ** (r + summary["frequency"])
    bg_nbd = np.asarray(alive) * (1 - quiet.to_numpy())
    year_ago = end - pd.Timedelta(days=365)
    per_user = days.groupby("user_id").agg(last=("rated_at", "max"), lifetime=("movie_id", "size"))
    recent = days[days["rated_at"] >= year_ago].groupby("user_id").size()
    rfm_rows = pd.DataFrame(
        {
            "frequency_lifetime": per_user["lifetime"].reindex(customers).fillna(0).to_numpy(),
            "recency_days": (end - per_user["last"].reindex(customers)).dt.days.to_numpy(),
            "frequency_365d": recent.reindex(customers).fillna(0).to_numpy(),
            "monetary_365d": recent.reindex(customers).fillna(0).to_numpy(),
        }
    )
    return pd.DataFrame({"rfm_heuristic": rfm_heuristic(rfm_rows), "bg_nbd_lifetimes": bg_nbd}, index=customers)


def propensity_dates(data: MovieLens, count: int) -> list[dt.date]:
    """The last `count` month ends whose 30-day label window is inside the data."""
    last = (data.ratings["rated_at"].max() - pd.Timedelta(days=PROPENSITY_HORIZON_DAYS)).normalize()
    month_ends = pd.date_range(end=last, periods=count, freq="ME")
    return [day.date() for day in month_ends]


def bench_propensity(data: MovieLens, work: Path, count: int) -> tuple[pd.DataFrame, dict[str, object]]:
    from ml.orchestration.pipeline import run
    from ml.orchestration.stages import run_stage
    from ml.propensity.model import classification_metrics

    pooled, seconds, decisions = [], 0.0, []
    for ds in propensity_dates(data, count):
        use_data_dir(work / f"propensity-{ds}")
        known = data.until(ds)
        write_landing(known, work / f"propensity-{ds}" / "landing")
        run(ds.isoformat(), models=False)
        run_stage("build_feature_store", ds.isoformat())
        started = time.perf_counter()
        trained = run_stage("train_propensity", ds.isoformat())
        seconds += time.perf_counter() - started
        decisions.append(f"{ds}: {trained.get('reason')}")
        run_stage("score_propensity", ds.isoformat())
        with duckdb.connect(str(warehouse_path())) as connection:
            scores = connection.execute(
                "select customer_id, score, model_name from marts.customer_scores where ds = ?", [ds]
            ).df()
        customers = pd.Index(sorted(known.ratings["user_id"].unique()))
        window = data.ratings[
            (data.ratings["rated_at"] >= pd.Timestamp(ds + dt.timedelta(days=1)))
            & (data.ratings["rated_at"] < pd.Timestamp(ds + dt.timedelta(days=1 + PROPENSITY_HORIZON_DAYS)))
        ]
        frame = peer_scores(known.ratings, ds, customers)
        frame["label"] = customers.isin(window["user_id"]).astype(int)
        platform = scores.set_index(scores["customer_id"].str.removeprefix(CUSTOMER_PREFIX).astype(int))
        frame["platform_score"] = platform["score"].reindex(customers).to_numpy()
        frame["served_by"] = platform["model_name"].reindex(customers).to_numpy()
        frame["ds"] = ds
        pooled.append(frame)
    rows = pd.concat(pooled)
    labels = rows["label"].to_numpy()
    table = []
    for name in ("rfm_heuristic", "bg_nbd_lifetimes", "platform_score"):
        scores = rows[name].fillna(0).to_numpy(dtype=float)
        metrics = classification_metrics(labels, scores, probabilities=name != "rfm_heuristic")
        table.append({"approach": name, **metrics})
    facts = {
        "dates": [str(d) for d in propensity_dates(data, count)],
        "rows": len(rows),
        "buyers": int(labels.sum()),
        "train_seconds_total": round(seconds, 1),
        "served_by": rows["served_by"].value_counts(dropna=False).to_dict(),
        "gate": decisions,
    }
    return pd.DataFrame(table), facts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--movielens", type=Path, default=DEFAULT_MOVIELENS)
    parser.add_argument("--propensity-dates", type=int, default=8)
    parser.add_argument("--only", choices=["recommender", "propensity"])
    parser.add_argument("--no-write", action="store_true", help="print, do not update bench/results.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    data = read_movielens(args.movielens)
    work = WORK / "real_data"
    parts = []
    if args.only != "propensity":
        table, facts = bench_recommender(data, work)
        print(table.to_string(index=False), facts, sep="\n")
        parts.append(("recommender", table, facts))
    if args.only != "recommender":
        table, facts = bench_propensity(data, work, args.propensity_dates)
        print(table.to_string(index=False), facts, sep="\n")
        parts.append(("propensity", table, facts))
    if not args.no_write:
        write_section("real_data", report(args.movielens, parts))


SPLITS = {
    "recommender": (
        "Split: each user's last 20% of ratings in time (at least one) held out, never landed; the platform ran"
        " for ds = the day of the latest landed rating. Truth: the held-out ratings of 4 or more. Every approach"
        " ranks only movies the user has not rated in the landed data; users with a held-out purchase are"
        " scored. Peers trained on the landed purchases (ratings of 4 or more): popularity (most purchased),"
        " LightFM WARP with library defaults (30 epochs), implicit ALS with library defaults. `platform_served`"
        " is marts.customer_recommendations as served (whatever the gate chose); its `train_seconds` is the"
        " whole `train_recommender` task (search, two refits, registration)."
    ),
    "propensity": (
        "Split: for each month end below, the ratings up to ds are landed and the platform trains and scores as"
        " of ds (default configuration, 30-day horizon); label: the user rates anything in the 30 days after"
        " ds. Rows of all dates pooled. Peers from the same landed ratings (any value): the RFM heuristic"
        " (ml.propensity.model.rfm_heuristic on rating recency, 365-day count and lifetime count) and BG/NBD"
        " (lifetimes BetaGeoFitter on daily rating days; P(alive) x P(at least one rating in 30 days | alive))."
        " The RFM heuristic ranks, it is no probability: no Brier score. `train_seconds_total`: every"
        " `train_propensity` task."
    ),
}


def report(folder: Path, parts) -> str:
    lines = [
        f"## Real data: {folder.name} ({dt.date.today()}, `bench/bench_real_data.py`)",
        "",
        f"Machine: {machine()}",
        "",
        "MovieLens (GroupLens research license; Harper and Konstan, ACM TiiS 5(4):19, 2015) read in place,"
        " landed by ml.warehouse.movielens: a rating of 4 or more is a purchase of one unit, a lower one a"
        " product view.",
        "",
    ]
    for name, table, facts in parts:
        best_peer = table[~table["approach"].str.startswith("platform")]
        platform = table[table["approach"].str.startswith("platform")].iloc[0]
        metric = "precision_at_10" if name == "recommender" else "roc_auc"
        ratio = platform[metric] / best_peer[metric].max()
        strongest = best_peer.loc[best_peer[metric].idxmax(), "approach"]
        lines += [
            f"### {name}",
            "",
            SPLITS[name],
            "",
            table.to_markdown(index=False, floatfmt=".4f"),
            "",
            f"Platform {metric} / best peer's: **{ratio:.3f}x** ({strongest}).",
            "",
            "Run facts: " + "; ".join(f"{key}: {value}" for key, value in facts.items() if key != "registered"),
            "",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
