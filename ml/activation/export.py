"""Channel tables and files for the day's treated customers, checked before anything is published.

For every channel: `channels.<channel>` (the ds partition replaced) and, under
`$PZ_DATA_DIR/exports/<channel>/ds=<ds>/`, one CSV and one parquet file per audience that uses the
channel, plus `manifest.json` (rows, holdout counts, sha256 of every file, model versions, config
hash). Files have no timestamps and sorted rows, so a rerun of ds writes byte-identical files.

Crash safety: a day's folder is written beside the live one (`.staging-*`) and exchanged with it in
one atomic rename (Linux renameat2 RENAME_EXCHANGE), so a reader, or a kill at any point, finds the
old folder or the new one, whole; the next publish deletes the leftovers (which may hold emails).

Published files are what was sent: an earlier day's folder is rewritten only to remove customers of
the erasure ledger (from the files themselves, not from the tables), and publishing stops when the
channel tables and the published files disagree about an earlier day (a warehouse restored from an
older backup), saying how to reload the tables from the files (`python -m ml exports
reload-tables`).

CSV cells that a spreadsheet would run as a formula (a leading =, +, -, @, tab or carriage return)
are prefixed with a single quote (the OWASP rule); the parquet files keep the values as they are.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ml.activation.changes import CHANGE, audience_changes, change_counts, previous_day
from ml.activation.columns import consent_column
from ml.activation.decisions import why_empty
from ml.activation.destinations import deliver
from ml.activation.population import (
    CHANNEL_SCHEMA,
    channel_table,
    read_catalog,
    read_contacts,
    read_model_versions,
    read_population,
    read_recommendations,
)
from ml.activation.send_time import send_at_column
from ml.activation.settings import CONTROL, ActivationConfig, Audience, Tactic
from ml.activation.store import ASSIGNMENTS, read_assignments, read_funnel
from ml.activation.templates import item_details, offer_fields, reason, score_deciles
from ml.constants import CUSTOMER_ID, ITEM_ID
from ml.errors import PlatformError
from ml.mlops.monitoring import assert_exports_allowed
from ml.mlops.settings import MonitoringConfig
from ml.paths import data_dir
from ml.warehouse.engine import open_warehouse
from ml.warehouse.frames import typed_frame
from ml.warehouse.partitions import delete_rows, existing_tables, replace_partition
from ml.warehouse.run_lock import exclusive_run

log = logging.getLogger(__name__)

BASE_COLUMNS = {
    "ds": "date",
    "audience": "varchar",
    CUSTOMER_ID: "varchar",
    "experiment_group": "varchar",
    "score": "double",
    "recommended_items": "varchar[]",
    "recommended_item_names": "varchar[]",
    "recommended_item_urls": "varchar[]",
    "recommended_item_image_urls": "varchar[]",
    "recommended_item_prices": "double[]",
    "tactic": "varchar",
    "offer_code": "varchar",
    "offer_value": "varchar",
    "offer_expires_on": "varchar",
    "offer_cost": "varchar",
    "content_id": "varchar",
    "reason": "varchar",
    "send_at": "varchar",
    "utm_parameters": "varchar",
}
LIST_COLUMNS = tuple(name for name, kind in BASE_COLUMNS.items() if kind.endswith("[]"))
SCORE_DECIMALS = 4  # a probability to 0.01 percentage points: more digits say nothing
COLUMN_MEANINGS = {
    "ds": "the day the decision is for (YYYY-MM-DD)",
    "audience": "the audience the customer is in (config/personalization.yml, activation.audiences)",
    CUSTOMER_ID: "the customer's id, as landed",
    "experiment_group": "the arm the customer was assigned (control customers are never exported)",
    "score": f"the calibrated probability that the customer buys within the propensity horizon "
    f"(marts.customer_scores, 0 to 1, {SCORE_DECIMALS} decimals); empty when the customer has no score",
    "recommended_items": "the customer's recommended item ids, best first, |-separated in the CSV",
    "tactic": "what the arm sends: offer, content or recommendations",
    "offer_code": "the offer's code (activation.economics.offers: its value and cost)",
    "content_id": "the content to send, templated per customer",
    "recommended_item_names": "the recommended items' names (items.name), in the order of recommended_items",
    "recommended_item_urls": "their product page URLs (items.url)",
    "recommended_item_image_urls": "their image URLs (items.image_url)",
    "recommended_item_prices": "their catalog prices (items.price)",
    "offer_value": "what the customer gets, e.g. 10% off (activation.economics.offers.<code>.value)",
    "offer_expires_on": "the last day the offer is valid (YYYY-MM-DD): the send day + the offer's valid_days - 1 "
    "(default: the audience's goal window)",
    "offer_cost": "what one redeemed order costs the company",
    "reason": "why the customer is in the audience: the trigger (which cart or product, when), the days since "
    "signup or the last order, or the model and decile that selected them",
    "send_at": "when to send (UTC, ISO 8601): the customer's best hour (send_time: optimized) or the arm's fixed "
    "hour in their time zone, on the day after ds; empty: send when the file arrives",
    "first_name": "the customer's first name, as landed (personal: only beside the e-mail address)",
    "utm_parameters": "the query string to append to every link of the message (utm_source = the channel, "
    "utm_medium = personalization, utm_campaign = the audience, utm_content = the arm), so web analytics "
    "credits the visit to the decision",
    "email": "the customer's e-mail address (consented)",
    "email_sha256": "sha256 of the trimmed, lowercased e-mail address",
    "change": "entered, exited (the earlier day's row) or changed (changes/ files only)",
}
CHANGES = "changes"  # changes/<audience>.csv|parquet beside the snapshots: entered, exited and changed rows
IDENTIFIER_COLUMNS = {"email": "email", "email_sha256": "email_sha256", "customer_id": None}


class PublishCheckError(PlatformError, RuntimeError):
    """A channel row breaks an invariant (consent, erasure, holdout, one decision): nothing is published."""


def exports_dir() -> Path:
    return data_dir() / "exports"


def channel_columns(activation: ActivationConfig, channel: str) -> dict[str, str]:
    settings = activation.channels[channel]
    identifier = IDENTIFIER_COLUMNS[settings.identifier]
    return {
        **BASE_COLUMNS,
        **({identifier: "varchar"} if identifier else {}),
        **({"first_name": "varchar"} if settings.first_name else {}),
        **{field: "varchar" for field in settings.fields},
    }


def channel_ddl(activation: ActivationConfig, channel: str) -> str:
    """Create the channel table; columns added to the channel's config later are added to it."""
    columns = channel_columns(activation, channel)
    table = channel_table(channel)
    return ";".join(
        [
            f"create schema if not exists {CHANNEL_SCHEMA}",
            f"create table if not exists {table} ({', '.join(f'{n} {t}' for n, t in columns.items())})",
            *(f"alter table {table} add column if not exists {n} {t}" for n, t in columns.items()),
        ]
    )


def normalized_email_sha256(email: str | None) -> str | None:
    """sha256 of the trimmed, lowercased address: the identifier ad and web platforms match on."""
    if email is None or (isinstance(email, float) and np.isnan(email)) or not str(email).strip():
        return None
    return hashlib.sha256(str(email).strip().lower().encode()).hexdigest()


@dataclass(frozen=True)
class TemplateInputs:
    """What the files add to each decision for the templates (ml.activation.templates)."""

    catalog: pd.DataFrame  # by item_id: item_name, url, image_url, price
    first_names: pd.Series  # by customer_id
    model_versions: dict[str, str | None]

    @classmethod
    def none(cls) -> TemplateInputs:
        catalog = pd.DataFrame(columns=["item_name", "url", "image_url", "price"], index=pd.Index([], name=ITEM_ID))
        return cls(catalog, pd.Series(dtype=object), {})


def utm_parameters(channel: str, audience: str, arm: str) -> str:
    """The UTM query string of a message, the same names Google Analytics and most web analytics read."""
    return f"utm_source={channel}&utm_medium=personalization&utm_campaign={audience}&utm_content={arm}"


def _tactic_fields(tactic: Tactic, customer_id: str, customer: pd.Series, recommendations: pd.Series) -> dict:
    """What the customer gets: the tactic's offer or content (templated) or their top k items,
    read once per customer so that every channel carries the same list."""
    items = None
    if tactic.kind == "recommendations":
        items = list(recommendations.get(customer_id, []))[: tactic.k]
    # A missing value reads "unknown" (welcome_unknown_DE) rather than "None" or "nan".
    values = {c: "unknown" if pd.isna(customer[c]) else customer[c] for c in tactic.template_columns()}
    content = tactic.content_id.format_map(values) if tactic.content_id else None
    return {"tactic": tactic.kind, "offer_code": tactic.offer_code, "content_id": content, "recommended_items": items}


def channel_rows(
    activation: ActivationConfig, ds: dt.date, model_versions: dict[str, str | None] | None = None
) -> dict[str, pd.DataFrame]:
    """The day's rows per channel, from the stored assignments of ds, with their send times
    (`model_versions`: what publish_channels already read, else read here)."""
    assignments = read_assignments(ds)
    treated_ids = assignments.loc[assignments["experiment_group"] != CONTROL, CUSTOMER_ID].unique().tolist()
    k = max([t.k or 0 for a in activation.audiences.values() for t in a.tactics()], default=0)
    contacts = read_contacts(treated_ids, ds)
    frames = build_channel_rows(
        assignments,
        read_population(ds),
        contacts["email"],
        read_recommendations(ds, k) if k else pd.Series(dtype=object),
        activation,
        ds,
        TemplateInputs(read_catalog(), contacts["first_name"], model_versions or read_model_versions(ds)),
    )
    for channel, frame in frames.items():
        send_times = [
            activation.audiences[audience].send_time_of(arm)
            for audience, arm in zip(frame["audience"], frame["experiment_group"], strict=True)
        ]
        timed = frame.assign(send_time=pd.Series(send_times, index=frame.index, dtype=object))
        frame["send_at"] = send_at_column(timed, channel, ds, activation.send_time)
    return frames


def _decision_record(audience: Audience, assignment, customer: pd.Series, recommendations, inputs, activation, ds):
    """One treated customer's row, shared by their channels."""
    tactic = next(arm.tactic for arm in audience.arms() if arm.name == assignment.experiment_group)
    fields = _tactic_fields(tactic, assignment.customer_id, customer, recommendations)
    return {
        "ds": ds,
        "audience": assignment.audience,
        CUSTOMER_ID: assignment.customer_id,
        "experiment_group": assignment.experiment_group,
        "score": None if pd.isna(customer["score"]) else round(float(customer["score"]), SCORE_DECIMALS),
        **fields,
        **item_details(fields["recommended_items"], inputs.catalog),
        **offer_fields(fields["offer_code"], audience, activation.economics, ds + dt.timedelta(days=1)),
        "reason": reason(audience, customer, inputs.catalog["item_name"], inputs.model_versions),
        "send_at": None,
    }


def build_channel_rows(
    assignments: pd.DataFrame,
    population: pd.DataFrame,
    emails: pd.Series,
    recommendations: pd.Series,
    activation: ActivationConfig,
    ds: dt.date,
    inputs: TemplateInputs | None = None,
) -> dict[str, pd.DataFrame]:
    """Treated customers only, in the channels their decision names, with the channel's identifier
    and fields; one record per customer shared by their channels (same items everywhere)."""
    inputs = inputs or TemplateInputs.none()
    treated = assignments[assignments["experiment_group"] != CONTROL]
    population = population.set_index(CUSTOMER_ID)
    population["score_decile"] = score_deciles(population["score"])
    rows: dict[str, list[dict]] = {channel: [] for channel in activation.channels}
    for assignment in treated.itertuples(index=False):
        audience = activation.audiences.get(assignment.audience)
        if audience is None:
            raise PublishCheckError(
                f"experiments.assignments has audience {assignment.audience!r} for ds={ds}, which the config no "
                "longer defines: rerun decide_audiences for this ds"
            )
        customer = population.loc[assignment.customer_id]
        record = _decision_record(audience, assignment, customer, recommendations, inputs, activation, ds)
        email = emails.get(assignment.customer_id)
        for channel in assignment.channels:
            settings = activation.channels[channel]
            row = dict(record)
            row["utm_parameters"] = utm_parameters(channel, assignment.audience, assignment.experiment_group)
            if settings.identifier == "email":
                row["email"] = email
            elif settings.identifier == "email_sha256":
                row["email_sha256"] = normalized_email_sha256(email)
            if settings.first_name:
                row["first_name"] = inputs.first_names.get(assignment.customer_id)
            row.update({field: customer[field] for field in settings.fields})
            rows[channel].append(row)
    frames = {}
    for channel, records in rows.items():
        frame = typed_frame(records, channel_columns(activation, channel))
        frames[channel] = frame.sort_values(["audience", CUSTOMER_ID]).reset_index(drop=True)
    return frames


@dataclass(frozen=True)
class CheckResult:
    name: str
    violations: int
    examples: list[str]


def check_rows(frames: dict[str, pd.DataFrame], activation: ActivationConfig, ds: dt.date) -> list[CheckResult]:
    """Independent checks against the warehouse, not against the decision code: every row has a
    consent in force at ds for its channel, no row is erased, every row has a treated assignment
    of its audience (no control group), a customer has one audience and one list of items."""
    union = []
    for channel, frame in frames.items():
        if frame.empty:
            continue
        union.append(
            frame[["audience", CUSTOMER_ID, "experiment_group", "recommended_items"]].assign(
                channel=channel, consent=consent_column(activation.consent_of(channel))
            )
        )
    if not union:
        return []
    rows = pd.concat(union, ignore_index=True)
    rows["items_key"] = rows["recommended_items"].map(lambda items: "|".join(items) if isinstance(items, list) else "")
    rows = rows.drop(columns="recommended_items")
    consent_cases = " ".join(f"when '{column}' then c.{column}" for column in sorted(set(rows["consent"])))
    checks = {
        "consent": f"""select r.customer_id || ' (' || r.channel || ')' from rows as r
            left join marts.customer_360 as c on c.ds = $ds and c.customer_id = r.customer_id
            where not coalesce(case r.consent {consent_cases} end, false)""",
        "erasure": """select r.customer_id from rows as r
            where r.customer_id in (select customer_id from audit.suppressed_customers)""",
        "holdout": f"""select r.customer_id || ' (' || r.audience || ')' from rows as r
            left join {ASSIGNMENTS} as a on a.ds = $ds and a.audience = r.audience and a.customer_id = r.customer_id
            where a.experiment_group is null or a.experiment_group = '{CONTROL}'
               or a.experiment_group <> r.experiment_group""",
        "one_decision": """select customer_id from rows group by customer_id having count(distinct audience) > 1""",
        "same_recommendations": """select customer_id from rows group by customer_id
            having count(distinct items_key) > 1""",
    }
    results = []
    with open_warehouse() as connection:
        connection.register("rows", rows)
        for name, sql in checks.items():
            found = [value for (value,) in connection.execute(sql, {"ds": ds} if "$ds" in sql else {}).fetchall()]
            results.append(CheckResult(name, len(found), sorted(found)[:5]))
    return results


# What a spreadsheet reads as the start of a formula (OWASP, "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralize_formula(value: object) -> object:
    """A text cell that a spreadsheet would run as a formula, prefixed with a single quote so it is
    shown as text; anything else unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _joined(values: object) -> str:
    """A list cell as the CSV writes it: |-separated, a missing element empty."""
    if not isinstance(values, list | np.ndarray):
        return ""
    return "|".join(
        "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value) for value in values
    )


def _as_lists(rows: pd.DataFrame) -> pd.DataFrame:
    """The list columns of rows read back from parquet, as Python lists (None where empty)."""
    for column in set(LIST_COLUMNS) & set(rows.columns):
        rows[column] = rows[column].map(lambda values: list(values) if isinstance(values, list | np.ndarray) else None)
    return rows


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    out = frame.copy()
    for column in set(LIST_COLUMNS) & set(out.columns):
        out[column] = out[column].map(_joined)
    out["ds"] = out["ds"].astype(str)
    for column in out.columns:
        # Text may be object or pandas' string dtype (pandas 3's default): neutralize every non-numeric column.
        if not pd.api.types.is_numeric_dtype(out[column]) and not pd.api.types.is_bool_dtype(out[column]):
            out[column] = out[column].astype(object).map(neutralize_formula)
    return out.to_csv(index=False, lineterminator="\n").encode("utf-8")


def _parquet_table(frame: pd.DataFrame, columns: dict[str, str]) -> pa.Table:
    types = {
        "date": pa.date32(),
        "varchar": pa.string(),
        "double": pa.float64(),
        "varchar[]": pa.list_(pa.string()),
        "double[]": pa.list_(pa.float64()),
    }
    schema = pa.schema([(name, types[kind]) for name, kind in columns.items()])
    return pa.Table.from_pandas(frame, schema=schema, preserve_index=False).replace_schema_metadata(None)


def _describe(path: Path, rows: int) -> dict[str, object]:
    data = path.read_bytes()
    return {"path": path.name, "rows": rows, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


def _exchange(staged: Path, final: Path) -> bool:
    """Swap two existing folders in one atomic rename (Linux renameat2 RENAME_EXCHANGE); False
    where the system cannot (another OS, a file system without it)."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(staged), _AT_FDCWD, os.fsencode(final), _RENAME_EXCHANGE)
    return result == 0


def _swap_in(staged: Path, final: Path) -> None:
    """Replace `final` by `staged`. With an existing `final` the two are exchanged atomically, and
    the old content, now under the staging name, is deleted; where that cannot be done, `final` is
    renamed aside first (a kill between the two renames is repaired by `clean_leftovers`)."""
    if not final.exists():
        staged.rename(final)
        return
    if _exchange(staged, final):
        shutil.rmtree(staged, ignore_errors=True)
        return
    retired = final.with_name(f".retired-{final.name}-{os.getpid()}")
    final.rename(retired)
    staged.rename(final)
    shutil.rmtree(retired, ignore_errors=True)


def clean_leftovers(root: Path) -> list[str]:
    """After a killed publish: delete `.staging-*` folders (unfinished, or the old content of an
    exchange), and put back a `.retired-*` folder whose live folder is missing (a kill between the
    two renames of the fallback swap), deleting the others. Returns what was done."""
    done = []
    if not root.is_dir():
        return done
    for leftover in sorted(root.glob("*/.staging-*")) + sorted(root.glob("*/.retired-*")):
        live = leftover.with_name(leftover.name.split("-", 1)[1].rsplit("-", 1)[0])
        if leftover.name.startswith(".retired-") and not live.exists():
            leftover.rename(live)
            done.append(f"restored {live}")
        else:
            shutil.rmtree(leftover, ignore_errors=True)
            done.append(f"deleted {leftover}")
    for line in done:
        log.warning("publish leftovers of an interrupted run: %s", line)
    return done


def _write_audience_files(
    folder: Path, name: str, part: pd.DataFrame, columns: dict[str, str], holdout: int, arm_names: list[str]
) -> dict[str, object]:
    """One audience's CSV and parquet in `folder`; returns its manifest entry (without the config)."""
    (folder / f"{name}.csv").write_bytes(_csv_bytes(part))
    pq.write_table(_parquet_table(part, columns), folder / f"{name}.parquet", compression="zstd")
    return {
        "audience": name,
        "rows": len(part),
        "holdout_customers": holdout,
        "arms": {arm: int((part["experiment_group"] == arm).sum()) for arm in arm_names},
        "files": [_describe(folder / f"{name}.csv", len(part)), _describe(folder / f"{name}.parquet", len(part))],
    }


def _read_audience(folder: Path, name: str) -> pd.DataFrame | None:
    """One audience's published rows (a parquet file of the folder), or None when there is none."""
    path = folder / f"{name}.parquet"
    if not path.exists():
        return None
    return _as_lists(pq.read_table(path).to_pandas())


def _write_change_files(
    folder: Path, name: str, changes: pd.DataFrame, columns: dict[str, str], since: str | None
) -> dict[str, object]:
    """The audience's change files (ml.activation.changes) under `folder`/changes; returns the
    manifest's `changes` entry (file paths relative to `folder`)."""
    (folder / CHANGES).mkdir(exist_ok=True)
    csv, parquet = folder / CHANGES / f"{name}.csv", folder / CHANGES / f"{name}.parquet"
    csv.write_bytes(_csv_bytes(changes))
    pq.write_table(_parquet_table(changes, {CHANGE: "varchar", **columns}), parquet, compression="zstd")
    files = [_describe(path, len(changes)) | {"path": f"{CHANGES}/{path.name}"} for path in (csv, parquet)]
    return {"since": since, **change_counts(changes), "files": files}


def _holdout(assignments: pd.DataFrame, audience: str, channel: str) -> int:
    """Control customers of the audience this channel would have reached."""
    mine = assignments[(assignments["audience"] == audience) & assignments["channels"].map(lambda c: channel in c)]
    return int((mine["experiment_group"] == CONTROL).sum())


def _experiment_version(assignments: pd.DataFrame, audience: str) -> str | None:
    versions = assignments.loc[assignments["audience"] == audience, "experiment_version"].dropna().unique()
    return str(versions[0]) if len(versions) else None


def _empty_reason(funnel: pd.DataFrame, audience: str, channel: str) -> str:
    """Why an audience's file for a channel has no row: the audience's own funnel, or its treated
    customers were reached on its other channels."""
    return why_empty(funnel, audience) or f"its treated customers are reached on its other channels, not on {channel}"


def _staging_folder(final: Path) -> Path:
    staged = final.with_name(f".staging-{final.name}-{os.getpid()}")
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir(parents=True)
    return staged


def _write_manifest(folder: Path, manifest: dict) -> None:
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_channel_files(
    channel: str,
    frame: pd.DataFrame,
    activation: ActivationConfig,
    config_sha256: str,
    ds: dt.date,
    assignments: pd.DataFrame,
    model_versions: dict[str, str | None],
    funnel: pd.DataFrame,
) -> dict[str, object]:
    final = exports_dir() / channel / f"ds={ds}"
    staged = _staging_folder(final)
    columns = channel_columns(activation, channel)
    previous = previous_day(exports_dir() / channel, ds)
    audiences = []
    for name, audience in activation.audiences.items():
        if channel not in audience.channels:
            continue
        part = frame[frame["audience"] == name].reset_index(drop=True)
        entry = _write_audience_files(
            staged, name, part, columns, _holdout(assignments, name, channel), [arm.name for arm in audience.arms()]
        )
        before = _read_audience(previous[1], name) if previous else None
        since = previous[0].isoformat() if previous else None
        entry["changes"] = _write_change_files(staged, name, audience_changes(part, before, ds), columns, since)
        audiences.append(
            {
                "maturity": audience.maturity,
                "priority": audience.priority,
                "goal": audience.goal.model_dump(),
                # Tonight's experiment version (the readouts key on it); the configured one if nobody was assigned.
                "experiment_version": _experiment_version(assignments, name)
                or audience.experiment_version(activation.salt),
                **entry,
                **({"empty_reason": _empty_reason(funnel, name, channel)} if not entry["rows"] else {}),
            }
        )
    manifest = {
        "ds": ds.isoformat(),
        "channel": channel,
        "consent_channel": activation.consent_of(channel),
        "identifier": activation.channels[channel].identifier,
        "columns": list(columns),
        "column_meanings": {
            name: COLUMN_MEANINGS.get(name, f"the customer's {name} (a field of activation.channels.{channel}.fields)")
            for name in columns
        },
        "rows": len(frame),
        **(
            {"empty_reason": f"no customer of its {len(audiences)} audiences is to be contacted on {channel} tonight"}
            if frame.empty
            else {}
        ),
        "audiences": audiences,
        "model_versions": model_versions,
        "config_sha256": config_sha256,
        "assignment_salt": activation.salt,
        "checks": ["consent", "erasure", "holdout", "one_decision", "same_recommendations"],
    }
    _write_manifest(staged, manifest)
    _swap_in(staged, final)
    return manifest


def _published_manifests(activation: ActivationConfig) -> list[tuple[str, Path, dict]]:
    """(channel, folder, manifest) of every published day of the configured channels."""
    found = []
    for channel in activation.channels:
        for manifest_path in sorted((exports_dir() / channel).glob("ds=*/manifest.json")):
            found.append((channel, manifest_path.parent, json.loads(manifest_path.read_text(encoding="utf-8"))))
    return found


def _read_published(folder: Path, manifest: dict) -> pd.DataFrame:
    """A published day's rows, from its parquet files (the typed twin of the CSVs)."""
    columns = {name: BASE_COLUMNS.get(name, "varchar") for name in manifest["columns"]}
    parts = [
        pq.read_table(folder / f"{entry['audience']}.parquet").to_pandas()
        for entry in manifest["audiences"]
        if (folder / f"{entry['audience']}.parquet").exists()
    ]
    rows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(columns))
    return _as_lists(rows)


def _day_folder(file: Path) -> Path:
    """The published day a file belongs to (a change file sits one folder down)."""
    return file.parent.parent if file.parent.name == CHANGES else file.parent


def _folders_holding(published: list[tuple[str, Path, dict]], customer_ids: list[str]) -> set[Path]:
    """The published folders whose files hold any of these customers: one scan of the customer_id
    column of every published parquet file (a year of days reads in seconds), so that only the
    folders to rewrite are read whole."""
    files = [
        str(where / f"{entry['audience']}.parquet")
        for _, folder, manifest in published
        for entry in manifest["audiences"]
        for where in (folder, folder / CHANGES)
        if (where / f"{entry['audience']}.parquet").exists()
    ]
    if not files or not customer_ids:
        return set()
    with duckdb.connect() as connection:
        found = connection.execute(
            f"select distinct filename from read_parquet($files, filename = true, union_by_name = true) "
            f"where {CUSTOMER_ID} in (select unnest($ids))",
            {"files": files, "ids": list(customer_ids)},
        ).fetchall()
    return {_day_folder(Path(filename)) for (filename,) in found}


def purge_erased_from_exports(activation: ActivationConfig, erased: list[str] | None = None) -> int:
    """Erasure reaches the files of earlier days too: a published folder that holds a customer of
    the erasure ledger (`erased`, by default audit.erased_customers) is rewritten from its own files
    without them, the same way it was written. Nothing else ever rewrites a published day. The
    manifest keeps its model versions and config hash (what the day was published with) and counts
    the removed rows in `erased_customers_removed`. Returns the rows removed from files."""
    if erased is None:
        from ml.warehouse.erasure import erased_customer_ids

        erased = erased_customer_ids()
    if not erased:
        return 0
    published = _published_manifests(activation)
    holding = _folders_holding(published, erased)
    removed = 0
    for channel, folder, manifest in published:
        if folder not in holding:
            continue
        rows = _read_published(folder, manifest)
        keep = ~rows[CUSTOMER_ID].isin(erased)
        columns = {name: BASE_COLUMNS.get(name, "varchar") for name in manifest["columns"]}
        rows = rows[keep].reset_index(drop=True)
        rows["ds"] = dt.date.fromisoformat(manifest["ds"])
        staged = _staging_folder(folder)
        for entry in manifest["audiences"]:
            part = rows[rows["audience"] == entry["audience"]].sort_values(CUSTOMER_ID).reset_index(drop=True)
            holdout = entry["holdout_customers"]
            entry.update(_write_audience_files(staged, entry["audience"], part, columns, holdout, list(entry["arms"])))
            changes = _read_audience(folder / CHANGES, entry["audience"])
            if changes is not None:  # an exited customer is only in the change file: it is purged too
                changes = changes[~changes[CUSTOMER_ID].isin(erased)].reset_index(drop=True)
                since = entry.get("changes", {}).get("since")
                entry["changes"] = _write_change_files(staged, entry["audience"], changes, columns, since)
        removed_here = manifest["rows"] - len(rows)
        manifest["rows"] = len(rows)
        manifest["erased_customers_removed"] = manifest.get("erased_customers_removed", 0) + removed_here
        _write_manifest(staged, manifest)
        _swap_in(staged, folder)
        log.info("removed %d erased customers' rows from %s (%s)", removed_here, folder, channel)
        removed += removed_here
    return removed


def purge_erased_from_tables(activation: ActivationConfig) -> int:
    """Delete erased customers from every ds of the channel tables (as each partition write does),
    so that the tables and the purged files agree before they are compared."""
    removed = 0
    with open_warehouse() as connection:
        existing = existing_tables(connection, CHANNEL_SCHEMA)
        for channel in activation.channels:
            if channel in existing:
                removed += delete_rows(
                    connection,
                    channel_table(channel),
                    "customer_id in (select customer_id from audit.erased_customers)",
                )
    return removed


def check_tables_match_files(activation: ActivationConfig, today: dt.date) -> None:
    """Stop when a channel table and the published files disagree about an earlier day (rows per
    ds): the warehouse was restored from an older backup, or files were changed by hand. The files
    are what was sent, so they are never rewritten to match the tables; the message says how to
    reload the tables from them."""
    with open_warehouse() as connection:
        existing = existing_tables(connection, CHANNEL_SCHEMA)
        counts = {
            channel: dict(
                connection.execute(f"select ds, count(*) from {channel_table(channel)} group by ds").fetchall()
            )
            for channel in activation.channels
            if channel in existing
        }
    disagreements = []
    for channel, folder, manifest in _published_manifests(activation):
        ds = dt.date.fromisoformat(manifest["ds"])
        in_table = counts.get(channel, {}).get(ds, 0)
        if ds != today and in_table != manifest["rows"]:
            disagreements.append(
                f"{channel} ds={ds}: {in_table} rows in {channel_table(channel)}, {manifest['rows']} in {folder}"
            )
    if disagreements:
        raise PublishCheckError(
            f"ds={today}: nothing published, the channel tables disagree with the files already published "
            f"({'; '.join(disagreements[:5])}{' ...' if len(disagreements) > 5 else ''}). The files are what was "
            "sent and are kept as they are. If the warehouse was restored from a backup, reload the tables from the "
            "files: python -m ml exports reload-tables; then rerun this ds."
        )


def reload_tables_from_files(activation: ActivationConfig) -> dict[str, int]:
    """Replace every published day's partition of the channel tables with the rows of its files
    (after a warehouse restore). Returns the days reloaded per channel."""
    reloaded: dict[str, int] = {}
    for channel, folder, manifest in _published_manifests(activation):
        rows = _read_published(folder, manifest)
        ds = dt.date.fromisoformat(manifest["ds"])
        frame = rows.reindex(columns=list(channel_columns(activation, channel))).assign(ds=ds)
        replace_partition(
            channel_table(channel), channel_ddl(activation, channel), ds, frame, order_by="audience, customer_id"
        )
        reloaded[channel] = reloaded.get(channel, 0) + 1
    return reloaded


def publish_channels(
    ds: dt.date, activation: ActivationConfig, monitoring: MonitoringConfig, config_sha256: str
) -> dict[str, object]:
    """Check the day's channel rows, then replace the channel tables' ds partitions and the files.
    `config_sha256` identifies the whole configuration the night ran with (in every manifest)."""
    assert_exports_allowed(ds, monitoring)  # drift under block_exports: nothing of today is published
    clean_leftovers(exports_dir())
    erased_rows = purge_erased_from_exports(activation)
    purge_erased_from_tables(activation)
    check_tables_match_files(activation, ds)
    model_versions = read_model_versions(ds)
    frames = channel_rows(activation, ds, model_versions)
    failed = [check for check in check_rows(frames, activation, ds) if check.violations]
    if failed:
        details = "; ".join(f"{c.name}: {c.violations} rows (e.g. {', '.join(c.examples)})" for c in failed)
        raise PublishCheckError(f"ds={ds}: nothing published, channel rows break the rules: {details}")
    assignments = read_assignments(ds)
    funnel = read_funnel(ds)
    manifests = {}
    for channel, frame in frames.items():
        replace_partition(
            channel_table(channel), channel_ddl(activation, channel), ds, frame, order_by="audience, customer_id"
        )
        manifests[channel] = write_channel_files(
            channel, frame, activation, config_sha256, ds, assignments, model_versions, funnel
        )
    log.info("ds=%s published %s", ds, {channel: m["rows"] for channel, m in manifests.items()})
    # After the folders are whole: a failed destination fails the stage, and its retry sends only what is missing.
    deliveries = deliver(activation.destinations, ds, exports_dir()) if activation.destinations else {}
    empty = {channel: m["empty_reason"] for channel, m in manifests.items() if "empty_reason" in m}
    if empty:
        log.info("ds=%s channels with no row tonight (valid, empty files written): %s", ds, empty)
    return {
        "erased_rows_removed_from_earlier_files": erased_rows,
        **{f"rows_{channel}": m["rows"] for channel, m in manifests.items()},
        "empty_channels": empty,
        **({"delivered": deliveries} if deliveries else {}),
    }


def repair(command: str, activation: ActivationConfig) -> list[str]:
    """`clean` (delete or restore the leftovers of an interrupted publish) or `reload-tables` (reload the
    channel tables from the published files, after a restore); the lines to print. Both write what a
    night writes: never beside a running night (the run lock)."""
    with exclusive_run(f"python -m ml exports {command}"):
        if command == "clean":
            return clean_leftovers(exports_dir()) or ["nothing to clean"]
        return [
            f"{channel_table(channel)}: {days} published day(s) reloaded from {exports_dir() / channel}"
            for channel, days in reload_tables_from_files(activation).items()
        ]
