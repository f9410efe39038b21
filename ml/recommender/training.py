"""Train, evaluate, register and gate the `recommender` for one ds.

1. The holdout is the last `holdout_days` up to the end of ds; the validation window is the same
   length just before it. The search fits each setting on what came before the validation window,
   with early stopping on validation NDCG (nested MLflow runs). It runs weekly (search_every_days)
   or when the gate or drift monitoring asks (plan_search); other nights refit its last choice.
2. The chosen setting is refit on everything before the holdout (the evaluation fit) and judged on
   the holdout beside the popularity baseline and the served policy (model, then fallbacks), for all
   customers, cold-start and warm ones.
3. It is refit on everything up to the end of ds (the scoring fit), logged as a pyfunc with both
   fits, registered as `recommender`, and passed through the champion/challenger gate.

The search settings, and then the two refits, train `parallel_fits` at a time (threads, one core
each); the fits are what a night at a million customers spends its time on.
"""

from __future__ import annotations

import dataclasses
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

from ml.constants import CUSTOMER_ID, ITEM_ID
from ml.dates import end_of
from ml.mlops.lifecycle import (
    FINGERPRINT,
    register_and_gate,
    reused_without_run,
    skipped,
    trained,
    training_fingerprint,
    training_run,
    version_trained_as,
)
from ml.mlops.registry import ChampionCheck, PerCustomer, last_version_before
from ml.mlops.tracking import frame_hash
from ml.recommender.baseline import top_k_excluding
from ml.recommender.data import RecommenderInputs, View, read_inputs, serve_view, view_as_of
from ml.recommender.ease import fit_ease
from ml.recommender.family import Recommender
from ml.recommender.metrics import ndcg_per_user, precision_at_k, ranking_metrics
from ml.recommender.model import HybridRecommender, continue_fit, fit
from ml.recommender.pyfunc import RecommenderBundle, RecommenderModel
from ml.recommender.serving import Audience, popularity_share
from ml.recommender.settings import RecommenderConfig
from ml.warehouse.partitions import existing_tables

matplotlib.use("Agg")  # headless: plots are files, never windows
import matplotlib.pyplot as plt

from ml.warehouse.engine import open_warehouse

log = logging.getLogger(__name__)

MODEL_NAME = "recommender"
APPROACHES = ("model", "baseline", "served")  # the model alone, popularity, what customers get


@dataclass(frozen=True)
class Holdout:
    """Purchases held out as the truth, and the world as it was without them.

    `recent_days`: every purchase in [start, end), the world at `start`. `last_purchases`: each
    customer's latest purchases (a share of them), the world without those customers' interactions
    from their first held-out purchase on; `start` is the earliest held-out purchase."""

    view: View
    audience: Audience  # the customers with held-out purchases, as known to the view
    truth: sp.csr_matrix  # customers x items held out
    start: dt.datetime
    end: dt.datetime
    kind: str = "recent_days"
    known: RecommenderInputs | None = None  # the inputs the view was built from (the next split's)

    @property
    def customer_ids(self) -> pd.Index:
        return self.audience.customer_ids

    @property
    def is_empty(self) -> bool:
        return len(self.customer_ids) == 0


def _truth(bought: pd.DataFrame, inputs: RecommenderInputs) -> tuple[pd.Index, sp.csr_matrix]:
    bought = bought[[CUSTOMER_ID, ITEM_ID]].drop_duplicates()
    customer_ids = pd.Index(sorted(bought[CUSTOMER_ID].unique()))
    truth = sp.csr_matrix(
        (
            np.ones(len(bought), dtype=bool),
            (customer_ids.get_indexer(bought[CUSTOMER_ID]), inputs.item_ids.get_indexer(bought[ITEM_ID])),
        ),
        shape=(len(customer_ids), len(inputs.item_ids)),
    )
    return customer_ids, truth


def _catalog_purchases(inputs: RecommenderInputs, interactions: pd.DataFrame) -> pd.DataFrame:
    return interactions[
        (interactions["kind"] == "purchase")
        & interactions[CUSTOMER_ID].isin(inputs.customers[CUSTOMER_ID])
        & interactions[ITEM_ID].isin(inputs.item_ids)
    ]


def recent_days_holdout(inputs: RecommenderInputs, end: dt.datetime, config: RecommenderConfig) -> Holdout:
    start = end - dt.timedelta(days=config.holdout_days)
    occurred = inputs.interactions["occurred_at"]
    in_window = inputs.interactions[(occurred >= pd.Timestamp(start)) & (occurred < pd.Timestamp(end))]
    customer_ids, truth = _truth(_catalog_purchases(inputs, in_window), inputs)
    known = dataclasses.replace(inputs, interactions=inputs.interactions[occurred < pd.Timestamp(start)])
    view = view_as_of(known, start, config)
    return Holdout(view, view.audience(customer_ids, config.exclude_purchased), truth, start, end, "recent_days", known)


def last_purchases_holdout(inputs: RecommenderInputs, end: dt.datetime, config: RecommenderConfig) -> Holdout:
    """Each customer with at least two purchases keeps the first ones; the latest
    `holdout_share` of them (at least one) is the truth, as classic leave-last-out benchmarks do."""
    interactions = inputs.interactions[inputs.interactions["occurred_at"] < pd.Timestamp(end)]
    purchases = _catalog_purchases(inputs, interactions).sort_values(
        [CUSTOMER_ID, "occurred_at", ITEM_ID], kind="stable"
    )
    per_customer = purchases.groupby(CUSTOMER_ID)[ITEM_ID].transform("size")
    from_last = purchases.groupby(CUSTOMER_ID).cumcount(ascending=False)
    latest = (per_customer >= 2) & (from_last < np.maximum(1, np.floor(per_customer * config.holdout_share)))
    first_held = purchases[latest].groupby(CUSTOMER_ID)["occurred_at"].min()
    # Everything from a customer's first held-out purchase on is held out, so the rest of a basket
    # bought at that moment is truth too, never silently dropped from both sides.
    held = purchases["occurred_at"] >= purchases[CUSTOMER_ID].map(first_held)
    cutoff = interactions[CUSTOMER_ID].map(first_held)
    known_rows = interactions[cutoff.isna() | (interactions["occurred_at"] < cutoff)]
    customer_ids, truth = _truth(purchases[held], inputs)
    known = dataclasses.replace(inputs, interactions=known_rows)
    view = view_as_of(known, end, config)
    start = first_held.min().to_pydatetime() if len(first_held) else end
    audience = view.audience(customer_ids, config.exclude_purchased)
    return Holdout(view, audience, truth, start, end, "last_purchases", known)


def make_holdout(inputs: RecommenderInputs, end: dt.datetime, config: RecommenderConfig) -> Holdout:
    """The split `config.holdout` names; `auto` is recent_days when that window holds at least
    `min_holdout_customers` buyers (steady traffic, like a shop), else last_purchases (data where
    customers come in bursts, like film ratings)."""
    if config.holdout == "last_purchases":
        return last_purchases_holdout(inputs, end, config)
    recent = recent_days_holdout(inputs, end, config)
    if config.holdout == "auto" and len(recent.customer_ids) < config.min_holdout_customers:
        log.info(
            "%d customers bought in the %d days before %s (fewer than min_holdout_customers %d): holding out each"
            " customer's latest purchases instead",
            len(recent.customer_ids),
            config.holdout_days,
            f"{end:%Y-%m-%d}",
            config.min_holdout_customers,
        )
        return last_purchases_holdout(inputs, end, config)
    return recent


def validation_holdout(test: Holdout, config: RecommenderConfig) -> Holdout:
    """The same kind of split once more, inside what the test split's view knows: the search's."""
    if test.kind == "last_purchases":
        return last_purchases_holdout(test.known, test.end, config)
    return recent_days_holdout(test.known, test.start, config)


def rankings(
    holdout: Holdout, recommender: Recommender, inputs: RecommenderInputs, config: RecommenderConfig
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

    def score(recommender: Recommender) -> float:
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


def fit_candidate(data, settings, *, config: RecommenderConfig, epochs=None, validate=None) -> Recommender:
    """One fit of either family: LightFM for `epochs` (or early-stopped on `validate`), EASE in closed form."""
    if settings.family == "ease":
        return fit_ease(data, settings, validate=validate)
    return fit(
        data,
        settings,
        epochs=epochs,
        validate=validate,
        eval_every=config.eval_every_epochs,
        patience=config.patience,
        num_threads=config.num_threads,
    )


def side_by_side(fits: list[Callable[[], Recommender]], workers: int) -> list[tuple[Recommender, float]]:
    """Run independent fits `workers` at a time in threads; (fit, wall seconds) in the order given.

    Threads, not processes: LightFM trains without the GIL, and the fits share the training data
    instead of copying it (gigabytes at a million customers). Each fit has its own seeded model and
    one thread, so the results are the same as one at a time."""

    def timed(fit_one: Callable[[], Recommender]) -> tuple[Recommender, float]:
        started = time.perf_counter()
        return fit_one(), time.perf_counter() - started

    if workers == 1 or len(fits) == 1:
        return [timed(fit_one) for fit_one in fits]
    with ThreadPoolExecutor(max_workers=min(workers, len(fits)), thread_name_prefix="lightfm-fit") as pool:
        return list(pool.map(timed, fits))


@dataclass(frozen=True)
class Choice:
    """What the search picked: the model settings, their epochs, and the serving exclusion."""

    settings: object
    epochs: int
    exclude_interacted: bool


def exclusion_options(config: RecommenderConfig) -> tuple[bool, ...]:
    return (False, True) if config.exclude_interacted == "auto" else (bool(config.exclude_interacted),)


def served_ndcg(holdout: Holdout, recommender, inputs, config: RecommenderConfig, exclude_interacted: bool) -> float:
    """The primary metric of what customers would be served (model, then fallbacks) on `holdout`."""
    return served_evaluation(holdout, recommender, inputs, config, exclude_interacted)[0]


def served_evaluation(
    holdout: Holdout, recommender, inputs, config: RecommenderConfig, exclude_interacted: bool
) -> tuple[float, np.ndarray]:
    """(primary metric, NDCG@k per holdout customer) of what customers would be served on `holdout`."""
    audience = holdout.view.audience(holdout.customer_ids, config.exclude_purchased, exclude_interacted)
    served = serve_view(recommender, holdout.view, audience, inputs, config)
    metric = ranking_metrics(holdout.truth, served.items, len(inputs.item_ids), config.k)[config.champion.metric]
    return metric, ndcg_per_user(holdout.truth, served.items, config.k)


def search_sample(test: Holdout, config: RecommenderConfig) -> Holdout:
    """The test split with what its view knows cut to a stable sample of at most
    `search_max_customers` customers (the smallest hashes of their ids: the same customers from one
    search to the next, but for those that new customers displace) and all their interactions. The
    search only ranks settings, and its fits cost what the sample's interactions cost; the
    evaluation and scoring fits of the chosen setting see every customer."""
    known = test.known
    if known is None or len(known.customers) <= config.search_max_customers:
        return test
    ids = known.customers[CUSTOMER_ID]
    order = np.argsort(pd.util.hash_array(ids.to_numpy(dtype=object)), kind="stable")
    kept = pd.Index(ids.iloc[order[: config.search_max_customers]])
    sampled = dataclasses.replace(
        known,
        customers=known.customers[ids.isin(kept)].reset_index(drop=True),
        interactions=known.interactions[known.interactions[CUSTOMER_ID].isin(kept)],
    )
    log.info("search on a sample of %d of %d customers (search_max_customers)", len(kept), len(ids))
    return dataclasses.replace(test, known=sampled)


def search(inputs, test: Holdout, config: RecommenderConfig) -> Choice:
    """Each setting fitted before the validation window (LightFM with early stopping on the model's
    own NDCG); the one whose served recommendations score best there wins, with the exclusion of
    viewed items that serves better when `exclude_interacted` is auto. Above `search_max_customers`
    customers, on a stable sample of them (search_sample)."""
    validation = validation_holdout(search_sample(test, config), config)
    mlflow.log_param("search_customers", len(validation.view.customer_ids))
    default = Choice(config.model, config.model.max_epochs, config.exclude_interacted is True)
    if validation.is_empty or validation.view.data.weights.empty:
        log.warning(
            "no purchases in the validation window before %s: no search, %s as configured", test.start, config.model
        )
        mlflow.set_tag("search", "skipped: no purchases in the validation window")
        return default
    candidates = config.search_settings()
    fitted = side_by_side(
        [
            functools.partial(
                fit_candidate,
                validation.view.data,
                settings,
                validate=model_ndcg(validation, inputs, config),
                config=config,
            )
            for settings in candidates
        ],
        config.parallel_fits,
    )
    best: tuple[float, Choice] | None = None
    metric = config.champion.metric
    # Logged after the fits, in the main thread: MLflow's active run is per thread.
    for number, (settings, (recommender, seconds)) in enumerate(zip(candidates, fitted, strict=True)):
        with mlflow.start_run(run_name=f"search {number}", nested=True):
            mlflow.log_params({**_settings_params(settings), "role": "search"})
            for epoch, value in recommender.history:
                mlflow.log_metric(f"validation_{metric}", value, step=epoch)
            served = {
                exclude: served_ndcg(validation, recommender, inputs, config, exclude)
                for exclude in exclusion_options(config)
            }
            exclude = max(served, key=lambda option: (served[option], not option))  # ties: exclude less
            mlflow.log_metrics(
                {
                    f"best_validation_{metric}": max(value for _, value in recommender.history),
                    **{
                        f"served_validation_{metric}{'_excluding_interacted' if option else ''}": value
                        for option, value in served.items()
                    },
                    "best_epochs": recommender.epochs,
                    "fit_seconds": seconds,
                }
            )
        if best is None or served[exclude] > best[0]:
            best = (served[exclude], Choice(settings, recommender.epochs, exclude))
    mlflow.log_metric(f"served_validation_{metric}", best[0])
    mlflow.log_param("exclude_interacted_chosen", best[1].exclude_interacted)
    return best[1]


@dataclass(frozen=True)
class SearchPlan:
    """Whether this night searches, and why. When it does not, `reuse` is the choice it refits,
    made by the search of `searched_on`."""

    reuse: Choice | None
    searched_on: dt.date | None
    reason: str
    version: str | None = None  # the version whose choice is refit (and whose fits a warm start continues)


def plan_search(ds: dt.date, config: RecommenderConfig) -> SearchPlan:
    """Search, or refit the choice of the last night's version (the newest trained before ds, so a
    rerun of ds decides as its first run did): it must have won the gate, its search must be fewer
    than search_every_days old and made with today's search settings, and monitoring must have
    seen no dataset drift in the recommendations since."""

    def search(reason: str) -> SearchPlan:
        return SearchPlan(None, None, f"search: {reason}")

    client = MlflowClient()
    last = last_version_before(client, MODEL_NAME, ds)
    if last is None:
        return search(f"no version trained before {ds}")
    params = client.get_run(last.run_id).data.params
    if last.tags.get("gate_promoted") != "True":
        return search(f"v{last.version} (ds {last.tags['ds']}) did not win the gate: {last.tags.get('gate_reason')}")
    if "search_ds" not in params:
        return search(f"v{last.version} does not record its search")
    searched_on = dt.date.fromisoformat(params["search_ds"])
    age = (ds - searched_on).days
    if age >= config.search_every_days:
        return search(
            f"the settings were chosen {age} days ago ({searched_on}; search_every_days {config.search_every_days})"
        )
    if params.get("search_fingerprint") != config.search_fingerprint():
        return search("the search settings changed since the last search")
    drift = last_recommendation_drift(ds)
    if drift is not None:
        return search(f"dataset drift in the recommendations on {drift}")
    fields = {key.removeprefix("model_"): value for key, value in params.items() if key.startswith("model_")}
    settings = config.settings_of({**fields, "family": fields.get("family", "lightfm")})
    choice = Choice(settings, int(params["epochs"]), params.get("exclude_interacted_chosen") == "True")
    return SearchPlan(
        choice,
        searched_on,
        f"refit v{last.version}'s choice, searched on {searched_on} ({age} of {config.search_every_days} days)",
        last.version,
    )


def last_recommendation_drift(ds: dt.date) -> dt.date | None:
    """The last night before ds, when monitoring saw dataset drift in the recommendations then."""
    # Not read-only: the pipeline runs every stage in one process, and DuckDB refuses a second
    # connection to the same file with another configuration.
    with open_warehouse() as connection:
        if "drift_summary" not in existing_tables(connection, "monitoring"):
            return None
        row = connection.execute(
            "select ds, dataset_drift from monitoring.drift_summary where model_name = ? and ds < ? "
            "order by ds desc limit 1",
            [MODEL_NAME, ds],
        ).fetchone()
    return row[0] if row and row[1] else None


def warm_start_source(plan: SearchPlan, choice: Choice, test: Holdout, full: View, config: RecommenderConfig):
    """The bundle whose fits tonight continues, or None; and why, in one line."""
    if not config.warm_start.enabled:
        return None, "full refit: recommender.warm_start.enabled is false"
    if plan.reuse is None:
        return None, "full refit: the search chose the settings tonight"
    if choice.settings.family != "lightfm":
        return None, f"full refit: {choice.settings.family} fits in closed form, there is nothing to continue"
    if test.kind != "recent_days":
        return None, (
            "full refit: the last_purchases holdout cannot judge a continued fit (the fit it would continue saw some of"
            " tonight's held-out purchases)"
        )
    try:
        previous = load_bundle(f"models:/{MODEL_NAME}/{plan.version}")
    except Exception as error:  # an unreadable artifact: the scoring plan demotes it if it serves
        return None, f"full refit: v{plan.version}'s artifact cannot be loaded ({type(error).__name__}: {error})"
    ends = {"evaluation": (previous.evaluation, test.start), "scoring": (previous.scoring, full.data.trained_through)}
    for role, (fitted, end) in ends.items():
        if not isinstance(fitted, HybridRecommender) or fitted.settings != choice.settings:
            return None, f"full refit: v{plan.version}'s {role} fit is not a LightFM fit of the chosen settings"
        if fitted.trained_through > end:
            return None, (
                f"full refit: v{plan.version}'s {role} fit saw data up to {fitted.trained_through:%Y-%m-%d %H:%M},"
                f" after tonight's {role} fit ends ({end:%Y-%m-%d %H:%M})"
            )
    gone = previous.scoring.users.ids.difference(full.customer_ids)
    if len(gone):
        # Their interactions shaped every item vector of the old fits: only a fit from scratch forgets them.
        return None, (
            f"full refit: {len(gone)} customers v{plan.version} learned from are gone (erased), and a continued fit"
            " would keep what their data taught it"
        )
    return previous, f"continued v{plan.version}'s fits"


def recent_pairs(interactions: pd.DataFrame, end: dt.datetime, days: int) -> pd.DataFrame:
    """customer_id, item_id of every pair with an interaction in the `days` before `end`."""
    occurred = interactions["occurred_at"]
    window = (occurred >= pd.Timestamp(end - dt.timedelta(days=days))) & (occurred < pd.Timestamp(end))
    return interactions.loc[window, [CUSTOMER_ID, ITEM_ID]].drop_duplicates()


def refit_choice(inputs, test: Holdout, full: View, choice: Choice, plan: SearchPlan, config: RecommenderConfig):
    """The evaluation and scoring fits of the chosen settings, ((fit, seconds), (fit, seconds)):
    continued from the last version's fits on nights between searches (warm start), from scratch
    otherwise or when the continued evaluation fit serves more than max_ndcg_loss below the fit it
    continued on tonight's holdout. Tagged `warm_start` with the reason."""
    previous, reason = warm_start_source(plan, choice, test, full, config)
    if previous is not None:
        warm = config.warm_start
        fits = continued_fits(previous.evaluation, previous.scoring, test, full, inputs, config)
        continued = served_ndcg(test, fits[0][0], inputs, config, choice.exclude_interacted)
        before = served_ndcg(test, previous.evaluation, inputs, config, choice.exclude_interacted)
        metric = config.champion.metric
        mlflow.log_metrics({f"warm_start_{metric}": continued, f"warm_start_previous_{metric}": before})
        verdict = f"served {metric} {continued:.4f} against {before:.4f} for the fit it continued, on tonight's holdout"
        if continued >= before * (1 - warm.max_ndcg_loss):
            reason = f"{reason} ({warm.epochs} epochs on the last {warm.recent_days} days): {verdict}"
            log.info("recommender: %s", reason)
            mlflow.set_tag("warm_start", reason)
            return fits
        reason = f"full refit: the continued fit lost more than max_ndcg_loss {warm.max_ndcg_loss:.0%}: {verdict}"
        log.warning("recommender: %s", reason)
    mlflow.set_tag("warm_start", reason)
    return fits_from_scratch(test, full, choice, config)


def fits_from_scratch(test: Holdout, full: View, choice: Choice, config: RecommenderConfig):
    """The chosen settings fitted from scratch before the holdout and up to ds, side by side:
    neither depends on the other, and together they are most of a night between searches."""
    return side_by_side(
        [
            functools.partial(fit_candidate, view.data, choice.settings, epochs=choice.epochs, config=config)
            for view in (test.view, full)
        ],
        config.parallel_fits,
    )


def continued_fits(evaluation, scoring, test: Holdout, full: View, inputs, config: RecommenderConfig):
    """`evaluation` continued to the holdout's start and `scoring` to the end of ds (warm starts),
    side by side, each on the pairs of its last warm_start.recent_days days."""
    warm = config.warm_start
    return side_by_side(
        [
            functools.partial(
                continue_fit,
                fitted,
                view.data,
                warm.epochs,
                view.data.trained_through - dt.timedelta(days=warm.recent_days),
                recent_pairs(known, view.data.trained_through, warm.recent_days),
                config.num_threads,
            )
            for fitted, view, known in (
                (evaluation, test.view, test.known.interactions),
                (scoring, full, inputs.interactions),
            )
        ],
        config.parallel_fits,
    )


def log_fit(role: str, recommender: Recommender, view: View, seconds: float) -> None:
    warm_started_from = getattr(recommender, "warm_started_from", None)
    with mlflow.start_run(run_name=f"{role} fit", nested=True):
        mlflow.log_params(
            {
                **_settings_params(recommender.settings),
                "role": role,
                "epochs": recommender.epochs,
                "trained_through": recommender.trained_through.isoformat(),
                "warm_started_from": warm_started_from.isoformat() if warm_started_from else "",
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


def train_recommender(ds: dt.date, config: RecommenderConfig) -> dict[str, object]:
    """Train, evaluate, register and gate the recommender for ds; returns a small summary (XCom)."""
    ds_text = ds.isoformat()  # MLflow's tags, params and run names hold the date as text
    inputs = read_inputs(ds, config)
    if inputs.items.empty:
        return skipped(MODEL_NAME, ds_text, "the catalog (staging.stg_items) is empty: nothing to recommend")
    if not inputs.interactions[ITEM_ID].isin(inputs.item_ids).any():
        return skipped(MODEL_NAME, ds_text, "no purchases, cart adds or product views of catalog items up to ds")
    test = make_holdout(inputs, end_of(ds), config)
    if test.is_empty or test.view.data.weights.empty:
        return skipped(
            MODEL_NAME,
            ds_text,
            f"no purchases in the holdout ({test.start:%Y-%m-%d}..{ds_text}) or nothing before it:"
            " the model cannot be evaluated, so no version is registered",
        )
    full = view_as_of(inputs, end_of(ds), config)
    # The search plan and the holdout follow ds: the same rows on another night may train another model.
    fingerprint = training_fingerprint(frame_hash(full.data.weights), config.model_dump_json(), ds_text)
    same = version_trained_as(MODEL_NAME, fingerprint, ds, load_bundle)
    if same is not None:
        return reused_without_run(
            MODEL_NAME,
            ds_text,
            str(same.version),
            "its rows, configuration and code are those of this version: a rerun",
        )
    with training_run(MODEL_NAME, ds_text, full.data.weights) as run:
        mlflow.set_tag(FINGERPRINT, fingerprint)
        _log_inputs(ds_text, config, inputs, test, full)
        plan = plan_search(ds, config)
        choice = _choose(plan, inputs, test, config, ds)
        test = dataclasses.replace(
            test, audience=test.view.audience(test.customer_ids, config.exclude_purchased, choice.exclude_interacted)
        )

        (evaluation_fit, evaluation_seconds), (scoring_fit, scoring_seconds) = refit_choice(
            inputs, test, full, choice, plan, config
        )
        log_fit("evaluation", evaluation_fit, test.view, evaluation_seconds)
        lists = rankings(test, evaluation_fit, inputs, config)
        table = metrics_by_segment(test, lists, config, len(inputs.item_ids))
        headline = log_holdout_metrics(table, config)

        log_fit("scoring", scoring_fit, full, scoring_seconds)
        log_evaluation(table, test, lists, config)
        bundle = make_bundle(config, ds_text, inputs, full, scoring_fit, evaluation_fit, choice.exclude_interacted)
        metric = config.champion.metric
        decision = register_and_gate(
            MODEL_NAME,
            ds_text,
            RecommenderModel(),
            bundle,
            inputs.customers[[CUSTOMER_ID, *config.user_features]].head(3).astype(str),
            ["rectools-lightfm", "mlflow", "pandas", "numpy", "scipy", "pydantic", "pyyaml"],
            headline[f"served_{metric}"],
            ("popularity", headline[f"baseline_{metric}"]),
            champion_evaluator(test, inputs, config, ds),
            config.champion,
            PerCustomer(
                f"NDCG@{config.k}",
                ndcg_per_user(test.truth, lists["served"], config.k),
                ndcg_per_user(test.truth, lists["baseline"], config.k),
            ),
        )
    return trained(run, decision, **headline)


def _log_inputs(ds_text: str, config: RecommenderConfig, inputs: RecommenderInputs, test: Holdout, full: View) -> None:
    """The run's parameters (the settings, the rows read, the holdout) and its training data set."""
    mlflow.log_params(
        {
            "ds": ds_text,
            "k": config.k,
            "holdout_days": config.holdout_days,
            "holdout": test.kind,
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
        mlflow.data.from_pandas(full.data.weights, name=f"interactions_through_{ds_text}"), context="training"
    )


def _choose(plan: SearchPlan, inputs: RecommenderInputs, test: Holdout, config: RecommenderConfig, ds: dt.date):
    """Tonight's settings: searched (the weekly search) or the last search's choice, logged either way."""
    log.info("recommender ds=%s: %s", ds, plan.reason)
    mlflow.set_tag("search_plan", plan.reason)
    if plan.reuse is None:
        choice, searched_on = search(inputs, test, config), ds
    else:
        choice, searched_on = plan.reuse, plan.searched_on
        mlflow.log_param("exclude_interacted_chosen", choice.exclude_interacted)
    mlflow.log_params({"search_ds": searched_on.isoformat(), "search_fingerprint": config.search_fingerprint()})
    mlflow.log_params({f"model_{key}": value for key, value in _settings_params(choice.settings).items()})
    mlflow.log_param("epochs", choice.epochs)
    return choice


def log_evaluation(table: pd.DataFrame, test: Holdout, lists: dict[str, np.ndarray], config: RecommenderConfig) -> None:
    """The holdout's metrics by segment (CSV and a table the MLflow UI shows) and precision@k (plot, CSV)."""
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        table.to_csv(scratch / "metrics_by_segment.csv", index=False)
        precision_by_k_plot(test, lists, config.k, scratch / "precision_at_k.png").to_csv(
            scratch / "precision_at_k.csv"
        )
        mlflow.log_artifacts(str(scratch), artifact_path="evaluation")
        mlflow.log_table(table, artifact_file="evaluation/metrics_by_segment.json")  # browsable in the UI


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


def make_bundle(config, ds, inputs, full: View, scoring_fit, evaluation_fit, exclude_interacted: bool):
    known = scoring_fit.users.ids
    rows = full.customer_ids.get_indexer(known)
    return RecommenderBundle(
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
        exclude_interacted=exclude_interacted,
    )


def champion_evaluator(test: Holdout, inputs: RecommenderInputs, config: RecommenderConfig, ds: dt.date):
    """What the champion's evaluation fit serves on this run's holdout, when it has not seen it."""

    def evaluate(champion) -> ChampionCheck:
        try:
            bundle = load_bundle(f"models:/{MODEL_NAME}/{champion.version}")
        except Exception as error:  # truncated, deleted or incompatible: the gate demotes it
            return ChampionCheck(None, f"{type(error).__name__}: {error}", unreadable=True)
        if bundle.evaluation.trained_through > test.start:
            return ChampionCheck(
                None,
                f"its evaluation fit saw data up to {bundle.evaluation.trained_through:%Y-%m-%d}, inside this "
                f"holdout (from {test.start:%Y-%m-%d})",
                trained_later=dt.date.fromisoformat(bundle.ds) > ds,
            )
        exclude_interacted = getattr(bundle, "exclude_interacted", False)
        value, per_customer = served_evaluation(test, bundle.evaluation, inputs, config, exclude_interacted)
        return ChampionCheck(value, per_customer=per_customer)

    return evaluate


def load_bundle(model_uri: str) -> RecommenderBundle:
    return mlflow.pyfunc.load_model(model_uri).unwrap_python_model().bundle
