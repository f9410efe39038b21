"""The marketer summary of a day's audiences: reach across the maturity curve, audience x channel
counts, holdout and arm sizes, the funnel and the score distribution (HTML under reports/ and text
for `make demo`)."""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from ml.activation.decisions import funnel_step_position
from ml.activation.population import channel_table, existing_tables, read_model_versions
from ml.activation.settings import CONTROL
from ml.activation.store import ASSIGNMENTS, DECISIONS, FUNNEL
from ml.config import load_config, reports_dir, warehouse_path

MATURITY_LEVELS = ("demographic", "behavioral", "predictive")


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
    readouts: pd.DataFrame  # arms against control whose goal window has passed (marts.fct_experiment_results)
    status: dict[str, str]  # audience -> "active" or "paused: <why>"


def audience_summary(ds: dt.date) -> AudienceSummary | None:
    activation = load_config().activation
    with duckdb.connect(str(warehouse_path())) as connection:
        if "decisions" not in existing_tables(connection, "activation"):
            return None
        decisions = connection.execute(f"select * from {DECISIONS} where ds = ?", [ds]).df()
        if decisions.empty:
            return None
        assignments = connection.execute(f"select * from {ASSIGNMENTS} where ds = ?", [ds]).df()
        funnel = connection.execute(f"select * from {FUNNEL} where ds = ? order by audience, step_order", [ds]).df()
        readouts = (
            connection.execute(
                "select audience, arm, control_customers, arm_customers, control_rate, arm_rate, absolute_lift, "
                "ci_lower, ci_upper, p_value_holm, mde_at_80_power, conclusion from marts.fct_experiment_results "
                "where ds = ? and p_value is not null order by audience, arm",
                [ds],
            ).df()
            if "fct_experiment_results" in existing_tables(connection, "marts")
            else pd.DataFrame()
        )
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
    experiments = pd.DataFrame(
        [
            {
                "audience": name,
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
        model_versions=read_model_versions(ds),
        readouts=readouts,
        status=status,
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
    paused = {name: state for name, state in summary.status.items() if state.startswith("paused")}
    lines += [f"  {name} {state}" for name, state in paused.items()]
    if summary.readouts.empty:
        lines.append("  experiment readouts: no holdout has finished its goal window yet")
    else:
        lines.append("  experiment readouts (arm against control, goal window finished; marts.fct_experiment_results):")
        for row in summary.readouts.itertuples():
            lines.append(
                f"    {row.audience} / {row.arm}: {row.arm_rate:.1%} (n={row.arm_customers}) vs control "
                f"{row.control_rate:.1%} (n={row.control_customers}), lift {row.absolute_lift:+.1%} "
                f"[{row.ci_lower:+.1%}, {row.ci_upper:+.1%}], Holm p={_p_value(row.p_value_holm)}, "
                f"MDE {row.mde_at_80_power:.1%}: {row.conclusion}"
            )
    return lines


def _p_value(p_value: float) -> str:
    return "<0.001" if p_value < 0.001 else f"{p_value:.3f}"


CSS = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f3f3f3}
.note{color:#555;max-width:60em}"""


def _table(frame: pd.DataFrame, index: bool = True, float_format: str = "{:.3f}") -> str:
    return frame.to_html(index=index, float_format=float_format.format, na_rep="", border=0)


def render_html(summary: AudienceSummary) -> str:
    reasons = summary.reasons
    maturity = summary.maturity.assign(share_of_population=summary.maturity["share_of_population"].map("{:.1%}".format))
    versions = ", ".join(
        f"{name} v{version}" if version else f"{name}: none" for name, version in summary.model_versions.items()
    )
    readouts = (
        _table(summary.readouts, index=False)
        if not summary.readouts.empty
        else "<p>No holdout has finished its goal window yet.</p>"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Audiences {summary.ds}</title><style>{CSS}</style></head>
<body>
<h1>Audiences for {summary.ds}</h1>
<p>{summary.population} customers: {int(reasons.get("decided", 0))} decided into an audience,
{int(reasons.get("too_little_data", 0))} get the default experience (too little data),
{int(reasons.get("no_audience", 0))} qualify for no audience. Models: {html.escape(versions)}.</p>
<h2>Maturity curve</h2>
<p class="note">Customers reached in the channels by demographic, behavioral and predictive audiences
(each customer has one decision per day, so the levels do not overlap).</p>
{_table(maturity, index=False)}
<h2>Rows per audience and channel</h2>
<p class="note">Holdout: the audience's control group, kept out of every file to measure lift.</p>
{_table(summary.by_channel)}
<h2>Experiments</h2>
{_table(summary.experiments, index=False)}
<h2>Experiment readouts</h2>
<p class="note">Each arm against its control group on the audience's goal, for customers whose goal window
has ended: 95% interval of the difference, two-proportion z-test p-value (Holm-corrected across arms) and the
minimum detectable effect at 80% power.</p>
{readouts}
<h2>Funnel</h2>
<p class="note">Customers who qualified, where the others left (first reason), and the decided ones by group.</p>
{_table(summary.funnel)}
<h2>Purchase probability of the exported customers</h2>
{_table(summary.scores)}
</body></html>
"""


def report_path(ds: dt.date) -> Path:
    return reports_dir() / "audiences" / f"audiences_{ds}.html"


def write_report(ds: dt.date) -> Path | None:
    summary = audience_summary(ds)
    if summary is None:
        return None
    path = report_path(ds)
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_suffix(".html.tmp")
    staged.write_text(render_html(summary), encoding="utf-8")
    staged.replace(path)
    return path
