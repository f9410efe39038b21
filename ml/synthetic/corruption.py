"""Bad rows of every class the contract rejects, with a ledger, and the landing files' layout."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ml.synthetic.behaviour import SECONDS_PER_DAY
from ml.synthetic.settings import GeneratorSettings
from ml.warehouse.contract import CONTRACT

# ----------------------------------------------------------------------------- bad rows

# Every class of bad input, the status staging must give it, and the reason code it must carry.
BAD_ROW_CLASSES = {
    "missing_required": ("rejected", "missing_required"),
    "unparseable_timestamp": ("rejected", "unparseable_timestamp"),
    "unparseable_number": ("rejected", "unparseable_number"),
    "invalid_value": ("rejected", "invalid_value"),
    "out_of_range": ("rejected", "out_of_range"),
    "unknown_customer": ("rejected", "unknown_customer"),
    "unknown_order": ("rejected", "unknown_order"),
    "unknown_item": ("rejected", "unknown_item"),
    "broken_encoding": ("rejected", "invalid_encoding"),
    "malformed_row": ("rejected", "malformed_row"),
    "duplicate_key": ("duplicate", "duplicate_key"),
    "future_timestamp": ("later_dated", None),
}

# (table, class) -> how to corrupt a clean row (column, bad value). None: handled specially.
CORRUPTIONS: dict[str, dict[str, tuple[str, str] | None]] = {
    "customers": {
        "missing_required": ("signup_at", ""),
        "unparseable_timestamp": ("signup_at", "31/02/2026 25:61"),
        "unparseable_number": ("birth_year", "nineteen-eighty"),
        "broken_encoding": None,
        "malformed_row": None,
        "duplicate_key": None,
        "future_timestamp": ("signup_at", None),
    },
    "items": {
        "missing_required": ("item_id", ""),
        "unparseable_number": ("price", "12,50 EUR"),
        "invalid_value": ("is_active", "maybe"),
        "out_of_range": ("price", "-5.00"),
        "duplicate_key": None,
    },
    "orders": {
        "missing_required": ("customer_id", ""),
        "unparseable_timestamp": ("ordered_at", "yesterday"),
        "unparseable_number": ("total_amount", "12,50 EUR"),
        "invalid_value": ("status", "lost_in_transit"),
        "unknown_customer": ("customer_id", "C9999999"),
        "broken_encoding": None,
        "malformed_row": None,
        "duplicate_key": None,
        "future_timestamp": ("ordered_at", None),
    },
    "order_items": {
        "missing_required": ("item_id", ""),
        "unparseable_number": ("quantity", "two"),
        "out_of_range": ("quantity", "0"),
        "unknown_order": ("order_id", "O99999999"),
        "unknown_item": ("item_id", "I99999"),
        "duplicate_key": None,
    },
    "events": {
        "missing_required": ("event_type", ""),
        "unparseable_timestamp": ("occurred_at", "2026-13-45T99:00:00"),
        "invalid_value": ("event_type", "hover"),
        "unknown_customer": ("customer_id", "C9999998"),
        "unknown_item": ("item_id", "I99998"),
        "duplicate_key": None,
        "future_timestamp": ("occurred_at", None),
    },
    "survey_responses": {
        "missing_required": ("score", ""),
        "unparseable_number": ("score", "ten"),
        "invalid_value": ("survey_type", "ces2"),
        "out_of_range": ("score", "11"),
        "unknown_customer": ("customer_id", "C9999997"),
        "unknown_order": ("order_id", "O99999998"),
        "broken_encoding": None,
        "duplicate_key": None,
        "future_timestamp": ("responded_at", None),
    },
    "consents": {
        "missing_required": ("granted", ""),
        "unparseable_timestamp": ("recorded_at", "n/a"),
        "invalid_value": ("channel", "fax"),
        "unknown_customer": ("customer_id", "C9999996"),
        "duplicate_key": None,
        "future_timestamp": ("recorded_at", None),
    },
    "campaign_sends": {
        "missing_required": ("campaign_id", ""),
        "unparseable_timestamp": ("sent_at", "last monday"),
        "unparseable_number": ("assignment_probability", "half"),
        "invalid_value": ("is_control", "perhaps"),
        "out_of_range": ("assignment_probability", "1.5"),
        "unknown_customer": ("customer_id", "C9999994"),
        "duplicate_key": None,
        "future_timestamp": ("sent_at", None),
    },
    "erasure_requests": {
        "unknown_customer": ("customer_id", "C9999995"),
        "duplicate_key": None,
    },
}
TIMESTAMP_COLUMNS = {
    "customers": "signup_at",
    "orders": "ordered_at",
    "events": "occurred_at",
    "survey_responses": "responded_at",
    "consents": "recorded_at",
    "erasure_requests": "requested_at",
    "campaign_sends": "sent_at",
}
TABLES_WITH_OWN_ID = ("customers", "items", "orders", "events", "survey_responses")
ENCODING_COLUMN = {"customers": "city", "orders": "currency", "survey_responses": "comment"}
BULK_FILE = "{table}_2026-part-000.parquet"  # sorted before the resend, as files arrive in time
RESEND_FILE = "{table}_2026-resend-001.csv"


def _to_text(table: pa.Table) -> pd.DataFrame:
    """Render a table as the strings a CSV export would hold (ISO 8601 timestamps)."""
    frame = {}
    for name in table.column_names:
        column = table[name]
        if pa.types.is_timestamp(column.type):
            text = pc.strftime(column, format="%Y-%m-%dT%H:%M:%SZ")
        elif pa.types.is_boolean(column.type):
            text = pc.if_else(column, pa.scalar("true"), pa.scalar("false"))
        else:
            text = pc.cast(column, pa.string())
        frame[name] = text.to_pandas().fillna("").astype(object)
    return pd.DataFrame(frame)


def write_landing(
    tables: dict[str, pa.Table],
    settings: GeneratorSettings,
    out: Path,
    rng: np.random.Generator,
    erased_customers: set[str],
) -> pd.DataFrame:
    """Write each table as a bulk parquet file plus a CSV resend that carries the bad rows.

    The resend holds a slice of clean rows (moved, not copied), re-sent versions of bulk rows
    (the later record wins, the bulk one becomes a duplicate), and the injected bad rows.
    Returns the ledger of injected rows.
    """
    if out.exists():
        shutil.rmtree(out)
    ledgers: list[pd.DataFrame] = []
    end_seconds = settings.start_epoch + settings.days * SECONDS_PER_DAY
    orders = tables["orders"].to_pandas() if "orders" in tables else pd.DataFrame(columns=["order_id", "customer_id"])
    erased_orders = set(orders.loc[orders["customer_id"].isin(erased_customers), "order_id"])
    for table_name, table in tables.items():
        folder = out / table_name
        folder.mkdir(parents=True)
        contract = CONTRACT[table_name]
        n_rows = table.num_rows
        inject = settings.bad_row_rate > 0 and n_rows > 0
        n_resend = min(n_rows // 2, max(n_rows // 100, 20)) if inject else 0
        moved = np.sort(rng.choice(n_rows, size=n_resend, replace=False))
        kept = np.ones(n_rows, dtype=bool)
        kept[moved] = False
        bulk_file = BULK_FILE.format(table=table_name)
        _write_parquet_without(table, kept, folder / bulk_file)
        if not inject:
            continue

        # Templates for bad rows: bulk rows of customers who are not erased (erasure outranks
        # every other status, so their rows would not show the class being injected).
        template_rows = np.flatnonzero(kept)[:50_000]
        bulk_text = _to_text(table.take(pa.array(template_rows)))  # index i is bulk row i + 1
        if "customer_id" in bulk_text and table_name != "erasure_requests":
            bulk_text = bulk_text[~bulk_text["customer_id"].isin(erased_customers)]
        elif table_name == "order_items":  # erased through their order's customer
            bulk_text = bulk_text[~bulk_text["order_id"].isin(erased_orders)]
        n_bad = int(np.ceil(settings.bad_row_rate * n_rows))
        bad_frames = [
            _bad_rows(table_name, bad_class, corruption, bulk_text, n_bad, end_seconds, rng)
            for bad_class, corruption in CORRUPTIONS[table_name].items()
        ]
        bad = pd.concat(bad_frames, ignore_index=True)
        if bad.empty:
            continue

        resend_file = RESEND_FILE.format(table=table_name)
        clean = _to_text(table.take(pa.array(moved)))
        _write_resend_csv(folder / resend_file, contract.columns, clean, bad)
        ledgers.append(_ledger(table_name, contract, bad, len(clean), bulk_file, resend_file))
    return pd.concat(ledgers, ignore_index=True) if ledgers else pd.DataFrame()


def _bad_rows(
    table_name: str, bad_class: str, corruption, bulk_text: pd.DataFrame, n_bad: int, end_seconds: int, rng
) -> pd.DataFrame:
    """`n_bad` copies of bulk template rows, each broken the way `bad_class` says."""
    contract = CONTRACT[table_name]
    picked = rng.choice(len(bulk_text), size=min(n_bad, len(bulk_text)), replace=False)
    rows = bulk_text.iloc[picked].copy()
    rows["__source_row"] = rows.index + 1  # bulk row number (1-based) of the template
    rows["__class"] = bad_class
    rows["__encoding"] = "utf-8"
    rows["__extra"] = ""
    if bad_class == "broken_encoding":
        column = ENCODING_COLUMN[table_name]
        rows[column] = "Zürich café"
        rows["__encoding"] = "latin-1"
    elif bad_class == "malformed_row":
        rows["__extra"] = "unexpected field"
    elif bad_class == "future_timestamp":
        future = end_seconds + rng.integers(1, 30, len(rows)) * SECONDS_PER_DAY
        rows[corruption[0]] = pd.to_datetime(future, unit="s").strftime("%Y-%m-%dT%H:%M:%SZ")
    elif corruption is not None:
        rows[corruption[0]] = corruption[1]
    if bad_class != "duplicate_key":
        # A bad row gets a key of its own, so it is not mistaken for a re-sent version.
        # Only tables with an id of their own; the others' keys are references.
        own_key = contract.key[0]
        if table_name in TABLES_WITH_OWN_ID:
            suffix = pd.Series(np.arange(len(rows)), index=rows.index).astype(str)
            keyed = rows[own_key] != ""
            rows.loc[keyed, own_key] = rows.loc[keyed, own_key] + f"-{bad_class}-" + suffix[keyed]
    return rows


def _ledger(table_name: str, contract, bad: pd.DataFrame, clean_rows: int, bulk_file: str, resend_file: str):
    """The ledger of the rows injected into one table: where each is and what staging must make of it."""
    resend_rows = np.arange(len(bad)) + clean_rows + 1
    is_duplicate = (bad["__class"] == "duplicate_key").to_numpy()
    status = bad["__class"].map(lambda c: BAD_ROW_CLASSES[c][0])
    reason = bad["__class"].map(lambda c: BAD_ROW_CLASSES[c][1])
    return pd.DataFrame(
        {
            "table_name": table_name,
            "bad_class": bad["__class"].to_numpy(),
            # A re-sent duplicate supersedes the bulk row: the bulk row is the one set aside.
            "source_file": np.where(is_duplicate, bulk_file, resend_file),
            "source_row": np.where(is_duplicate, bad["__source_row"].to_numpy(), resend_rows),
            "row_key": bad[list(contract.key)].astype(str).agg("|".join, axis=1).to_numpy(),
            "expected_status": status.to_numpy(),
            "expected_reason": reason.to_numpy(),
        }
    )


def _write_parquet_without(table: pa.Table, kept: np.ndarray, path: Path, slice_rows: int = 2_000_000) -> None:
    """Write the kept rows slice by slice, so the table is never copied whole."""
    with pq.ParquetWriter(path, table.schema) as writer:
        for start in range(0, table.num_rows, slice_rows):
            part = table.slice(start, slice_rows)
            writer.write_table(part.filter(pa.array(kept[start : start + slice_rows])))
        if table.num_rows == 0:
            writer.write_table(table)


def _write_resend_csv(path: Path, columns, clean: pd.DataFrame, bad: pd.DataFrame) -> None:
    """Write the CSV resend; bad lines may carry another encoding or an extra field."""
    columns = list(columns)
    with path.open("wb") as handle:
        handle.write((",".join(columns) + "\n").encode("utf-8"))
        handle.write(clean[columns].to_csv(index=False, header=False, lineterminator="\n").encode("utf-8"))
        # Each class is one contiguous block with one encoding: write block by block.
        for _, block in bad.groupby("__class", sort=False):
            values = block[columns + (["__extra"] if block["__extra"].iloc[0] else [])]
            text = values.to_csv(index=False, header=False, lineterminator="\n")
            handle.write(text.encode(block["__encoding"].iloc[0]))
