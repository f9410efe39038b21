"""The error rate of adaptive allocation's readouts, by simulation: 200 A/A experiments read every
night. A statistical check that takes about a minute, so it runs with the integration tests, not in
`make test-fast` (its helpers are the unit tests' own: tests/unit/activation/test_bandit.py)."""

from __future__ import annotations

import datetime as dt

import numpy as np

import ml.activation.bandit as bandit
from ml.activation.readout import readout
from tests.unit.activation.test_bandit import ONLY_THOMPSON, simulate


def test_the_aa_false_positive_rate_under_adaptive_allocation_stays_at_the_nominal_level(monkeypatch):
    """200 simulated A/A experiments, each read out over all its nights (always-valid: significant on
    any night counts). Comparing each arm with the holdout of the customers who drew it keeps the
    family-wise rate at alpha = 0.05; comparing with the whole holdout does not."""
    monkeypatch.setattr(bandit, "SAMPLES", 2_000)
    end = dt.date(2026, 3, 1)
    valid, naive = [], []
    for seed in range(200):
        exposures = simulate(seed)
        valid.append(readout(exposures, ONLY_THOMPSON, end)["is_significant"].any())
        naive.append(
            readout(exposures.assign(policy_arm=None), ONLY_THOMPSON, end)
            .query("baseline == 'control'")["is_significant"]
            .any()
        )
    rate, naive_rate = np.mean(valid), np.mean(naive)
    margin = 2 * np.sqrt(0.05 * 0.95 / len(valid))
    assert rate <= 0.05 + margin, rate
    assert naive_rate > rate, (naive_rate, rate)
