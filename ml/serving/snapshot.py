"""The serving snapshot: everything the online service answers from, published once a night.

One SQLite file per ds under `$PZ_DATA_DIR/serving/`: per customer one JSON record (the night's
decision with, for every channel that exports it, exactly the row of `channels.<channel>`; consent
flags; global-holdout and erasure state; the nightly recommendations; the items bought, which a
re-ranked list must never show), the catalog, each item's neighbors, the popular items, and a `meta`
table (ds, channels, model versions, counts, format). SQLite was chosen by measurement
(bench/bench_serving.py): a primary-key lookup costs microseconds, the file is memory-mapped by the
operating system rather than loaded (the service starts in well under a second at 1M customers and
its own memory stays small), and a file is one atomic unit to publish.

Publishing is atomic: the file is written under a temporary name and renamed, then the pointer
`serving/CURRENT` (a small JSON file) is replaced by rename. A service polling the pointer opens the
new file, checks it, and swaps; a reader never sees half a snapshot. A rerun of ds writes the same
file; a backfill of an older ds writes its file but leaves the pointer on the newer night.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd

from ml.activation.columns import consent_column
from ml.activation.population import channel_table
from ml.activation.settings import ActivationConfig
from ml.assignment import arm_probability
from ml.constants import CUSTOMER_ID, ITEM_ID
from ml.dates import end_of
from ml.errors import PlatformError
from ml.paths import data_dir
from ml.serving.store import FORMAT_VERSION, POINTER
from ml.warehouse.engine import open_warehouse, read_frame
from ml.warehouse.partitions import existing_tables

log = logging.getLogger(__name__)


class SnapshotError(PlatformError, RuntimeError):
    """The night's tables cannot make a serving snapshot (a stage before it has not run for ds)."""


def serving_dir() -> Path:
    return data_dir() / "serving"


def snapshot_path(ds: dt.date, root: Path | None = None) -> Path:
    return (root or serving_dir()) / f"snapshot_ds={ds.isoformat()}.sqlite"


def read_pointer(root: Path | None = None) -> dict | None:
    """The published snapshot ({"ds", "file"}), or None when none was published."""
    path = (root or serving_dir()) / POINTER
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


# What the snapshot reads of ds, table by table: (the table that must exist, the query, its columns
# when the table does not exist yet: a night without a catalog has no item neighbors).
NIGHT_QUERIES = {
    "decisions": (
        "activation.decisions",
        "select customer_id, decision, audience, experiment_group, reason from activation.decisions where ds = ?",
        None,
    ),
    "assignments": (
        "experiments.assignments",
        "select a.audience, a.customer_id, a.experiment_version, v.definition "
        "from experiments.assignments as a left join experiments.versions as v "
        "on v.audience = a.audience and v.experiment_version = a.experiment_version where a.ds = ?",
        ["audience", CUSTOMER_ID, "experiment_version", "definition"],
    ),
    "recommendations": (
        "marts.customer_recommendations",
        "select customer_id, item_id, model_version from marts.customer_recommendations "
        "where ds = ? order by customer_id, rank",
        [CUSTOMER_ID, ITEM_ID, "model_version"],
    ),
    "neighbors": (
        "marts.item_neighbors",
        "select item_id, neighbor_item_id, similarity, strategy, model_version from marts.item_neighbors "
        "where ds = ? order by item_id, rank",
        [ITEM_ID, "neighbor_item_id", "similarity", "strategy", "model_version"],
    ),
    "popular": ("marts.popular_items", "select item_id from marts.popular_items where ds = ? order by rank", [ITEM_ID]),
    # stg_identity_graph is a view of the staging build's ds: a backfill reads the links known by then.
    "identities": (
        "staging.stg_identity_graph",
        "select anonymous_id, customer_id from staging.stg_identity_graph where first_linked_at < ? "
        "order by anonymous_id",
        ["anonymous_id", CUSTOMER_ID],
    ),
}


def _read(connection, name: str, ds: dt.date) -> pd.DataFrame:
    table, sql, empty = NIGHT_QUERIES[name]
    schema, relation = table.split(".")
    if relation not in existing_tables(connection, schema):
        if empty is None:
            raise SnapshotError(f"no {table}: run the night for ds={ds} up to publish_channels first")
        return pd.DataFrame(columns=empty)
    return connection.execute(sql, [end_of(ds) if name == "identities" else ds]).df()


def read_night(ds: dt.date, activation: ActivationConfig) -> dict[str, pd.DataFrame]:
    """The tables of ds the snapshot is made of (decisions, assignments with their experiment
    versions, the channel rows, recommendations, consents, purchases, erasures and the catalog)."""
    consent_columns = sorted({consent_column(activation.consent_of(c)) for c in activation.channels})
    with open_warehouse() as connection:
        tables = {name: _read(connection, name, ds) for name in NIGHT_QUERIES}
        tables["consents"] = connection.execute(
            f"select customer_id, {', '.join(consent_columns)} from marts.customer_360 where ds = ?", [ds]
        ).df()
        tables["erased"] = connection.execute("select customer_id from audit.suppressed_customers").df()
        tables["items"] = connection.execute(
            "select item_id, item_name as name, category, price, is_active from staging.stg_items order by item_id"
        ).df()
        tables["bought"] = read_frame(
            connection,
            "select o.customer_id, oi.item_id from staging.stg_orders as o "
            "join staging.stg_order_items as oi on oi.order_id = o.order_id "
            "where o.status = 'completed' and o.ordered_at < ? group by o.customer_id, oi.item_id",
            [end_of(ds)],
        )
        present = existing_tables(connection, "channels")
        for channel in activation.channels:
            tables[f"channel:{channel}"] = (
                connection.execute(
                    "select audience, customer_id, experiment_group, tactic, offer_code, content_id, "
                    f"recommended_items from {channel_table(channel)} where ds = ?",
                    [ds],
                ).df()
                if channel in present
                else pd.DataFrame(columns=[CUSTOMER_ID])
            )
    if tables["decisions"].empty:
        raise SnapshotError(f"activation.decisions has no rows for ds={ds}: run decide_audiences for {ds} first")
    return tables


def _is_true(value) -> bool:
    return value is not None and not pd.isna(value) and bool(value)


def _text(value) -> str | None:
    return None if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def _lists_by_customer(frame: pd.DataFrame, column: str) -> dict[str, list[str]]:
    """customer_id -> the column's values in row order (the frame sorted by customer), in one pass."""
    if frame.empty:
        return {}
    frame = frame.sort_values(CUSTOMER_ID, kind="stable")
    ids = frame[CUSTOMER_ID].to_numpy()
    values = frame[column].astype(str).to_numpy()
    starts = [0, *(i for i in range(1, len(ids)) if ids[i] != ids[i - 1])]
    ends = [*starts[1:], len(ids)]
    return {ids[start]: values[start:end].tolist() for start, end in zip(starts, ends, strict=True)}


def _channel_decisions(tables: dict[str, pd.DataFrame], channels) -> dict[str, dict[str, dict]]:
    """customer_id -> channel -> the channel row's decision fields, exactly as exported."""
    found: dict[str, dict[str, dict]] = {}
    for channel in channels:
        for row in tables[f"channel:{channel}"].itertuples(index=False):
            items = row.recommended_items
            found.setdefault(row.customer_id, {})[channel] = {
                "audience": row.audience,
                "experiment_group": row.experiment_group,
                "tactic": _text(row.tactic),
                "offer_code": _text(row.offer_code),
                "content_id": _text(row.content_id),
                "items": list(items) if isinstance(items, list | np.ndarray) else None,
            }
    return found


def customer_records(tables: dict[str, pd.DataFrame], activation: ActivationConfig) -> dict[str, dict]:
    """One record per customer known at ds (and per erased customer, so the service says why it
    answers with the default experience): what the service needs to answer without the warehouse."""
    channels = list(activation.channels)
    consent_channels = sorted({activation.consent_of(channel) for channel in channels})
    by_channel = _channel_decisions(tables, channels)
    experiments = {
        (customer, audience): (version, definition)
        for audience, customer, version, definition in tables["assignments"].itertuples(index=False, name=None)
    }
    consent_columns = list(tables["consents"].columns[1:])
    consents = {
        row[0]: dict(zip(consent_columns, row[1:], strict=True))
        for row in tables["consents"].itertuples(index=False, name=None)
    }
    recommendations = _lists_by_customer(tables["recommendations"], ITEM_ID)
    bought = _lists_by_customer(tables["bought"], ITEM_ID)
    records: dict[str, dict] = {}
    for customer, decision, audience, group, reason in tables["decisions"].itertuples(index=False, name=None):
        audience, group = _text(audience), _text(group)
        version, definition = experiments.get((customer, audience), (None, None))
        flags = consents.get(customer, {})
        records[customer] = {
            "decision": decision,
            "audience": audience,
            "experiment_group": group,
            "reason": reason,
            "experiment_version": _text(version),
            "assignment_probability": arm_probability(definition, group) if group else None,
            "channels": by_channel.get(customer, {}),
            "consent": {name: _is_true(flags.get(consent_column(name))) for name in consent_channels},
            "recommendations": recommendations.get(customer, []),
            "bought": bought.get(customer, []),
        }
    for customer in tables["erased"][CUSTOMER_ID]:
        records[customer] = dict(ERASED_RECORD)
    return records


def meta_of(ds: dt.date, tables: dict[str, pd.DataFrame], activation: ActivationConfig, customers: int) -> dict:
    versions = tables["recommendations"]["model_version"].dropna()
    return {
        "format_version": FORMAT_VERSION,
        "ds": ds.isoformat(),
        "channels": list(activation.channels),
        "consent_of": {channel: activation.consent_of(channel) for channel in activation.channels},
        "customers": customers,
        "recommender_version": str(versions.iloc[0]) if len(versions) else None,
        "neighbors_strategy": str(tables["neighbors"]["strategy"].iloc[0]) if len(tables["neighbors"]) else None,
        "popular_items": tables["popular"][ITEM_ID].astype(str).tolist(),
    }


def item_records(tables: dict[str, pd.DataFrame]) -> tuple[dict[str, dict], dict[str, list]]:
    """The catalog (the fields a page shows) and each item's neighbors [[item, similarity], ...]."""
    items = {
        str(row.item_id): {
            ITEM_ID: str(row.item_id),
            "name": _text(row.name),
            "category": _text(row.category),
            "price": None if pd.isna(row.price) else float(row.price),
            "is_active": None if pd.isna(row.is_active) else bool(row.is_active),
        }
        for row in tables["items"].itertuples(index=False)
    }
    neighbors: dict[str, list] = {}
    for row in tables["neighbors"].itertuples(index=False):
        neighbors.setdefault(str(row.item_id), []).append([str(row.neighbor_item_id), round(float(row.similarity), 6)])
    return items, neighbors


def _dumps(value) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def write_snapshot(
    path: Path, meta: dict, customers: dict[str, dict], items: dict, neighbors: dict, identities: dict | None = None
) -> None:
    """Write the SQLite file under a temporary name, then rename it into place (atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    building = path.with_name(f".building-{path.name}-{os.getpid()}")
    building.unlink(missing_ok=True)
    with sqlite3.connect(building) as connection:
        connection.executescript(
            """
            pragma journal_mode = off;
            pragma synchronous = off;
            create table meta (key text primary key, value text not null) without rowid;
            create table customers (customer_id text primary key, record text not null) without rowid;
            create table items (item_id text primary key, record text not null) without rowid;
            create table neighbors (item_id text primary key, record text not null) without rowid;
            create table identities (anonymous_id text primary key, customer_id text not null) without rowid;
            """
        )
        connection.executemany("insert into meta values (?, ?)", ((k, _dumps(v)) for k, v in sorted(meta.items())))
        connection.executemany(
            "insert into customers values (?, ?)", ((c, _dumps(r)) for c, r in sorted(customers.items()))
        )
        connection.executemany("insert into items values (?, ?)", ((i, _dumps(r)) for i, r in sorted(items.items())))
        connection.executemany(
            "insert into neighbors values (?, ?)", ((i, _dumps(r)) for i, r in sorted(neighbors.items()))
        )
        connection.executemany("insert into identities values (?, ?)", sorted((identities or {}).items()))
    connection.close()
    os.replace(building, path)


def _write_pointer(root: Path, pointer: dict) -> None:
    """Replace serving/CURRENT in one rename (a reader sees the old pointer or the new one)."""
    staged = root / f".{POINTER}-{os.getpid()}"
    staged.write_text(json.dumps(pointer, sort_keys=True))
    os.replace(staged, root / POINTER)


def publish_pointer(ds: dt.date, path: Path) -> bool:
    """Point CURRENT at the snapshot of ds unless a newer night is already published (a backfill of
    an older date must not roll the service back). Returns whether the pointer moved."""
    root = path.parent
    current = read_pointer(root)
    if current is not None and current["ds"] > ds.isoformat() and (root / current["file"]).exists():
        return False
    _write_pointer(root, {"ds": ds.isoformat(), "file": path.name})
    return True


def prune(root: Path, kept: int) -> list[str]:
    """Delete all but the newest `kept` snapshots (never the one CURRENT names)."""
    current = (read_pointer(root) or {}).get("file")
    snapshots = sorted(root.glob("snapshot_ds=*.sqlite"), reverse=True)
    removed = [path for path in snapshots[kept:] if path.name != current]
    for path in removed:
        path.unlink(missing_ok=True)
    return [path.name for path in removed]


ERASED_RECORD = {"decision": "default_experience", "reason": "erased", "erased": True}


def purge_erased_from_snapshots(erased_ids: list[str], root: Path | None = None) -> int:
    """Replace the records of erased customers in every kept snapshot by the bare erased flag (a
    rewritten copy renamed over the file: a snapshot is never changed in place, the service opens it
    immutable), then publish the pointer again so a running service reloads. Returns the records
    replaced."""
    root = root or serving_dir()
    erased = _dumps(ERASED_RECORD)
    replaced = 0
    for path in sorted(root.glob("snapshot_ds=*.sqlite")):
        with sqlite3.connect(path) as connection:
            found = connection.execute(
                "select count(*) from customers where record <> ? and customer_id in (select value from json_each(?))",
                [erased, json.dumps(erased_ids)],
            ).fetchone()[0]
        connection.close()
        if not found:
            continue
        staged = path.with_name(f".purging-{path.name}-{os.getpid()}")
        shutil.copyfile(path, staged)
        with sqlite3.connect(staged) as connection:
            connection.execute(
                "update customers set record = ? where customer_id in (select value from json_each(?))",
                [erased, json.dumps(erased_ids)],
            )
        connection.close()
        os.replace(staged, path)
        replaced += found
    current = read_pointer(root)
    if replaced and current is not None:
        _write_pointer(root, current)  # a new file: a running service sees the change and reloads
    return replaced


def publish_serving_snapshot(ds: dt.date, activation: ActivationConfig, snapshots_kept: int) -> dict[str, object]:
    """Build the serving snapshot of ds from the night's tables and publish it for the service."""
    tables = read_night(ds, activation)
    customers = customer_records(tables, activation)
    items, neighbors = item_records(tables)
    meta = meta_of(ds, tables, activation, len(customers))
    path = snapshot_path(ds)
    identities = dict(zip(tables["identities"]["anonymous_id"], tables["identities"][CUSTOMER_ID], strict=True))
    write_snapshot(path, meta, customers, items, neighbors, identities)
    published = publish_pointer(ds, path)
    removed = prune(path.parent, snapshots_kept)
    purged = purge_erased_from_snapshots(tables["erased"][CUSTOMER_ID].tolist(), path.parent)
    log.info(
        "ds=%s serving snapshot %s: %d customers, %d items (%s)",
        ds,
        path,
        len(customers),
        len(items),
        "published" if published else "kept: a newer night is published",
    )
    return {
        "snapshot": str(path),
        "customers": len(customers),
        "items": len(items),
        "published": published,
        "removed": removed,
        "erased_records_purged": purged,
    }
