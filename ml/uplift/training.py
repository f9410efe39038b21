"""The train_uplift stage: learn every campaign arm's effect from the randomized sends whose goal
windows ended by ds, gate each arm (Qini against random and propensity-ranked targeting), estimate
each campaign's uplift policy off-policy against the rules, register the bundle in MLflow as `uplift`
and record the evidence (marts.uplift_arms, marts.uplift_policy_value)."""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient

from ml.mlops.lifecycle import (
    FINGERPRINT,
    describe_version,
    reused,
    skipped,
    training_fingerprint,
    training_run,
    version_trained_as,
)
from ml.mlops.registry import CHAMPION, mark_interrupted, set_alias
from ml.mlops.tracking import BundledModel, frame_hash, log_and_register
from ml.uplift.dataset import arm_pairs, held_out, read_sends
from ml.uplift.model import ArmModel, PolicyEvaluation, evaluate_campaign, learn_arm, pair_rows
from ml.uplift.settings import ProfitTerms, UpliftConfig
from ml.warehouse.declared import ddl
from ml.warehouse.partitions import replace_partition

log = logging.getLogger(__name__)

MODEL_NAME = "uplift"
ARMS_TABLE = "marts.uplift_arms"
POLICY_TABLE = "marts.uplift_policy_value"
SERVING_TAG = "uplift_serving"  # JSON list of "campaign/arm" that serve (gate passed, campaign ships)


@dataclass
class UpliftBundle:
    ds: str
    arms: list[ArmModel]
    evaluations: list[PolicyEvaluation]
    terms: ProfitTerms

    def serving(self) -> set[tuple[str, str]]:
        shipping = {e.campaign_id for e in self.evaluations if e.ships}
        return {(a.campaign_id, a.arm) for a in self.arms if a.serves and a.campaign_id in shipping}


class UpliftPyfunc(BundledModel):
    """Input: the customer feature columns; output: one column of predicted uplift per campaign arm."""

    bundle: UpliftBundle

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return pd.DataFrame(
            {f"{arm.campaign_id}/{arm.arm}": arm.predict(model_input)["uplift"] for arm in self.bundle.arms}
        )


def load_bundle(model_uri: str) -> UpliftBundle:
    return mlflow.pyfunc.load_model(model_uri).unwrap_python_model().bundle


def learn(sends: pd.DataFrame, config: UpliftConfig, terms: ProfitTerms) -> tuple[UpliftBundle | None, list[str]]:
    """Every arm with enough sends, then every campaign's policy evaluation; and why arms were skipped."""
    evaluation = held_out(sends["customer_id"], config.evaluation_share)
    arms, skipped_arms = [], []
    for campaign, arm in arm_pairs(sends):
        rows = pair_rows(sends, campaign, arm)
        problem = too_little(rows, config, f"{campaign}/{arm}")
        if problem:
            skipped_arms.append(problem)
            continue
        arms.append(learn_arm(rows, held_out(rows["customer_id"], config.evaluation_share), config, campaign, arm))
    if not arms:
        return None, skipped_arms
    evaluations = []
    for campaign in sorted({a.campaign_id for a in arms}):
        # Off-policy evaluation needs every arm possible for every send: the randomized ones only (an
        # uplift-decided customer could get one arm or the holdout, no other).
        randomized = sends["policy_arm"].isna()
        rows = sends[(sends["campaign_id"] == campaign) & evaluation & randomized].reset_index(drop=True)
        models = {a.arm: a for a in arms if a.campaign_id == campaign}
        evaluations.append(evaluate_campaign(campaign, rows, models, terms, config))
    return UpliftBundle("", arms, evaluations, terms), skipped_arms


def too_little(rows: pd.DataFrame, config: UpliftConfig, name: str) -> str | None:
    """Why an arm cannot be learned (too few sends or conversions in it or its control), or None."""
    for group, part in (("treated", rows[rows["treated"]]), ("control", rows[~rows["treated"]])):
        converting = int(part["converted"].sum())
        if len(part) < config.min_sends_per_group or converting < config.min_conversions_per_group:
            return (
                f"{name}: {len(part)} {group} sends with a complete goal window, {converting} converting; "
                f"needs {config.min_sends_per_group} and {config.min_conversions_per_group} "
                "(uplift.min_sends_per_group, uplift.min_conversions_per_group): land more campaign history"
            )
    return None


def train_uplift(ds: dt.date, config: UpliftConfig, terms: ProfitTerms) -> dict[str, object]:
    """Train, gate, evaluate and register the uplift models for ds; a small summary (XCom)."""
    ds_text = ds.isoformat()
    if not config.enabled:
        return skipped(MODEL_NAME, ds_text, "uplift.enabled is false: every audience decides by its rules")
    data = read_sends(ds, config.max_snapshot_age_days, config.training_max_sends)
    if data.rows.empty:
        return skipped(
            MODEL_NAME,
            ds_text,
            "no randomized send has a completed goal window and a feature snapshot by ds: land campaign_sends "
            "(with a control group) or let the audiences' holdouts run past their goal windows",
        )
    fingerprint = training_fingerprint(frame_hash(data.rows), config.model_dump_json(), repr(terms))
    same = version_trained_as(MODEL_NAME, fingerprint, ds, load_bundle)
    if same is not None:  # recorded on the version: no run without a model
        bundle = load_bundle(f"models:/{MODEL_NAME}/{same.version}")
        write_evidence(ds, bundle, str(same.version))
        reason = f"its sends, configuration and economics are those of v{same.version} (ds {same.tags['ds']})"
        return reused(MODEL_NAME, ds_text, same.version, reason) | {"serving": sorted(map("/".join, bundle.serving()))}
    with training_run(MODEL_NAME, ds_text, data.rows) as run:
        mlflow.set_tag(FINGERPRINT, fingerprint)
        bundle, skipped_arms = learn(data.rows, config, terms)
        mlflow.log_params(
            {
                "ds": ds_text,
                "sends": len(data.rows),
                "sends_available": data.available,
                "sends_without_snapshot": data.without_snapshot,
            }
        )
        if bundle is None:
            return skipped(MODEL_NAME, ds_text, "no campaign arm has enough sends: " + "; ".join(skipped_arms))
        bundle.ds = ds_text
        version = register(bundle, data.rows, ds_text)
        write_evidence(ds, bundle, version)
    serving = sorted(map("/".join, bundle.serving()))
    return {
        "status": "trained",
        "run_id": run.info.run_id,
        "version": version,
        "serving": serving,
        "skipped_arms": skipped_arms,
        "gate": {f"{a.campaign_id}/{a.arm}": a.why for a in bundle.arms},
        "policy": {e.campaign_id: e.why for e in bundle.evaluations},
        "alerts": [] if serving else ["uplift: no campaign arm passed the gate; every audience decides by its rules"],
    }


def register(bundle: UpliftBundle, rows: pd.DataFrame, ds: str) -> str:
    """Log the metrics, register the bundle, tag what serves; champion: the newest version with an arm serving."""
    for arm in bundle.arms:
        key = f"{arm.campaign_id}.{arm.arm}"
        mlflow.log_metrics(
            {f"{key}.{name}": value for name, value in arm.qini.model.as_dict("qini").items()}
            | {f"{key}.propensity_qini": arm.qini.baseline.value, f"{key}.serves": float(arm.serves)}
        )
    for evaluation in bundle.evaluations:
        for policy, estimates in evaluation.values.items():
            mlflow.log_metrics({f"{evaluation.campaign_id}.{policy}.{name}": e.value for name, e in estimates.items()})
    client = MlflowClient()
    mark_interrupted(client, MODEL_NAME)
    example = rows.drop(columns=[c for c in rows.columns if c.startswith("_")]).head(3)
    version = log_and_register(MODEL_NAME, UpliftPyfunc(), bundle, example, ds, ["scikit-learn", "mlflow", "pandas"])
    this = str(version.version)
    fingerprint = client.get_run(version.run_id).data.tags.get(FINGERPRINT)
    serving = sorted(map("/".join, bundle.serving()))
    tags = {
        SERVING_TAG: json.dumps(serving),
        "gate_serves": "model" if serving else "baseline",
        "gate_reason": "; ".join(
            [
                *(f"{a.campaign_id}/{a.arm}: {a.why}" for a in bundle.arms),
                *(f"{e.campaign_id}: {e.why}" for e in bundle.evaluations),
            ]
        )[:4900],
        **({FINGERPRINT: fingerprint} if fingerprint else {}),
    }
    for key, value in tags.items():
        client.set_model_version_tag(MODEL_NAME, this, key, value)
    arms = ", ".join(f"{a.campaign_id}/{a.arm}" for a in bundle.arms)
    serves = f"serving {', '.join(serving)}" if serving else "no arm serves: every audience decides by its rules"
    describe_version(
        client,
        MODEL_NAME,
        this,
        f"Uplift (DR-learner) of {arms}, learned from the randomized sends whose goal windows ended by {ds}; "
        f"{serves}. {tags['gate_reason']}",
    )
    if serving:
        set_alias(client, MODEL_NAME, CHAMPION, this, ds)
    return this


def write_evidence(ds: dt.date, bundle: UpliftBundle, version: str) -> None:
    """The ds partitions of marts.uplift_arms and marts.uplift_policy_value."""
    serving = bundle.serving()
    arms = pd.DataFrame(
        [
            {
                "campaign_id": a.campaign_id,
                "arm": a.arm,
                "sends_learned": a.learned_from,
                **a.qini.model.as_dict("qini"),
                "propensity_qini": a.qini.baseline.value,
                **a.qini.difference.as_dict("qini_gain"),
                "passes_gate": a.serves,
                "serves": (a.campaign_id, a.arm) in serving,
                "reason": a.why,
                "model_version": version,
            }
            for a in bundle.arms
        ]
    )
    policy = pd.DataFrame(
        [
            {
                "campaign_id": e.campaign_id,
                "policy": name,
                "estimator": estimator,
                "value": estimate.value,
                "lower": estimate.lower,
                "upper": estimate.upper,
                "sends": e.sends,
                "ships": e.ships,
                "model_version": version,
            }
            for e in bundle.evaluations
            for name, estimates in e.values.items()
            for estimator, estimate in estimates.items()
        ]
    )
    policy = policy.replace([np.inf, -np.inf], np.nan)
    replace_partition(
        ARMS_TABLE, ddl(ARMS_TABLE), ds, arms.assign(ds=ds), order_by="campaign_id, arm", purge_erased=False
    )
    replace_partition(
        POLICY_TABLE,
        ddl(POLICY_TABLE),
        ds,
        policy.assign(ds=ds),
        order_by="campaign_id, policy, estimator",
        purge_erased=False,
    )
