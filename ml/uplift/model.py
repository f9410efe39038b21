"""Per campaign and arm: learn the effect (DR-learner, ml.uplift.learner), evaluate it on held-out
customers against random and propensity-ranked targeting (Qini), turn it into expected incremental
profit, and estimate off-policy what the uplift policy would earn against the rules."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ml.assignment import CONTROL
from ml.constants import CUSTOMER_ID
from ml.mlops.feature_store import categorical_features
from ml.uplift.dataset import FEATURE_DATE, SEND_COLUMNS
from ml.uplift.evaluation import (
    Estimate,
    LoggedData,
    QiniComparison,
    compare_rankings,
    evaluate_policies,
    transformed_outcome,
)
from ml.uplift.learner import EffectModel, Features, fit_effect
from ml.uplift.settings import ProfitTerms, UpliftConfig

NOT_FEATURES = {*SEND_COLUMNS, FEATURE_DATE, "event_timestamp", "treated", "propensity"}
GOAL, REVENUE = "goal", "revenue"
MIN_RATE = 0.01  # a treated goal rate below 1% is read as 1% when turning an effect into spend


def feature_set(rows: pd.DataFrame) -> Features:
    features = [column for column in rows.columns if column not in NOT_FEATURES]
    strings = set(categorical_features())
    return Features(sorted(c for c in features if c in strings), sorted(c for c in features if c not in strings))


def goal_outcome(rows: pd.DataFrame) -> np.ndarray:
    """The goal the campaign is judged on: revenue for a revenue goal, else converted (0/1)."""
    revenue_goal = (rows["goal_metric"] == "revenue").to_numpy()
    return np.where(revenue_goal, rows["revenue"].astype(float), rows["converted"].astype(float))


def pair_rows(sends: pd.DataFrame, campaign: str, arm: str) -> pd.DataFrame:
    """The campaign's sends of `arm` and its comparable control, each with `treated` and `propensity`: the
    probability of the arm within the pair, P(arm) / (P(arm) + P(control)), from the probabilities
    logged in the same batch (version, or day of a landed campaign). Batches without both are dropped."""
    control = sends["is_control"].astype(bool)
    # A control customer an uplift policy chose another arm for could never have had this one: left out.
    comparable = control & (sends["policy_arm"].isna() | (sends["policy_arm"] == arm))
    rows = sends[(sends["campaign_id"] == campaign) & ((sends["arm"] == arm) | comparable)]
    rows = rows.assign(treated=~rows["is_control"].astype(bool))
    batch = rows["experiment_version"].fillna("") + "|" + pd.to_datetime(rows["sent_at"]).dt.date.astype(str)
    batch = batch.where(rows["send_source"] == "campaign_sends", rows["experiment_version"].fillna(""))
    p_arm = rows["assignment_probability"].where(rows["treated"]).groupby(batch).transform("max")
    p_control = rows["assignment_probability"].where(~rows["treated"]).groupby(batch).transform("max")
    # A customer whose arm was drawn or chosen for them (policy_arm: uplift, Thompson) was given it or
    # held out: within that stratum the arm's probability is all but the holdout's.
    stratified = rows["policy_arm"].notna()
    rows = rows.assign(propensity=(p_arm / (p_arm + p_control)).where(~stratified, 1 - p_control))
    return rows[rows["propensity"].between(0, 1, inclusive="neither")].reset_index(drop=True)


@dataclass
class ArmModel:
    """The effect of one campaign arm: on the goal, and on revenue (for profit)."""

    campaign_id: str
    arm: str
    goal: EffectModel
    revenue: EffectModel
    learned_from: int  # sends
    goal_metric: str = "purchase"
    qini: QiniComparison | None = None
    serves: bool = False
    why: str = ""

    def predict(self, rows: pd.DataFrame) -> dict[str, np.ndarray]:
        """The goal's effect with its standard error, and the incremental revenue: for a revenue goal
        its own effect; otherwise the goal's effect times what a treated converter spends, mu_1(revenue)
        / mu_1(goal) (the message changes whether they buy, not how much: a far steadier estimate than
        the revenue effect's own, whose pseudo-outcomes carry the order values' whole spread)."""
        goal, revenue = self.goal.predict(rows), self.revenue.predict(rows)
        if self.goal_metric == "revenue":
            incremental = revenue["effect"]
        else:
            spend = revenue["treated"].clip(min=0) / np.clip(goal["treated"], MIN_RATE, None)
            incremental = goal["effect"] * spend
        return {
            "uplift": goal["effect"],
            "uplift_se": goal["effect_se"],
            "treated_goal": goal["treated"],
            "incremental_revenue": incremental,
            "treated_revenue": revenue["treated"],
            "control_revenue": revenue["control"],
        }


def expected_profit(predicted: dict[str, np.ndarray], terms: ProfitTerms, campaign: str, arm: str) -> np.ndarray:
    """The Pega formula, causal: margin x incremental revenue - the offer's cost on what the treated
    customer is expected to buy - the contact. The one place uplift turns into money."""
    cost = terms.cost(campaign, arm)
    return (
        terms.margin_share * predicted["incremental_revenue"]
        - cost.discount_share * predicted["treated_revenue"]
        - cost.cost_per_order * predicted["treated_goal"]
        - cost.contact_cost
    )


def realized_profit(rows: pd.DataFrame, terms: ProfitTerms) -> np.ndarray:
    """What each logged send earned: margin x revenue, less the arm's offer and contact costs."""
    costs = [terms.cost(c, a) for c, a in zip(rows["campaign_id"], rows["arm"], strict=True)]
    treated = ~rows["is_control"].astype(bool).to_numpy()
    revenue = rows["revenue"].astype(float).to_numpy()
    spent = np.array(
        [
            c.discount_share * r + c.cost_per_order * o + c.contact_cost
            for c, r, o in zip(costs, revenue, rows["orders"], strict=True)
        ]
    )
    return terms.margin_share * revenue - np.where(treated, spent, 0.0)


def learn_arm(rows: pd.DataFrame, evaluation: np.ndarray, config: UpliftConfig, campaign: str, arm: str) -> ArmModel:
    """Fit on the learning customers, compare rankings on the held-out ones, decide whether it serves."""
    learn = rows[~evaluation].reset_index(drop=True)
    test = rows[evaluation].reset_index(drop=True)
    features = feature_set(rows).learnable(learn)
    treated, e = learn["treated"].to_numpy(), learn["propensity"].to_numpy()
    fit = {
        GOAL: goal_outcome(learn),
        REVENUE: learn["revenue"].astype(float).to_numpy(),
    }
    models = {
        name: fit_effect(learn, y, treated, e, features, config.learner, config.cross_fitting_folds, config.spread_fits)
        for name, y in fit.items()
    }
    model = ArmModel(campaign, arm, models[GOAL], models[REVENUE], len(learn), str(rows["goal_metric"].iloc[0]))
    predicted = model.goal.predict(test)
    psi = transformed_outcome(goal_outcome(test), test["treated"].to_numpy(), test["propensity"].to_numpy())
    # Propensity-ranked targeting: the customers most likely to reach the goal when sent the arm.
    qini = compare_rankings(
        predicted["effect"], predicted["treated"], psi, config.bootstrap_samples, config.interval_level
    )
    model.qini = qini
    model.serves, model.why = gate(qini)
    return model


def gate(qini: QiniComparison) -> tuple[bool, str]:
    """Serves only if its Qini's interval is above zero (beats random targeting) and its Qini beats
    propensity-ranked targeting's on the same held-out sends."""
    numbers = (
        f"Qini {qini.model.value:.4f} [{qini.model.lower:.4f}, {qini.model.upper:.4f}], "
        f"propensity-ranked {qini.baseline.value:.4f}"
    )
    if not qini.model.lower > 0:
        return False, f"{numbers}: not ahead of random targeting (interval reaches 0)"
    if not qini.model.value > qini.baseline.value:
        return False, f"{numbers}: not ahead of propensity-ranked targeting"
    return True, f"{numbers}: ahead of random and of propensity-ranked targeting"


@dataclass
class PolicyEvaluation:
    campaign_id: str
    options: list[str]
    sends: int
    values: dict[str, dict[str, Estimate]] = field(default_factory=dict)
    ships: bool = False
    why: str = ""


def evaluate_campaign(
    campaign: str, rows: pd.DataFrame, arms: dict[str, ArmModel], terms: ProfitTerms, config: UpliftConfig
) -> PolicyEvaluation:
    """Off-policy value (profit per customer) on the campaign's held-out sends of: the rules (every
    customer sent, arms at their logged shares), the uplift policy (each customer's most profitable
    serving arm, nobody when none is expected to pay) and propensity targeting at the uplift policy's
    volume. The uplift policy ships if its DR lower bound beats the rules' DR estimate."""
    options = [CONTROL, *sorted(rows.loc[~rows["is_control"].astype(bool), "arm"].unique())]
    action = rows["arm"].map({name: i for i, name in enumerate(options)}).to_numpy()
    predicted = {arm: model.predict(rows) for arm, model in arms.items()}
    control_profit = (
        terms.margin_share * np.mean([p["control_revenue"] for p in predicted.values()], axis=0)
        if predicted
        else np.full(len(rows), terms.margin_share * rows["revenue"].astype(float).mean())
    )
    q = np.column_stack([control_profit] * len(options))
    profit = np.full((len(rows), len(options)), -np.inf)
    for arm, values in predicted.items():
        column = options.index(arm)
        q[:, column] = control_profit + expected_profit(values, terms, campaign, arm)
        if arms[arm].serves:
            profit[:, column] = expected_profit(values, terms, campaign, arm)
    logged = LoggedData(action, rows["assignment_probability"].to_numpy(float), realized_profit(rows, terms), q)
    policies = _policies(rows, options, profit, predicted)
    evaluation = PolicyEvaluation(campaign, options, len(rows))
    evaluation.values = evaluate_policies(logged, policies, config.bootstrap_samples, config.interval_level)
    uplift, rules = evaluation.values["uplift"]["dr"], evaluation.values["rules"]["dr"]
    evaluation.ships = bool(np.isfinite(profit).any()) and uplift.lower > rules.value
    evaluation.why = (
        f"DR profit per customer: uplift policy {uplift.value:.3f} [{uplift.lower:.3f}, {uplift.upper:.3f}] vs "
        f"rules {rules.value:.3f}: "
        + ("ships" if evaluation.ships else "does not ship (lower bound not above the rules)")
    )
    return evaluation


def _policies(rows, options, profit, predicted) -> dict[str, np.ndarray]:
    """(sends x options) action distributions of the rules, the uplift and the propensity policies."""
    n, k = len(rows), len(options)
    shares = rows.loc[~rows["is_control"].astype(bool)].groupby("arm").size()
    rules = np.zeros((n, k))
    for arm, count in shares.items():
        rules[:, options.index(arm)] = count / shares.sum()
    best = profit.argmax(axis=1)
    send = np.isfinite(profit.max(axis=1)) & (profit.max(axis=1) > 0)
    uplift = np.zeros((n, k))
    uplift[np.arange(n), np.where(send, best, 0)] = 1.0
    # Propensity targeting at the same volume: the likeliest buyers get the arm the rules send most.
    likely = np.mean([p["treated_goal"] for p in predicted.values()], axis=0) if predicted else np.zeros(n)
    volume = int(send.sum())
    chosen = np.zeros(n, dtype=bool)
    chosen[np.argsort(-likely, kind="stable")[:volume]] = True
    main_arm = options.index(shares.idxmax()) if len(shares) else 0
    propensity = np.zeros((n, k))
    propensity[np.arange(n), np.where(chosen, main_arm, 0)] = 1.0
    return {"rules": rules, "uplift": uplift, "propensity_same_volume": propensity}


def score_customers(
    rows: pd.DataFrame, arms: list[ArmModel], terms: ProfitTerms, serving: set[tuple[str, str]]
) -> pd.DataFrame:
    """One row per customer and campaign arm: the predicted uplift (goal) with its standard error,
    the incremental revenue, the expected incremental profit, and whether the arm serves."""
    frames = []
    for model in arms:
        predicted = model.predict(rows)
        frames.append(
            pd.DataFrame(
                {
                    CUSTOMER_ID: rows[CUSTOMER_ID].to_numpy(),
                    "campaign_id": model.campaign_id,
                    "arm": model.arm,
                    "uplift": predicted["uplift"],
                    "uplift_se": predicted["uplift_se"],
                    "incremental_revenue": predicted["incremental_revenue"],
                    "expected_profit": expected_profit(predicted, terms, model.campaign_id, model.arm),
                    "serves": (model.campaign_id, model.arm) in serving,
                }
            )
        )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
