"""The columns an audience may use: in segment filters, in content templates and in export files.

Audiences are written by marketers, so what they can reference is an explicit allowlist (no email,
no free text). Segments filter the population of `ds`: `marts.customer_360` joined with
`marts.customer_moments` (ml.activation.population).
"""

from __future__ import annotations

from ml.warehouse.project import dbt_project_vars

# Who the customer is: a segment over these alone is demographic personalization.
DEMOGRAPHIC_COLUMNS = (
    "country",
    "city",
    "language",
    "gender",
    "age_band",
    "device_type",
    "acquisition_channel",
    "tenure_days",
)
# What the customer did and told us (customer_360 and customer_moments).
BEHAVIORAL_BASE_COLUMNS = (
    "frequency",
    "monetary",
    "average_order_value",
    "orders_placed",
    "orders_refunded",
    "orders_cancelled",
    "recency_days",
    "recency_score",
    "frequency_score",
    "monetary_score",
    "rfm_segment",
    "lifecycle_stage",
    "latest_nps_score",
    "latest_nps_category",
    "latest_csat_score",
    "latest_ces_score",
    "support_contacts_surveyed",
    "preferred_category",
    "hours_since_cart_abandoned",
    "hours_since_browse_abandoned",
)
# Columns that may appear in export files and content templates: nothing that identifies a person.
FILE_FIELDS = (
    "country",
    "language",
    "device_type",
    "age_band",
    "lifecycle_stage",
    "rfm_segment",
    "latest_nps_category",
    "preferred_category",
)
# From marts.customer_moments; the rest from customer_360.
MOMENT_COLUMNS = ("hours_since_cart_abandoned", "hours_since_browse_abandoned")


def consent_channels() -> tuple[str, ...]:
    return tuple(dbt_project_vars()["consent_channels"])


def consent_column(consent_channel: str) -> str:
    return f"has_consent_{consent_channel}"


def event_columns() -> tuple[str, ...]:
    return tuple(
        f"{event_type}_events_{window}d"
        for event_type in dbt_project_vars()["event_types"]
        for window in dbt_project_vars()["engagement_windows"]
    )


def behavioral_columns() -> tuple[str, ...]:
    return (*BEHAVIORAL_BASE_COLUMNS, *event_columns(), *(consent_column(c) for c in consent_channels()))


def segment_columns() -> tuple[str, ...]:
    """Every column a segment filter may reference."""
    return (*DEMOGRAPHIC_COLUMNS, *behavioral_columns())


# The text columns of the population: the demographic ones but tenure, and four behavioral labels.
# Consent flags are booleans, every other column a number.
TEXT_COLUMNS = (
    *(column for column in DEMOGRAPHIC_COLUMNS if column != "tenure_days"),
    "rfm_segment",
    "lifecycle_stage",
    "latest_nps_category",
    "preferred_category",
)


def segment_column_types() -> dict[str, str]:
    """The SQL type of every segment column (what a segment is type-checked against at load)."""
    booleans = {consent_column(channel) for channel in consent_channels()}
    return {
        column: "varchar" if column in TEXT_COLUMNS else "boolean" if column in booleans else "double"
        for column in segment_columns()
    }
