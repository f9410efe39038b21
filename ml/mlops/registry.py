"""The gate every registered model passes, and which model (or baseline) serves a ds.

A new version becomes alias `champion` only if its primary metric on the current holdout beats
the baseline's (popularity, the RFM heuristic) on the same holdout by the margin, and the current
champion's, re-evaluated there, by the margin too; otherwise it gets alias `challenger`. A champion
that no longer beats the baseline on today's holdout loses its alias. When no version qualifies the
baseline serves: the recommender's popularity fallbacks, the propensity model's calibrated RFM
score (`strategy` and `model_name` say so). Every number, the margin, the decision and what serves
are written on the version and on its run (tags `gate_*`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from ml.mlops.settings import ChampionGateConfig

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
BASELINE = "baseline"
FLOAT_TOLERANCE = 1e-12


@dataclass(frozen=True)
class ChampionCheck:
    """The champion's metric on this holdout, or why it has none: `trained_later` when it learnt
    from data after this holdout (a backfill behind it), else it saw part of this holdout."""

    value: float | None
    why: str = ""
    trained_later: bool = False


@dataclass(frozen=True)
class GateDecision:
    model_name: str
    version: str
    metric: str
    challenger_value: float
    baseline: str  # the baseline's name
    baseline_value: float
    champion_version: str | None
    champion_value: float | None
    margin: float
    promoted: bool
    serves: str  # "model" or "baseline": what scores ds from this decision on
    serving_version: str | None  # the version that serves when a model does
    reason: str

    def tags(self) -> dict[str, str]:
        return {f"gate_{key}": "" if value is None else str(value) for key, value in asdict(self).items()}

    @property
    def summary(self) -> str:
        """One line for logs, the nightly summary and the KPI report."""
        served = f"v{self.serving_version} serves" if self.serves == "model" else f"the {self.baseline} baseline serves"
        return f"{served}: {self.reason}"


def champion_version(client: MlflowClient, model_name: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(model_name, CHAMPION)
    except MlflowException:
        return None


def last_version_before(client: MlflowClient, model_name: str, ds: dt.date) -> ModelVersion | None:
    """The newest version trained for a day before ds (what the night before left), or None. Only
    earlier days count, so a rerun of ds decides as its first run did."""
    try:
        versions = client.search_model_versions(f"name = '{model_name}'")
    except MlflowException:
        return None
    before = [v for v in versions if "ds" in v.tags and dt.date.fromisoformat(v.tags["ds"]) < ds]
    return max(before, key=lambda v: (v.tags["ds"], int(v.version))) if before else None


def _beats(value: float, other: float, margin: float) -> bool:
    # "At least" with a float tolerance: 0.2 + 0.01 is 0.21000000000000002 in binary.
    return value - other >= margin - FLOAT_TOLERANCE


def gate(
    client: MlflowClient,
    model_name: str,
    version: ModelVersion,
    challenger_value: float,
    baseline: tuple[str, float],
    evaluate_champion: Callable[[ModelVersion], ChampionCheck],
    config: ChampionGateConfig,
) -> GateDecision:
    """Decide, set the aliases, write the decision on the version and its run. `baseline` is the
    baseline's (name, metric) on the same holdout; `evaluate_champion` re-evaluates the champion."""
    baseline_name, baseline_value = baseline
    margin, this = config.margin, str(version.version)
    numbers = f"{config.metric} {challenger_value:.4f} vs {baseline_name} {baseline_value:.4f}"
    beats_baseline = _beats(challenger_value, baseline_value, margin)
    champion = champion_version(client, model_name)
    check = ChampionCheck(None) if champion is None else evaluate_champion(champion)
    demote_champion = False
    if champion is None:
        promoted = beats_baseline
        reason = f"no champion yet; {numbers} + margin {margin}"
        serving = this if promoted else None
    elif check.value is None and check.trained_later:
        # A backfill behind the champion: this version may serve its own ds, never replace it.
        promoted = False
        reason = f"champion v{champion.version} not comparable: {check.why}; {numbers} + margin {margin}"
        serving = this if beats_baseline else None
    elif check.value is None:
        # The champion saw part of this holdout: the newest version that beats the baseline wins.
        promoted = beats_baseline
        reason = f"champion v{champion.version} not comparable ({check.why}); {numbers} + margin {margin}"
        serving = this if promoted else str(champion.version)
    else:
        champion_qualifies = _beats(check.value, baseline_value, margin)
        promoted = beats_baseline and (_beats(challenger_value, check.value, margin) or not champion_qualifies)
        numbers += f" and champion v{champion.version} {check.value:.4f}"
        reason = f"{numbers}, margin {margin}"
        serving = this if promoted else (str(champion.version) if champion_qualifies else None)
        demote_champion = not promoted and not champion_qualifies
        if demote_champion:
            reason += f"; champion v{champion.version} no longer beats the baseline"
    decision = GateDecision(
        model_name=model_name,
        version=this,
        metric=config.metric,
        challenger_value=challenger_value,
        baseline=baseline_name,
        baseline_value=baseline_value,
        champion_version=None if champion is None else str(champion.version),
        champion_value=check.value,
        margin=margin,
        promoted=promoted,
        serves="model" if serving else BASELINE,
        serving_version=serving,
        reason=reason,
    )
    client.set_registered_model_alias(model_name, CHAMPION if promoted else CHALLENGER, version.version)
    if demote_champion:
        client.delete_registered_model_alias(model_name, CHAMPION)
        client.set_model_version_tag(model_name, champion.version, "gate_demoted_by", this)
    for key, value in decision.tags().items():
        client.set_model_version_tag(model_name, version.version, key, value)
        client.set_tag(version.run_id, key, value)
    log.info("%s v%s %s; %s", model_name, this, CHAMPION if promoted else CHALLENGER, decision.summary)
    return decision


@dataclass(frozen=True)
class Serving:
    """What scores a ds: `version` (None when nothing was ever trained by then) and whether its
    model serves or the baseline it carries (`serves_model` False), with why."""

    version: ModelVersion | None
    serves_model: bool
    why: str


def serving_for(client: MlflowClient, model_name: str, ds: dt.date) -> Serving:
    """The champion when it was trained for ds or earlier. Otherwise (a backfill behind the
    champion, or no champion) what the gate decided for the newest version trained by ds: its
    serving version, or the baseline. Never a model that saw data after ds. Versions carry their
    training ds in tag `ds`."""
    try:
        versions = client.search_model_versions(f"name = '{model_name}'")
    except MlflowException:
        versions = []
    trained_by_ds = [v for v in versions if "ds" in v.tags and dt.date.fromisoformat(v.tags["ds"]) <= ds]
    champion = champion_version(client, model_name) if versions else None
    if champion is not None and any(v.version == champion.version for v in trained_by_ds):
        return Serving(champion, True, "champion")
    if not trained_by_ds:
        return Serving(None, False, f"no {model_name} version trained on or before {ds}")
    newest = max(trained_by_ds, key=lambda v: (v.tags["ds"], int(v.version)))
    serves = newest.tags.get("gate_serves")
    if serves == BASELINE:
        return Serving(
            newest, False, f"no version beats the baseline (v{newest.version}: {newest.tags.get('gate_reason')})"
        )
    chosen = newest.tags.get("gate_serving_version") or str(newest.version)
    by_number = {str(v.version): v for v in trained_by_ds}
    if chosen not in by_number:  # legacy versions without the tag, or a serving version newer than ds
        chosen = str(newest.version)
    why = "no champion" if champion is None else "champion trained after ds"
    return Serving(
        by_number[chosen], True, f"{why}: v{chosen}, the version the gate chose for the newest training by {ds}"
    )


def version_for(client: MlflowClient, model_name: str, ds: dt.date) -> tuple[ModelVersion | None, str]:
    """(version, why) of serving_for: the version whose training data a ds is compared with."""
    serving = serving_for(client, model_name, ds)
    return serving.version, serving.why
