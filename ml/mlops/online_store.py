"""What the Feast online store holds, so that a night writes only the customers whose features changed.

Four features are day counts: `tenure_days`, `recency_days`, `days_since_first_order` and
`days_since_last_event`. They grow by one every night for every customer, even a customer who did
nothing. Compared as they are, every customer would "change" every night, and a writer of changes
would rewrite the whole store while only looking selective.

So a row is compared in its anchored form: each day count becomes the date it counts from
(`feature_date - recency_days` is the last order's date), every other feature is taken as it is.
A customer whose anchored row is the one last written is not written again. The stored day counts
are then as of the night the row was written, and `as_of` adds the nights since: a row written k
nights before the store's night has day counts k larger now. That is exactly the snapshot's value,
because the anchors did not move (the integration test compares every customer with the snapshot).

Everything else that moves with the calendar is a real change and is written: a window count whose
oldest event ages out, a lifecycle stage that crosses a threshold, an age band on New Year's night,
`days_since_last_event` turning missing after 90 quiet days.

Beside the online store: `online_written.parquet`, one digest per customer of the anchored row
last written, and `online_store.json`, the night the store holds and what that night wrote. The
digests are replaced by tonight's after the rows are written, so a night killed midway writes again
what it may have missed. The digests hold only customer ids and 64-bit hashes; an erasure removes
their ids too (`forget`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ml.constants import CUSTOMER_ID

# The features that count days up to the feature date (feature_store/customer_features.py describes them).
DAY_COUNT_FEATURES = ("tenure_days", "recency_days", "days_since_first_order", "days_since_last_event")
# The anchored form's version: a change to it (or to the features) makes the next night rewrite everyone.
ANCHORED_FORM_VERSION = 1
STATE_FILE = "online_written.parquet"
MANIFEST_FILE = "online_store.json"
SECONDS_PER_DAY = 86_400
# Feast's suffix for a feature's event timestamp in an online response (feast.online_response.TIMESTAMP_POSTFIX).
TIMESTAMP_SUFFIX = "__ts"


def state_path(directory: Path) -> Path:
    return directory / STATE_FILE


def manifest_path(directory: Path) -> Path:
    return directory / MANIFEST_FILE


def read_manifest(directory: Path) -> dict | None:
    path = manifest_path(directory)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def schema_fingerprint(features: tuple[str, ...], categorical: tuple[str, ...]) -> str:
    """What the stored digests depend on besides the values: the features, their kinds, the anchored form."""
    described = json.dumps([ANCHORED_FORM_VERSION, list(features), list(categorical), list(DAY_COUNT_FEATURES)])
    return hashlib.sha256(described.encode()).hexdigest()[:16]


def anchored_digest_sql(features: list[str]) -> str:
    """DuckDB expression over a snapshot row: a 64-bit digest of its features in their anchored form
    (day counts as the dates they count from). Rows of two nights with one digest hold the same facts."""
    anchor = "date_diff('day', date '1970-01-01', feature_date) - {}"  # the day counted from, as a day number
    parts = [anchor.format(name) if name in DAY_COUNT_FEATURES else name for name in features]
    return f"hash(row({', '.join(parts)}))"


def full_rewrite_reason(directory: Path, fingerprint: str, online_rows_present: bool) -> str | None:
    """Why tonight must write every customer, or None when writing the changes is enough."""
    manifest = read_manifest(directory)
    if manifest is None or not state_path(directory).exists():
        return "no record of what the online store holds"
    if manifest.get("schema") != fingerprint:
        return "the features or their anchored form changed"
    if not online_rows_present:
        return "the online table was empty or missing"
    return None


def changed_rows_query(columns: list[str], features: list[str], full: bool) -> str:
    """SQL over the relation `snapshot` (tonight's rows) and, unless `full`, `written` (the digests
    last written): the `columns` of tonight's rows whose anchored digest is not the one written
    (new customers too)."""
    selected = ", ".join(f"tonight.{name}" for name in columns)
    if full:
        return f"select {selected} from snapshot as tonight"
    return (
        f"with tonight as (select *, {anchored_digest_sql(features)} as row_digest from snapshot) "
        f"select {selected} from tonight left join written on written.{CUSTOMER_ID} = tonight.{CUSTOMER_ID} "
        "where written.row_digest is distinct from tonight.row_digest"
    )


def digests_query(features: list[str]) -> str:
    return f"select {CUSTOMER_ID}, {anchored_digest_sql(features)} as row_digest from snapshot order by {CUSTOMER_ID}"


def write_manifest(directory: Path, manifest: dict) -> None:
    path = manifest_path(directory)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
    partial.replace(path)


def as_of(response: dict[str, list], store_ds: str | None) -> pd.DataFrame:
    """An online response (Feast's to_dict with event timestamps) as of the store's night: each
    day count plus the nights since its row was written. The timestamp columns are dropped."""
    frame = pd.DataFrame(response)
    stamps = [column for column in frame.columns if column.endswith(TIMESTAMP_SUFFIX)]
    present = [name for name in DAY_COUNT_FEATURES if name in frame.columns]
    if store_ds is not None and present:
        written_at = frame[f"{present[0]}{TIMESTAMP_SUFFIX}"].to_numpy(dtype=np.int64)
        store_end = int(pd.Timestamp(dt.date.fromisoformat(store_ds) + dt.timedelta(days=1), tz="UTC").timestamp())
        nights_since = np.where(written_at > 0, (store_end - written_at) // SECONDS_PER_DAY, 0)
        for name in present:
            frame[name] = frame[name].astype(float) + nights_since
    return frame.drop(columns=stamps)


def forget(directory: Path, customer_ids: list[str]) -> int:
    """Remove these customers from the written digests (an erasure); how many were there."""
    path = state_path(directory)
    if not customer_ids or not path.exists():
        return 0
    digests = pq.read_table(path)
    erased = pc.is_in(digests.column(CUSTOMER_ID), value_set=pa.array(customer_ids, type=pa.string()))
    found = pc.sum(erased).as_py() or 0
    if found:
        partial = path.with_name(f".{path.name}.partial")
        pq.write_table(digests.filter(pc.invert(erased)), partial)
        partial.replace(path)
    return found
