"""Train, evaluate, register and gate the `recommender` for one ds.

1. The holdout is the last `holdout_days` up to the end of ds; the validation window is the same
   length just before it. The search fits each setting on what came before the validation window,
   with early stopping on validation NDCG (nested MLflow runs).
2. The chosen setting is refit on everything before the holdout (the evaluation fit) and judged on
   the holdout beside the popularity baseline and the served policy (model, then fallbacks), for all
   customers, cold-start and warm ones.
3. It is refit on everything up to the end of ds (the scoring fit), logged as a pyfunc with both
   fits, registered as `recommender`, and passed through the champion/challenger gate.

The search settings, and then the two refits, train `parallel_fits` at a time (threads, one core
each); the fits are what a night at a million customers spends its time on.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import mlflow
import numpy as np
import pandas as pd
import scipy.sparse as sp
from mlflow import MlflowClient

from ml.config import RecommenderConfig, load_config
from ml.constants import CUSTOMER_ID, ITEM_ID
from ml.evaluation import precision_at_k, ranking_metrics
from ml.interactions import end_of
from ml.recommender.baseline import top_k_excluding
from ml.recommender.data import RecommenderInputs, View, read_inputs, serve_view, view_as_of
from ml.recommender.model import HybridRecommender, fit
from ml.recommender.pyfunc import RecommenderBundle, RecommenderModel
from ml.recommender.serving import Audience, popularity_share
from ml.registry import gate
from ml.tracking import frame_hash, git_commit, log_and_register, use_experiment

matplotlib.use("Agg")  # headless: plots are files, never windows
import matplotlib.pyplot as plt

log = logging.getLogger(__name__)

MODEL_NAME = "recommender"
APPROACHES = ("model", "baseline", "served")  # the model alone, popularity, what customers get


@dataclass(frozen=True)
class Holdout:
    """Purchases in [start, end) as the truth, and the world as it was at `start`."""

    view: View
    audience: Audience  # the customers who bought in the window, as known at `start`
    truth: sp.csr_matrix  # customers x items bought in the window
    start: dt.datetime
    end: dt.datetime

    @property
    def customer_ids(self) -> pd.Index:
        return self.audience.customer_ids

    @property
    def is_empty(self) -> bool:
        return len(self.customer_ids) == 0


def make_holdout(inputs: RecommenderInputs, end: dt.datetime, config: RecommenderConfig) -> Holdout:
    start = end - dt.timedelta(days=config.holdout_days)
    interactions = inputs.interactions
    bought = interactions[
        (interactions["kind"] == "purchase")
        & (interactions["occurred_at"] >= pd.Timestamp(start))
        & (interactions["occurred_at"] < pd.Timestamp(end))
        & interactions[CUSTOMER_ID].isin(inputs.customers[CUSTOMER_ID])
        & interactions[ITEM_ID].isin(inputs.item_ids)
    ][[CUSTOMER_ID, ITEM_ID]].drop_duplicates()
    customer_ids = pd.Index(sorted(bought[CUSTOMER_ID].unique()))
    truth = sp.csr_matrix(
        (
            np.ones(len(bought), dtype=bool),
            (customer_ids.get_indexer(bought[CUSTOMER_ID]), inputs.item_ids.get_indexer(bought[ITEM_ID])),
        ),
        shape=(len(customer_ids), len(inputs.item_ids)),
    )
    view = view_as_of(inputs, start, config)
    return Holdout(view, view.audience(customer_ids, config.exclude_purchased), truth, start, end)


def rankings(
    holdout: Holdout, recommender: HybridRecommender, inputs: RecommenderInputs, config: RecommenderConfig
) -> dict[str, np.ndarray]:
    """Top-k lists of every approach for the holdout's customers (rows aligned with its truth)."""
    model_top = rankings_model_only(holdout, recommender, inputs, config)
    popularity = popularity_share(holdout.view.history)
    baseline_top = top_k_excluding(popularity, holdout.audience.exclude, config.k, inputs.eligible)
    served = serve_view(recommender, holdout.view, holdout.audience, inputs, config)
    return {"model": model_top, "baseline": baseline_top, "served": served.items}


def segment_masks(holdout: Holdout, config: RecommenderConfig) -> dict[str, np.ndarray]:
    cold = holdout.audience.history_items <= config.cold_start_max_items
    return {"all": np.ones(len(cold), dtype=bool), "cold_start": cold, "warm": ~cold}


def metrics_by_segment(
    holdout: Holdout, lists: dict[str, np.ndarray], config: RecommenderConfig, n_items: int
) -> pd.DataFrame:
    rows = []
    for segment, mask in segment_masks(holdout, config).items():
        for approach, top in lists.items():
            metrics = ranking_metrics(holdout.truth[mask], top[mask], n_items, config.k) if mask.any() else {}
            rows.append({"segment": segment, "approach": approach, "customers": int(mask.sum()), **metrics})
    return pd.DataFrame(rows)


def model_ndcg(holdout: Holdout, inputs: RecommenderInputs, config: RecommenderConfig):
    """The primary metric of a fitted model on `holdout` (the model's own top k, all customers)."""

    def score(recommender: HybridRecommender) -> float:
        top = rankings_model_only(holdout, recommender, inputs, config)
        return ranking_metrics(holdout.truth, top, len(inputs.item_ids), config.k)[config.champion.metric]

    return score


def rankings_model_only(holdout, recommender, inputs, config) -> np.ndarray:
    audience = holdout.audience
    top, _ = recommender.recommend(
        audience.customer_ids,
        holdout.view.data.user_pairs,
        inputs.item_ids,
        holdout.view.data.item_pairs,
        config.k,
        exclude=audience.exclude,
        eligible=inputs.eligible,
        batch_size=config.scoring_batch_size,
    )
    return top


def precision_by_k_plot(holdout: Holdout, lists: dict[str, np.ndarray], k: int, path: Path) -> pd.DataFrame:
    table = pd.DataFrame(
        {
            approach: [precision_at_k(holdout.truth, top, at) for at in range(1, k + 1)]
            for approach, top in lists.items()
        },
        index=pd.RangeIndex(1, k + 1, name="k"),
    )
    figure, axes = plt.subplots(figsize=(6, 4))
    for approach in table.columns:
        axes.plot(table.index, table[approach], marker="o", label=approach)
    axes.set(xlabel="k", ylabel="precision@k", title="Holdout precision@k: model vs popularity baseline")
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return table


def _settings_params(settings) -> dict[str, object]:
    return settings.model_dump()


def side_by_side(fits: list[Callable[[], HybridRecommender]], workers: int) -> list[tuple[HybridRecommender, float]]:
    """Run independent fits `workers` at a time in threads; (fit, wall seconds) in the order given.

    Threads, not processes: LightFM trains without the GIL, and the fits share the training data
    instead of copying it (gigabytes at a million customers). Each fit has its own seeded model and
    one thread, so the results are the same as one at a time."""

    def timed(fit_one: Callable[[], HybridRecommender]) -> tuple[HybridRecommender, float]:
        started = time.perf_counter()
        return fit_one(), time.perf_counter() - started

    if workers == 1 or len(fits) == 1:
        return [timed(fit_one) for fit_one in fits]
    with ThreadPoolExecutor(max_workers=min(workers, len(fits)), thread_name_prefix="lightfm-fit") as pool:
        return list(pool.map(timed, fits))


def search(inputs, test: Holdout, config: RecommenderConfig):
    """Each setting fitted before the validation window with early stopping; returns (settings, epochs)."""
    validation = make_holdout(inputs, test.start, config)
    if validation.is_empty or validation.view.data.weights.empty:
        log.warning(
            "no purchases in the validation window before %s: no search, %s as configured", test.start, config.model
        )
        mlflow.set_tag("search", "skipped: no purchases in the validation window")
        return config.model, config.model.max_epochs
    candidates = config.search_settings()
    fitted = side_by_side(
        [
            functools.partial(
                fit,
                validation.view.data,
                settings,
                validate=model_ndcg(validation, inputs, config),
                eval_every=config.eval_every_epochs,
                patience=config.patience,
                num_threads=config.num_threads,
            )
            for settings in candidates
        ],
        config.parallel_fits,
    )
    best = None
    # Logged after the fits, in the main thread: MLflow's active run is per thread.
    for number, (settings, (recommender, seconds)) in enumerate(zip(candidates, fitted, strict=True)):
        with mlflow.start_run(run_name=f"search {number}", nested=True):
            mlflow.log_params({**_settings_params(settings), "role": "search"})
            for epoch, value in recommender.history:
                mlflow.log_metric(f"validation_{config.champion.metric}", value, step=epoch)
            score = max(value for _, value in recommender.history)
            mlflow.log_metrics(
                {
                    f"best_validation_{config.champion.metric}": score,
                    "best_epochs": recommender.epochs,
                    "fit_seconds": seconds,
                }
            )
        if best is None or score > best[0]:
            best = (score, settings, recommender.epochs)
    mlflow.log_metric(f"validation_{config.champion.metric}", best[0])
    return best[1], best[2]


def log_fit(role: str, recommender: HybridRecommender, view: View, seconds: float) -> None:
    with mlflow.start_run(run_name=f"{role} fit", nested=True):
        mlflow.log_params(
            {
                **_settings_params(recommender.settings),
                "role": role,
                "epochs": recommender.epochs,
                "trained_through": recommender.trained_through.isoformat(),
            }
        )
        mlflow.log_metrics(
            {
                "training_pairs": len(view.data.weights),
                "training_customers": view.data.weights[CUSTOMER_ID].nunique(),
                "fit_seconds": seconds,
            }
        )
        mlflow.set_tag("training_data_sha256", frame_hash(view.data.weights))


def skipped(ds: dt.date, reason: str) -> dict[str, object]:
    log.warning("recommender ds=%s skipped: %s", ds, reason)
    return {"status": "skipped", "reason": reason}


def train_recommender(ds: str) -> dict[str, object]:
    """Train, evaluate, register and gate the recommender for ds; returns a small summary (XCom)."""
    ds_date = dt.date.fromisoformat(ds)
    config = load_config().recommender
    inputs = read_inputs(ds_date, config)
    if inputs.items.empty:
        return skipped(ds_date, "the catalog (staging.stg_items) is empty: nothing to recommend")
    if not inputs.interactions[ITEM_ID].isin(inputs.item_ids).any():
        return skipped(ds_date, "no purchases, cart adds or product views of catalog items up to ds")
    test = make_holdout(inputs, end_of(ds_date), config)
    if test.is_empty or test.view.data.weights.empty:
        return skipped(
            ds_date,
            f"no purchases in the holdout ({test.start:%Y-%m-%d}..{ds}) or nothing before it:"
            " the model cannot be evaluated, so no version is registered",
        )
    experiment_id = use_experiment(MODEL_NAME)
    full = view_as_of(inputs, end_of(ds_date), config)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"recommender ds={ds}") as run:
        mlflow.set_tags({"ds": ds, "git_commit": git_commit(), "training_data_sha256": frame_hash(full.data.weights)})
        mlflow.log_params(
            {
                "ds": ds,
                "k": config.k,
                "holdout_days": config.holdout_days,
                "half_life_days": config.half_life_days,
                "exclude_purchased": config.exclude_purchased,
                "user_features": ",".join(config.user_features),
                "fallback_segment": config.fallback_segment,
                **{f"weight_{kind}": weight for kind, weight in config.interaction_weights.items()},
                **{f"rows_{name}": count for name, count in inputs.counts().items()},
                "holdout_customers": len(test.customer_ids),
            }
        )
        mlflow.log_input(
            mlflow.data.from_pandas(full.data.weights, name=f"interactions_through_{ds}"), context="training"
        )
        settings, epochs = search(inputs, test, config)
        mlflow.log_params({f"model_{key}": value for key, value in _settings_params(settings).items()})
        mlflow.log_param("epochs", epochs)

        # Both refits at once: neither depends on the other, and together they are most of the time.
        (evaluation_fit, evaluation_seconds), (scoring_fit, scoring_seconds) = side_by_side(
            [
                functools.partial(fit, view.data, settings, epochs=epochs, num_threads=config.num_threads)
                for view in (test.view, full)
            ],
            config.parallel_fits,
        )
        log_fit("evaluation", evaluation_fit, test.view, evaluation_seconds)
        lists = rankings(test, evaluation_fit, inputs, config)
        table = metrics_by_segment(test, lists, config, len(inputs.item_ids))
        headline = log_holdout_metrics(table, config)

        log_fit("scoring", scoring_fit, full, scoring_seconds)
        with tempfile.TemporaryDirectory() as scratch:
            scratch = Path(scratch)
            table.to_csv(scratch / "metrics_by_segment.csv", index=False)
            precision_by_k_plot(test, lists, config.k, scratch / "precision_at_k.png").to_csv(
                scratch / "precision_at_k.csv"
            )
            mlflow.log_artifacts(str(scratch), artifact_path="evaluation")
            mlflow.log_table(table, artifact_file="evaluation/metrics_by_segment.json")  # browsable in the UI
            version = log_model(config, ds, inputs, full, scoring_fit, evaluation_fit)
        client = MlflowClient()
        decision = gate(
            client,
            MODEL_NAME,
            version,
            headline[config.champion.metric],
            champion_evaluator(test, inputs, config),
            config.champion,
        )
    return {
        "status": "trained",
        "run_id": run.info.run_id,
        "version": str(version.version),
        "promoted": decision.promoted,
        "reason": decision.reason,
        **headline,
    }


def log_holdout_metrics(table: pd.DataFrame, config: RecommenderConfig) -> dict[str, float]:
    """Metrics of the model under their plain names, the baseline and served policy beside them."""
    logged = {}
    for row in table.to_dict("records"):
        prefix = {"model": "", "baseline": "baseline_", "served": "served_"}[row["approach"]]
        segment = "" if row["segment"] == "all" else f"{row['segment']}_"
        logged[f"{prefix}{segment}customers"] = row["customers"]
        for name, value in row.items():
            if name not in ("segment", "approach", "customers") and pd.notna(value):
                logged[f"{prefix}{segment}{name}"] = float(value)
    metric = config.champion.metric
    if logged.get(f"baseline_{metric}"):
        logged[f"{metric}_lift_over_baseline"] = logged[metric] / logged[f"baseline_{metric}"]
    mlflow.log_metrics(logged)
    return {name: value for name, value in logged.items() if name.endswith(metric)}


def log_model(config, ds, inputs, full: View, scoring_fit, evaluation_fit):
    known = scoring_fit.users.ids
    rows = full.customer_ids.get_indexer(known)
    bundle = RecommenderBundle(
        scoring=scoring_fit,
        evaluation=evaluation_fit,
        ds=ds,
        k=config.k,
        user_columns=list(config.user_features),
        user_pairs=full.data.user_pairs[full.data.user_pairs["entity_id"].isin(known)].reset_index(drop=True),
        item_ids=inputs.item_ids,
        item_pairs=full.data.item_pairs,
        eligible=inputs.eligible,
        purchased=full.purchased[rows],
    )
    example = inputs.customers[[CUSTOMER_ID, *config.user_features]].head(3).astype(str)
    return log_and_register(
        MODEL_NAME,
        RecommenderModel(),
        bundle,
        example,
        ds,
        ["rectools-lightfm", "mlflow", "pandas", "numpy", "scipy", "pydantic", "pyyaml"],
    )


def champion_evaluator(test: Holdout, inputs: RecommenderInputs, config: RecommenderConfig):
    """Re-evaluate the champion's evaluation fit on this run's holdout, when it has not seen it."""

    def evaluate(champion) -> tuple[float | None, str]:
        bundle = load_bundle(f"models:/{MODEL_NAME}/{champion.version}")
        if bundle.evaluation.trained_through > test.start:
            return None, (
                f"its evaluation fit saw data up to {bundle.evaluation.trained_through:%Y-%m-%d}, inside this "
                f"holdout (from {test.start:%Y-%m-%d}): a backfill of an earlier ds cannot replace it"
            )
        return model_ndcg(test, inputs, config)(bundle.evaluation), ""

    return evaluate


def load_bundle(model_uri: str) -> RecommenderBundle:
    return mlflow.pyfunc.load_model(model_uri).unwrap_python_model().bundle
