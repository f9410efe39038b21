"""The landing contract as data.

The loader checks files against it and the generator writes to it. Value rules (allowed categories,
score ranges, parseability) are enforced in the dbt staging models, where bad rows are quarantined.
docs/data-contract.md is the human-readable version; a test keeps the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TableContract:
    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    key: tuple[str, ...]
    is_required_table: bool = False

    @property
    def columns(self) -> tuple[str, ...]:
        return self.required + self.optional


CONTRACT: dict[str, TableContract] = {
    table.name: table
    for table in (
        TableContract(
            "customers",
            required=("customer_id", "signup_at"),
            optional=(
                "email",
                "first_name",
                "country",
                "city",
                "language",
                "birth_year",
                "gender",
                "device_type",
                "acquisition_channel",
            ),
            key=("customer_id",),
            is_required_table=True,
        ),
        TableContract(
            "items",
            required=("item_id",),
            optional=("name", "category", "price", "tags", "is_active", "url", "image_url"),
            key=("item_id",),
        ),
        TableContract(
            "orders",
            required=("order_id", "customer_id", "ordered_at"),
            optional=("total_amount", "currency", "status", "channel"),
            key=("order_id",),
            is_required_table=True,
        ),
        TableContract(
            "order_items",
            required=("order_id", "item_id"),
            optional=("quantity", "unit_price"),
            key=("order_id", "item_id"),
        ),
        TableContract(
            "events",
            required=("event_id", "customer_id", "occurred_at", "event_type"),
            optional=("item_id", "channel", "device", "anonymous_id"),
            key=("event_id",),
        ),
        TableContract(
            "survey_responses",
            required=("response_id", "customer_id", "responded_at", "survey_type", "score"),
            optional=("touchpoint", "order_id", "comment"),
            key=("response_id",),
        ),
        TableContract(
            "consents",
            required=("customer_id", "channel", "granted", "recorded_at"),
            optional=(),
            key=("customer_id", "channel", "recorded_at"),
        ),
        TableContract(
            "erasure_requests",
            required=("customer_id", "requested_at"),
            optional=(),
            key=("customer_id",),
        ),
        TableContract(
            "identity_links",
            required=("anonymous_id", "customer_id", "linked_at"),
            optional=(),
            key=("anonymous_id", "customer_id", "linked_at"),
        ),
        TableContract(
            "campaign_sends",
            required=("campaign_id", "customer_id", "channel", "arm", "is_control", "sent_at"),
            optional=("assignment_probability",),
            key=("campaign_id", "customer_id", "sent_at"),
        ),
        TableContract(
            "served_decisions",
            required=("decision_id", "served_at", "ds", "channel"),
            optional=(
                "customer_id",
                "anonymous_id",
                "audience",
                "experiment_group",
                "experiment_version",
                "assignment_probability",
                "recommender_version",
                "context_item",
                "default_experience",
                "decision_reason",
            ),
            key=("decision_id", "served_at"),
        ),
    )
}

TABLES: tuple[str, ...] = tuple(CONTRACT)
