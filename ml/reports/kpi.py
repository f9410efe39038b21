"""The marketer KPI report: one self-contained HTML file per ds with charts.

First what personalization earned as a whole (the global holdout's program readout), then CX
trends (NPS, CSAT, CES rolling 30 days, with 95% intervals, over the last 90 days), retention curves
by first-order cohort, churn by latest NPS answer, audience sizes by group, experiment readouts in
money (incremental profit with its always-valid interval, ROI), the automated actions, the models in
use and the model-health (drift) status. Charts are matplotlib PNGs embedded as data URIs, so the
file opens anywhere, offline, with no scripts.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure  # no pyplot: no global state, no display needed

from ml.activation.settings import ActivationConfig
from ml.paths import reports_dir
from ml.reports.audiences import (
    ACTIONS_DAYS,
    MIN_COST_FOR_ROI,
    drift_list,
    money_table,
    program_lines,
    program_total,
    readout_line,
    rows_or_empty,
    uplift_lines,
    waiting_table,
)
from ml.reports.html import chart, frame_table, page
from ml.warehouse.engine import open_warehouse

log = logging.getLogger(__name__)

TREND_DAYS = 90
METRIC_TITLES = {"nps": "NPS (rolling 30 days)", "csat": "CSAT % (rolling 30 days)", "ces": "CES (rolling 30 days)"}


def _query(connection, sql: str, parameters: list, schema: str, table: str) -> pd.DataFrame:
    return rows_or_empty(connection, schema, table, sql, parameters)


def cx_trend_chart(trends: pd.DataFrame) -> str:
    figure = Figure(figsize=(15, 3.6))
    axes = figure.subplots(1, 3)
    for axis, (metric, title) in zip(axes, METRIC_TITLES.items(), strict=True):
        rows = trends[trends["metric"] == metric].sort_values("period_end")
        axis.plot(rows["period_end"], rows["value"], color="#1f77b4")
        axis.fill_between(rows["period_end"], rows["ci_lower"], rows["ci_upper"], alpha=0.25, color="#1f77b4")
        axis.set_title(title)
        axis.tick_params(axis="x", labelrotation=45)
    latest = trends.sort_values("period_end").groupby("metric").tail(1).set_index("metric")["value"]
    alt = "Three line charts of NPS, CSAT and CES (rolling 30 days, 95% bands) over 90 days; latest: " + ", ".join(
        f"{metric.upper()} {latest[metric]:.1f}" for metric in METRIC_TITLES if metric in latest
    )
    return chart(figure, alt)


def retention_chart(cohorts: pd.DataFrame) -> str:
    figure = Figure(figsize=(7, 4))
    axis = figure.subplots()
    for cohort, rows in cohorts.groupby("cohort_month"):
        rows = rows.sort_values("months_since_first_order")
        axis.plot(rows["months_since_first_order"], rows["retention_rate"], marker="o", label=f"{cohort:%Y-%m}")
    axis.set_xlabel("months since first order")
    axis.set_ylabel("retained customers")
    axis.set_title("Retention by first-order cohort")
    axis.legend(fontsize=8)
    return chart(figure, f"Retention curves of {cohorts['cohort_month'].nunique()} first-order cohorts by month")


def churn_chart(churn: pd.DataFrame) -> str:
    figure = Figure(figsize=(6, 3.6))
    axis = figure.subplots()
    axis.bar(churn["nps_category"], churn["churn_rate"], color="#d62728")
    axis.set_ylabel("churn rate")
    axis.set_title("Churn by latest NPS answer")
    rates = ", ".join(f"{r.nps_category} {r.churn_rate:.0%}" for r in churn.itertuples())
    return chart(figure, f"Bar chart of churn rate by latest NPS answer: {rates}")


def audience_chart(groups: pd.DataFrame) -> str:
    table = groups.pivot_table(index="audience", columns="experiment_group", values="customers", fill_value=0)
    figure = Figure(figsize=(8, 0.5 + 0.5 * len(table)))
    axis = figure.subplots()
    table.plot.barh(stacked=True, ax=axis)
    axis.legend(title="group", bbox_to_anchor=(1.02, 1), loc="upper left", fontsize=8)
    axis.set_xlabel("customers decided on ds")
    axis.set_title("Audience sizes: control (holdout) and treated arms")
    sizes = ", ".join(f"{name} {int(total):,}" for name, total in table.sum(axis=1).items())
    return chart(figure, f"Stacked bars of customers decided per audience, by group: {sizes}")


def profit_chart(results: pd.DataFrame, currency: str) -> str:
    """Incremental profit per customer of each arm against control, with its always-valid interval."""
    labels = results["audience"] + " v" + results["version_number"].astype(str) + " / " + results["arm"]
    figure = Figure(figsize=(8, 0.6 + 0.5 * len(results)))
    axis = figure.subplots()
    profit = results["incremental_profit_per_customer"]
    errors = [profit - results["incremental_profit_ci_lower"], results["incremental_profit_ci_upper"] - profit]
    axis.errorbar(profit, labels, xerr=errors, fmt="o", capsize=4)
    axis.axvline(0, color="#888", linewidth=1)
    axis.set_xlabel(f"incremental profit per treated customer over control, {currency} (always-valid interval)")
    axis.set_title("What each arm earned, net")
    alt = "Incremental profit per treated customer with intervals: " + "; ".join(
        f"{label} {value:+.2f} {currency}" for label, value in zip(labels, profit, strict=True)
    )
    return chart(figure, alt)


def kpi_report_html(ds: dt.date, currency: str, min_outcomes_per_group: int = 5) -> str:
    with open_warehouse() as connection:
        trends = _query(
            connection,
            "select * from reports.rpt_kpi_cx_trends where period_end > ? and period_end <= ?",
            [ds - dt.timedelta(days=TREND_DAYS), ds],
            "reports",
            "rpt_kpi_cx_trends",
        )
        cohorts = _query(
            connection, "select * from marts.retention_cohorts where ds = ?", [ds], "marts", "retention_cohorts"
        )
        churn = _query(
            connection,
            "select * from marts.churn_by_nps_category where ds = ? order by 2",
            [ds],
            "marts",
            "churn_by_nps_category",
        )
        groups = _query(
            connection,
            "select audience, experiment_group, customers from reports.rpt_kpi_audience_groups where ds = ?",
            [ds],
            "reports",
            "rpt_kpi_audience_groups",
        )
        results = _query(
            connection,
            "select * from marts.fct_experiment_results where ds = ? "
            "order by audience, version_number, baseline <> 'control', arm, baseline",
            [ds],
            "marts",
            "fct_experiment_results",
        )
        program = _query(
            connection, "select * from marts.fct_program_readout where ds = ?", [ds], "marts", "fct_program_readout"
        )
        actions = _query(
            connection,
            "select ds, audience, action, experiment_version, arm, evidence from experiments.audit_log "
            "where ds > ? and ds <= ? order by ds desc, audience",
            [ds - dt.timedelta(days=ACTIONS_DAYS), ds],
            "experiments",
            "audit_log",
        )
        health = _query(
            connection,
            "select model_name, check_name, status, share_drifted_columns, columns_checked, reference_ds, action, "
            "report_path from channels.model_health where ds = ? order by all",
            [ds],
            "channels",
            "model_health",
        )
    sections = [f"<h1>Customer KPIs for {ds}</h1>"]
    sections.append("<h2>What personalization earned</h2>")
    sections.append(f"<p><strong>{html.escape(program_total(program))}</strong></p>")
    sections.append("<p>" + "<br>".join(html.escape(line) for line in program_lines(program)) + "</p>")
    sections.append("<h2>Customer experience</h2>")
    sections.append(cx_trend_chart(trends) if not trends.empty else "<p>No survey responses yet.</p>")
    sections.append("<h2>Retention</h2>")
    sections.append(retention_chart(cohorts) if not cohorts.empty else "<p>No cohorts yet.</p>")
    sections.append(churn_chart(churn) if not churn.empty else "")
    sections.append("<h2>Audiences</h2>")
    sections.append(audience_chart(groups) if not groups.empty else "<p>No audience decided on this day.</p>")
    sections += experiment_sections(results, currency, min_outcomes_per_group)
    sections.append("<h2>Targeting by uplift: expected against the rules</h2>")
    sections.append(uplift_section(ds, currency))
    sections.append(f"<h2>Automated actions (last {ACTIONS_DAYS} days)</h2>")
    if actions.empty:
        sections.append("<p>None: no audience paused, resumed or shipped a winner.</p>")
    else:
        sections.append(actions.to_html(index=False, border=0))
    sections.append("<h2>Models in use</h2>")
    sections.append(models_in_use(ds))
    sections.append("<h2>Model health (drift)</h2>")
    sections.append(health_section(health, report_path(ds)))
    body = "\n".join(sections)
    return page(f"KPIs {ds}", body)


def experiment_sections(results: pd.DataFrame, currency: str, min_outcomes_per_group: int) -> list[str]:
    """The readable readouts, then the comparisons still waiting for data and what they need."""
    waiting = waiting_table(results, min_outcomes_per_group) if len(results) else pd.DataFrame()
    return [
        "<h2>Experiments</h2>",
        experiments_section(results[results["looks"] > 0] if len(results) else results, currency),
        "<h2>Experiments still waiting for data</h2>",
        frame_table(waiting, index=False) if len(waiting) else "<p>Every experiment can be read.</p>",
    ]


def experiments_section(results: pd.DataFrame, currency: str) -> str:
    """The readouts with finished goal windows: incremental profit against control, then one line each."""
    if results.empty:
        return "<p>No comparison has enough finished goal windows yet.</p>"
    against_control = results[(results["baseline"] == "control") & results["incremental_profit_per_customer"].notna()]
    picture = profit_chart(against_control, currency) if not against_control.empty else ""
    money = money_table(results, currency)
    table = frame_table(money, index=False) if not money.empty else ""
    note = (
        f"<p class='note'>ROI = incremental profit / what the arm cost (contacts and offers), with its interval; "
        f"n/a where an arm cost under {MIN_COST_FOR_ROI} {currency} per customer (a ratio over almost nothing "
        "says nothing).</p>"
    )
    lines = "".join(f"<li>{html.escape(readout_line(row, currency))}</li>" for row in results.itertuples())
    return "\n".join(part for part in (picture, table, note, f"<ul>{lines}</ul>") if part)


def uplift_section(ds: dt.date, currency: str) -> str:
    """What each campaign's uplift policy is expected to earn against its rules, and each arm's gate."""
    with open_warehouse() as connection:
        policy = _query(
            connection,
            "select * from marts.uplift_policy_value where ds = ? order by campaign_id, policy, estimator",
            [ds],
            "marts",
            "uplift_policy_value",
        )
        arms = _query(
            connection,
            "select * from marts.uplift_arms where ds = ? order by campaign_id, arm",
            [ds],
            "marts",
            "uplift_arms",
        )
    return "<p>" + "<br>".join(html.escape(line) for line in uplift_lines(policy, arms, currency)) + "</p>"


def health_section(health: pd.DataFrame, page_path: Path) -> str:
    """One line per model and drift check of the day, linked to its Evidently report."""
    if health.empty:
        return "<p>Not checked on this day.</p>"
    return drift_list(health, page_path)


def models_in_use(ds: dt.date) -> str:
    """What scored ds for each model, as the gate decided when it was trained, with both numbers."""
    from ml.mlops.lifecycle import night_line

    items = []
    for model_name in ("recommender", "propensity"):
        line = night_line(model_name, ds.isoformat())
        items.append(f"<li>{html.escape(line or f'{model_name}: no version trained for this day')}</li>")
    return f"<ul>{''.join(items)}</ul>"


def report_path(ds: dt.date) -> Path:
    return reports_dir() / "kpi" / f"kpi_{ds}.html"


def build_kpi_report(ds: dt.date, activation: ActivationConfig) -> dict[str, object]:
    """The build_kpi_report stage: reports/kpi/kpi_<ds>.html, written whole or not at all."""
    path = report_path(ds)
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_suffix(".html.tmp")
    html_text = kpi_report_html(ds, activation.economics.currency, activation.sequential.min_outcomes_per_group)
    staged.write_text(html_text, encoding="utf-8")
    staged.replace(path)
    log.info("ds=%s KPI report %s (%d KB)", ds, path, path.stat().st_size // 1024)
    return {"report": str(path)}
