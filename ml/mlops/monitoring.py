"""Drift monitoring with Evidently: the model features, the predictions and the recommendations of
ds against a fixed reference that is never ds itself.

The reference of a model is the `monitoring.reference_days` days (default 7) ending on the day its
version in use was trained for, or on the day before ds when that version was trained tonight: what
the version learnt from, and what was served then. Comparing tonight with the version's own training
day made the check compare tonight with tonight on every night it retrained (0% drift, always). A
window rather than one day smooths weekday effects; the reference rows are a seeded sample of the
current night's size, so a longer window does not make the check slower or more sensitive. On a first
night there is nothing before it: the predictions and recommendations are not checked (logged).

Three checks per ds, each an Evidently `DataDriftPreset` with the method and thresholds from
config (`monitoring`), saved as HTML and JSON under `$PZ_REPORTS_DIR/drift/ds=<ds>/`:

  propensity / features         marts.customer_features_daily at ds against the reference window's
  propensity / predictions      marts.customer_scores at ds against the reference window's
  recommender / recommendations category and item mix of marts.customer_recommendations at ds
                                against the reference window's, plus catalog coverage

`reference_ds` in the tables is the last day of the reference window.

Per-column results go to monitoring.drift_columns, one row per check to monitoring.drift_summary,
and the same summary with the policy's action to channels.model_health, beside the audiences.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import logging
from dataclasses import dataclass

import pandas as pd

from ml.errors import PlatformError
from ml.mlops.registry import version_for
from ml.mlops.settings import DriftCheckConfig, MonitoringConfig
from ml.paths import mlflow_tracking_uri, reports_dir
from ml.warehouse.declared import ddl
from ml.warehouse.engine import open_warehouse
from ml.warehouse.partitions import replace_partition

log = logging.getLogger(__name__)

COLUMNS_TABLE = "monitoring.drift_columns"
SUMMARY_TABLE = "monitoring.drift_summary"
HEALTH_TABLE = "channels.model_health"
COVERAGE = "catalog_coverage"

# The tables' columns are declared in dbt_project/models/outputs/_python_outputs.yml.
COLUMNS_DDL = ddl(COLUMNS_TABLE)
SUMMARY_DDL = ddl(SUMMARY_TABLE)
HEALTH_DDL = ddl(HEALTH_TABLE)


class ExportsBlockedError(PlatformError, RuntimeError):
    """Dataset drift under `on_dataset_drift: block_exports`: today's exports are not published."""


@dataclass(frozen=True)
class DriftInput:
    model_name: str
    check_name: str
    model_version: str | None
    reference_ds: dt.date | None
    current: pd.DataFrame
    reference: pd.DataFrame
    numerical: list[str]
    categorical: list[str]


def drift_columns(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numerical: list[str],
    categorical: list[str],
    check: DriftCheckConfig,
):
    """Evidently's drift test per column: (per-column frame, snapshot). `drifted` is Evidently's test
    verdict, so p-value methods (drift below the threshold) and distances (above) both read right."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    # Evidently refuses a column without values. Empty on both sides: nothing to compare (left out).
    # Empty on one side only: the feature appeared or vanished, which is drift by any measure.
    empty_reference = {c for c in numerical + categorical if reference[c].isna().all()}
    empty_current = {c for c in numerical + categorical if current[c].isna().all()}
    vanished = sorted(empty_reference ^ empty_current)
    numerical = [c for c in numerical if c not in empty_reference | empty_current]
    categorical = [c for c in categorical if c not in empty_reference | empty_current]
    presence = pd.DataFrame(
        {"column_name": vanished, "method": "presence", "threshold": 0.0, "drift_score": 1.0, "drifted": True}
    )
    if not numerical + categorical:
        return presence, None
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    current, reference = html_safe(current, categorical), html_safe(reference, categorical)
    report = Report(
        [
            DataDriftPreset(
                num_method=check.method,
                num_threshold=check.threshold,
                cat_method=check.categorical_method,
                cat_threshold=check.categorical_threshold,
                drift_share=check.drift_share,
            )
        ],
        include_tests=True,
    )
    snapshot = report.run(
        current_data=Dataset.from_pandas(current[numerical + categorical], data_definition=definition),
        reference_data=Dataset.from_pandas(reference[numerical + categorical], data_definition=definition),
    )
    result = snapshot.dict()
    scores = {
        metric["config"]["column"]: float(metric["value"])
        for metric in result["metrics"]
        if metric["config"].get("type", "").endswith("ValueDrift")
    }
    failed = {
        test["metric_config"]["params"]["column"]
        for test in result["tests"]
        if test["metric_config"]["params"].get("type", "").endswith("ValueDrift")
        and str(test["status"]).endswith("FAIL")
    }
    frame = pd.DataFrame(
        {
            "column_name": list(scores),
            "method": [check.method if column in numerical else check.categorical_method for column in scores],
            "threshold": [check.threshold if column in numerical else check.categorical_threshold for column in scores],
            "drift_score": list(scores.values()),
            "drifted": [column in failed for column in scores],
        }
    )
    if vanished:
        frame = pd.concat([frame, presence], ignore_index=True)
    return frame, snapshot


def html_safe(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """`columns` with every text value HTML-escaped. Evidently writes category values into its HTML
    unescaped, so a landed value such as `</script><img src=x onerror=...>` ran in the browser of
    whoever opened the drift report. Escaping is one-to-one, so categories stay distinct and the
    drift statistics do not change."""
    safe = frame.copy()
    for column in columns:
        safe[column] = safe[column].map(lambda value: html.escape(value) if isinstance(value, str) else value)
    return safe


def _reference(client, model_name: str, ds: dt.date) -> tuple[str | None, dt.date | None]:
    """(version in use, last day of its reference window): its training day, never ds or later."""
    version, _ = version_for(client, model_name, ds)
    if version is None:
        return None, None
    return str(version.version), reference_end(dt.date.fromisoformat(version.tags["ds"]), ds)


def reference_end(trained_for: dt.date, ds: dt.date) -> dt.date:
    """The reference window ends on the version's training day, or the day before ds when the version
    was trained for ds itself (or later, in a backfill): the reference is never tonight."""
    return min(trained_for, ds - dt.timedelta(days=1))


def sampled(reference: pd.DataFrame, size: int, seed: int = 0) -> pd.DataFrame:
    """A seeded sample of the reference window's rows, as many as tonight's: the check's cost and
    power do not grow with the window."""
    if len(reference) <= max(size, 1):
        return reference
    return reference.sample(n=max(size, 1), random_state=seed).reset_index(drop=True)


HASH_DIGITS = 6  # hex digits of md5(customer_id) the sample compares: 16.7M buckets


def customer_sample(connection, table: str, date_column: str, start: dt.date, end: dt.date, size: int) -> str:
    """An SQL predicate keeping about `size` of the table's rows between start and end: the customers
    whose md5(customer_id) falls under a threshold. Seeded by the id alone, so tonight and the
    reference keep the same customers, every run and both engines (md5 is the same everywhere), and
    each day of a window keeps its share (the days are strata of equal weight)."""
    (rows,) = connection.execute(
        f"select count(*) from {table} where {date_column} between ? and ?", [start, end]
    ).fetchone()
    if rows <= size:
        return "true"
    threshold = int(size / rows * 16**HASH_DIGITS)
    return f"substr(md5(customer_id), 1, {HASH_DIGITS}) < '{threshold:0{HASH_DIGITS}x}'"


def _inputs(ds: dt.date, reference_days: int, sample_size: int) -> list[DriftInput]:
    import mlflow  # here: the pipeline CLI and the publish task import this module
    from mlflow import MlflowClient

    from ml.mlops.feature_store import categorical_features, feature_references

    mlflow.set_tracking_uri(mlflow_tracking_uri())
    client = MlflowClient()
    inputs = []
    features = [reference.split(":")[1] for reference in feature_references()]
    categorical = [name for name in categorical_features() if name in features]
    numerical = [name for name in features if name not in categorical]
    with open_warehouse() as connection:
        version, reference_ds = _reference(client, "propensity", ds)
        if version is not None:
            first = reference_ds - dt.timedelta(days=reference_days - 1)

            def snapshot(start: dt.date, end: dt.date) -> pd.DataFrame:
                # Ordered: the reference is sampled, and the same rows in the same order give the same
                # sample on every run and on both engines.
                table = "marts.customer_features_daily"
                kept = customer_sample(connection, table, "feature_date", start, end, sample_size)
                return connection.execute(
                    f"select {', '.join(features)} from {table} "
                    f"where feature_date between ? and ? and {kept} order by feature_date, customer_id",
                    [start, end],
                ).df()

            def scores(start: dt.date, end: dt.date) -> pd.DataFrame:
                kept = customer_sample(connection, "marts.customer_scores", "ds", start, end, sample_size)
                return connection.execute(
                    f"select score from marts.customer_scores where ds between ? and ? and {kept} "
                    "order by ds, customer_id",
                    [start, end],
                ).df()

            current_features, current_scores = snapshot(ds, ds), scores(ds, ds)

            inputs.append(
                DriftInput(
                    "propensity",
                    "features",
                    version,
                    reference_ds,
                    current_features,
                    sampled(snapshot(first, reference_ds), len(current_features)),
                    numerical,
                    categorical,
                )
            )
            reference_scores = sampled(scores(first, reference_ds), len(current_scores))
            inputs.append(
                DriftInput(
                    "propensity", "predictions", version, reference_ds, current_scores, reference_scores, ["score"], []
                )
            )
        recommendations = _recommendations_input(connection, client, ds, reference_days, sample_size)
    return inputs + ([recommendations] if recommendations else [])


def _recommendations_input(connection, client, ds: dt.date, reference_days: int, sample_size: int):
    """The recommender's check: the category and item mix of tonight's recommendations against the
    reference window's (None before its first version)."""
    version, reference_ds = _reference(client, "recommender", ds)
    if version is None:
        return None

    def recommended(start: dt.date, end: dt.date) -> pd.DataFrame:
        kept = customer_sample(connection, "marts.customer_recommendations", "ds", start, end, sample_size)
        return connection.execute(
            "select r.item_id, coalesce(i.category, 'unknown') as category "
            "from marts.customer_recommendations as r left join staging.stg_items as i using (item_id) "
            f"where r.ds between ? and ? and {kept.replace('customer_id', 'r.customer_id')} "
            "order by r.ds, r.customer_id, r.rank",
            [start, end],
        ).df()

    current_items = recommended(ds, ds)
    first = reference_ds - dt.timedelta(days=reference_days - 1)
    return DriftInput(
        "recommender",
        "recommendations",
        version,
        reference_ds,
        current_items,
        sampled(recommended(first, reference_ds), len(current_items)),
        [],
        ["category", "item_id"],
    )


def catalog_coverage(recommendations: pd.DataFrame, catalog_size: int) -> float:
    """Share of the active catalog that appears in anyone's recommendations."""
    return recommendations["item_id"].nunique() / catalog_size if catalog_size else 0.0


def report_folder(ds: dt.date):
    return reports_dir() / "drift" / f"ds={ds}"


def monitor_drift(ds: dt.date, monitoring: MonitoringConfig) -> dict[str, object]:
    """Run the three drift checks for ds; replace the ds partitions of the monitoring tables and
    channels.model_health; write the reports. Returns the checks that found dataset drift."""
    checks = {
        "features": monitoring.features,
        "predictions": monitoring.predictions,
        "recommendations": monitoring.recommendations,
    }
    folder = report_folder(ds)
    folder.mkdir(parents=True, exist_ok=True)
    with open_warehouse() as connection:
        catalog = connection.execute("select count(*) from staging.stg_items where is_active").fetchone()[0]
    column_rows, summary_rows = [], []
    for found in _inputs(ds, monitoring.reference_days, monitoring.sample_size):
        if found.current.empty or found.reference.empty:
            log.warning(
                "ds=%s %s %s: no rows for ds or for the reference %s; not checked",
                ds,
                found.model_name,
                found.check_name,
                found.reference_ds,
            )
            continue
        settings = checks[found.check_name]
        columns, snapshot = drift_columns(found.reference, found.current, found.numerical, found.categorical, settings)
        if found.check_name == "recommendations":
            columns = with_coverage(columns, found, catalog, monitoring.coverage_change_threshold)
        report_path = _save_report(snapshot, folder, f"{found.model_name}_{found.check_name}")
        column_rows.append(
            columns.assign(
                ds=ds, model_name=found.model_name, check_name=found.check_name, reference_ds=found.reference_ds
            )
        )
        summary_rows.append(_summary_row(ds, found, columns, settings, report_path))
    summary = pd.DataFrame(summary_rows)
    _write_checks(ds, column_rows, summary, monitoring)
    log_drift_history(ds, summary)
    drifted = summary[summary["dataset_drift"]] if not summary.empty else summary
    for row in drifted.itertuples():
        log.warning(
            "ds=%s dataset drift in %s %s: %.0f%% of columns drifted (report %s); policy %s",
            ds,
            row.model_name,
            row.check_name,
            100 * row.share_drifted_columns,
            row.report_path,
            monitoring.on_dataset_drift,
        )
    return {"checks": len(summary), "drifted": [f"{r.model_name}/{r.check_name}" for r in drifted.itertuples()]}


def with_coverage(columns: pd.DataFrame, found: DriftInput, catalog_size: int, threshold: float) -> pd.DataFrame:
    """The recommendation check's columns and one more: the relative change of catalog coverage."""
    today, before = catalog_coverage(found.current, catalog_size), catalog_coverage(found.reference, catalog_size)
    change = abs(today - before) / before if before else 0.0
    coverage = {
        "column_name": COVERAGE,
        "method": "relative_change",
        "threshold": threshold,
        "drift_score": change,
        "drifted": change > threshold,
    }
    return pd.concat([columns, pd.DataFrame([coverage])], ignore_index=True)


def _save_report(snapshot, folder, name: str) -> str | None:
    """The Evidently report as HTML (and its JSON beside it); its path, or None when there is none."""
    if snapshot is None:
        return None
    report_path = str(folder / f"{name}.html")
    snapshot.save_html(report_path)
    (folder / f"{name}.json").write_text(json.dumps(snapshot.dict(), default=str, indent=1), encoding="utf-8")
    return report_path


DRIFT_EXPERIMENT = "drift"


def drift_metrics(summary: pd.DataFrame) -> dict[str, float]:
    """The night's drift as MLflow metrics: per model and check, the share of drifted columns and
    whether the dataset drifted (1) or not (0)."""
    metrics = {}
    for row in summary.itertuples():
        key = f"{row.model_name}.{row.check_name}"
        metrics[f"{key}.share_drifted_columns"] = float(row.share_drifted_columns)
        metrics[f"{key}.dataset_drift"] = float(bool(row.dataset_drift))
    return metrics


def log_drift_history(ds: dt.date, summary: pd.DataFrame) -> None:
    """One MLflow run per night in the experiment `drift` (a rerun of ds writes into the same run), its
    metrics at step = the day's ordinal and the day's timestamp, so drift over nights can be charted
    in the MLflow UI (runs view, or a metric's history across runs)."""
    import mlflow
    from mlflow import MlflowClient

    from ml.mlops.tracking import use_experiment

    if summary.empty:
        return
    experiment_id = use_experiment(DRIFT_EXPERIMENT)
    client = MlflowClient()
    found = client.search_runs([experiment_id], f"tags.ds = '{ds}'", max_results=1)
    run_id = found[0].info.run_id if found else None
    moment = int(dt.datetime.combine(ds, dt.time(), tzinfo=dt.UTC).timestamp() * 1000)
    with mlflow.start_run(run_id=run_id, experiment_id=experiment_id, run_name=f"drift ds={ds}"):
        versions = {f"{r.model_name}.{r.check_name}.model_version": str(r.model_version) for r in summary.itertuples()}
        mlflow.set_tags({"ds": ds.isoformat(), **versions})  # tags, not params: a rerun may name another version
        for name, value in drift_metrics(summary).items():
            mlflow.log_metric(name, value, step=ds.toordinal(), timestamp=moment)


def _summary_row(ds: dt.date, found: DriftInput, columns: pd.DataFrame, settings, report_path: str | None) -> dict:
    share = float(columns["drifted"].mean())
    return {
        "ds": ds,
        "model_name": found.model_name,
        "check_name": found.check_name,
        "model_version": found.model_version,
        "reference_ds": found.reference_ds,
        "columns_checked": len(columns),
        "share_drifted_columns": share,
        "dataset_drift": share >= settings.drift_share,
        "report_path": report_path,
    }


def _write_checks(ds: dt.date, column_rows: list, summary: pd.DataFrame, monitoring: MonitoringConfig) -> None:
    """The ds partitions of monitoring.drift_columns, monitoring.drift_summary and channels.model_health
    (the summary with its status and what the policy did)."""
    replace_partition(
        COLUMNS_TABLE,
        COLUMNS_DDL,
        ds,
        pd.concat(column_rows, ignore_index=True) if column_rows else pd.DataFrame(),
        order_by="model_name, check_name, column_name",
        purge_erased=False,
    )
    replace_partition(SUMMARY_TABLE, SUMMARY_DDL, ds, summary, order_by="model_name, check_name", purge_erased=False)
    health = summary.copy()
    if not health.empty:
        health["status"] = health["dataset_drift"].map({True: "drift", False: "ok"})
        blocked = monitoring.on_dataset_drift == "block_exports"
        health["action"] = [
            ("exports_blocked" if blocked else "warned") if drift else "none" for drift in health["dataset_drift"]
        ]
    replace_partition(HEALTH_TABLE, HEALTH_DDL, ds, health, order_by="model_name, check_name", purge_erased=False)


def assert_exports_allowed(ds: dt.date, monitoring: MonitoringConfig) -> None:
    """Under `block_exports`, refuse to publish a day with dataset drift (yesterday's files stay)."""
    if monitoring.on_dataset_drift != "block_exports":
        return
    with open_warehouse() as connection:
        exists = connection.execute(
            "select count(*) from information_schema.tables where table_schema = 'monitoring' "
            "and table_name = 'drift_summary'"
        ).fetchone()[0]
        if not exists:
            return
        drifted = connection.execute(
            f"select model_name, check_name, share_drifted_columns, report_path from {SUMMARY_TABLE} "
            "where ds = ? and dataset_drift order by all",
            [ds],
        ).fetchall()
    if drifted:
        details = "; ".join(f"{m} {c} ({share:.0%} of columns drifted, report {path})" for m, c, share, path in drifted)
        raise ExportsBlockedError(
            f"ds={ds}: exports blocked by monitoring.on_dataset_drift = block_exports: {details}. Earlier days' "
            "files are untouched. Look at the reports; to publish anyway set on_dataset_drift: warn and rerun "
            "publish_channels for this ds."
        )
