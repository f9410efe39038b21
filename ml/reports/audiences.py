"""The marketer summary of a day's audiences: reach across the maturity curve, audience x channel
counts, holdout and arm sizes, the funnel and the score distribution (HTML under reports/ and text
for `make demo`)."""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ml.activation.decisions import funnel_step_position
from ml.activation.population import channel_table, read_model_versions
from ml.activation.settings import CONTROL, ActivationConfig
from ml.activation.store import ASSIGNMENTS, DECISIONS, FUNNEL
from ml.paths import reports_dir
from ml.reports.html import frame_table, page
from ml.warehouse.engine import open_warehouse
from ml.warehouse.partitions import existing_tables

MATURITY_LEVELS = ("demographic", "behavioral", "predictive")
ACTIONS_DAYS = 30  # the audit trail shown: the last 30 days
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
        marts = existing_tables(connection, "marts")
        readouts = (
            connection.execute(
                f"select {', '.join(READOUT_COLUMNS)} from marts.fct_experiment_results "
                "where ds = ? order by audience, version_number, baseline <> 'control', arm, baseline",
                [ds],
            ).df()
            if "fct_experiment_results" in marts
            else pd.DataFrame(columns=READOUT_COLUMNS)
        )
        program = (
            connection.execute("select * from marts.fct_program_readout where ds = ?", [ds]).df()
            if "fct_program_readout" in marts
            else pd.DataFrame()
        )
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
        decisions, assignments, funnel, readouts, program, actions, versions, status, exported, model_versions
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
    lines += ["    " + line for line in summary.by_channel.to_string().splitlines()]
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
        f"profit: {row['conclusion']}",
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


def render_html(summary: AudienceSummary) -> str:
    reasons = summary.reasons
    maturity = summary.maturity.assign(share_of_population=summary.maturity["share_of_population"].map("{:.1%}".format))
    versions = ", ".join(
        f"{name} v{version}" if version else f"{name}: none" for name, version in summary.model_versions.items()
    )
    read = summary.readouts[summary.readouts["looks"] > 0]
    readouts = (
        "<ul>"
        + "".join(f"<li>{html.escape(readout_line(row, summary.currency))}</li>" for row in read.itertuples())
        + "</ul>"
        if not read.empty
        else "<p>No comparison has enough finished goal windows yet.</p>"
    )
    program = "<br>".join(html.escape(line) for line in program_lines(summary.program))
    actions = (
        frame_table(summary.actions, index=False)
        if not summary.actions.empty
        else f"<p>No automated action in the last {ACTIONS_DAYS} days.</p>"
    )
    body = f"""<h1>Audiences for {summary.ds}</h1>
<h2>What personalization earned</h2>
<p>{program}</p>
<p>{summary.population} customers: {int(reasons.get("decided", 0))} decided into an audience,
{int(reasons.get("too_little_data", 0))} get the default experience (too little data),
{int(reasons.get("no_audience", 0))} qualify for no audience. Models: {html.escape(versions)}.</p>
<h2>Maturity curve</h2>
<p class="note">Customers reached in the channels by demographic, behavioral and predictive audiences
(each customer has one decision per day, so the levels do not overlap).</p>
{frame_table(maturity, index=False)}
<h2>Rows per audience and channel</h2>
<p class="note">Holdout: the audience's control group, kept out of every file to measure lift.</p>
{frame_table(summary.by_channel)}
<h2>Experiments</h2>
{frame_table(summary.experiments, index=False)}
<h2>Experiment readouts</h2>
<p class="note">Each arm against control and against the other arms, per experiment version, for customers
whose goal window has ended: the goal's difference with its always-valid interval and p-value (valid however
often it is read; see docs/audiences.md), then incremental revenue and profit (net of contact and offer costs)
and ROI with their intervals.</p>
{readouts}
<h2>Automated actions</h2>
{actions}
<h2>Funnel</h2>
<p class="note">Customers who qualified, where the others left (first reason), and the decided ones by group.</p>
{frame_table(summary.funnel)}
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
    staged.write_text(render_html(summary), encoding="utf-8")
    staged.replace(path)
    return path
