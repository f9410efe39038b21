"""The service's answers as pure functions: the night's decision per channel, what a withdrawn consent
or an erasure takes away at once, and the re-ranking around a context item."""

from __future__ import annotations

import hypothesis.strategies as st
from hypothesis import given

from ml.serving.decide import Overlay, channel_decision, fuse, recommendations

META = {
    "ds": "2026-10-31",
    "channels": ["email", "push", "web"],
    "consent_of": {"email": "email", "push": "push", "web": "web"},
    "popular_items": ["P1", "P2", "P3", "P4"],
    "recommender_version": "3",
}
CATALOG = {item: {"item_id": item, "name": f"name {item}", "is_active": True} for item in ("A", "B", "C", "D", "P1")}
CATALOG["GONE"] = {"item_id": "GONE", "is_active": False}


def record(**changes) -> dict:
    base = {
        "decision": "audience",
        "audience": "cart_abandonment",
        "experiment_group": "free_shipping",
        "reason": "decided",
        "experiment_version": "abc",
        "assignment_probability": 0.45,
        "channels": {
            "push": {
                "audience": "cart_abandonment",
                "experiment_group": "free_shipping",
                "tactic": "offer",
                "offer_code": "FREESHIP",
                "content_id": None,
                "items": None,
            }
        },
        "consent": {"email": True, "push": True, "web": True},
        "recommendations": ["A", "B", "C"],
        "bought": ["D"],
    }
    return {**base, **changes}


def test_the_exported_row_is_the_answer_and_other_channels_say_why_not():
    pushed = channel_decision(META, "c1", record(), "push", Overlay(), CATALOG)
    assert (pushed["default_experience"], pushed["offer_code"], pushed["tactic"]) == (False, "FREESHIP", "offer")
    assert pushed["assignment_probability"] == 0.45 and pushed["reason"] == "decided"
    web = channel_decision(META, "c1", record(), "web", Overlay(), CATALOG)
    assert web["default_experience"] and web["reason"] == "channel_not_in_decision"
    assert web["audience"] == "cart_abandonment"  # one decision: the channel just does not carry it
    assert [item["item_id"] for item in web["recommended_items"]] == META["popular_items"]


def test_holdout_unknown_and_erased_customers_get_the_default_experience():
    held = channel_decision(META, "c1", record(experiment_group="control", channels={}), "push", Overlay(), CATALOG)
    assert held["default_experience"] and held["reason"] == "holdout" and held["experiment_group"] == "control"
    assert channel_decision(META, "nobody", None, "push", Overlay(), CATALOG)["reason"] == "unknown_customer"
    erased = Overlay(erased={"c1": "2026-11-01T10:00:00Z"})
    answer = channel_decision(META, "c1", record(), "push", erased, CATALOG)
    assert answer["reason"] == "erased" and answer["audience"] is None and answer["default_experience"]


def test_a_consent_withdrawn_since_the_night_applies_at_once_and_a_grant_waits_for_the_night():
    overlay = Overlay()
    overlay.record_consent("c1", "push", False, "2026-11-01T10:00:00Z")
    answer = channel_decision(META, "c1", record(), "push", overlay, CATALOG)
    assert answer["default_experience"] and answer["reason"] == "no_consent"
    overlay.record_consent("c1", "push", True, "2026-11-01T09:00:00Z")  # older: the latest consent wins
    assert channel_decision(META, "c1", record(), "push", overlay, CATALOG)["reason"] == "no_consent"
    granted = Overlay()
    granted.record_consent("c1", "web", True, "2026-11-01T10:00:00Z")
    assert channel_decision(META, "c1", record(), "web", granted, CATALOG)["default_experience"]


def test_the_decision_id_is_stable_for_the_same_answer_and_changes_with_it():
    first = channel_decision(META, "c1", record(), "push", Overlay(), CATALOG)
    assert channel_decision(META, "c1", record(), "push", Overlay(), CATALOG)["decision_id"] == first["decision_id"]
    overlay = Overlay()
    overlay.record_consent("c1", "push", False, "2026-11-01T10:00:00Z")
    assert channel_decision(META, "c1", record(), "push", overlay, CATALOG)["decision_id"] != first["decision_id"]


def test_reciprocal_rank_fusion_puts_items_on_both_lists_first_and_never_shows_excluded_ones():
    assert fuse([["A", "B", "C"], ["C", "X"]], set(), 10) == ["C", "A", "B", "X"]
    assert fuse([["A", "B"], ["B", "A"]], {"A"}, 10) == ["B"]
    assert fuse([["A", "B", "C"]], set(), 2) == ["A", "B"]


def test_context_recommendations_exclude_purchases_the_item_itself_and_inactive_items():
    answer = recommendations(META, "c1", record(), Overlay(), 5, "A", ["D", "GONE", "C", "A"], CATALOG)
    shown = [item["item_id"] for item in answer["items"]]
    assert shown[0] == "C" and not {"A", "D", "GONE"} & set(shown) and len(shown) == 5
    assert answer["strategy"] == "personal_with_context" and not answer["default_experience"]


def test_strangers_get_the_context_items_neighbors_then_popular_items():
    answer = recommendations(META, "nobody", None, Overlay(), 4, "A", ["D", "C"], CATALOG)
    assert [item["item_id"] for item in answer["items"]] == ["D", "C", "P1", "P2"]
    assert answer["default_experience"] and answer["reason"] == "unknown_customer"


@given(
    st.sampled_from(["push", "web", "email"]),
    st.booleans(),
    st.lists(st.sampled_from(["A", "B", "C", "D", "GONE", "P1"]), max_size=6),
)
def test_nothing_personal_survives_an_erasure_or_a_withdrawn_consent(channel, erase, neighbors):
    overlay = Overlay()
    if erase:
        overlay.erased["c1"] = "2026-11-01T10:00:00Z"
    else:
        overlay.record_consent("c1", channel, False, "2026-11-01T10:00:00Z")
    assert channel_decision(META, "c1", record(), channel, overlay, CATALOG)["default_experience"]
    answer = recommendations(META, "c1", record(), overlay, 4, "A", neighbors, CATALOG, channel)
    assert answer["default_experience"] and "GONE" not in [item["item_id"] for item in answer["items"]]
