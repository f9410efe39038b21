"""Feast definitions: the `customer` entity and the daily customer feature snapshots dbt builds.

Source: `marts.customer_features_daily`, one row per customer and feature date, valid from the end of
that date (`feature_timestamp`). On DuckDB (the embedded default) the pipeline exports it to parquet
files, one per date, that Feast's DuckDB offline store reads (ml.mlops.feature_store); on Spark
(`PZ_WAREHOUSE_ENGINE=spark`) Feast's Spark offline store reads the warehouse table itself.
Every field is typed and described here; the `propensity` feature service is what the propensity
model reads.
"""

from __future__ import annotations

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Float64, Int64, String

from ml.mlops.feature_store import PROPENSITY_SERVICE, SNAPSHOTS_TABLE, snapshots_glob
from ml.warehouse.engine import on_spark
from ml.warehouse.project import dbt_project_vars

# The event types and windows come from the dbt project (one list for the contract, the marts and
# these features).
EVENT_TYPES = dbt_project_vars()["event_types"]
ORDER_WINDOWS = dbt_project_vars()["order_windows"]
ENGAGEMENT_WINDOWS = dbt_project_vars()["engagement_windows"]

CATEGORICAL = {
    "country": "Country of the customer ('unknown' when missing).",
    "gender": "Gender as given ('unknown' when missing).",
    "age_band": "Age band in the year of the feature date.",
    "device_type": "Main device type ('unknown' when missing).",
    "acquisition_channel": "Channel the customer was acquired through ('unknown' when missing).",
    "lifecycle_stage": "prospect, new, active, at_risk, churned or reactivated as of the feature date.",
    "latest_nps_category": "promoter, passive, detractor of the latest NPS answer, or no_response.",
}
NUMERIC_INT = {
    "tenure_days": "Days from signup to the feature date.",
    "recency_days": "Days since the last completed order (missing if none).",
    "days_since_first_order": "Days since the first completed order (missing if none): T of buy-till-you-die models.",
    "frequency_lifetime": "Completed orders up to the feature date.",
    **{f"frequency_{w}d": f"Completed orders in the {w} days up to the feature date." for w in ORDER_WINDOWS},
    **{
        f"{event}_events_{w}d": f"{event} events in the {w} days up to the feature date."
        for event in EVENT_TYPES
        for w in ENGAGEMENT_WINDOWS
    },
    "days_since_last_event": "Days since the last event within 90 days (missing if none).",
    "support_contacts_90d": "Survey responses from support touchpoints in the last 90 days.",
}
NUMERIC_FLOAT = {
    "monetary_lifetime": "Sum of completed order totals up to the feature date.",
    **{
        f"monetary_{w}d": f"Sum of completed order totals in the {w} days up to the feature date."
        for w in ORDER_WINDOWS
    },
    "days_between_orders_mean": "Mean days between consecutive completed orders (missing with fewer than 2).",
    "days_between_orders_std": "Standard deviation of days between completed orders (missing with fewer than 3).",
    "latest_csat_score": "Latest CSAT answer, 1-5 (missing if none).",
    "latest_ces_score": "Latest CES answer, 1-7 (missing if none).",
}

customer = Entity(
    name="customer",
    join_keys=["customer_id"],
    value_type=ValueType.STRING,
    description="A customer of the landing contract (customers.customer_id).",
)

SOURCE_DESCRIPTION = "marts.customer_features_daily: point-in-time snapshots, one per customer and feature date."

if on_spark():
    from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource

    # The table is partitioned by feature_date on Spark: a point-in-time join reads the dates it needs.
    customer_features_source = SparkSource(
        name="customer_features_daily",
        table=SNAPSHOTS_TABLE,
        timestamp_field="feature_timestamp",
        date_partition_column="feature_date",
        description=SOURCE_DESCRIPTION,
    )
else:
    customer_features_source = FileSource(
        name="customer_features_daily",
        path=snapshots_glob(),
        timestamp_field="feature_timestamp",
        description=SOURCE_DESCRIPTION,
    )

customer_features = FeatureView(
    name="customer_features",
    entities=[customer],
    # A snapshot is taken every cutoff_every_days (7) and nightly for ds: older ones are stale.
    ttl=timedelta(days=8),
    schema=[
        *(Field(name=name, dtype=String, description=text) for name, text in CATEGORICAL.items()),
        *(Field(name=name, dtype=Int64, description=text) for name, text in NUMERIC_INT.items()),
        *(Field(name=name, dtype=Float64, description=text) for name, text in NUMERIC_FLOAT.items()),
    ],
    source=customer_features_source,
    online=True,
    description="Behavior, engagement, satisfaction and profile of a customer as of a date (for propensity).",
    tags={"owner": "personalization", "built_by": "dbt marts.customer_features_daily"},
)

# The propensity model's feature contract: what it trains on (the training set's point-in-time rows)
# and what it is scored with online, by name. A model that needs other features gets a service of its
# own; the recommender reads its user features from marts.customer_360, not from Feast.
propensity = FeatureService(
    name=PROPENSITY_SERVICE,
    features=[customer_features],
    description="The features the propensity model (ml.propensity) trains and scores on.",
    tags={"model": "propensity", "owner": "personalization"},
)
