"""What the service answers, as pure functions of a snapshot record and what happened since the night.

A decision for a channel is the night's decision, never a new one: the channel's exported row when
there is one (the same audience, arm, tactic, offer, content and items as the file), otherwise the
default experience with the reason. What arrived after the night can only take a treatment away,
never add one: a consent withdrawn or an erasure requested applies to the next request, while a
consent granted waits for the next night's decision (its frequency caps, priorities and holdout
assignment are the night's to make).

Recommendations re-ranked around a context item fuse two ranked lists, the customer's nightly list
and the context item's neighbors, by reciprocal rank fusion (Cormack, Clarke and Buettcher 2009,
"Reciprocal rank fusion outperforms Condorcet and individual rank learning methods", SIGIR): each
item scores the sum over lists of 1 / (60 + rank). It needs no calibration between the two scores
(a LightFM dot product and a cosine are not comparable), and an item on both lists comes first.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

DEFAULT_EXPERIENCE = "default_experience"
CONTROL = "control"
RRF_K = 60  # the constant of reciprocal rank fusion (Cormack et al. 2009)


@dataclass
class Overlay:
    """What arrived over HTTP since the snapshot's night, each with the time it was recorded (ISO 8601,
    UTC): consents by customer and consent channel, erasures, anonymous ids linked to customers."""

    consents: dict[str, dict[str, tuple[bool, str]]] = field(default_factory=dict)
    erased: dict[str, str] = field(default_factory=dict)
    links: dict[str, tuple[str, str]] = field(default_factory=dict)

    def consent(self, customer_id: str, consent_channel: str) -> bool | None:
        found = self.consents.get(customer_id, {}).get(consent_channel)
        return None if found is None else found[0]

    def is_erased(self, customer_id: str) -> bool:
        return customer_id in self.erased

    def linked(self, anonymous_id: str | None) -> str | None:
        found = self.links.get(anonymous_id) if anonymous_id else None
        return None if found is None else found[0]

    def record_consent(self, customer_id: str, consent_channel: str, granted: bool, when: str) -> None:
        known = self.consents.setdefault(customer_id, {}).get(consent_channel)
        if known is None or known[1] <= when:  # the latest consent wins, as in the nightly build
            self.consents[customer_id][consent_channel] = (granted, when)

    def forget_before(self, cutoff: str) -> None:
        """Drop what a snapshot whose night ended at `cutoff` already holds (recorded before it)."""
        for customer in list(self.consents):
            kept = {name: value for name, value in self.consents[customer].items() if value[1] >= cutoff}
            self.consents[customer] = kept
            if not kept:
                del self.consents[customer]
        self.erased = {customer: when for customer, when in self.erased.items() if when >= cutoff}
        # Links stay: the snapshot holds no identity links yet (the nightly identity graph will).


def decision_id(ds: str, customer_id: str, channel: str, answer: dict) -> str:
    """Stable for the same answer: Braze Connected Content retries get the same id."""
    parts = [ds, customer_id, channel, str(answer["default_experience"]), str(answer["audience"])]
    parts += [str(answer[key]) for key in ("experiment_group", "tactic", "offer_code", "content_id")]
    parts += [item["item_id"] for item in answer["recommended_items"]]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:20]


def _why_not(record: dict, consent_channel: str) -> str:
    """Why a known customer gets the default experience in a channel tonight."""
    if record["decision"] == DEFAULT_EXPERIENCE:
        return record["reason"]  # global_holdout, too_little_data, no_audience
    if record["experiment_group"] == CONTROL:
        return "holdout"
    if not record["consent"].get(consent_channel, False):
        return "no_consent"
    return "channel_not_in_decision"


def channel_decision(
    meta: dict, customer_id: str, record: dict | None, channel: str, overlay: Overlay, catalog: dict
) -> dict:
    """The answer of GET /v1/decisions/{customer_id}?channel=: the night's decision for the channel."""
    answer = {
        "ds": meta["ds"],
        "customer_id": customer_id,
        "channel": channel,
        "audience": None,
        "experiment_group": None,
        "experiment_version": None,
        "assignment_probability": None,
        "tactic": None,
        "offer_code": None,
        "content_id": None,
        "recommended_items": [],
        "default_experience": True,
    }
    if record is None:
        answer["reason"] = "unknown_customer"
    elif record.get("erased") or overlay.is_erased(customer_id):
        answer["reason"] = "erased"
    else:
        answer.update(
            audience=record["audience"],
            experiment_group=record["experiment_group"],
            experiment_version=record["experiment_version"],
            assignment_probability=record["assignment_probability"],
        )
        exported = record["channels"].get(channel)
        if overlay.consent(customer_id, meta["consent_of"][channel]) is False:
            answer["reason"] = "no_consent"
        elif exported is not None:
            answer.update(
                tactic=exported["tactic"],
                offer_code=exported["offer_code"],
                content_id=exported["content_id"],
                recommended_items=[item_fields(item, catalog) for item in exported["items"] or []],
                default_experience=False,
                reason="decided",
            )
        else:
            answer["reason"] = _why_not(record, meta["consent_of"][channel])
    if answer["default_experience"]:
        answer["recommended_items"] = [item_fields(item, catalog) for item in meta["popular_items"]]
    answer["decision_id"] = decision_id(meta["ds"], customer_id, channel, answer)
    return answer


def item_fields(item_id: str, catalog: dict) -> dict:
    """The catalog fields a page shows for an item (just the id when the catalog lacks it)."""
    return catalog.get(item_id) or {"item_id": item_id}


def fuse(lists: list[list[str]], excluded: set[str], k: int) -> list[str]:
    """Reciprocal rank fusion of ranked lists, without the excluded items; ties keep first-seen order."""
    scores: dict[str, float] = {}
    for ranked in lists:
        for rank, item in enumerate(ranked, start=1):
            if item not in excluded:
                scores[item] = scores.get(item, 0.0) + 1.0 / (RRF_K + rank)
    return sorted(scores, key=lambda item: -scores[item])[:k]


def personal_reason(customer_id: str, record: dict | None, consent_channel: str, overlay: Overlay) -> str | None:
    """None when the customer's own list may be used; otherwise why not (the default experience)."""
    if record is None:
        return "unknown_customer"
    if record.get("erased") or overlay.is_erased(customer_id):
        return "erased"
    if record["reason"] == "global_holdout":
        return "global_holdout"
    consent = overlay.consent(customer_id, consent_channel)
    if consent is False or (consent is None and not record["consent"].get(consent_channel, False)):
        return "no_consent"
    return None


def recommendations(
    meta: dict,
    customer_id: str,
    record: dict | None,
    overlay: Overlay,
    k: int,
    context_item: str | None,
    neighbors: list[str],
    catalog: dict,
    channel: str = "web",
) -> dict:
    """The answer of GET /v1/recommendations/{customer_id}: the nightly list, re-ranked around the
    context item when one is given; the default experience (the context item's neighbors, then the
    popular items) for a customer it may not or cannot personalize for."""
    why_not = personal_reason(customer_id, record, meta["consent_of"][channel], overlay)
    inactive = {item for item, fields in catalog.items() if fields.get("is_active") is False}
    excluded = inactive | ({context_item} if context_item else set())
    personal: list[str] = []
    if why_not is None:
        excluded |= set(record["bought"])
        personal = record["recommendations"]
    lists = [personal, neighbors] if context_item else [personal]
    ranked = fuse([ranked for ranked in lists if ranked], excluded, k)
    popular = [item for item in meta["popular_items"] if item not in excluded and item not in ranked]
    ranked += popular[: k - len(ranked)]
    strategy = ("personal" if personal else "default") + ("_with_context" if context_item and neighbors else "")
    return {
        "ds": meta["ds"],
        "customer_id": customer_id,
        "context_item": context_item,
        "items": [item_fields(item, catalog) for item in ranked],
        "strategy": strategy,
        "default_experience": why_not is not None,
        "reason": why_not or "personalized",
        "recommender_version": meta["recommender_version"],
    }
