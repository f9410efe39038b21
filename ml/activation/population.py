"""What the decisions of `ds` read from the warehouse: the population, its scores and past contacts."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from ml.activation.columns import DEMOGRAPHIC_COLUMNS, MOMENT_COLUMNS, behavioral_columns, event_columns
from ml.activation.settings import ActivationConfig
from ml.constants import CUSTOMER_ID, ITEM_ID
from ml.errors import PlatformError
from ml.warehouse.dialect import elements
from ml.warehouse.engine import open_warehouse, read_frame
from ml.warehouse.frames import text_frame
from ml.warehouse.partitions import existing_tables

CHANNEL_SCHEMA = "channels"


class MissingInputError(PlatformError, RuntimeError):
    """An upstream table the decisions need has no rows for ds."""


def channel_table(channel: str) -> str:
    return f"{CHANNEL_SCHEMA}.{channel}"


# What triggered a moment (customer_moments), for the files' `reason`: not segment columns.
TRIGGER_COLUMNS = ("last_cart_item_id", "last_add_to_cart_at", "last_viewed_item_id", "last_product_view_at")


def read_population(ds: dt.date) -> pd.DataFrame:
    """Every customer of customer_360 at ds with the segment columns, the moments, the propensity
    score of ds (NULL when none) and whether they are erased or suppressed pending an erasure's
    confirmation (audit.suppressed_customers; a second guard for the erased: customer_360 already
    leaves them out)."""
    customer_columns = [c for c in (*DEMOGRAPHIC_COLUMNS, *behavioral_columns()) if c not in MOMENT_COLUMNS]
    with open_warehouse() as connection:
        has_scores = "customer_scores" in existing_tables(connection, "marts")
        score = "scores.score" if has_scores else "cast(null as double)"
        scores_join = (
            # One model per ds: the propensity model, or its RFM fallback when no version beats it.
            "left join marts.customer_scores as scores on scores.ds = c.ds and scores.customer_id = c.customer_id"
            if has_scores
            else ""
        )
        population = connection.execute(
            f"""
            select c.customer_id, {", ".join(f"c.{name}" for name in customer_columns)},
                {", ".join(f"m.{name}" for name in (*MOMENT_COLUMNS, *TRIGGER_COLUMNS))},
                {score} as score,
                c.customer_id in (select customer_id from audit.suppressed_customers) as is_erased
            from marts.customer_360 as c
            left join marts.customer_moments as m on m.ds = c.ds and m.customer_id = c.customer_id
            {scores_join}
            where c.ds = ?
            order by c.customer_id
            """,
            [ds],
        ).df()
    if population.empty:
        raise MissingInputError(f"marts.customer_360 has no rows for ds={ds}: run build_metrics for {ds} first")
    # DuckDB's HUGEINT sums arrive as floats; counts are whole numbers.
    for name in set(event_columns()) & set(population.columns):
        population[name] = population[name].astype("int64")
    return population


def read_contact_history(ds: dt.date, activation: ActivationConfig) -> pd.DataFrame:
    """Past contacts (ds, audience, customer_id, channel) of the days before ds within the longest
    frequency-cap window: the input of the caps.

    Read from experiments.assignments, whose treated rows are exactly what was exported, and whose
    control rows are the contacts the control group would have had. Counting those too keeps the
    holdout the configured share of every day's audience: otherwise treated customers hit their caps
    while control customers never do, and the control group grows day after day.
    """
    windows = [cap.window_days for cap in _caps(activation)]
    empty = pd.DataFrame({"ds": pd.Series(dtype="datetime64[us]"), "audience": [], CUSTOMER_ID: [], "channel": []})
    if not windows:
        return empty
    first = ds - dt.timedelta(days=max(windows) - 1)
    with open_warehouse() as connection:
        if "assignments" not in existing_tables(connection, "experiments"):
            return empty
        return connection.execute(
            f"select ds, audience, customer_id, {elements(connection, 'channels')} as channel "
            "from experiments.assignments where ds >= ? and ds < ? order by ds, audience, customer_id, channel",
            [first, ds],
        ).df()


def _caps(activation: ActivationConfig):
    for settings in activation.channels.values():
        if settings.frequency_cap:
            yield settings.frequency_cap
    for audience in activation.audiences.values():
        if audience.frequency_cap:
            yield audience.frequency_cap


def read_contacts(customer_ids: list[str], ds: dt.date) -> pd.DataFrame:
    """E-mail address and first name by customer id, only for the customers being exported."""
    with open_warehouse() as connection:
        connection.register("wanted", text_frame(CUSTOMER_ID, customer_ids))
        rows = connection.execute(
            "select c.customer_id, c.email, c.first_name from marts.customer_360 as c "
            "where c.ds = ? and c.customer_id in (select customer_id from wanted)",
            [ds],
        ).df()
    return rows.set_index(CUSTOMER_ID)


def read_catalog() -> pd.DataFrame:
    """The catalog's name, URL, image URL and price by item id (what a template shows of an item)."""
    with open_warehouse() as connection:
        rows = read_frame(
            connection,
            "select item_id, item_name, url, image_url, cast(price as double) as price from staging.stg_items",
        )
    return rows.set_index(ITEM_ID)


def read_recommendations(ds: dt.date, k: int) -> pd.Series:
    """Top k item ids per customer at ds, in rank order (the same list for every channel)."""
    with open_warehouse() as connection:
        if "customer_recommendations" not in existing_tables(connection, "marts"):
            return pd.Series(dtype=object)
        rows = read_frame(
            connection,
            "select customer_id, item_id from marts.customer_recommendations where ds = ? and rank <= ? "
            "order by customer_id, rank",
            [ds, k],
        )
    return rows.groupby(CUSTOMER_ID, sort=True)[ITEM_ID].agg(list).rename("items")


def read_model_versions(ds: dt.date) -> dict[str, str | None]:
    """The model versions whose outputs the day's decisions used."""
    versions: dict[str, str | None] = {"recommender": None, "propensity": None}
    with open_warehouse() as connection:
        tables = existing_tables(connection, "marts")
        if "customer_recommendations" in tables:
            versions["recommender"] = connection.execute(
                "select max(model_version) from marts.customer_recommendations where ds = ? and strategy = 'model'",
                [ds],
            ).fetchone()[0]
        if "customer_scores" in tables:
            # "7" when version 7 scores; "7 (rfm_heuristic)" when the fallback it carries does.
            versions["propensity"] = connection.execute(
                "select max(model_version || case when model_name = 'propensity' then '' else ' (' || model_name"
                " || ')' end) from marts.customer_scores where ds = ?",
                [ds],
            ).fetchone()[0]
    return versions
