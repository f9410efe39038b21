"""The champion/challenger gate, one mechanism for every registered model.

A new version becomes alias `champion` only if its primary metric on the current holdout is at least
the champion's, re-evaluated on the same holdout, plus a margin; otherwise it gets alias
`challenger`. Both numbers, the margin and the decision are written on the version and on its run.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from ml.config import ChampionGateConfig

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
FLOAT_TOLERANCE = 1e-12


@dataclass(frozen=True)
class GateDecision:
    model_name: str
    version: str
    metric: str
    challenger_value: float
    champion_version: str | None
    champion_value: float | None
    margin: float
    promoted: bool
    reason: str

    def tags(self) -> dict[str, str]:
        return {f"gate_{key}": "" if value is None else str(value) for key, value in asdict(self).items()}


def champion_version(client: MlflowClient, model_name: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(model_name, CHAMPION)
    except MlflowException:
        return None


def gate(
    client: MlflowClient,
    model_name: str,
    version: ModelVersion,
    challenger_value: float,
    evaluate_champion: Callable[[ModelVersion], tuple[float | None, str]],
    config: ChampionGateConfig,
) -> GateDecision:
    """Decide, set the alias, write the decision on the version and its run. `evaluate_champion`
    returns the champion's metric on the current holdout, or None and why it cannot be compared."""
    champion = champion_version(client, model_name)
    champion_value, why_not = (None, "") if champion is None else evaluate_champion(champion)
    if champion is None:
        promoted, reason = True, "no champion yet"
    elif champion_value is None:
        promoted, reason = False, f"champion v{champion.version} not comparable: {why_not}"
    # "At least" with a float tolerance: 0.2 + 0.01 is 0.21000000000000002 in binary.
    elif challenger_value - champion_value >= config.margin - FLOAT_TOLERANCE:
        promoted = True
        reason = f"{challenger_value:.4f} >= champion v{champion.version} {champion_value:.4f} + margin {config.margin}"
    else:
        promoted = False
        reason = f"{challenger_value:.4f} < champion v{champion.version} {champion_value:.4f} + margin {config.margin}"
    decision = GateDecision(
        model_name=model_name,
        version=str(version.version),
        metric=config.metric,
        challenger_value=challenger_value,
        champion_version=None if champion is None else str(champion.version),
        champion_value=champion_value,
        margin=config.margin,
        promoted=promoted,
        reason=reason,
    )
    client.set_registered_model_alias(model_name, CHAMPION if promoted else CHALLENGER, version.version)
    for key, value in decision.tags().items():
        client.set_model_version_tag(model_name, version.version, key, value)
        client.set_tag(version.run_id, key, value)
    log.info("%s v%s %s: %s", model_name, version.version, CHAMPION if promoted else CHALLENGER, reason)
    return decision


def version_for(client: MlflowClient, model_name: str, ds: dt.date) -> tuple[ModelVersion | None, str]:
    """The version that scores ds: the champion when it was trained for ds or earlier; for a
    backfill behind the champion, the newest version trained by ds (never a model that saw data
    after ds). Versions carry their training ds in tag `ds`. Returns (version or None, why)."""
    try:
        versions = client.search_model_versions(f"name = '{model_name}'")
    except MlflowException:
        versions = []
    trained_by_ds = [v for v in versions if "ds" in v.tags and dt.date.fromisoformat(v.tags["ds"]) <= ds]
    champion = champion_version(client, model_name) if versions else None
    if champion is not None and any(v.version == champion.version for v in trained_by_ds):
        return champion, "champion"
    if not trained_by_ds:
        return None, f"no {model_name} version trained on or before {ds}"
    newest = max(trained_by_ds, key=lambda v: (v.tags["ds"], int(v.version)))
    return newest, f"champion trained after {ds}: the newest version trained by then"
