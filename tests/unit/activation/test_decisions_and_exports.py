"""Property tests of the decisions over generated populations (hypothesis): consent, erasure,
holdout and one-decision invariants hold whatever the population, the contact history and the
overlaps between audiences."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml.activation.columns import consent_channels, consent_column
from ml.activation.decisions import assignment_buckets, decide, experiment_groups
from ml.activation.export import build_channel_rows, normalized_email_sha256
from ml.activation.settings import CONTROL, ActivationConfig

DS = dt.date(2026, 10, 31)
ACTIVATION = ActivationConfig.model_validate(
    {
        "predictive_min_orders": 1,
        "channels": {
            "email": {"identifier": "email", "frequency_cap": {"max_contacts": 2, "window_days": 7}},
            "push": {"frequency_cap": {"max_contacts": 1, "window_days": 3}},
            "web": {"identifier": "email_sha256"},
            "call_center": {"fields": ["language", "latest_nps_category"]},
        },
        "suppressions": {"detractors": "latest_nps_category = 'detractor'"},
        "audiences": {
            "care": {  # predictive, highest priority, top N of the lowest scores
                "goal": {"metric": "purchase", "window_days": 30},
                "segment": "latest_nps_category = 'detractor'",
                "behavioral_identifier": "detractor",
                "moment": {"kind": "daily"},
                "channels": ["call_center", "email"],
                "tactic": {"kind": "content", "content_id": "care_{language}"},
                "selection": {"top_n": 5, "order": "lowest"},
                "holdout_percent": 20,
                "hypothesis": "h",
                "null_hypothesis": "h0",
                "priority": 1,
            },
            "cross_sell": {  # predictive, same priority as win_back: the score decides
                "goal": {"metric": "purchase", "window_days": 14},
                "segment": "frequency >= 1",
                "behavioral_identifier": "buyer",
                "moment": {"kind": "daily"},
                "channels": ["email", "web"],
                "send_to": "all",
                "tactic": {"kind": "recommendations", "k": 3},
                "selection": {"min_score": 0.5},
                "holdout_percent": 10,
                "hypothesis": "h",
                "null_hypothesis": "h0",
                "frequency_cap": {"max_contacts": 1, "window_days": 7},
                "priority": 2,
                "suppress": ["detractors"],
            },
            "win_back": {  # behavioral, three arms
                "goal": {"metric": "purchase", "window_days": 14},
                "segment": "frequency >= 2",
                "behavioral_identifier": "lapsed",
                "moment": {"kind": "no_order_for", "days": 30},
                "channels": ["push", "email"],
                "variants": [
                    {"name": "a", "tactic": {"kind": "offer", "offer_code": "A"}},
                    {"name": "b", "weight": 2, "tactic": {"kind": "offer", "offer_code": "B"}},
                    {"name": "c", "tactic": {"kind": "content", "content_id": "c"}},
                ],
                "holdout_percent": 30,
                "hypothesis": "h",
                "null_hypothesis": "h0",
                "priority": 2,
                "suppress": ["detractors"],
            },
            "welcome": {  # demographic, lowest priority
                "goal": {"metric": "engagement", "window_days": 3},
                "segment": "country = 'DE'",
                "behavioral_identifier": "new",
                "moment": {"kind": "days_after_signup", "days": 3},
                "channels": ["email", "push", "web"],
                "tactic": {"kind": "content", "content_id": "welcome_{language}"},
                "holdout_percent": 50,
                "hypothesis": "h",
                "null_hypothesis": "h0",
                "priority": 3,
            },
        },
    }
)

customer_rows = st.fixed_dictionaries(
    {
        "frequency": st.integers(0, 4),
        "recency_days": st.one_of(st.none(), st.integers(0, 90)),
        "tenure_days": st.integers(0, 5),
        "country": st.sampled_from(["DE", "FR"]),
        "language": st.sampled_from(["de", "fr"]),
        "latest_nps_category": st.sampled_from([None, "promoter", "passive", "detractor"]),
        "score": st.one_of(st.none(), st.floats(0, 1)),
        "is_erased": st.booleans(),
        **{consent_column(channel): st.booleans() for channel in consent_channels()},
    }
)


@st.composite
def populations(draw):
    rows = draw(st.lists(customer_rows, min_size=1, max_size=60))
    population = pd.DataFrame(rows)
    population.insert(0, "customer_id", [f"C{n:04d}" for n in range(len(population))])
    contacts = draw(
        st.lists(
            st.tuples(
                st.integers(0, len(population) - 1),
                st.sampled_from(list(ACTIVATION.audiences)),
                st.sampled_from(list(ACTIVATION.channels)),
                st.integers(1, 8),
            ),
            max_size=40,
        )
    )
    history = pd.DataFrame(
        {
            "ds": pd.to_datetime([DS - dt.timedelta(days=days) for *_, days in contacts]),
            "audience": [audience for _, audience, _, _ in contacts],
            "customer_id": [population["customer_id"][row] for row, *_ in contacts],
            "channel": [channel for _, _, channel, _ in contacts],
        }
    )
    return population, history


def only(audience: str) -> ActivationConfig:
    return ACTIVATION.model_copy(update={"audiences": {audience: ACTIVATION.audiences[audience]}})


def exported(population: pd.DataFrame, assignments: pd.DataFrame) -> dict[str, pd.DataFrame]:
    emails = pd.Series({c: f"{c.lower()}@example.com " for c in population["customer_id"]})
    items = pd.Series({c: [f"I{n}" for n in range(5)][::-1] for c in population["customer_id"]})
    return build_channel_rows(assignments, population, emails, items, ACTIVATION, DS)


def all_rows(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    found = [frame for frame in frames.values() if not frame.empty]
    return pd.concat(found) if found else next(iter(frames.values()))


SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(populations())
def test_one_decision_per_customer_and_never_an_erased_one(generated):
    population, history = generated
    result = decide(population, history, ACTIVATION, DS)
    erased = set(population.loc[population["is_erased"], "customer_id"])
    assert result.decisions["customer_id"].is_unique
    assert set(result.decisions["customer_id"]) == set(population["customer_id"]) - erased
    assert result.assignments["customer_id"].is_unique
    assert not erased & set(result.assignments["customer_id"])
    decided = result.decisions.dropna(subset=["audience"]).set_index("customer_id")["audience"]
    assert decided.to_dict() == result.assignments.set_index("customer_id")["audience"].to_dict()
    rows = all_rows(exported(population, result.assignments))
    assert not erased & set(rows["customer_id"])
    assert (rows.groupby("customer_id")["audience"].nunique() <= 1).all()


@SETTINGS
@given(populations())
def test_channels_only_with_consent_and_under_the_caps(generated):
    population, history = generated
    result = decide(population, history, ACTIVATION, DS)
    customers = population.set_index("customer_id")
    recent = history[history["ds"] > pd.Timestamp(DS - dt.timedelta(days=3))]
    for assignment in result.assignments.itertuples():
        audience = ACTIVATION.audiences[assignment.audience]
        assert assignment.channels and set(assignment.channels) <= set(audience.channels)
        if audience.send_to == "first":
            assert len(assignment.channels) == 1
        for channel in assignment.channels:
            assert customers.loc[assignment.customer_id, consent_column(ACTIVATION.consent_of(channel))]
        if "push" in assignment.channels:  # push: at most 1 contact in 3 days, today's included
            pushed = recent[(recent["customer_id"] == assignment.customer_id) & (recent["channel"] == "push")]
            assert pushed.empty
    for channel, rows in exported(population, result.assignments).items():
        consent = customers.loc[rows["customer_id"], consent_column(ACTIVATION.consent_of(channel))]
        assert consent.all(), channel


@SETTINGS
@given(populations())
def test_control_groups_are_never_exported_and_everyone_treated_is(generated):
    population, history = generated
    result = decide(population, history, ACTIVATION, DS)
    frames = exported(population, result.assignments)
    rows = all_rows(frames)
    assert not (rows["experiment_group"] == CONTROL).any()
    control = set(result.assignments.loc[result.assignments["experiment_group"] == CONTROL, "customer_id"])
    assert not control & set(rows["customer_id"])
    treated = result.assignments[result.assignments["experiment_group"] != CONTROL]
    assert len(rows) == sum(len(channels) for channels in treated["channels"])
    # Every channel carries the same items for a customer; identifiers are the configured ones.
    assert (rows.groupby("customer_id")["recommended_items"].apply(lambda s: s.map(str).nunique()) <= 1).all()
    assert (
        frames["web"]["email_sha256"]
        == frames["web"]["customer_id"].map(lambda c: normalized_email_sha256(f"{c.lower()}@example.com"))
    ).all()
    assert "email" not in frames["web"] and "email" not in frames["push"]


@SETTINGS
@given(populations())
def test_priority_then_score_decides_and_predictive_audiences_need_data(generated):
    population, history = generated
    result = decide(population, history, ACTIVATION, DS)
    customers = population.set_index("customer_id")
    alone = {
        name: set(decide(population, history, only(name), DS).assignments["customer_id"])
        for name in ACTIVATION.audiences
    }
    for assignment in result.assignments.itertuples():
        audience = ACTIVATION.audiences[assignment.audience]
        assert assignment.customer_id in alone[assignment.audience]
        for name, other in ACTIVATION.audiences.items():
            if other.priority < audience.priority:  # a better audience they could have had would have won
                assert assignment.customer_id not in alone[name]
        if audience.is_predictive:
            assert customers.loc[assignment.customer_id, "frequency"] >= ACTIVATION.predictive_min_orders
        if "detractors" in audience.suppress:
            assert customers.loc[assignment.customer_id, "latest_nps_category"] != "detractor"
    # Nobody eligible for some audience is left without a decision.
    assert set().union(*alone.values()) == set(result.assignments["customer_id"])


@SETTINGS
@given(populations())
def test_every_audience_funnel_reconciles(generated):
    population, history = generated
    result = decide(population, history, ACTIVATION, DS)
    for name, steps in result.funnel.groupby("audience"):
        counts = steps.set_index("step")["customers"]
        exclusions = counts.drop(["qualified", "decided", *[s for s in counts.index if s.startswith("group_")]])
        assert counts["qualified"] == exclusions.sum() + counts["decided"], name
        assert counts["decided"] == counts[[s for s in counts.index if s.startswith("group_")]].sum(), name
        assert counts["decided"] == (result.assignments["audience"] == name).sum()


@SETTINGS
@given(populations(), st.randoms(use_true_random=False))
def test_assignment_is_stable_across_days_and_row_order(generated, random):
    population, _ = generated
    empty = pd.DataFrame({"ds": pd.Series(dtype="datetime64[us]"), "audience": [], "customer_id": [], "channel": []})
    today = decide(population, empty, ACTIVATION, DS).assignments
    shuffled = population.sample(frac=1, random_state=random.randint(0, 2**31)).reset_index(drop=True)
    later = decide(shuffled, empty, ACTIVATION, DS + dt.timedelta(days=9)).assignments
    pd.testing.assert_frame_equal(today, later)


def test_arm_sizes_match_the_configuration_within_sampling_tolerance():
    customers = pd.Series([f"C{n:07d}" for n in range(40_000)])
    for name, audience in ACTIVATION.audiences.items():
        groups = experiment_groups(assignment_buckets(customers, name, ACTIVATION.salt), audience)
        weights = np.array([arm.weight for arm in audience.arms()])
        expected = {CONTROL: audience.holdout_percent / 100}
        for arm, weight in zip(audience.arms(), weights / weights.sum(), strict=True):
            expected[arm.name] = (1 - audience.holdout_percent / 100) * weight
        for group, share in expected.items():
            observed = (groups == group).mean()
            tolerance = 4 * np.sqrt(share * (1 - share) / len(customers))  # 4 standard errors
            assert abs(observed - share) < tolerance, (name, group, observed, share)
    # Audiences are independent: being in one control group says nothing about another's.
    care = experiment_groups(assignment_buckets(customers, "care", ACTIVATION.salt), ACTIVATION.audiences["care"])
    welcome = experiment_groups(
        assignment_buckets(customers, "welcome", ACTIVATION.salt), ACTIVATION.audiences["welcome"]
    )
    both = ((care == CONTROL) & (welcome == CONTROL)).mean()
    assert abs(both - 0.2 * 0.5) < 4 * np.sqrt(0.1 * 0.9 / len(customers))
    # A new salt is a new experiment.
    resalted = experiment_groups(assignment_buckets(customers, "care", "another-salt"), ACTIVATION.audiences["care"])
    assert 0.25 < (resalted != care).mean() < 0.40  # 2 * 0.2 * 0.8 = 0.32 expected


def test_experiment_versions_stay_what_they_were_before_send_times_existed():
    """A version is the key of every readout: a platform upgrade that adds a setting must not start
    every running experiment again. These are the versions of this file's audiences before
    `send_time` existed; setting a send time is a new version."""
    versions = {name: audience.experiment_version(ACTIVATION.salt) for name, audience in ACTIVATION.audiences.items()}
    assert versions == {
        "care": "03ac1d692e50",
        "cross_sell": "52db9ffa7827",
        "win_back": "cfc9bccaf861",
        "welcome": "b51a8f8a5449",
    }
    win_back = ACTIVATION.audiences["win_back"]
    timed = [arm.model_copy(update={"send_time": "optimized"}) for arm in win_back.variants]
    assert win_back.model_copy(update={"variants": timed}).experiment_version(ACTIVATION.salt) != versions["win_back"]
