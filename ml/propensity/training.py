"""Train, validate out of time, register and gate the `propensity` model for one ds.

Validation is the most recent complete cutoff (its horizon ended by ds). The evaluation fit learns
from the cutoffs whose label windows ended by that cutoff, so nothing it sees overlaps the validation
labels (ml.propensity.dataset.CutoffPlan); the RFM heuristic is scored on the same rows in the same
run. The scoring fit then learns from the training window's complete cutoffs. Both fits, and the
calibrated RFM fallback that serves when no version beats the heuristic, go into one pyfunc,
registered as `propensity` through the path shared with the recommender (ml.mlops.lifecycle).
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import mlflow
import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss, precision_recall_curve, roc_curve

from ml.constants import SEED
from ml.dates import end_of
from ml.mlops.lifecycle import (
    FINGERPRINT,
    register_and_gate,
    reused,
    skipped,
    trained,
    training_fingerprint,
    training_run,
    version_trained_as,
)
from ml.mlops.registry import ChampionCheck, PerCustomer
from ml.mlops.tracking import BundledModel, frame_hash
from ml.propensity.dataset import LABEL, training_set
from ml.propensity.model import (
    RFM_FALLBACK,
    PropensityModel,
    RfmFallback,
    classification_metrics,
    deciles,
    fit,
    log_loss_per_row,
    permutation_auc_drops,
    rfm_heuristic,
)
from ml.propensity.settings import PropensityConfig

matplotlib.use("Agg")
import matplotlib.pyplot as plt

log = logging.getLogger(__name__)

MODEL_NAME = "propensity"
IMPORTANCE_SAMPLE = 3_000  # validation rows used for permutation importances (time, not accuracy)


@dataclass
class PropensityBundle:
    scoring: PropensityModel  # the training window's cutoffs: the model that scores
    evaluation: PropensityModel  # cutoffs before the validation cutoff: how the gate re-evaluates it
    ds: str
    horizon_days: int
    fallback: RfmFallback | None = None  # what scores when no version beats the RFM heuristic


class PropensityPyfunc(BundledModel):
    """Input: the customer_features columns (customer_id optional); output: probability of a
    completed order within horizon_days."""

    bundle: PropensityBundle

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return pd.DataFrame({"probability": self.bundle.scoring.predict(model_input)})


def load_bundle(model_uri: str) -> PropensityBundle:
    return mlflow.pyfunc.load_model(model_uri).unwrap_python_model().bundle


def train_propensity(ds: dt.date, config: PropensityConfig) -> dict[str, object]:
    """Train, validate, register and gate the propensity model for ds; a small summary (XCom)."""
    ds_text = ds.isoformat()  # MLflow's tags, params and run names hold the date as text
    data = training_set(ds, config)
    plan = data.plan
    problem = plan.problem(config)
    if problem:
        return skipped(MODEL_NAME, ds_text, problem)
    validation, learn = data.at([plan.validation]), data.at(plan.evaluation)
    problem = one_class_problem(validation, learn, plan, config)
    if problem:
        return skipped(MODEL_NAME, ds_text, problem)
    scoring_rows = data.at(plan.scoring)
    fingerprint = training_fingerprint(frame_hash(data.rows), config.model_dump_json())
    same = version_trained_as(MODEL_NAME, fingerprint, ds, load_bundle)
    if same is not None:  # recorded on the version: no run without a model
        return reused(
            MODEL_NAME,
            ds_text,
            same.version,
            f"its training rows, configuration and code are those of v{same.version} (ds {same.tags['ds']}), so"
            f" a retrain would learn the same model; the rows change when a cutoff's {config.horizon_days}-day"
            " labels complete or the window drops its oldest cutoff",
        )
    with training_run(MODEL_NAME, ds_text, data.rows) as run:
        mlflow.set_tag(FINGERPRINT, fingerprint)
        _log_inputs(ds_text, config, data, learn, validation)

        evaluation_fit = fit(learn, config, end_of(plan.validation))
        labels = validation[LABEL].to_numpy()
        probabilities = evaluation_fit.predict(validation)
        heuristic = rfm_heuristic(validation)
        fallback_on_validation = RfmFallback.fit(learn).predict(validation)
        metrics, baseline, logged = validation_metrics(labels, probabilities, heuristic, fallback_on_validation)
        mlflow.log_metrics(logged)
        log_fit("evaluation", evaluation_fit, learn)

        scoring_fit = fit(scoring_rows, config, end_of(ds))
        log_fit("scoring", scoring_fit, scoring_rows)
        with tempfile.TemporaryDirectory() as scratch:
            scratch = Path(scratch)
            write_evaluation_artifacts(scratch, validation, labels, probabilities, heuristic, evaluation_fit)
            mlflow.log_artifacts(str(scratch), artifact_path="evaluation")
            bundle = PropensityBundle(
                scoring_fit, evaluation_fit, ds_text, config.horizon_days, RfmFallback.fit(scoring_rows)
            )
            example = validation[scoring_fit.categorical + scoring_fit.numeric].head(3).copy()
            example[scoring_fit.numeric] = example[scoring_fit.numeric].astype(float)
            metric = config.champion.metric
            decision = register_and_gate(
                MODEL_NAME,
                ds_text,
                PropensityPyfunc(),
                bundle,
                example,
                ["scikit-learn", "mlflow", "pandas", "numpy", "pydantic", "pyyaml", "feast"],
                metrics[metric],
                (RFM_FALLBACK, logged[f"baseline_{metric}"]),
                champion_evaluator(validation, plan.validation, config, ds),
                config.champion,
                PerCustomer(
                    "minus log loss",
                    -log_loss_per_row(labels, probabilities),
                    -log_loss_per_row(labels, fallback_on_validation),
                ),
            )
    return trained(
        run,
        decision,
        roc_auc=metrics["roc_auc"],
        baseline_roc_auc=baseline["roc_auc"],
        brier=metrics["brier"],
        brier_base_rate=metrics["brier_base_rate"],
    )


def one_class_problem(validation: pd.DataFrame, learn: pd.DataFrame, plan, config: PropensityConfig) -> str | None:
    """Why the validation or training rows cannot train a classifier (one class only), or None."""
    for name, rows, cutoffs in (("validation", validation, [plan.validation]), ("training", learn, plan.evaluation)):
        if rows.empty or rows[LABEL].nunique() < 2:
            return (
                f"the {name} rows (cutoffs {', '.join(map(str, cutoffs))}: {len(rows)} rows,"
                f" {int(rows[LABEL].sum()) if len(rows) else 0} buyers) need both buyers and non-buyers within"
                f" {config.horizon_days} days: land more history or raise propensity.training_window_days"
            )
    return None


def _log_inputs(ds_text: str, config: PropensityConfig, data, learn: pd.DataFrame, validation: pd.DataFrame) -> None:
    """The run's parameters (settings, cutoffs, rows) and its training data set."""
    plan = data.plan
    mlflow.log_params(
        {
            "ds": ds_text,
            "horizon_days": config.horizon_days,
            "training_window_days": config.training_window_days,
            "cutoff_every_days": config.cutoff_every_days,
            "calibration": config.calibration,
            **{f"model_{key}": value for key, value in config.model.model_dump().items()},
            "cutoffs": len(plan.all),
            "first_cutoff": str(plan.all[0]),
            "validation_cutoff": str(plan.validation),
            "evaluation_cutoffs": len(plan.evaluation),
            "scoring_cutoffs": len(plan.scoring),
            "training_rows": len(learn),
            "validation_rows": len(validation),
            "all_rows": len(data.rows),
            "training_customers": data.customers,
            "customers_available": data.customers_available,
            "training_max_customers": config.training_max_customers,
            "training_max_rows": config.training_max_rows,
        }
    )
    mlflow.log_input(
        mlflow.data.from_pandas(data.rows, name=f"propensity_rows_through_{ds_text}", targets=LABEL),
        context="training",
    )


def validation_metrics(
    labels: np.ndarray, probabilities: np.ndarray, heuristic: np.ndarray, fallback: np.ndarray
) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """The model's metrics on the validation cutoff, the RFM heuristic's, and both as logged (with the
    calibrated fallback's Brier score and the ROC AUC gain over the heuristic)."""
    metrics = classification_metrics(labels, probabilities)
    baseline = classification_metrics(labels, heuristic, probabilities=False)
    logged = {
        **metrics,
        **{f"baseline_{name}": value for name, value in baseline.items()},
        "baseline_brier": float(brier_score_loss(labels, fallback)),
    }
    logged["roc_auc_gain_over_baseline"] = metrics["roc_auc"] - baseline["roc_auc"]
    return metrics, baseline, logged


def log_fit(role: str, model: PropensityModel, rows: pd.DataFrame) -> None:
    with mlflow.start_run(run_name=f"{role} fit", nested=True):
        mlflow.log_params(
            {
                "role": role,
                "rows": len(rows),
                "trained_through": model.trained_through.isoformat(),
                "features": len(model.categorical) + len(model.numeric),
            }
        )
        mlflow.log_metric("positive_rate", float(rows[LABEL].mean()))
        mlflow.set_tag("training_data_sha256", frame_hash(rows))


def write_evaluation_artifacts(scratch: Path, validation, labels, probabilities, heuristic, model) -> None:
    """Calibration curve, ROC and precision-recall curves, deciles and permutation importances."""
    figure, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    observed, predicted = calibration_curve(labels, probabilities, n_bins=10, strategy="quantile")
    axes[0].plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    axes[0].plot(predicted, observed, marker="o", label="model")
    axes[0].set(xlabel="predicted probability", ylabel="observed share who bought", title="Calibration (deciles)")
    for name, scores in (("model", probabilities), ("RFM heuristic", heuristic)):
        false_positive, true_positive, _ = roc_curve(labels, scores)
        axes[1].plot(false_positive, true_positive, label=name)
        precision, recall, _ = precision_recall_curve(labels, scores)
        axes[2].plot(recall, precision, label=name)
    axes[1].plot([0, 1], [0, 1], linestyle="--", color="grey")
    axes[1].set(xlabel="false positive rate", ylabel="true positive rate", title="ROC, validation cutoff")
    axes[2].axhline(labels.mean(), linestyle="--", color="grey", label="base rate")
    axes[2].set(xlabel="recall", ylabel="precision", title="Precision-recall")
    for axis in axes:
        axis.legend()
        axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(scratch / "calibration_roc_pr.png", dpi=100)
    plt.close(figure)

    by_decile = pd.DataFrame({"decile": deciles(probabilities), "label": labels, "probability": probabilities})
    table = by_decile.groupby("decile").agg(
        customers=("label", "size"),
        buyers=("label", "sum"),
        observed_rate=("label", "mean"),
        mean_probability=("probability", "mean"),
    )
    table.to_csv(scratch / "deciles.csv")

    sample = validation.sample(min(IMPORTANCE_SAMPLE, len(validation)), random_state=SEED)
    ranked = permutation_auc_drops(model, sample, sample[LABEL].to_numpy(), repeats=3, seed=SEED)
    ranked = ranked.sort_values("auc_drop_mean", ascending=False)
    ranked.to_csv(scratch / "permutation_importance.csv", index=False)
    top = ranked.head(15).iloc[::-1]
    figure, axis = plt.subplots(figsize=(7, 5))
    axis.barh(top["feature"], top["auc_drop_mean"], xerr=top["auc_drop_std"])
    axis.set(xlabel="drop in validation AUC when shuffled", title="Permutation importance (top 15)")
    figure.tight_layout()
    figure.savefig(scratch / "permutation_importance.png", dpi=100)
    plt.close(figure)


def champion_evaluator(validation: pd.DataFrame, validation_cutoff: dt.date, config: PropensityConfig, ds: dt.date):
    """Re-evaluate the champion's evaluation fit on these validation rows, when it has not seen them."""

    def evaluate(champion) -> ChampionCheck:
        try:
            bundle = load_bundle(f"models:/{MODEL_NAME}/{champion.version}")
        except Exception as error:  # truncated, deleted or incompatible: the gate demotes it
            return ChampionCheck(None, f"{type(error).__name__}: {error}", unreadable=True)
        if bundle.evaluation.trained_through > end_of(validation_cutoff):
            return ChampionCheck(
                None,
                f"its evaluation fit learnt labels up to {bundle.evaluation.trained_through:%Y-%m-%d}, "
                f"after this validation cutoff {validation_cutoff}",
                trained_later=dt.date.fromisoformat(bundle.ds) > ds,
            )
        labels = validation[LABEL].to_numpy()
        probabilities = bundle.evaluation.predict(validation)
        return ChampionCheck(
            classification_metrics(labels, probabilities)[config.champion.metric],
            per_customer=-log_loss_per_row(labels, probabilities),
        )

    return evaluate
