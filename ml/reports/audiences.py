"""The marketer summary of a day's audiences: reach across the maturity curve, audience x channel
counts, holdout and arm sizes, the funnel and the score distribution (HTML under reports/ and text
for `make demo`)."""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.dates import DateFormatter, DayLocator
from matplotlib.figure import Figure  # no pyplot: no global state, no display needed

from ml.activation.decisions import funnel_step_position
from ml.activation.population import channel_table, read_model_versions
from ml.activation.settings import CONTROL, ActivationConfig
from ml.activation.store import ASSIGNMENTS, DECISIONS, FUNNEL
from ml.paths import reports_dir
from ml.reports.html import chart, frame_table, header, link, page
from ml.warehouse.engine import open_warehouse
from ml.warehouse.partitions import existing_tables

MATURITY_LEVELS = ("demographic", "behavioral", "predictive")
ACTIONS_DAYS = 30  # the audit trail shown: the last 30 days
HISTORY_DAYS = 30  # the money chart: the readouts of the last 30 nights
MIN_COST_FOR_ROI = 0.01  # per arm customer, in the reporting currency
READOUT_COLUMNS = [
    "audience",
    "version_number",
    "experiment_version",
    "arm",
    "baseline",
    "goal_metric",
    "looks",
    "arm_customers",
    "baseline_customers",
    "arm_conversions",
    "baseline_conversions",
    "arm_value",
    "baseline_value",
    "effect",
    "ci_lower",
    "ci_upper",
    "p_value",
    "variance_reduction",
    "incremental_revenue",
    "incremental_profit",
    "incremental_profit_ci_lower",
    "incremental_profit_ci_upper",
    "cost_per_arm_customer",
    "roi",
    "roi_ci_lower",
    "roi_ci_upper",
    "conclusion",
]


@dataclass(frozen=True)
class AudienceSummary:
    ds: dt.date
    population: int
    reasons: pd.Series  # customers by decision reason
    maturity: pd.DataFrame  # level, audiences, decided, reached, share_of_population
    by_channel: pd.DataFrame  # audience x channel rows, plus holdout and total
    experiments: pd.DataFrame  # audience, hypothesis, ..., groups
    funnel: pd.DataFrame  # step x audience
    scores: pd.DataFrame  # score distribution of the exported customers per audience
    model_versions: dict[str, str | None]
    readouts: pd.DataFrame  # comparisons with finished goal windows (marts.fct_experiment_results)
    status: dict[str, str]  # audience -> "active", "paused: <why>" or "winner_shipped: <why>"
    program: pd.DataFrame  # the global holdout readout of ds (marts.fct_program_readout), 0 or 1 row
    actions: pd.DataFrame  # automated actions of the last ACTIONS_DAYS days (experiments.audit_log)
    currency: str
    history: pd.DataFrame  # arm-vs-control readouts of the last HISTORY_DAYS nights (money over nights)
    health: pd.DataFrame  # the night's drift checks with their report files (channels.model_health)
    min_outcomes_per_group: int  # what a comparison waits for (activation.sequential)


@dataclass(frozen=True)
class _Night:
    """What the warehouse holds of one night's audiences, as read for the summary."""

    decisions: pd.DataFrame
    assignments: pd.DataFrame
    funnel: pd.DataFrame
    readouts: pd.DataFrame
    program: pd.DataFrame
    actions: pd.DataFrame
    versions: pd.DataFrame
    status: dict[str, str]
    exported: pd.DataFrame
    model_versions: dict[str, str | None]
    history: pd.DataFrame
    health: pd.DataFrame


def rows_or_empty(connection, schema: str, table: str, sql: str, parameters: list, columns=()) -> pd.DataFrame:
    """The query's rows, or an empty frame with `columns` before the stage that writes the table ran."""
    if table not in existing_tables(connection, schema):
        return pd.DataFrame(columns=list(columns))
    return connection.execute(sql, parameters).df()


def _read_money_and_health(connection, ds: dt.date) -> tuple[pd.DataFrame, ...]:
    """The night's readouts, the arm-vs-control money of the last HISTORY_DAYS nights, the program
    readout and the drift checks (empty frames before the tables exist)."""
    results = ("marts", "fct_experiment_results")
    readouts = rows_or_empty(
        connection,
        *results,
        f"select {', '.join(READOUT_COLUMNS)} from marts.fct_experiment_results "
        "where ds = ? order by audience, version_number, baseline <> 'control', arm, baseline",
        [ds],
        READOUT_COLUMNS,
    )
    history = rows_or_empty(
        connection,
        *results,
        "select ds, audience, version_number, arm, arm_customers, incremental_profit, "
        "incremental_profit_ci_lower * arm_customers as profit_lower, "
        "incremental_profit_ci_upper * arm_customers as profit_upper from marts.fct_experiment_results "
        "where ds > ? and ds <= ? and baseline = 'control' and looks > 0 and incremental_profit is not null "
        "order by ds, audience, arm",
        [ds - dt.timedelta(days=HISTORY_DAYS), ds],
    )
    health = rows_or_empty(
        connection,
        "channels",
        "model_health",
        "select model_name, check_name, status, share_drifted_columns, report_path from channels.model_health "
        "where ds = ? order by all",
        [ds],
        ["model_name", "check_name", "status", "share_drifted_columns", "report_path"],
    )
    program = rows_or_empty(
        connection, "marts", "fct_program_readout", "select * from marts.fct_program_readout where ds = ?", [ds]
    )
    return readouts, history, program, health


def audience_summary(ds: dt.date, activation: ActivationConfig) -> AudienceSummary | None:
    """The marketer's summary of ds's audiences (None when no audience was decided for ds)."""
    night = _read_night(ds, activation)
    return None if night is None else summarize(ds, night, activation)


def _read_night(ds: dt.date, activation: ActivationConfig) -> _Night | None:
    with open_warehouse() as connection:
        if "decisions" not in existing_tables(connection, "activation"):
            return None
        decisions = connection.execute(f"select * from {DECISIONS} where ds = ?", [ds]).df()
        if decisions.empty:
            return None
        assignments = connection.execute(f"select * from {ASSIGNMENTS} where ds = ?", [ds]).df()
        funnel = connection.execute(f"select * from {FUNNEL} where ds = ? order by audience, step_order", [ds]).df()
        readouts, history, program, health = _read_money_and_health(connection, ds)
        experiment_tables = existing_tables(connection, "experiments")
        actions = (
            connection.execute(
                "select ds, audience, action, experiment_version, arm, evidence from experiments.audit_log "
                "where ds > ? and ds <= ? order by ds desc, audience",
                [ds - dt.timedelta(days=ACTIONS_DAYS), ds],
            ).df()
            if "audit_log" in experiment_tables
            else pd.DataFrame(columns=["ds", "audience", "action", "experiment_version", "arm", "evidence"])
        )
        versions = connection.execute(
            "with started as (select audience, experiment_version, min(ds) as since from experiments.assignments "
            "where ds <= ? group by all) select audience, experiment_version, since, row_number() over "
            "(partition by audience order by since, experiment_version) as version_number from started",
            [ds],
        ).df()
        status = (
            {
                audience: state if reason is None else f"{state}: {reason}"
                for audience, state, reason in connection.execute(
                    "select audience, status, reason from activation.audience_status where ds = ?", [ds]
                ).fetchall()
            }
            if "audience_status" in existing_tables(connection, "activation")
            else {}
        )
        existing = existing_tables(connection, "channels")
        exported = pd.concat(
            [
                connection.execute(
                    f"select audience, customer_id, score, '{channel}' as channel from {channel_table(channel)} "
                    "where ds = ?",
                    [ds],
                ).df()
                for channel in activation.channels
                if channel in existing
            ]
            or [pd.DataFrame(columns=["audience", "customer_id", "score", "channel"])],
            ignore_index=True,
        )
    model_versions = read_model_versions(ds)
    return _Night(
        decisions,
        assignments,
        funnel,
        readouts,
        program,
        actions,
        versions,
        status,
        exported,
        model_versions,
        history,
        health,
    )


def summarize(ds: dt.date, night: _Night, activation: ActivationConfig) -> AudienceSummary:
    """The summary's tables from what the night wrote (pure: no warehouse)."""
    decisions, assignments, exported = night.decisions, night.assignments, night.exported
    audiences = activation.audiences
    level_of = {name: audience.maturity for name, audience in audiences.items()}
    population = len(decisions)
    maturity_rows = []
    for level in MATURITY_LEVELS:
        names = [name for name, found in level_of.items() if found == level]
        reached = exported[exported["audience"].isin(names)]["customer_id"].nunique()
        maturity_rows.append(
            {
                "level": level,
                "audiences": ", ".join(names) or "none",
                "decided": int(assignments["audience"].isin(names).sum()),
                "reached": reached,
                "share_of_population": reached / population if population else 0.0,
            }
        )
    by_channel = (
        exported.pivot_table(index="audience", columns="channel", values="customer_id", aggfunc="count", fill_value=0)
        .reindex(index=list(audiences), columns=list(activation.channels), fill_value=0)
        .astype(int)
    )
    groups = assignments.groupby(["audience", "experiment_group"]).size()
    by_channel["holdout"] = [int(groups.get((name, CONTROL), 0)) for name in audiences]
    by_channel.insert(0, "maturity", [level_of[name] for name in audiences])
    experiments = _experiments_table(night, groups, activation)
    funnel = night.funnel
    steps = sorted(funnel["step"].unique(), key=lambda step: (funnel_step_position(step), step))
    funnel_table = (
        funnel.pivot_table(index="step", columns="audience", values="customers", aggfunc="sum")
        .reindex(index=steps, columns=list(audiences))
        .fillna(0)
        .astype(int)
    )
    per_customer = exported.drop_duplicates(["audience", "customer_id"])
    scores = (
        per_customer.groupby("audience")["score"]
        .describe(percentiles=[0.25, 0.5, 0.75])
        .reindex(list(audiences))
        .rename(columns={"count": "scored", "50%": "median"})
    )
    scores["scored"] = scores["scored"].fillna(0).astype(int)
    return AudienceSummary(
        ds=ds,
        population=population,
        reasons=decisions["reason"].value_counts(),
        maturity=pd.DataFrame(maturity_rows),
        by_channel=by_channel,
        experiments=experiments,
        funnel=funnel_table,
        scores=scores,
        model_versions=night.model_versions,
        readouts=night.readouts,
        status=night.status,
        program=night.program,
        actions=night.actions,
        currency=activation.economics.currency,
        history=night.history,
        health=night.health,
        min_outcomes_per_group=activation.sequential.min_outcomes_per_group,
    )


def _experiments_table(night: _Night, groups: pd.Series, activation: ActivationConfig) -> pd.DataFrame:
    """One row per audience: its experiment version, priority, status, goal, hypotheses and groups."""
    audiences, status = activation.audiences, night.status
    current = night.versions.set_index(["audience", "experiment_version"])
    tonight = night.assignments.drop_duplicates("audience").set_index("audience")["experiment_version"].to_dict()

    def version_label(name: str) -> str:
        key = (name, tonight.get(name))
        if key not in current.index:
            return "not assigned tonight"
        found = current.loc[key]
        return f"v{found['version_number']} ({key[1]}) since {found['since']:%Y-%m-%d}"

    return pd.DataFrame(
        [
            {
                "audience": name,
                "version": version_label(name),
                "priority": audience.priority,
                "status": status.get(name, "active"),
                "goal": audience.goal.description or f"{audience.goal.metric} within {audience.goal.window_days} days",
                "hypothesis": audience.hypothesis,
                "null_hypothesis": audience.null_hypothesis,
                "alpha": f"{audience.significance_level:g}",
                "holdout": f"{audience.holdout_percent:g}%",
                "groups": ", ".join(
                    f"{group} {int(groups.get((name, group), 0))}"
                    for group in [CONTROL, *(arm.name for arm in audience.arms())]
                ),
            }
            for name, audience in audiences.items()
        ]
    )


def summary_lines(summary: AudienceSummary) -> list[str]:
    reasons = summary.reasons
    lines = [
        f"Audiences for ds={summary.ds} ({summary.population} customers: {int(reasons.get('decided', 0))} decided, "
        f"{int(reasons.get('too_little_data', 0))} default experience for too little data, "
        f"{int(reasons.get('no_audience', 0))} in no audience)",
        "  maturity curve (customers reached in the channels):",
    ]
    for row in summary.maturity.itertuples():
        lines.append(f"    {row.level:<12} {row.reached:>6}  {row.share_of_population:6.1%}  {row.audiences}")
    lines.append("  rows per audience and channel (holdout: control customers, not exported):")
    lines += [
        "    " + line for line in summary.by_channel.rename_axis(index=None, columns=None).to_string().splitlines()
    ]
    lines += ["  " + line for line in program_lines(summary.program)]
    halted = {name: state for name, state in summary.status.items() if not state.startswith("active")}
    lines += [f"  {name} {state}" for name, state in halted.items()]
    read = summary.readouts[summary.readouts["looks"] > 0]
    if read.empty:
        lines.append("  experiment readouts: no comparison has enough finished goal windows yet")
    else:
        lines.append("  experiment readouts (always-valid; marts.fct_experiment_results):")
        lines += ["    " + readout_line(row, summary.currency) for row in read.itertuples()]
    if not summary.actions.empty:
        lines.append(f"  automated actions in the last {ACTIONS_DAYS} days (experiments.audit_log):")
        lines += [
            f"    {row.ds:%Y-%m-%d} {row.audience} {row.action}: {row.evidence}" for row in summary.actions.itertuples()
        ]
    return lines


def _money(value: float | None, currency: str) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{value:+,.2f} {currency}"


def _goal(value: float, metric: str, currency: str) -> str:
    return f"{value:,.2f} {currency}" if metric == "revenue" else f"{value:.1%}"


def _difference(value: float, metric: str, currency: str) -> str:
    return _money(value, currency) if metric == "revenue" else f"{value * 100:+.1f} pts"


def readout_line(row, currency: str) -> str:
    """One comparison as a marketer reads it: the goal with its always-valid interval, then money."""
    head = f"{row.audience} v{row.version_number} {row.arm} vs {row.baseline}"
    sizes = f"(n={row.arm_customers} vs {row.baseline_customers})"
    if row.looks == 0 or row.effect is None or pd.isna(row.effect):
        return f"{head} {sizes}: {row.conclusion}"
    metric = row.goal_metric
    goal = (
        f"{metric} {_goal(row.arm_value, metric, currency)} vs {_goal(row.baseline_value, metric, currency)}, "
        f"{_difference(row.effect, metric, currency)} [{_difference(row.ci_lower, metric, currency)}, "
        f"{_difference(row.ci_upper, metric, currency)}], p={_p_value(row.p_value)}"
    )
    money = ""
    if row.baseline == "control" and not pd.isna(row.incremental_profit):
        money = (
            f"; revenue {_money(row.incremental_revenue, currency)}, profit {_money(row.incremental_profit, currency)}"
            f" [{_money(row.incremental_profit_ci_lower * row.arm_customers, currency)}, "
            f"{_money(row.incremental_profit_ci_upper * row.arm_customers, currency)}]"
        )
        # A ratio over almost nothing says nothing: ROI only where the arm cost a cent per customer or more.
        if not pd.isna(row.roi) and row.cost_per_arm_customer >= MIN_COST_FOR_ROI:
            money += f", ROI {row.roi:+,.1f}x [{row.roi_ci_lower:+,.1f}x, {row.roi_ci_upper:+,.1f}x]"
    return f"{head} {sizes}: {goal}{money}: {row.conclusion}"


def program_lines(program: pd.DataFrame) -> list[str]:
    """The global holdout readout in two lines (what personalization as a whole earned, net)."""
    if program.empty:
        return ["program readout: no global holdout (set activation.global_holdout.percent, for example 5)"]
    row = program.iloc[0]
    currency = row["currency"]
    if pd.isna(row["incremental_profit_per_customer"]):
        return [
            f"program readout ({row['window_start']:%Y-%m-%d} to {row['window_end']:%Y-%m-%d}): {row['conclusion']}"
        ]

    customers = row["personalized_customers"]

    def interval(name: str) -> str:
        return f"{_money(row[name], currency)} [{_money(row[name.replace('per_customer', 'ci_lower')], currency)}, " + (
            f"{_money(row[name.replace('per_customer', 'ci_upper')], currency)}]"
        )

    return [
        f"program readout, {row['window_start']:%Y-%m-%d} to {row['window_end']:%Y-%m-%d}: "
        f"{row['personalized_customers']} personalized vs {row['holdout_customers']} in the global holdout "
        f"({row['holdout_percent']:g}%)",
        f"  per customer: revenue {interval('incremental_revenue_per_customer')}, profit "
        f"{interval('incremental_profit_per_customer')}; in total {_money(row['incremental_profit'], currency)} "
        f"[{_money(row['incremental_profit_ci_lower'] * customers, currency)}, "
        f"{_money(row['incremental_profit_ci_upper'] * customers, currency)}] profit: {row['conclusion']}",
    ]


def uplift_lines(policy: pd.DataFrame, arms: pd.DataFrame, currency: str) -> list[str]:
    """What targeting by uplift is expected to earn against the rules, per campaign (doubly robust
    off-policy estimates on held-out randomized sends, 95% bootstrap intervals), and each arm's gate."""
    if policy.empty and arms.empty:
        return ["uplift targeting: no model yet (campaign sends or audience holdouts with ended goal windows needed)"]
    lines = []
    dr = policy[policy["estimator"] == "dr"].set_index(["campaign_id", "policy"]) if len(policy) else policy

    def estimate(campaign: str, name: str) -> str:
        row = dr.loc[(campaign, name)]
        return f"{_money(row['value'], currency)} [{_money(row['lower'], currency)}, {_money(row['upper'], currency)}]"

    for campaign in sorted(set(policy["campaign_id"])) if len(policy) else []:
        ships = bool(policy.loc[policy["campaign_id"] == campaign, "ships"].iloc[0])
        sends = int(policy.loc[policy["campaign_id"] == campaign, "sends"].iloc[0])
        lines.append(
            f"uplift targeting, {campaign}: expected profit per customer {estimate(campaign, 'uplift')} by uplift "
            f"vs {estimate(campaign, 'rules')} by the rules, difference {estimate(campaign, 'uplift_minus_rules')} "
            f"(doubly robust, {sends} held-out randomized sends): "
            + ("the uplift policy serves" if ships else "the rules serve (its lower bound is not above the rules)")
        )
    for row in arms.itertuples():
        lines.append(
            f"  {row.campaign_id}/{row.arm}: Qini {row.qini:.4f} [{row.qini_lower:.4f}, {row.qini_upper:.4f}] vs "
            f"propensity-ranked {row.propensity_qini:.4f}: " + ("serves" if row.serves else row.reason.split(": ")[-1])
        )
    return lines


def _p_value(p_value: float) -> str:
    return "<0.001" if p_value < 0.001 else f"{p_value:.3f}"


def _interval(value: float, lower: float, upper: float, currency: str) -> str:
    return f"{_money(value, currency)} [{_money(lower, currency)}, {_money(upper, currency)}]"


def money_table(readouts: pd.DataFrame, currency: str) -> pd.DataFrame:
    """Each arm against control as a marketer reads it: customers, the goal, what it earned in all
    with its always-valid 95% interval, and ROI (or why there is none)."""
    rows = []
    for row in readouts[(readouts["looks"] > 0) & (readouts["baseline"] == CONTROL)].itertuples():
        metric = row.goal_metric
        profit = (
            _interval(
                row.incremental_profit,
                row.incremental_profit_ci_lower * row.arm_customers,
                row.incremental_profit_ci_upper * row.arm_customers,
                currency,
            )
            if not pd.isna(row.incremental_profit)
            else "n/a"
        )
        if pd.isna(row.roi):
            roi = "n/a: it cost nothing" if not row.cost_per_arm_customer else "n/a"
        elif row.cost_per_arm_customer < MIN_COST_FOR_ROI:
            roi = f"n/a: it cost under {MIN_COST_FOR_ROI} {currency} per customer"
        else:
            roi = f"{row.roi:+,.1f}x [{row.roi_ci_lower:+,.1f}x, {row.roi_ci_upper:+,.1f}x]"
        rows.append(
            {
                "Audience": f"{row.audience} v{row.version_number}",
                "Arm": row.arm,
                "Customers (arm / control)": f"{row.arm_customers:,} / {row.baseline_customers:,}",
                "Goal: arm vs control": f"{_goal(row.arm_value, metric, currency)} vs "
                f"{_goal(row.baseline_value, metric, currency)}",
                "Difference [95% interval]": f"{_difference(row.effect, metric, currency)} "
                f"[{_difference(row.ci_lower, metric, currency)}, {_difference(row.ci_upper, metric, currency)}]",
                "Incremental profit in all [95% interval]": profit,
                "ROI [95% interval]": roi,
                "Conclusion": row.conclusion,
            }
        )
    return pd.DataFrame(rows)


def waiting_table(readouts: pd.DataFrame, min_outcomes: int) -> pd.DataFrame:
    """Comparisons that cannot be read yet, and roughly how many more customers with an ended goal
    window they need: each group needs `min_outcomes` converting and non-converting customers, so
    at the conversion rate seen so far the group short of them needs (missing / rate) more."""
    rows = []
    for row in readouts[readouts["looks"] == 0].itertuples():
        customers = row.arm_customers + row.baseline_customers
        conversions = (row.arm_conversions or 0) + (row.baseline_conversions or 0)
        rate = conversions / customers if customers else 0.0
        short = max(
            max(0, min_outcomes - (converted or 0)) / rate if rate else np.inf
            for converted in (row.arm_conversions, row.baseline_conversions)
        )
        rows.append(
            {
                "Audience": f"{row.audience} v{row.version_number}",
                "Comparison": f"{row.arm} vs {row.baseline}",
                "Customers with an ended window (arm / other)": f"{row.arm_customers:,} / {row.baseline_customers:,}",
                "Conversions so far": f"{row.arm_conversions or 0} / {row.baseline_conversions or 0}",
                "Still needs": "a first conversion"
                if np.isinf(short)
                else f"about {int(np.ceil(short)):,} more "
                f"customers per group (at least {min_outcomes} converting and {min_outcomes} not in each)",
            }
        )
    return pd.DataFrame(rows)


def money_chart(history: pd.DataFrame, currency: str) -> str:
    """Incremental profit in all of each arm over control, night by night, with its interval band."""
    figure = Figure(figsize=(9, 4))
    axis = figure.subplots()
    last = []
    for (audience, version, arm), rows in history.groupby(["audience", "version_number", "arm"]):
        label = f"{audience} v{version} / {arm}"
        axis.plot(rows["ds"], rows["incremental_profit"], marker="o", label=label)
        axis.fill_between(rows["ds"], rows["profit_lower"], rows["profit_upper"], alpha=0.15)
        final = rows.iloc[-1]
        last.append(f"{label} {_interval(final.incremental_profit, final.profit_lower, final.profit_upper, currency)}")
    axis.axhline(0, color="#888", linewidth=1)
    axis.xaxis.set_major_locator(DayLocator(interval=max(1, history["ds"].nunique() // 10)))  # whole nights
    axis.xaxis.set_major_formatter(DateFormatter("%Y-%m-%d"))
    axis.set_ylabel(f"incremental profit in all, {currency}")
    axis.set_title("What each arm earned over control, by night (always-valid 95% interval)")
    axis.tick_params(axis="x", labelrotation=45)
    axis.legend(fontsize=8, bbox_to_anchor=(1.02, 1), loc="upper left")
    alt = (
        f"Line chart of incremental profit over control per audience arm across {history['ds'].nunique()} nights. "
        f"Latest night: {'; '.join(last)}."
    )
    return chart(figure, alt)


def funnel_chart(funnel: pd.DataFrame) -> str:
    """Per audience, one bar of its qualified customers split by where they left or which group they
    are in (the funnel as a picture: the widest pieces are where an audience loses people)."""
    pieces = funnel.drop(index=["qualified", "decided"], errors="ignore").T
    pieces = pieces.loc[:, pieces.sum() > 0]
    figure = Figure(figsize=(10, 0.8 + 0.45 * len(pieces)))
    axis = figure.subplots()
    left = np.zeros(len(pieces))
    for step in pieces.columns:
        axis.barh([header(name) for name in pieces.index], pieces[step], left=left, label=header(step))
        left += pieces[step].to_numpy()
    axis.set_xlabel("customers who qualified")
    axis.set_title("Funnel: where qualified customers left, and the groups of those decided")
    axis.legend(fontsize=8, bbox_to_anchor=(1.02, 1), loc="upper left")
    qualified = funnel.loc["qualified"] if "qualified" in funnel.index else funnel.sum()
    decided = funnel.loc["decided"] if "decided" in funnel.index else qualified * 0
    alt = "Stacked bar chart per audience of qualified customers by funnel step. " + "; ".join(
        f"{name}: {int(qualified[name]):,} qualified, {int(decided[name]):,} decided" for name in funnel.columns
    )
    return chart(figure, alt)


def drift_list(health: pd.DataFrame, report: Path) -> str:
    """The night's drift checks, one row each, linked to its Evidently report."""
    if health.empty:
        return "<p>No drift check ran for this night.</p>"
    rows = "".join(
        f"<tr><td>{html.escape(r.model_name)}</td><td>{html.escape(r.check_name)}</td>"
        f"<td class='{'drift' if r.status == 'drift' else 'ok'}'>{html.escape(r.status)}</td>"
        f"<td>{r.share_drifted_columns:.0%}</td>"
        f"<td>{link(r.report_path, report, 'open the report') if r.report_path else 'no report'}</td></tr>"
        for r in health.itertuples()
    )
    return (
        "<table><tr><th>Model</th><th>Check</th><th>Status</th><th>Columns drifted</th><th>Evidently report</th></tr>"
        f"{rows}</table>"
    )


def program_total(program: pd.DataFrame) -> str:
    """The program's incremental profit in all, with its interval (per-customer bounds x customers)."""
    if program.empty or pd.isna(program.iloc[0]["incremental_profit_per_customer"]):
        return ""
    row = program.iloc[0]
    customers = row["personalized_customers"]
    return (
        f"Personalization earned {_money(row['incremental_profit'], row['currency'])} profit in all "
        f"[{_money(row['incremental_profit_ci_lower'] * customers, row['currency'])}, "
        f"{_money(row['incremental_profit_ci_upper'] * customers, row['currency'])}] (95% interval) "
        f"from {row['window_start']:%Y-%m-%d} to {row['window_end']:%Y-%m-%d}."
    )


def _nothing_waiting(readouts: pd.DataFrame) -> str:
    if readouts.empty:
        return "No experiment has a comparison yet: no assigned customer's goal window has ended."
    return "Every experiment can be read."


def _table_or(frame: pd.DataFrame, empty: str) -> str:
    return frame_table(frame, index=False) if not frame.empty else f"<p>{html.escape(empty)}</p>"


def _reach_section(summary: AudienceSummary) -> str:
    """Who was decided and reached: the population's split, the maturity curve, audience x channel."""
    reasons = summary.reasons
    versions = ", ".join(f"{n} v{v}" if v else f"{n}: none" for n, v in summary.model_versions.items())
    maturity = summary.maturity.assign(share_of_population=summary.maturity["share_of_population"].map("{:.1%}".format))
    return f"""<h2>Who was reached</h2>
<p>{summary.population:,} customers: {int(reasons.get("decided", 0)):,} decided into an audience,
{int(reasons.get("too_little_data", 0)):,} get the default experience (too little data),
{int(reasons.get("no_audience", 0)):,} qualify for no audience. Models: {html.escape(versions)}.</p>
<h3>Maturity curve</h3>
<p class="note">Customers reached by demographic, behavioral and predictive audiences (one decision each).</p>
{frame_table(maturity, index=False)}
<p class="note">Rows per audience and channel; the holdout is the control group, kept out of every file.</p>
{frame_table(summary.by_channel)}"""


def render_html(summary: AudienceSummary, path: Path | None = None) -> str:
    """The marketer's page: money first (program total, each arm's profit and ROI with intervals and
    over nights), what is still waiting, then reach, funnel, experiments, actions and model health."""
    path = path or report_path(summary.ds)
    program = "<br>".join(html.escape(line) for line in program_lines(summary.program))
    total = program_total(summary.program)
    history = money_chart(summary.history, summary.currency) if not summary.history.empty else ""
    halted = "".join(
        f"<li>{html.escape(name)}: {html.escape(state)}</li>"
        for name, state in summary.status.items()
        if not state.startswith("active")
    )
    body = f"""<h1>Audiences for {summary.ds}</h1>
<h2>What personalization earned</h2>
<p class="big">{html.escape(total) or "No program total yet."}</p>
<p>{program}</p>
<h2>Money per audience and arm</h2>
<p class="note">Each arm against its control group, for customers whose goal window has ended. Intervals are
always-valid 95% intervals: they stay valid however often the page is read (docs/audiences.md). Profit is net
of contact and offer costs.</p>
{_table_or(money_table(summary.readouts, summary.currency), "No comparison has enough finished goal windows yet.")}
{history}
<h2>Experiments still waiting for data</h2>
{_table_or(waiting_table(summary.readouts, summary.min_outcomes_per_group), _nothing_waiting(summary.readouts))}
{f"<h2>Paused or shipped</h2><ul>{halted}</ul>" if halted else ""}
{_reach_section(summary)}
<h2>Funnel</h2>
{funnel_chart(summary.funnel) if not summary.funnel.empty else "<p>No audience qualified anyone.</p>"}
<details><summary>The funnel as a table</summary>{frame_table(summary.funnel.T)}</details>
<h2>Experiments</h2>
{frame_table(summary.experiments, index=False)}
<h2>Every comparison</h2>
<ul>{"".join(f"<li>{html.escape(readout_line(r, summary.currency))}</li>" for r in summary.readouts.itertuples())}</ul>
<h2>Automated actions (last {ACTIONS_DAYS} days)</h2>
{_table_or(summary.actions, "None: no audience paused, resumed or shipped a winner.")}
<h2>Model health (drift reports)</h2>
{drift_list(summary.health, path)}
<h2>Purchase probability of the exported customers</h2>
{frame_table(summary.scores)}"""
    return page(f"Audiences {summary.ds}", body)


def report_path(ds: dt.date) -> Path:
    return reports_dir() / "audiences" / f"audiences_{ds}.html"


def write_report(ds: dt.date, activation: ActivationConfig) -> Path | None:
    """The marketer's audience summary of ds (reports/audiences/); None when no audience was decided."""
    summary = audience_summary(ds, activation)
    if summary is None:
        return None
    path = report_path(ds)
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_suffix(".html.tmp")
    staged.write_text(render_html(summary, path), encoding="utf-8")
    staged.replace(path)
    return path
