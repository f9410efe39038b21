"""One decision per customer per ds: who qualifies for which audience, who can be reached where,
which audience wins, and which experiment group the winner is in.

`decide` is a pure function of the population, the contact history and the configuration (the
property tests in tests/unit/activation/test_decisions_and_exports.py drive it with generated populations). For
each audience, in order, customers leave at the first step that excludes them, so the funnel
reconciles: qualified = sum of the exclusions + decided.

  qualified        the segment and the moment hold
  global_holdout   the customer is in the global holdout (default experience everywhere, no audience)
  paused           the audience is paused by its readout (always-valid evidence of harm)
  erased           an erasure request (never used for anything)
  too_little_data  a predictive audience, fewer than predictive_min_orders completed orders
  suppressed_<r>   a suppression the audience lists (recent buyers out of win-back, ...)
  no_consent       no consent in force at ds for any of the audience's channels
  frequency_capped every consented channel, or the audience itself, is at its cap (past exports)
  not_selected     the propensity selection (threshold or top N) did not pick them
  no_expected_profit  an uplift policy serves the audience and no arm is expected to earn more than it
                   costs for this customer (ml.activation.targeting; the exploration share is exempt)
  lost_to_priority a higher-priority audience (then a higher score) won the customer; where every
                   audience the customer could join has an uplift policy serving, the one with the
                   highest expected incremental profit wins instead
  decided          the customer's one decision: holdout (`control`) or a treated arm
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.activation.columns import consent_column
from ml.activation.segments import conditions_engine
from ml.activation.settings import CONTROL, ActivationConfig, Audience, FrequencyCap, GlobalHoldout
from ml.activation.targeting import EXPLORATION, RULES, UPLIFT, UpliftPolicy
from ml.constants import CUSTOMER_ID

DEFAULT_EXPERIENCE = "default_experience"
AUDIENCE_DECISION = "audience"
GLOBAL_HOLDOUT_KEY = "global_holdout"  # hashed in place of an audience name: independent of every audience


FUNNEL_ORDER = (
    "qualified",
    "global_holdout",
    "paused",
    "erased",
    "too_little_data",
    "suppressed_",
    "no_consent",
    "frequency_capped",
    "not_selected",
    "no_expected_profit",
    "lost_to_priority",
    "decided",
    "group_",
)


def funnel_step_position(step: str) -> int:
    """Where a step sits in the funnel (suppressions and groups are families of steps)."""
    return next(
        position
        for position, prefix in enumerate(FUNNEL_ORDER)
        if step == prefix or (step.startswith(prefix) and prefix.endswith("_"))
    )


@dataclass(frozen=True)
class DecisionSet:
    decisions: pd.DataFrame  # every customer not erased: the audience or the default experience
    assignments: pd.DataFrame  # every decided customer: audience, experiment_group, bucket, channels
    funnel: pd.DataFrame  # audience, step_order, step, customers


def assignment_buckets(customer_ids: pd.Series, audience: str, salt: str) -> np.ndarray:
    """A uniform number in [0, 1) per customer from sha256(salt|audience|customer_id): the same
    customer lands in the same group of an audience every day, and audiences are independent."""
    return np.array(
        [
            int.from_bytes(hashlib.sha256(f"{salt}|{audience}|{customer}".encode()).digest()[:8], "big") / 2**64
            for customer in customer_ids
        ],
        dtype=float,
    )


def in_global_holdout(customer_ids: pd.Series, settings: GlobalHoldout) -> np.ndarray:
    """The stable global holdout: the lowest `percent` of a hash of its own salt and the customer id."""
    if settings.percent == 0:
        return np.zeros(len(customer_ids), dtype=bool)
    return assignment_buckets(customer_ids, GLOBAL_HOLDOUT_KEY, settings.salt) < settings.percent / 100


def experiment_groups(buckets: np.ndarray, audience: Audience, shipped_arm: str | None = None) -> np.ndarray:
    """`control` for the lowest holdout_percent of buckets; the rest split over the arms by weight
    (all to the winner once it is shipped)."""
    holdout = audience.holdout_percent / 100
    arms = audience.served_arms(shipped_arm)
    weights = np.array([arm.weight for arm in arms], dtype=float)
    bounds = np.cumsum(weights / weights.sum())
    treated_position = np.clip((buckets - holdout) / (1 - holdout), 0, np.nextafter(1, 0))
    arm_index = np.minimum(np.searchsorted(bounds, treated_position, side="right"), len(arms) - 1)
    names = np.array([arm.name for arm in arms], dtype=object)[arm_index]
    return np.where(buckets < holdout, CONTROL, names)


def _matches(population: pd.DataFrame, condition: str) -> pd.Series:
    """Customers for whom a (checked, sqlglot-rendered) condition is true; NULL counts as false."""
    engine = conditions_engine()
    engine.register("population", population)
    try:
        hits = engine.execute(f"select customer_id from population where ({condition}) is true").df()
    finally:
        engine.unregister("population")  # the engine outlives the call: it must not keep the frame
    return population[CUSTOMER_ID].isin(hits[CUSTOMER_ID])


def _capped(population: pd.DataFrame, contacts: pd.DataFrame, cap: FrequencyCap | None, ds: dt.date) -> pd.Series:
    """Customers with max_contacts contact days already in the window that ends today."""
    if cap is None or contacts.empty:
        return pd.Series(False, index=population.index)
    first = pd.Timestamp(ds - dt.timedelta(days=cap.window_days - 1))
    in_window = contacts[
        (pd.to_datetime(contacts["ds"]) >= first) & (pd.to_datetime(contacts["ds"]) < pd.Timestamp(ds))
    ]
    days = in_window.groupby(CUSTOMER_ID)["ds"].nunique()
    return population[CUSTOMER_ID].map(days).fillna(0).ge(cap.max_contacts)


def _select(population: pd.DataFrame, eligible: pd.Series, audience: Audience) -> pd.Series:
    selection = audience.selection
    if selection is None:
        return eligible
    score = population["score"]
    chosen = eligible & score.notna()
    if selection.min_score is not None:
        chosen &= score >= selection.min_score
    if selection.max_score is not None:
        chosen &= score <= selection.max_score
    if selection.top_n is not None:
        ranked = population.loc[chosen, [CUSTOMER_ID, "score"]].sort_values(
            ["score", CUSTOMER_ID], ascending=[selection.order == "lowest", True]
        )
        chosen = population[CUSTOMER_ID].isin(ranked[CUSTOMER_ID].head(selection.top_n))
    return chosen


def _channels(audience: Audience, reachable: dict[str, pd.Series]) -> list[list[str]]:
    """Per customer, the channels the decision goes to: the first reachable in the audience's order of
    preference, or all of them (send_to: all)."""
    found = [
        [channel for channel, ok in zip(audience.channels, flags, strict=True) if ok]
        for flags in zip(*reachable.values(), strict=True)
    ]
    return [channels[:1] for channels in found] if audience.send_to == "first" else found


@dataclass(frozen=True)
class _Reach:
    """Who can be reached tonight, per customer of the population (aligned on its index)."""

    held_out: pd.Series
    erased: pd.Series
    too_little_data: pd.Series
    suppressions: dict[str, pd.Series]
    channel_capped: dict[str, pd.Series]
    consent: dict[str, pd.Series]


def decide(
    population: pd.DataFrame,
    history: pd.DataFrame,
    activation: ActivationConfig,
    ds: dt.date,
    paused: frozenset[str] = frozenset(),
    shipped: Mapping[str, str] | None = None,
    uplift: UpliftPolicy | None = None,
    allocations: Mapping[str, Allocation] | None = None,
) -> DecisionSet:
    """`paused`: audiences the feedback loop paused; `shipped`: audience -> the winning arm it ships;
    `uplift`: the serving uplift models' expected profits (None: every audience by its rules);
    `allocations`: the thompson audiences' shares and sticky arms (ml.activation.bandit)."""
    shipped = shipped or {}
    population = population.reset_index(drop=True)
    reach = _Reach(
        held_out=pd.Series(
            in_global_holdout(population[CUSTOMER_ID], activation.global_holdout), index=population.index
        ),
        erased=population["is_erased"].fillna(False).astype(bool),
        too_little_data=population["frequency"].fillna(0) < activation.predictive_min_orders,
        suppressions={name: _matches(population, rule) for name, rule in activation.suppressions.items()},
        channel_capped={
            channel: _capped(population, history[history["channel"] == channel], settings.frequency_cap, ds)
            for channel, settings in activation.channels.items()
        },
        consent={
            channel: population[consent_column(activation.consent_of(channel))].fillna(False).astype(bool)
            for channel in activation.channels
        },
    )
    funnel_rows: list[tuple[str, str, int]] = []
    candidates = []
    for name, audience in activation.audiences.items():
        audience_capped = _capped(population, history[history["audience"] == name], audience.frequency_cap, ds)
        chosen, rows = _candidates(population, name, audience, reach, audience_capped, name in paused)
        chosen, rows = _by_expected_profit(chosen, rows, name, audience, uplift, shipped.get(name))
        candidates.append(chosen)
        funnel_rows += rows

    found = [c[POOL_COLUMNS] for c in candidates if not c.empty]
    pool = pd.concat(found, ignore_index=True) if found else pd.DataFrame(columns=POOL_COLUMNS)
    winners, losers = arbitrate(pool)
    assigned, rows = _assign(winners, losers, activation, shipped, allocations or {})
    funnel_rows += rows

    erased = reach.erased
    decisions = population.loc[~erased, [CUSTOMER_ID]].merge(
        assigned[[CUSTOMER_ID, "audience", "experiment_group", "channels"]], on=CUSTOMER_ID, how="left"
    )
    decisions["decision"] = np.where(decisions["audience"].notna(), AUDIENCE_DECISION, DEFAULT_EXPERIENCE)
    decisions["reason"] = np.select(
        [decisions["audience"].notna(), reach.held_out[~erased].to_numpy(), reach.too_little_data[~erased].to_numpy()],
        ["decided", "global_holdout", "too_little_data"],
        "no_audience",
    )
    funnel = pd.DataFrame(funnel_rows, columns=["audience", "step", "customers"])
    funnel.insert(1, "step_order", funnel.groupby("audience").cumcount() + 1)
    return DecisionSet(decisions=decisions.reset_index(drop=True), assignments=assigned, funnel=funnel)


POOL_COLUMNS = [
    *(CUSTOMER_ID, "audience", "priority", "rank_score", "channels"),
    *("decided_by", "policy_arm", "expected_value", "second_arm", "second_value"),
]


def _by_expected_profit(
    chosen: pd.DataFrame, funnel_rows: list, name: str, audience: Audience, uplift: UpliftPolicy | None, shipped
) -> tuple[pd.DataFrame, list]:
    """The audience's candidates as the uplift policy decides them: each non-exploring customer's most
    profitable arm and its value; those whose best arm is not expected to pay leave the funnel
    (no_expected_profit). Without a serving policy (or for the exploration share, or a customer the
    models did not score), the rules: decided_by rules or exploration, no value."""
    chosen = chosen.assign(
        decided_by=RULES, policy_arm=None, expected_value=np.nan, second_arm=None, second_value=np.nan
    )
    if uplift is None or name not in uplift.audiences:
        return chosen, [*funnel_rows, (name, "no_expected_profit", 0)]
    ids = chosen[CUSTOMER_ID].reset_index(drop=True)
    best = uplift.best_arms(name, ids, [arm.name for arm in audience.served_arms(shipped)])
    exploring = uplift.exploring(ids)
    scored = best["expected_value"].notna().to_numpy()
    by_model = scored & ~exploring
    for column in ("policy_arm", "expected_value", "second_arm", "second_value"):
        chosen[column] = np.where(by_model, best[column].to_numpy(dtype=object), chosen[column].to_numpy(dtype=object))
    chosen["expected_value"] = chosen["expected_value"].astype(float)
    chosen["second_value"] = chosen["second_value"].astype(float)
    chosen["decided_by"] = np.where(by_model, UPLIFT, np.where(exploring, EXPLORATION, RULES))
    unprofitable = by_model & ~(best["expected_value"].to_numpy() > 0)
    return chosen[~unprofitable], [*funnel_rows, (name, "no_expected_profit", int(unprofitable.sum()))]


def arbitrate(pool: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Each customer's one audience: where every audience the customer could join is decided by an
    uplift model, the highest expected incremental profit wins (the Pega arbitration, causal);
    otherwise the best priority, then score. The winner records its runner-up (the next option, an
    arm of the same audience or another audience, with its value). Returns (winners, losers per audience)."""
    pool = pool.assign(valued=pool["expected_value"].notna())
    all_valued = pool.groupby(CUSTOMER_ID)["valued"].transform("all").astype(bool)
    pool["order"] = np.where(all_valued, -pool["expected_value"].fillna(0.0), pool["priority"].astype(float))
    pool = pool.sort_values(["order", "rank_score", "audience", CUSTOMER_ID], ascending=[True, False, True, True])
    following = pool.groupby(CUSTOMER_ID)[["audience", "policy_arm", "expected_value", "priority"]].shift(-1)
    pool["runner_up"] = [
        _runner_up(*row)
        for row in zip(
            pool["audience"],
            pool["second_arm"],
            pool["second_value"],
            following["audience"],
            following["policy_arm"],
            following["expected_value"],
            following["priority"],
            strict=True,
        )
    ]
    winners = pool.drop_duplicates(CUSTOMER_ID, keep="first")
    return winners, pool.drop(winners.index).groupby("audience").size()


def _runner_up(audience, second_arm, second_value, next_audience, next_arm, next_value, next_priority) -> str | None:
    """'<audience>/<arm> <expected profit>' of the best option the winner beat, or the next audience by priority."""
    options = []
    if isinstance(second_arm, str) and pd.notna(second_value):
        options.append((second_value, f"{audience}/{second_arm} {second_value:.2f}"))
    if isinstance(next_audience, str):
        if pd.notna(next_value):
            options.append((next_value, f"{next_audience}/{next_arm} {next_value:.2f}"))
        else:
            options.append((-np.inf, f"{next_audience} (priority {int(next_priority)})"))
    return max(options, key=lambda option: option[0])[1] if options else None


def _candidates(
    population: pd.DataFrame, name: str, audience, reach: _Reach, audience_capped: pd.Series, paused: bool
) -> tuple[pd.DataFrame, list[tuple[str, str, int]]]:
    """The customers one audience would take (before priorities), and its funnel up to there: each
    step removes the customers it excludes from those still remaining."""
    steps: list[tuple[str, pd.Series]] = [("global_holdout", reach.held_out)]
    steps.append(("paused", pd.Series(paused, index=population.index)))
    steps.append(("erased", reach.erased))
    if audience.is_predictive:
        steps.append(("too_little_data", reach.too_little_data))
    steps += [(f"suppressed_{rule}", reach.suppressions[rule]) for rule in audience.suppress]
    steps.append(("no_consent", ~np.logical_or.reduce([reach.consent[c] for c in audience.channels])))
    reachable = {c: reach.consent[c] & ~reach.channel_capped[c] for c in audience.channels}
    steps.append(("frequency_capped", ~np.logical_or.reduce(list(reachable.values())) | audience_capped))

    remaining = _matches(population, audience.where())
    funnel_rows = [(name, "qualified", int(remaining.sum()))]
    for step, excluded in steps:
        funnel_rows.append((name, step, int((remaining & excluded).sum())))
        remaining &= ~excluded
    selected = _select(population, remaining, audience)
    funnel_rows.append((name, "not_selected", int((remaining & ~selected).sum())))
    chosen = population.loc[selected, [CUSTOMER_ID, "score"]].copy()
    chosen["audience"] = name
    chosen["priority"] = audience.priority
    # Among audiences of equal priority, the customer goes where the model rates them best.
    score = pd.to_numeric(chosen["score"], errors="coerce").fillna(-1.0)
    chosen["rank_score"] = 1 - score if audience.selection and audience.selection.order == "lowest" else score
    chosen["channels"] = _channels(audience, {c: reachable[c][selected] for c in audience.channels})
    return chosen, funnel_rows


@dataclass(frozen=True)
class Allocation:
    """A thompson audience's night (ml.activation.bandit): tonight's share of each arm, and the arm and
    logged probability of every customer already assigned in the current version (sticky)."""

    weights: Mapping[str, float]
    sticky: pd.DataFrame  # customer_id, policy_arm, assignment_probability


def _groups(
    won: pd.DataFrame, buckets: np.ndarray, name: str, audience: Audience, salt: str, shipped, allocation
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(group, policy arm, logged probability) per customer. The holdout is the stable bucket's lowest
    holdout_percent for everyone. Treated arms: an uplift-decided customer's best arm; a thompson
    audience's customers draw an arm from tonight's shares by a second, independent bucket (held-out
    customers record it too: the readout's strata) unless they already have one in this version; the
    rest split by the configured weights."""
    holdout = audience.holdout_percent / 100
    held_out = buckets < holdout
    by_model = (won["decided_by"] == UPLIFT).to_numpy()
    policy_arm = won["policy_arm"].to_numpy(dtype=object)
    groups = np.where(by_model, np.where(held_out, CONTROL, policy_arm), experiment_groups(buckets, audience, shipped))
    arms = audience.served_arms(shipped)
    shares = {arm.name: arm.weight / sum(a.weight for a in arms) for arm in arms}
    probability = np.where(held_out, holdout, [(1 - holdout) * shares.get(g, 1.0) for g in groups])
    probability = np.where(by_model & ~held_out, 1 - holdout, probability)
    if allocation is not None and not shipped:
        adaptive = ~by_model
        # The configured arm order, not the order the weights were read in: engines return rows in
        # their own order, and the draw maps a bucket to an arm through the cumulative shares.
        names = [arm.name for arm in audience.arms() if arm.name in allocation.weights]
        bounds = np.cumsum([allocation.weights[arm] for arm in names])
        second = assignment_buckets(won[CUSTOMER_ID], f"{name}|arm", salt)
        drawn = np.array(names, dtype=object)[
            np.minimum(np.searchsorted(bounds / bounds[-1], second, "right"), len(names) - 1)
        ]
        drawn_probability = (1 - holdout) * np.array([allocation.weights[a] for a in drawn]) / bounds[-1]
        earlier = allocation.sticky.set_index(CUSTOMER_ID)
        kept = won[CUSTOMER_ID].map(earlier["policy_arm"]).to_numpy(dtype=object)
        kept_probability = won[CUSTOMER_ID].map(earlier["assignment_probability"]).to_numpy(dtype=float)
        has = pd.notna(kept)
        policy_arm = np.where(adaptive, np.where(has, kept, drawn), policy_arm)
        treated_probability = np.where(has, kept_probability, drawn_probability)
        groups = np.where(adaptive, np.where(held_out, CONTROL, policy_arm), groups)
        probability = np.where(adaptive & ~held_out, treated_probability, probability)
    return groups, policy_arm, probability


def _assign(
    winners: pd.DataFrame,
    losers: pd.Series,
    activation: ActivationConfig,
    shipped: Mapping[str, str],
    allocations: Mapping[str, Allocation],
) -> tuple[pd.DataFrame, list[tuple[str, str, int]]]:
    """Each audience's customers into its holdout and arms (by their stable bucket), with the rest of
    its funnel: lost to a higher priority, decided, and per group."""
    assignments, funnel_rows = [], []
    for name, audience in activation.audiences.items():
        won = winners[winners["audience"] == name].sort_values(CUSTOMER_ID)
        salt = audience.salt or activation.salt
        buckets = assignment_buckets(won[CUSTOMER_ID], name, salt)
        by_model = (won["decided_by"] == UPLIFT).to_numpy()
        groups, policy_arm, probability = _groups(
            won, buckets, name, audience, salt, shipped.get(name), allocations.get(name)
        )
        offer_codes = {arm.name: arm.tactic.offer_code for arm in audience.arms()}
        versions = [
            audience.experiment_version(activation.salt, shipped.get(name), by_uplift) for by_uplift in (False, True)
        ]
        assignments.append(
            pd.DataFrame(
                {
                    CUSTOMER_ID: won[CUSTOMER_ID].to_numpy(),
                    "audience": name,
                    "experiment_group": groups,
                    "bucket": buckets,
                    "channels": won["channels"].to_numpy(),
                    "experiment_version": np.where(by_model, versions[1], versions[0]),
                    "offer_code": [offer_codes.get(group) for group in groups],
                    "decided_by": won["decided_by"].to_numpy(),
                    "policy_arm": policy_arm,
                    "assignment_probability": probability,
                    "expected_value": won["expected_value"].to_numpy(dtype=float),
                    "runner_up": won["runner_up"].to_numpy(dtype=object),
                }
            )
        )
        funnel_rows.append((name, "lost_to_priority", int(losers.get(name, 0))))
        funnel_rows.append((name, "decided", len(won)))
        for group in [CONTROL, *(arm.name for arm in audience.arms())]:
            funnel_rows.append((name, f"group_{group}", int((groups == group).sum())))
    assignment_columns = [
        *(CUSTOMER_ID, "audience", "experiment_group", "bucket", "channels"),
        *("experiment_version", "offer_code", "decided_by", "policy_arm", "assignment_probability"),
        *("expected_value", "runner_up"),
    ]
    assigned = (
        pd.concat(assignments, ignore_index=True).sort_values([CUSTOMER_ID]).reset_index(drop=True)
        if assignments
        else pd.DataFrame(columns=assignment_columns)
    )
    return assigned, funnel_rows


def why_empty(funnel: pd.DataFrame, audience: str, group: str | None = None) -> str | None:
    """One line saying why `audience` has nobody to treat tonight, from its funnel (None when it has
    someone): no customer qualified, or the steps that removed every qualified customer, largest first.
    With `group`, the treated count is that group's; by default every decided customer counts."""
    steps = funnel[funnel["audience"] == audience].set_index("step")["customers"]
    qualified = int(steps.get("qualified", 0))
    treated = int(steps.get(f"group_{group}", 0)) if group else int(steps.get("decided", 0))
    if treated > 0:
        return None
    if qualified == 0:
        return "no customer qualified tonight (its segment or moment did not occur in the data up to ds)"
    excluded = steps.drop(labels=["qualified", "decided"], errors="ignore")
    excluded = excluded[~excluded.index.str.startswith("group_") & (excluded > 0)].sort_values(ascending=False)
    if excluded.empty:
        return f"{qualified} customers qualified and all of them are in the holdout (control) group"
    removed = ", ".join(f"{step} {int(count)}" for step, count in excluded.items())
    return f"all {qualified} qualified customers were removed: {removed}"
