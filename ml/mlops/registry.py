"""The gate every registered model passes, and which model (or baseline) serves a ds.

Against the baseline (popularity, the RFM heuristic), on the current holdout: a version must be
ahead by the margin on the primary metric to serve at all. Against the current champion, re-evaluated
on the same holdout, a challenger must be better by evidence, not by noise: a one-sided paired t-test
on the per-customer score (NDCG@k of what each customer is served; minus the log loss of each
customer's prediction) must reject "no better" at `alpha` (default 0.025: the 95% interval of the
mean gain lies above 0) and the mean gain must reach the margin. A champion keeps serving while it
is not significantly worse than the baseline (the same paired test, the other way round); when it
is, it loses its alias. Otherwise a new version gets alias
`challenger`. When no version qualifies the baseline serves: the recommender's popularity
fallbacks, the propensity model's calibrated RFM score (`strategy` and `model_name` say so). Every
number, the tests' intervals, the decision and what serves are written on the version and its run
(tags `gate_*`, metrics `gate_*`).

A version whose artifact cannot be loaded (truncated, deleted, written by incompatible code) is
tagged `artifact_error` with the error, loses the champion alias and never serves again; a version
left without a gate decision by a crash (no `gate_serves` tag) never serves either. Each alias a
version holds is recorded on it (`alias_champion_since`, `alias_champion_until`, ...): the alias
history.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from scipy import stats

from ml.mlops.settings import ChampionGateConfig

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
BASELINE = "baseline"
FLOAT_TOLERANCE = 1e-12
ARTIFACT_ERROR = "artifact_error"
GATE_SERVES = "gate_serves"


@dataclass(frozen=True)
class ChampionCheck:
    """The champion's metric on this holdout, or why it has none: `trained_later` when it learnt
    from data after this holdout (a backfill behind it), `unreadable` when its artifact could not be
    loaded, else it saw part of this holdout. `per_customer`: its score per holdout customer, in the
    order of the challenger's (for the paired test)."""

    value: float | None
    why: str = ""
    trained_later: bool = False
    unreadable: bool = False
    per_customer: np.ndarray | None = None


@dataclass(frozen=True)
class PerCustomer:
    """Per-customer scores on the gate's holdout, higher is better, the same customers in the same
    order for every model compared: `name` says what they are."""

    name: str
    challenger: np.ndarray
    baseline: np.ndarray


@dataclass(frozen=True)
class PairedTest:
    """Mean of `better - worse` per customer, its two-sided (1 - 2 alpha) interval (95% at the default
    alpha 0.025), and the one-sided paired t-test's p-value for "better is not ahead" (Student 1908;
    valid for n in the hundreds whatever the scores' shape, by the central limit theorem). The
    interval lies above 0 exactly when the test rejects at alpha: the decision and the interval shown
    never disagree."""

    mean: float
    low: float
    high: float
    p_value: float
    customers: int

    def ahead(self, alpha: float) -> bool:
        return self.p_value < alpha

    def line(self) -> str:
        return f"{self.mean:+.4f} [{self.low:+.4f}, {self.high:+.4f}], p={self.p_value:.3g}, n={self.customers}"


def paired_test(better: np.ndarray, worse: np.ndarray, alpha: float = 0.025) -> PairedTest:
    """Is `better` ahead of `worse`, customer by customer? Identical scores give p = 1."""
    differences = np.asarray(better, dtype=float) - np.asarray(worse, dtype=float)
    n = len(differences)
    mean = float(differences.mean()) if n else 0.0
    spread = float(differences.std(ddof=1)) if n > 1 else 0.0
    if n < 2 or spread == 0.0:
        return PairedTest(mean, mean, mean, 0.0 if mean > 0 and n > 1 else 1.0, n)
    error = spread / np.sqrt(n)
    half_width = float(stats.t.ppf(1 - alpha, n - 1) * error)
    p_value = float(stats.t.sf(mean / error, n - 1))
    return PairedTest(mean, mean - half_width, mean + half_width, p_value, n)


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
    versus_champion: PairedTest | None = None  # challenger - champion, per customer
    champion_versus_baseline: PairedTest | None = None  # champion - baseline, per customer

    def tags(self) -> dict[str, str]:
        return {
            f"gate_{key}": "" if value is None else str(value)
            for key, value in asdict(self).items()
            if key not in ("versus_champion", "champion_versus_baseline")
        }

    def metrics(self) -> dict[str, float]:
        """The paired tests as MLflow metrics (charts across versions), beside the gate's values."""
        found = {}
        for name, test in (
            ("vs_champion", self.versus_champion),
            ("champion_vs_baseline", self.champion_versus_baseline),
        ):
            if test is not None:
                found.update(
                    {
                        f"gate_{name}_delta": test.mean,
                        f"gate_{name}_ci_low": test.low,
                        f"gate_{name}_ci_high": test.high,
                        f"gate_{name}_p_value": test.p_value,
                        f"gate_{name}_customers": float(test.customers),
                    }
                )
        return found

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


def usable(version: ModelVersion) -> bool:
    """A version that may serve: the gate decided on it and its artifact was never found unreadable."""
    return GATE_SERVES in version.tags and ARTIFACT_ERROR not in version.tags


def set_alias(client: MlflowClient, model_name: str, alias: str, version: str, ds: str) -> None:
    """Move `alias` to `version`, keeping the history as tags on both versions."""
    try:
        previous = client.get_model_version_by_alias(model_name, alias)
    except MlflowException:
        previous = None
    if previous is not None and str(previous.version) != str(version):
        client.set_model_version_tag(model_name, previous.version, f"alias_{alias}_until", ds)
    client.set_registered_model_alias(model_name, alias, version)
    if previous is None or str(previous.version) != str(version):
        client.set_model_version_tag(model_name, version, f"alias_{alias}_since", ds)


def drop_alias(client: MlflowClient, model_name: str, alias: str, version: str, ds: str) -> None:
    client.delete_registered_model_alias(model_name, alias)
    client.set_model_version_tag(model_name, version, f"alias_{alias}_until", ds)


def mark_unreadable(client: MlflowClient, model_name: str, version: str, error: BaseException, ds: str) -> str:
    """Tag a version whose artifact cannot be loaded and take the champion alias from it; returns the
    one line that says what happened and what to do."""
    cause = f"{type(error).__name__}: {error}".replace("\n", " ")[:500]
    client.set_model_version_tag(model_name, version, ARTIFACT_ERROR, cause)
    champion = champion_version(client, model_name)
    if champion is not None and str(champion.version) == str(version):
        drop_alias(client, model_name, CHAMPION, version, ds)
    message = (
        f"{model_name} v{version}'s artifact cannot be loaded ({cause}): the version is demoted (tag "
        f"{ARTIFACT_ERROR}); " + unreadable_fix(model_name, ds)
    )
    log.error(message)
    return message


def unreadable_fix(model_name: str, ds: str) -> str:
    """What to do about a version demoted for an unreadable artifact (the alert and the summary say it)."""
    return (
        "it never serves again. Restore the artifact store ($PZ_DATA_DIR/mlartifacts) from a backup, or let "
        f"tonight's training replace it: python -m ml pipeline --ds {ds} --stage train_{model_name}"
    )


def mark_interrupted(client: MlflowClient, model_name: str) -> list[str]:
    """Versions registered by a run that was killed before its gate decided: tagged, never served."""
    try:
        versions = client.search_model_versions(f"name = '{model_name}'")
    except MlflowException:
        return []
    found = [str(v.version) for v in versions if GATE_SERVES not in v.tags and "gate_interrupted" not in v.tags]
    for version in found:
        client.set_model_version_tag(
            model_name, version, "gate_interrupted", "registered by a run that stopped before the gate decided"
        )
        log.warning("%s v%s has no gate decision (its run was stopped): it never serves", model_name, version)
    return found


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
    per_customer: PerCustomer | None = None,
) -> GateDecision:
    """Decide, set the aliases, write the decision on the version and its run. `baseline` is the
    baseline's (name, metric) on the same holdout; `evaluate_champion` re-evaluates the champion;
    `per_customer` holds the challenger's and the baseline's per-customer scores for the paired tests
    (without it, the champion is compared by the margin alone)."""
    baseline_name, baseline_value = baseline
    margin, this = config.margin, str(version.version)
    ds = version.tags.get("ds", "")
    numbers = f"{config.metric} {challenger_value:.4f} vs {baseline_name} {baseline_value:.4f}"
    beats_baseline = _beats(challenger_value, baseline_value, margin)
    champion = champion_version(client, model_name)
    check = ChampionCheck(None) if champion is None else evaluate_champion(champion)
    lost = ""
    if check.unreadable:
        mark_unreadable(client, model_name, str(champion.version), RuntimeError(check.why), ds)
        lost = f"champion v{champion.version} demoted, its artifact cannot be loaded ({check.why}); "
        champion, check = None, ChampionCheck(None)
    demote_champion = False
    versus_champion = champion_versus_baseline = None
    if champion is None:
        promoted = beats_baseline
        reason = f"{lost}no champion yet; {numbers} + margin {margin}"
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
        numbers += f" and champion v{champion.version} {check.value:.4f}"
        verdict = _versus_champion(champion, check, challenger_value, baseline, config, per_customer)
        better_than_champion, champion_qualifies, evidence, falls_behind = verdict[:4]
        versus_champion, champion_versus_baseline = verdict[4:]
        promoted = beats_baseline and (better_than_champion or not champion_qualifies)
        reason = f"{numbers}, margin {margin}{evidence}"
        if beats_baseline and not promoted:
            reason += f"; not replaced: v{this} is not significantly better than champion v{champion.version}"
        serving = this if promoted else (str(champion.version) if champion_qualifies else None)
        demote_champion = not promoted and not champion_qualifies
        if demote_champion:
            reason += f"; {falls_behind}"
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
        versus_champion=versus_champion,
        champion_versus_baseline=champion_versus_baseline,
    )
    _record(client, decision, version, champion if demote_champion else None, ds)
    return decision


def _versus_champion(
    champion: ModelVersion,
    check: ChampionCheck,
    challenger_value: float,
    baseline: tuple[str, float],
    config: ChampionGateConfig,
    per_customer: PerCustomer | None,
) -> tuple[bool, bool, str, str, PairedTest | None, PairedTest | None]:
    """Against a comparable champion: (better than the champion, the champion still qualifies against
    the baseline, the evidence line, why the champion falls behind, and the two paired tests). With
    per-customer scores of all three on the same holdout, one-sided paired t-tests decide; without them
    (a champion from an older release), the margin does."""
    baseline_name, baseline_value = baseline
    paired = per_customer is not None and check.per_customer is not None
    if paired and len(check.per_customer) == len(per_customer.challenger) == len(per_customer.baseline):
        versus_champion = paired_test(per_customer.challenger, check.per_customer, config.alpha)
        champion_versus_baseline = paired_test(check.per_customer, per_customer.baseline, config.alpha)
        baseline_ahead = paired_test(per_customer.baseline, check.per_customer, config.alpha)
        evidence = (
            f"; paired {per_customer.name} challenger - champion {versus_champion.line()}"
            f", champion - {baseline_name} {champion_versus_baseline.line()}, alpha {config.alpha}"
        )
        return (
            versus_champion.ahead(config.alpha) and versus_champion.mean >= config.margin,
            not baseline_ahead.ahead(config.alpha),
            evidence,
            f"champion v{champion.version} is significantly worse than the {baseline_name} baseline",
            versus_champion,
            champion_versus_baseline,
        )
    return (
        _beats(challenger_value, check.value, config.margin),
        _beats(check.value, baseline_value, config.margin),
        "",
        f"champion v{champion.version} no longer beats the baseline",
        None,
        None,
    )


def _record(
    client: MlflowClient, decision: GateDecision, version: ModelVersion, demoted: ModelVersion | None, ds: str
) -> None:
    """Move the aliases as decided (a `demoted` champion loses its alias) and write the decision on the
    version and its run."""
    model_name, this = decision.model_name, decision.version
    if demoted is not None:
        drop_alias(client, model_name, CHAMPION, str(demoted.version), ds)
        client.set_model_version_tag(model_name, demoted.version, "gate_demoted_by", this)
    set_alias(client, model_name, CHAMPION if decision.promoted else CHALLENGER, this, ds)
    for key, value in decision.tags().items():
        client.set_model_version_tag(model_name, version.version, key, value)
        client.set_tag(version.run_id, key, value)
    log.info("%s v%s %s; %s", model_name, this, CHAMPION if decision.promoted else CHALLENGER, decision.summary)


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
    # A version whose artifact failed to load, or that a crash left without a gate decision, never serves.
    trained_by_ds = [v for v in versions if "ds" in v.tags and dt.date.fromisoformat(v.tags["ds"]) <= ds and usable(v)]
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
    if chosen not in by_number and chosen != str(newest.version) and not _beat_its_baseline(newest):
        # The version the gate chose cannot serve (its artifact failed to load) and the newest one did
        # not beat the baseline itself: the baseline serves.
        return Serving(
            newest,
            False,
            f"v{chosen}, which the gate chose, cannot serve; v{newest.version} does not beat the baseline",
        )
    if chosen not in by_number:  # legacy versions without the tag, or a serving version newer than ds
        chosen = str(newest.version)
    why = "no champion" if champion is None else "champion trained after ds"
    return Serving(
        by_number[chosen], True, f"{why}: v{chosen}, the version the gate chose for the newest training by {ds}"
    )


def _beat_its_baseline(version: ModelVersion) -> bool:
    """Whether the gate found this version ahead of the baseline by the margin on its own holdout."""
    tags = version.tags
    try:
        return _beats(
            float(tags["gate_challenger_value"]), float(tags["gate_baseline_value"]), float(tags["gate_margin"])
        )
    except (KeyError, ValueError):
        return False


def version_for(client: MlflowClient, model_name: str, ds: dt.date) -> tuple[ModelVersion | None, str]:
    """(version, why) of serving_for: the version whose training data a ds is compared with."""
    serving = serving_for(client, model_name, ds)
    return serving.version, serving.why
