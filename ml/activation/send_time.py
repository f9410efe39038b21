"""A send time per customer and channel: the local hour when the customer is most likely to open.

The data: `marts.customer_engagement_hours`, each customer's weighted e-mail or push engagement
(activation.send_time.channels) per local hour of week over the last `history_days` days, in their
country's time zone.

The model, per channel and send day (empirical Bayes, a Dirichlet-multinomial posterior mean):
- the customer's engagement per hour of day (their days pooled: a customer has a few opens, not a
  week's worth), smoothed over the neighbouring hours;
- their segment's pattern for the send day's weekday (`segment` columns, all its customers pooled)
  as the prior, worth `prior_strength` events: with one open the segment mostly decides, with ten
  the customer does;
- the hour with the highest posterior outside the quiet hours is sent at. A customer with no
  engagement gets the segment's hour ("segment"), a segment with none the overall pattern, and with
  no engagement at all `default_hour` ("default").

Assumption, stated in docs/audiences.md: messages were sent at hours spread over the day, so that
the hours of opens follow the hours of highest open rate (the rate itself needs send timestamps,
which the landing contract does not have). A fixed-time arm against an optimized arm in the same
audience (the readouts compare arms) measures whether it earns anything.
"""

from __future__ import annotations

import datetime as dt
import logging
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from ml.activation.settings import SendTimeSettings
from ml.constants import CUSTOMER_ID
from ml.warehouse.engine import open_warehouse, read_frame
from ml.warehouse.frames import text_frame
from ml.warehouse.partitions import existing_tables

log = logging.getLogger(__name__)

HOURS = 24
WEEKDAYS = 7
OPTIMIZED = "optimized"
# Each hour shares its evidence with its neighbours: an open at 19:40 says something about 20:00.
SMOOTHING_KERNEL = np.array([0.25, 0.5, 0.25])


def smooth_hours(counts: np.ndarray) -> np.ndarray:
    """Counts per hour of day (last axis) spread over the neighbouring hours, wrapping midnight."""
    return (
        SMOOTHING_KERNEL[0] * np.roll(counts, 1, axis=-1)
        + SMOOTHING_KERNEL[1] * counts
        + SMOOTHING_KERNEL[2] * np.roll(counts, -1, axis=-1)
    )


def _hour_matrix(rows: pd.DataFrame, keys: pd.Index, key: str) -> np.ndarray:
    """(len(keys), 24) engagement per hour of day of the rows' `key` values."""
    matrix = np.zeros((len(keys), HOURS))
    if len(rows):
        np.add.at(matrix, (keys.get_indexer(rows[key]), rows["hour_of_day"].to_numpy(int)), rows["engagement"])
    return matrix


def segment_patterns(segments: pd.DataFrame, weekday: int) -> tuple[pd.Series, np.ndarray]:
    """Per segment, the share of its engagement per local hour on ISO `weekday`, shrunk to its whole
    week's hours (a weekday holds a seventh of the data); returns (segment keys, (segments, 24))."""
    keys = pd.Index(sorted(segments["segment"].unique()))
    on_day = _hour_matrix(segments[segments["day_of_week"] == weekday], keys, "segment")
    whole_week = _hour_matrix(segments, keys, "segment")
    pattern = smooth_hours(on_day + whole_week / WEEKDAYS)
    totals = pattern.sum(axis=1, keepdims=True)
    return pd.Series(np.arange(len(keys)), index=keys), np.divide(
        pattern, totals, out=np.zeros_like(pattern), where=totals > 0
    )


def best_hours(
    customers: pd.DataFrame, engagement: pd.DataFrame, segments: pd.DataFrame, settings: SendTimeSettings, weekday: int
) -> pd.DataFrame:
    """Pure compute. `customers`: customer_id and segment; `engagement`: their customer_id,
    hour_of_day, engagement; `segments`: segment, day_of_week, hour_of_day, engagement (all customers
    pooled). Returns customer_id, send_hour (local) and source, one row per customer."""
    ids = pd.Index(customers[CUSTOMER_ID])
    own = _hour_matrix(engagement[engagement[CUSTOMER_ID].isin(ids)], ids, CUSTOMER_ID)
    segment_index, patterns = segment_patterns(segments, weekday)
    overall = patterns.sum(axis=0)
    overall = overall / overall.sum() if overall.sum() else overall
    row = segment_index.reindex(customers["segment"]).to_numpy()
    known = ~np.isnan(row)
    prior = np.tile(overall, (len(ids), 1))
    prior[known] = patterns[row[known].astype(int)]
    prior[prior.sum(axis=1) == 0] = overall
    posterior = smooth_hours(own) + settings.prior_strength * prior
    allowed = np.array([not settings.is_quiet(hour) for hour in range(HOURS)])
    posterior[:, ~allowed] = -np.inf
    has_evidence = posterior[:, allowed].max(axis=1) > 0 if allowed.any() else np.zeros(len(ids), bool)
    hour = np.where(has_evidence, posterior.argmax(axis=1), settings.default_hour)
    source = np.where(own.sum(axis=1) > 0, "customer", np.where(has_evidence, "segment", "default"))
    return pd.DataFrame({CUSTOMER_ID: ids, "send_hour": hour.astype(int), "source": source})


def local_send_at(day: dt.date, hours: pd.Series, time_zones: pd.Series) -> pd.Series:
    """The UTC instant (ISO 8601, Z) of each local `hours` on `day` in each customer's time zone."""
    frame = pd.DataFrame({"hour": hours.to_numpy(), "zone": time_zones.to_numpy()})
    instants = {
        (hour, zone): dt.datetime.combine(day, dt.time(hour), ZoneInfo(zone))
        .astimezone(dt.UTC)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        for hour, zone in frame.drop_duplicates().itertuples(index=False)
    }
    return pd.Series([instants[(h, z)] for h, z in frame.itertuples(index=False)], index=hours.index)


def _segment_key(columns: list[str]) -> str:
    return " || '|' || ".join(f"coalesce(cast(c.{column} as string), '?')" for column in columns)


def read_send_time_inputs(
    ds: dt.date, channel: str, customer_ids: list[str], settings: SendTimeSettings
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(customers with segment and time_zone, their engagement, every segment's pooled engagement) of
    `channel` at ds; the segment sums are the warehouse's group-by, not every customer's rows."""
    # Every country's zone as an SQL case (a handful of countries; nothing to register, so an empty
    # mapping works on both engines).
    zone_of = " ".join(f"when '{country}' then '{zone}'" for country, zone in settings.time_zones.items())
    zone = f"coalesce(case c.country {zone_of} end, ?)" if zone_of else "?"
    segment = _segment_key(settings.segment)
    with open_warehouse() as connection:
        connection.register("wanted", text_frame(CUSTOMER_ID, customer_ids))
        # execute, not read_frame: registered frames are seen by this connection only, not by a cursor.
        customers = connection.execute(
            f"select c.customer_id, {segment} as segment, {zone} as time_zone from marts.customer_360 as c "
            "where c.ds = ? and c.customer_id in (select customer_id from wanted) order by c.customer_id",
            [settings.default_time_zone, ds],
        ).df()
        if "customer_engagement_hours" not in existing_tables(connection, "marts"):
            empty = pd.DataFrame(columns=[CUSTOMER_ID, "segment", "day_of_week", "hour_of_day", "engagement"])
            return customers, empty, empty
        hours = "from marts.customer_engagement_hours as e where e.ds = ? and e.channel = ?"
        engagement = connection.execute(
            f"select e.customer_id, e.hour_of_day, sum(e.engagement) as engagement {hours} "
            "and e.customer_id in (select customer_id from wanted) group by 1, 2",
            [ds, channel],
        ).df()
        segments = read_frame(
            connection,
            f"select {segment} as segment, e.day_of_week, e.hour_of_day, sum(e.engagement) as engagement "
            "from marts.customer_engagement_hours as e "
            "inner join marts.customer_360 as c on c.ds = e.ds and c.customer_id = e.customer_id "
            "where e.ds = ? and e.channel = ? group by 1, 2, 3",
            [ds, channel],
        )
    return customers, engagement, segments


def fixed_hour(send_time: str) -> int:
    return int(send_time[:2])


def send_at_column(rows: pd.DataFrame, channel: str, ds: dt.date, settings: SendTimeSettings) -> pd.Series:
    """Pure compute but for the reads: each row's `send_at` (UTC, ISO 8601) from its `send_time`
    (optimized, HH:00 or None), on the day after ds (the files are picked up that morning); None for
    rows without a send time and for channels the model does not cover (web, call center)."""
    send_at = pd.Series(None, index=rows.index, dtype=object)
    timed = rows["send_time"].notna()
    if channel not in settings.channels or not timed.any():
        return send_at
    send_day = ds + dt.timedelta(days=1)
    customers, engagement, segments = read_send_time_inputs(
        ds, channel, sorted(rows.loc[timed, CUSTOMER_ID].unique()), settings
    )
    chosen = best_hours(customers, engagement, segments, settings, send_day.isoweekday()).set_index(CUSTOMER_ID)
    sources = chosen["source"].value_counts().to_dict()
    if sources.get("default") == len(chosen):
        log.warning(
            "ds=%s %s: no %s engagement in the last %d days, so every optimized send falls back to %02d:00 local; "
            "land events of those types (the landing contract's events) to learn the customers' hours",
            ds, channel, "/".join(settings.channels[channel]), settings.history_days, settings.default_hour,
        )  # fmt: skip
    log.info("ds=%s %s send times decided by %s", ds, channel, sources)
    zones = customers.set_index(CUSTOMER_ID)["time_zone"]
    timed_rows = rows[timed]
    hours = pd.Series(
        [
            chosen.at[customer, "send_hour"] if send_time == OPTIMIZED else fixed_hour(send_time)
            for customer, send_time in zip(timed_rows[CUSTOMER_ID], timed_rows["send_time"], strict=True)
        ],
        index=timed_rows.index,
    )
    send_at[timed] = local_send_at(
        send_day, hours, timed_rows[CUSTOMER_ID].map(zones).fillna(settings.default_time_zone)
    )
    return send_at


def hour_error(chosen: pd.Series, preferred: pd.Series, settings: SendTimeSettings) -> pd.Series:
    """Hours between each chosen hour and the allowed hour nearest a preferred (e.g. planted) hour,
    around the clock: how far a send is from the best one the quiet hours permit."""
    allowed = np.array([hour for hour in range(HOURS) if not settings.is_quiet(hour)])

    def around_the_clock(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        difference = np.abs(a - b) % HOURS
        return np.minimum(difference, HOURS - difference)

    preferred_hour = np.floor(preferred.to_numpy(float))
    best = allowed[around_the_clock(preferred_hour[:, None], allowed[None, :]).argmin(axis=1)]
    return pd.Series(around_the_clock(chosen.to_numpy(float), best), index=chosen.index)
