"""What a run produced for `ds`, as a short text report (printed by `make demo` and `make run`)."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict

import pandas as pd

from ml.activation.settings import ActivationConfig
from ml.constants import QUARANTINE_SCHEMA
from ml.mlops.lifecycle import evidence_line, gate_line, latest_run, night_line, unreadable_lines
from ml.paths import data_dir, mlflow_tracking_uri, reports_dir
from ml.reports.audiences import audience_summary, report_path, summary_lines, uplift_lines
from ml.reports.kpi import report_path as kpi_report_path
from ml.warehouse.contract import TABLES
from ml.warehouse.engine import open_warehouse, warehouse_location
from ml.warehouse.erasure import erasure_problems
from ml.warehouse.partitions import existing_tables

METRIC_PERIODS = ("day", "rolling_30d")


def _read(connection, sql: str, parameters: list) -> pd.DataFrame:
    return connection.execute(sql, parameters).df()


def summary_text(ds: dt.date, activation: ActivationConfig) -> str:
    """What a night produced, as text: for the marketer, the data engineer and the ML engineer, in that
    order, then where each output is."""
    return "\n".join(_summary_lines(ds, activation, **_read_night(ds)))


def _read_night(ds: dt.date) -> dict[str, pd.DataFrame]:
    """The night's figures the summary shows, read once."""
    quarantine_union = " union all ".join(
        f"select table_name, reason_code from {QUARANTINE_SCHEMA}.{table} where ds = $1" for table in TABLES
    )
    # Same configuration as dbt-duckdb's connection in this process (DuckDB refuses a second mode).
    with open_warehouse() as connection:
        reconciliation = _read(
            connection, "select * from audit.landing_reconciliation where ds = ? order by table_name", [ds]
        )
        reasons = _read(
            connection,
            f"select table_name, reason_code, count(*) as row_count from ({quarantine_union}) "
            "group by all order by all",
            [ds],
        )
        metrics = _read(
            connection,
            "select period_type, metric, responses, value, ci_lower, ci_upper from marts.cx_metrics "
            "where segment_type = 'all' and touchpoint = 'all' and period_end = ? and period_type in "
            f"({', '.join(repr(period) for period in METRIC_PERIODS)})",
            [ds],
        )
        retention = _read(connection, "select * from marts.retention_summary where ds = ?", [ds])
        churn = _read(connection, "select * from marts.churn_by_nps_category where ds = ? order by all", [ds])
        recommendations = (
            _read(
                connection,
                "select strategy, count(*) as row_count, count(distinct customer_id) as customers, "
                "max(model_version) as model_version from marts.customer_recommendations where ds = ? group by all "
                "order by all",
                [ds],
            )
            if "customer_recommendations" in existing_tables(connection, "marts")
            else pd.DataFrame()
        )
        scores = (
            _read(
                connection,
                "select decile, count(*) as customers, avg(score) as mean_score, max(model_version) as model_version, "
                "max(model_name) as model_name "
                "from marts.customer_scores where ds = ? group by all order by decile",
                [ds],
            )
            if "customer_scores" in existing_tables(connection, "marts")
            else pd.DataFrame()
        )
        marts = existing_tables(connection, "marts")
        uplift_policy, uplift_arms = (
            _read(connection, f"select * from marts.{table} where ds = ? order by all", [ds])
            if table in marts
            else pd.DataFrame()
            for table in ("uplift_policy_value", "uplift_arms")
        )
        drift = (
            _read(connection, "select * from channels.model_health where ds = ? order by model_name, check_name", [ds])
            if "model_health" in existing_tables(connection, "channels")
            else pd.DataFrame()
        )
    return {
        "reconciliation": reconciliation,
        "reasons": reasons,
        "metrics": metrics,
        "retention": retention,
        "churn": churn,
        "recommendations": recommendations,
        "scores": scores,
        "uplift_policy": uplift_policy,
        "uplift_arms": uplift_arms,
        "drift": drift,
    }


def _summary_lines(ds: dt.date, activation: ActivationConfig, **night: pd.DataFrame) -> list[str]:
    return [
        _heading("For the marketer: audiences and what they earn"),
        *_audience_lines(ds, activation),
        "",
        *uplift_lines(night["uplift_policy"], night["uplift_arms"], activation.economics.currency),
        "",
        _heading("For the data engineer: landing, quarantine and what needs a person"),
        *_needs_a_person_lines(),
        *_landing_lines(ds, night["reconciliation"], night["reasons"]),
        "",
        *_metrics_lines(ds, night["metrics"], night["retention"], night["churn"]),
        "",
        _heading("For the ML engineer: models, gates and drift"),
        *_recommender_lines(ds, night["recommendations"]),
        "",
        *_propensity_lines(ds, night["scores"]),
        "",
        *_drift_lines(ds, night["drift"]),
        "",
        _heading("Where to look"),
        *_where_to_look(ds),
    ]


def _heading(title: str) -> str:
    return f"\n== {title} " + "=" * max(3, 96 - len(title))


def _needs_a_person_lines() -> list[str]:
    """Erasure requests a person must check (ml.warehouse.erasure), first: they block nothing else."""
    problems = erasure_problems()
    if not problems:
        return ["Needs a person: nothing.", ""]
    lines = [f"NEEDS A PERSON: {len(problems)} erasure request(s) (`python -m ml erasure report`):"]
    return [*lines, *(f"  {problem.message}" for problem in problems), ""]


def _where_to_look(ds: dt.date) -> list[str]:
    """Where each of the night's outputs is: tables, files, reports."""
    return [
        f"  warehouse       {warehouse_location()}",
        "                  schemas raw, staging, quarantine, audit, intermediate, marts",
        f"  landing files   {data_dir() / 'landing'}",
        "  reconciliation  audit.landing_reconciliation",
        "  metrics         marts.cx_metrics_daily, marts.cx_metrics (periods and segments),",
        "                  marts.retention_cohorts(_weekly), marts.retention_summary,",
        "                  marts.churn_by_nps_category, marts.customer_360",
        "  models          marts.customer_recommendations, marts.customer_scores; runs and models:",
        f"                  `make mlflow` (experiments 'recommender', 'propensity'; {mlflow_tracking_uri()})",
        "  features        marts.customer_features_daily; Feast repository feature_store/",
        f"                  (registry and online store under {data_dir() / 'feature_store'})",
        "  audiences       activation.decisions, activation.audience_funnel, experiments.assignments,",
        "                  channels.<channel>; files and manifests under",
        f"                  {data_dir() / 'exports'}/<channel>/ds={ds}/",
        f"                  marketer summary {report_path(ds)}",
        "  experiments     marts.fct_experiment_results, marts.fct_program_readout (global holdout),",
        "                  experiments.versions, experiments.audit_log, activation.audience_status",
        "  drift           monitoring.drift_summary, monitoring.drift_columns, channels.model_health;",
        f"                  Evidently reports under {reports_dir() / 'drift' / f'ds={ds}'}",
        f"  KPI report      {kpi_report_path(ds)}",
        f"  online service  `make serve` (http://127.0.0.1:8000/docs) answers from {data_dir() / 'serving'}/",
        f"                  snapshot_ds={ds}.sqlite: the decisions above, per customer and channel",
    ]


def _audience_lines(ds: dt.date, activation: ActivationConfig) -> list[str]:
    summary = audience_summary(ds, activation)
    if summary is None:
        return [f"Audiences for ds={ds}: none decided (see the decide_audiences log for why)"]
    return [*summary_lines(summary), *_empty_channel_lines(ds)]


def _empty_channel_lines(ds: dt.date) -> list[str]:
    """The channels and audiences with no row tonight, and why (their manifests say)."""
    empty_channels, reasons = [], {}
    for manifest_path in sorted((data_dir() / "exports").glob(f"*/ds={ds}/manifest.json")):
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if "empty_reason" in manifest:
            empty_channels.append(manifest["channel"])
        for audience in manifest["audiences"]:
            if "empty_reason" in audience:
                reasons.setdefault(audience["audience"], {})[manifest["channel"]] = audience["empty_reason"]
    if not reasons:
        return []
    lines = ["", f"Empty files for ds={ds} (valid, with their header), and why:"]
    if empty_channels:
        lines.append(f"  no row at all in: {', '.join(empty_channels)}")
    for audience, by_channel in reasons.items():
        distinct = sorted(set(by_channel.values()))
        lines.append(f"  {audience} ({', '.join(by_channel)}): {'; '.join(distinct)}")
    return lines


def _landing_lines(ds: dt.date, reconciliation: pd.DataFrame, reasons: pd.DataFrame) -> list[str]:
    lines = [
        f"Landing for ds={ds}",
        "",
        f"{'table':<18}{'read':>10}{'accepted':>10}{'rejected':>10}{'duplicate':>10}{'later':>8}{'erased':>8}  ok",
    ]
    for row in reconciliation.itertuples():
        lines.append(
            f"{row.table_name:<18}{row.rows_read:>10,}{row.rows_accepted:>10,}{row.rows_rejected:>10,}"
            f"{row.rows_duplicate:>10,}{row.rows_later_dated:>8,}{row.rows_erased:>8,}  "
            f"{'yes' if row.is_reconciled else 'NO'}"
        )
    lines += ["", "Quarantine by reason (quarantine.<table>: each row with its reason and landing text):"]
    for table_name, group in reasons.groupby("table_name"):
        listed = ", ".join(f"{r.reason_code} {r.row_count}" for r in group.itertuples())
        lines.append(f"  {table_name:<18}{listed}")
    return lines


def _format_metric(metric: str, value: float) -> str:
    return {"nps": f"{value:+.1f}", "csat": f"{value:.1f}%", "ces": f"{value:.2f}"}[metric]


def _metric_cell(metrics: pd.DataFrame, metric: str, period_type: str) -> str:
    row = metrics[(metrics["metric"] == metric) & (metrics["period_type"] == period_type)]
    if row.empty:
        return "no responses"
    r = row.iloc[0]
    interval = (
        "" if pd.isna(r.ci_lower) else f" [{_format_metric(metric, r.ci_lower)}, {_format_metric(metric, r.ci_upper)}]"
    )
    return f"{_format_metric(metric, r.value)}{interval} n={int(r.responses):,}"


def _metrics_lines(ds: dt.date, metrics: pd.DataFrame, retention: pd.DataFrame, churn: pd.DataFrame) -> list[str]:
    lines = [
        f"Customer metrics as of {ds} (all customers and touchpoints, 95% intervals):",
        f"  {'':<6}{f'on {ds}':<32}{'rolling 30 days'}",
    ]
    for metric in ("nps", "csat", "ces"):
        day, rolling = (_metric_cell(metrics, metric, period) for period in METRIC_PERIODS)
        lines.append(f"  {metric.upper():<6}{day:<32}{rolling}")
    if not retention.empty:
        r = retention.iloc[0]
        if pd.notna(r.retention_3m):
            lines.append(
                f"  3-month retention {r.retention_3m:.1%} "
                f"(n={int(r.retention_3m_cohort_customers):,} customers in cohorts with a complete third month)"
            )
        if pd.notna(r.repeat_purchase_rate):
            lines.append(f"  repeat purchase rate {r.repeat_purchase_rate:.1%} (n={r.buyers:,} buyers)")
        if pd.notna(r.churn_rate):
            lines.append(f"  churn {r.churn_rate:.1%} (n={r.churn_eligible_customers:,} customers who could churn)")
    if not churn.empty:
        by_category = ", ".join(
            f"{row.nps_category} {row.churn_rate:.1%} (n={row.eligible_customers:,})" for row in churn.itertuples()
        )
        lines.append(f"  churn by latest NPS answer: {by_category}")
    return lines


def _recommender_lines(ds: dt.date, recommendations: pd.DataFrame) -> list[str]:
    lines = [f"Recommendations for ds={ds} (marts.customer_recommendations):"]
    if recommendations.empty:
        return [*lines, "  none written (see the train_recommender log for why)"]
    lines.append(f"  {int(recommendations['row_count'].sum()):,} rows, by strategy:")
    for row in recommendations.itertuples():
        lines.append(f"    {row.strategy:<20}{row.row_count:>9,} rows for {row.customers:,} customers")
    run = latest_run("recommender", ds)
    if run is not None:
        tags = run.data.tags
        m = defaultdict(lambda: float("nan"), run.data.metrics)
        lines.append(
            f"  holdout NDCG@10 model {m['ndcg_at_10']:.3f} vs popularity baseline {m['baseline_ndcg_at_10']:.3f}"
            f" ({m['ndcg_at_10_lift_over_baseline']:.2f}x); precision@10 {m['precision_at_10']:.3f}"
            f" vs {m['baseline_precision_at_10']:.3f}"
        )
        lines.append(
            f"  cold-start customers NDCG@10 model {m['cold_start_ndcg_at_10']:.3f} vs baseline"
            f" {m['baseline_cold_start_ndcg_at_10']:.3f} (n={m['cold_start_customers']:,.0f})"
        )
        gate = gate_line("recommender", tags)
        lines.extend([f"  {gate}"] if gate else [])
        evidence = evidence_line(run.data.metrics)
        lines.extend([f"  {evidence}"] if evidence else [])
    lines.extend(f"  {line}" for line in unreadable_lines("recommender"))
    return lines


def _propensity_lines(ds: dt.date, scores: pd.DataFrame) -> list[str]:
    lines = [f"Propensity to buy for ds={ds} (marts.customer_scores):"]
    if scores.empty:
        return [*lines, "  none written (see the train_propensity and score_propensity logs for why)"]
    lines.append(
        f"  {int(scores['customers'].sum()):,} customers scored with {scores['model_name'].iloc[0]} of propensity"
        f" v{scores['model_version'].iloc[0]};"
        f" mean probability by decile: "
        + ", ".join(f"{row.decile}: {row.mean_score:.2f}" for row in scores.itertuples())
    )
    run = latest_run("propensity", ds)
    if run is not None:
        m = defaultdict(lambda: float("nan"), run.data.metrics)
        lines.append(
            f"  out-of-time validation (cutoff {run.data.params.get('validation_cutoff')}): "
            f"AUC {m['roc_auc']:.3f} vs RFM heuristic {m['baseline_roc_auc']:.3f}; "
            f"Brier {m['brier']:.3f} vs base rate {m['brier_base_rate']:.3f}; "
            f"top-decile lift {m['top_decile_lift']:.2f}"
        )
        evidence = evidence_line(run.data.metrics)
        lines.extend([f"  {evidence}"] if evidence else [])
    night = night_line("propensity", ds)
    lines.extend([f"  {night}"] if night else [])
    lines.extend(f"  {line}" for line in unreadable_lines("propensity"))
    return lines


def _drift_lines(ds: dt.date, drift: pd.DataFrame) -> list[str]:
    lines = [f"Model health for ds={ds} (Evidently drift against the days up to the version's training day):"]
    if drift.empty:
        return [*lines, "  not checked (see the monitor_drift log for why)"]
    for row in drift.itertuples():
        lines.append(
            f"  {row.model_name + ' ' + row.check_name:<30}{row.status:<7}{row.share_drifted_columns:6.0%} of "
            f"{row.columns_checked} columns drifted vs {row.reference_ds:%Y-%m-%d} (v{row.model_version}); "
            f"action {row.action}"
        )
    return lines


def print_summary(ds: dt.date, activation: ActivationConfig) -> None:
    print(summary_text(ds, activation))
