"""Train, validate out of time, register and gate the `propensity` model for one ds.

Validation is the most recent complete cutoff (its horizon ended by ds). The evaluation fit learns
from the cutoffs whose label windows ended by that cutoff, so nothing it sees overlaps the validation
labels; the RFM heuristic is scored on the same rows in the same run. The scoring fit then learns
from every complete cutoff. Both fits go into one pyfunc, registered as `propensity` and passed
through the champion/challenger gate shared with the recommender (ml.registry).
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import mlflow
import pandas as pd
from mlflow import MlflowClient
from sklearn.calibration import calibration_curve
from sklearn.inspection import permutation_importance
from sklearn.metrics import precision_recall_curve, roc_curve
from threadpoolctl import threadpool_limits

from ml.config import PropensityConfig, load_config
from ml.constants import SEED
from ml.interactions import end_of
from ml.propensity.dataset import LABEL, training_set
from ml.propensity.model import (
    OPENMP_THREADS,
    PropensityModel,
    classification_metrics,
    deciles,
    fit,
    rfm_heuristic,
)
from ml.registry import gate
from ml.tracking import BundledModel, frame_hash, git_commit, log_and_register, use_experiment

matplotlib.use("Agg")
import matplotlib.pyplot as plt

log = logging.getLogger(__name__)

MODEL_NAME = "propensity"
IMPORTANCE_SAMPLE = 3_000  # validation rows used for permutation importances (time, not accuracy)


@dataclass
class PropensityBundle:
    scoring: PropensityModel  # every complete cutoff: the model that scores
    evaluation: PropensityModel  # cutoffs before the validation cutoff: how the gate re-evaluates it
    ds: str
    horizon_days: int


class PropensityPyfunc(BundledModel):
    """Input: the customer_features columns (customer_id optional); output: probability of a
    completed order within horizon_days."""

    bundle: PropensityBundle

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return pd.DataFrame({"probability": self.bundle.scoring.predict(model_input)})


def load_bundle(model_uri: str) -> PropensityBundle:
    return mlflow.pyfunc.load_model(model_uri).unwrap_python_model().bundle


def skipped(ds: str, reason: str) -> dict[str, object]:
    log.warning("propensity ds=%s skipped: %s", ds, reason)
    return {"status": "skipped", "reason": reason}


def train_propensity(ds: str) -> dict[str, object]:
    """Train, validate, register and gate the propensity model for ds; a small summary (XCom)."""
    ds_date = dt.date.fromisoformat(ds)
    config = load_config().propensity
    data = training_set(ds_date, config)
    if len(data.cutoffs) < 2:
        return skipped(
            ds,
            f"{len(data.cutoffs)} complete cutoff(s) in the history: at least 2 are needed "
            "(one to learn from, one to validate on)",
        )
    validation_cutoff = data.cutoffs[-1]
    learn_cutoffs = [c for c in data.cutoffs if c + dt.timedelta(days=config.horizon_days) <= validation_cutoff]
    validation, learn = data.at([validation_cutoff]), data.at(learn_cutoffs)
    for name, rows in (("validation", validation), ("training", learn)):
        if rows.empty or rows[LABEL].nunique() < 2:
            return skipped(ds, f"the {name} rows need both buyers and non-buyers (cutoffs {data.cutoffs})")
    experiment_id = use_experiment(MODEL_NAME)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"propensity ds={ds}") as run:
        mlflow.set_tags({"ds": ds, "git_commit": git_commit(), "training_data_sha256": frame_hash(data.rows)})
        mlflow.log_params(
            {
                "ds": ds,
                "horizon_days": config.horizon_days,
                "training_window_days": config.training_window_days,
                "cutoff_every_days": config.cutoff_every_days,
                "calibration": config.calibration,
                **{f"model_{key}": value for key, value in config.model.model_dump().items()},
                "cutoffs": len(data.cutoffs),
                "first_cutoff": str(data.cutoffs[0]),
                "validation_cutoff": str(validation_cutoff),
                "training_rows": len(learn),
                "validation_rows": len(validation),
                "all_rows": len(data.rows),
                "training_customers": data.customers,
                "customers_available": data.customers_available,
                "training_max_customers": config.training_max_customers,
            }
        )
        mlflow.log_input(
            mlflow.data.from_pandas(data.rows, name=f"propensity_rows_through_{ds}", targets=LABEL), context="training"
        )

        evaluation_fit = fit(learn, config, end_of(validation_cutoff))
        labels = validation[LABEL].to_numpy()
        probabilities = evaluation_fit.predict(validation)
        heuristic = rfm_heuristic(validation)
        metrics = classification_metrics(labels, probabilities)
        baseline = classification_metrics(labels, heuristic, probabilities=False)
        logged = {**metrics, **{f"baseline_{name}": value for name, value in baseline.items()}}
        logged["roc_auc_gain_over_baseline"] = metrics["roc_auc"] - baseline["roc_auc"]
        mlflow.log_metrics(logged)
        log_fit("evaluation", evaluation_fit, learn)

        scoring_fit = fit(data.rows, config, end_of(ds_date))
        log_fit("scoring", scoring_fit, data.rows)
        with tempfile.TemporaryDirectory() as scratch:
            scratch = Path(scratch)
            write_evaluation_artifacts(scratch, validation, labels, probabilities, heuristic, evaluation_fit)
            mlflow.log_artifacts(str(scratch), artifact_path="evaluation")
            version = log_model(PropensityBundle(scoring_fit, evaluation_fit, ds, config.horizon_days), validation)
        decision = gate(
            MlflowClient(),
            MODEL_NAME,
            version,
            metrics[config.champion.metric],
            champion_evaluator(validation, validation_cutoff, config),
            config.champion,
        )
    return {
        "status": "trained",
        "run_id": run.info.run_id,
        "version": str(version.version),
        "promoted": decision.promoted,
        "reason": decision.reason,
        "roc_auc": metrics["roc_auc"],
        "baseline_roc_auc": baseline["roc_auc"],
        "brier": metrics["brier"],
        "brier_base_rate": metrics["brier_base_rate"],
    }


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
    columns = model.categorical + model.numeric
    frame = sample[columns].copy()
    frame[model.numeric] = frame[model.numeric].astype(float)
    with threadpool_limits(OPENMP_THREADS, user_api="openmp"):
        importances = permutation_importance(
            model.classifier, frame, sample[LABEL].to_numpy(), scoring="roc_auc", n_repeats=3, random_state=SEED
        )
    ranked = pd.DataFrame(
        {"feature": columns, "auc_drop_mean": importances.importances_mean, "auc_drop_std": importances.importances_std}
    ).sort_values("auc_drop_mean", ascending=False)
    ranked.to_csv(scratch / "permutation_importance.csv", index=False)
    top = ranked.head(15).iloc[::-1]
    figure, axis = plt.subplots(figsize=(7, 5))
    axis.barh(top["feature"], top["auc_drop_mean"], xerr=top["auc_drop_std"])
    axis.set(xlabel="drop in validation AUC when shuffled", title="Permutation importance (top 15)")
    figure.tight_layout()
    figure.savefig(scratch / "permutation_importance.png", dpi=100)
    plt.close(figure)


def log_model(bundle: PropensityBundle, validation: pd.DataFrame):
    example = validation[bundle.scoring.categorical + bundle.scoring.numeric].head(3).copy()
    example[bundle.scoring.numeric] = example[bundle.scoring.numeric].astype(float)
    return log_and_register(
        MODEL_NAME,
        PropensityPyfunc(),
        bundle,
        example,
        bundle.ds,
        ["scikit-learn", "mlflow", "pandas", "numpy", "pydantic", "pyyaml", "feast"],
    )


def champion_evaluator(validation: pd.DataFrame, validation_cutoff: dt.date, config: PropensityConfig):
    """Re-evaluate the champion's evaluation fit on these validation rows, when it has not seen them."""

    def evaluate(champion) -> tuple[float | None, str]:
        bundle = load_bundle(f"models:/{MODEL_NAME}/{champion.version}")
        if bundle.evaluation.trained_through > end_of(validation_cutoff):
            return None, (
                f"its evaluation fit learnt labels up to {bundle.evaluation.trained_through:%Y-%m-%d}, "
                f"after this validation cutoff {validation_cutoff}"
            )
        labels = validation[LABEL].to_numpy()
        return classification_metrics(labels, bundle.evaluation.predict(validation))[config.champion.metric], ""

    return evaluate
