"""What every layer knows of an experiment's assignment: the control group's name, and the
probability with which a group was assigned, read from an experiment version's definition (the JSON
experiments.versions records, ml.activation.settings.Audience.experiment_definition)."""

from __future__ import annotations

import json

CONTROL = "control"  # experiment_group of the holdout: never exported


def arm_probability(definition: str | None, group: str) -> float | None:
    """holdout_percent for the control group, the rest split over the served arms by weight (None
    without a definition, or for a group the version does not have). In a version an uplift policy
    decides, a treated customer's arm is their most profitable one: the rest, all to it."""
    if not definition:
        return None
    experiment = json.loads(definition)
    holdout = experiment["holdout_percent"] / 100
    if group == CONTROL:
        return holdout
    if experiment.get("decided_by") == "uplift":
        return 1 - holdout if any(arm["name"] == group for arm in experiment["arms"]) else None
    if experiment.get("allocation") == "thompson":
        return None  # the night's share: logged with each assignment (experiments.assignments)
    weights = {arm["name"]: arm["weight"] for arm in experiment["arms"]}
    return (1 - holdout) * weights[group] / sum(weights.values()) if group in weights else None
