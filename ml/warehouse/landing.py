"""Load the landing files into the warehouse's `raw` schema, leniently and with lineage.

Every landing table becomes `raw.<table>`: the contract's columns as text (typing and validation
are dbt staging's job, where bad rows are quarantined with a reason), plus where each row came
from (`_source_file`, `_source_row`: 1-based record number in the file) and `_load_error` for a
record that could not be read as text (invalid UTF-8, wrong number of fields). Such records are
kept, not dropped, so staging can quarantine them and the counts reconcile.

Files are read in name order and rows in file order; when a key repeats, staging keeps the last
one read, so name files so that they sort by arrival (for example `2026-11-01T0200_orders.csv`).

Files are `*.csv`, `*.csv.gz` (gzip) or `*.parquet`. Anything else in the landing area (other
extensions, subfolders, hidden files, folders of tables the contract does not know) is not read and
is listed in one warning, so nothing is skipped in silence. A value longer than MAX_VALUE_CHARS
characters (a pasted document in a survey comment) marks its record `value_too_long`: that record is
quarantined, the rest of the file loads.

A file that cannot be read at all (not parquet, an unterminated quote, a header without a
required column) stops the load with a LandingFileError that names the file, the line and the fix.
A missing optional table loads as an empty table; a missing required table is an error.

Loading is by arrival: the ledger `raw.landing_files` records each file loaded (table, name, size,
modification time, sha256, records, load time), and a night reads only the files it has not seen.
A file whose size and modification time match its ledger row is not read again (not even hashed).
Two events change rows that were loaded before, and both are logged as warnings and recorded:
- a file that changed since it was loaded (a new sha256 under the same name, for example a bad
  export fixed at the source) is re-loaded: its rows replace the earlier ones;
- a file that left the landing folder has its rows withdrawn from `raw.<table>` (an erasure request
  stays applied: the erasure ledger keeps it).
The warehouse therefore always holds what the landing folder holds, and a night costs what arrived.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import gzip
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from ml.constants import LOAD_ERROR, RAW_SCHEMA, SOURCE_FILE, SOURCE_ROW
from ml.errors import PlatformError
from ml.warehouse.contract import CONTRACT, TableContract
from ml.warehouse.dialect import on_duckdb
from ml.warehouse.engine import open_warehouse
from ml.warehouse.partitions import existing_tables

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".csv", ".csv.gz", ".parquet")
CSV_BATCH_ROWS = 200_000
# The longest value a landing field may hold (docs/data-contract.md); longer ones quarantine their
# record. The CSV reader's own limit sits far above it so one long field never refuses a file.
MAX_VALUE_CHARS = 32_768
csv.field_size_limit(64 * 1024 * 1024)


class LandingError(PlatformError, RuntimeError):
    """The landing area cannot be loaded; the message says where and what to do."""


class LandingFileError(LandingError):
    def __init__(self, path: Path, problem: str, fix: str, line: int | None = None):
        where = f"{path}" + (f", line {line}" if line is not None else "")
        super().__init__(f"{where}: {problem}. {fix}")
        self.path, self.line = path, line


LEDGER = f"{RAW_SCHEMA}.landing_files"
LEDGER_COLUMNS = (
    "table_name varchar not null, file_name varchar not null, size_bytes bigint not null, "
    "modified_ns bigint not null, sha256 varchar not null, records bigint not null, "
    "loaded_at timestamp not null, primary key (table_name, file_name)"
)
HASH_CHUNK_BYTES = 8 * 1024 * 1024


@dataclass
class TableLoad:
    """What one load did to a table: the files read this time, and what the table holds after it."""

    table: str
    files: dict[str, int] = field(default_factory=dict)  # file name -> records read this time
    unreadable_records: int = 0
    ignored_columns: set[str] = field(default_factory=set)
    unchanged_files: int = 0  # in the ledger already, same content: not read
    reloaded_files: list[str] = field(default_factory=list)  # changed since their load: read again
    withdrawn_files: list[str] = field(default_factory=list)  # gone from the folder: rows removed
    rows_held: int = 0  # records in raw.<table> after the load

    @property
    def rows(self) -> int:
        """Records read by this load (new and re-loaded files)."""
        return sum(self.files.values())


@dataclass(frozen=True)
class LedgerEntry:
    size_bytes: int
    modified_ns: int
    sha256: str
    records: int
    loaded_at: object


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _run(connection, sql: str, parameters: list | None = None) -> list[tuple]:
    """Execute and consume the result (DuckDB 2 refuses new work while a result is pending)."""
    return connection.execute(sql, parameters or []).fetchall()


def _is_landing_file(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and path.name.lower().endswith(SUPPORTED_SUFFIXES)


def landing_files(folder: Path) -> list[Path]:
    """The table's landing files in load order (by name); `unread_paths` lists everything else."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _is_landing_file(p))


def unread_paths(landing: Path) -> list[Path]:
    """What lies in the landing area and is not read: other extensions, hidden files, subfolders of
    a table folder, and folders or files beside the table folders that the contract does not know."""
    unread = []
    for entry in sorted(landing.iterdir()):
        if entry.name not in CONTRACT or not entry.is_dir():
            unread.append(entry)
            continue
        unread.extend(p for p in sorted(entry.iterdir()) if not _is_landing_file(p))
    return unread


def _open_text(path: Path):
    # surrogateescape keeps invalid bytes, so one bad record is flagged instead of failing the file.
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    return opener(path, "rt", encoding="utf-8", errors="surrogateescape", newline="")


def _too_long(header: list[str], values: list[str]) -> str | None:
    for column, value in zip(header, values, strict=False):
        if len(value) > MAX_VALUE_CHARS:
            return f"value_too_long: {column} has {len(value):,} characters (limit {MAX_VALUE_CHARS:,})"
    return None


def _raw_schema(contract: TableContract) -> pa.Schema:
    return pa.schema(
        [(c, pa.string()) for c in contract.columns]
        + [(SOURCE_FILE, pa.string()), (SOURCE_ROW, pa.int64()), (LOAD_ERROR, pa.string())]
    )


def _check_header(path: Path, columns: list[str], contract: TableContract) -> set[str]:
    missing = [c for c in contract.required if c not in columns]
    if missing:
        raise LandingFileError(
            path,
            f"the header lacks required column(s) {', '.join(missing)} (found: {', '.join(columns)})",
            f"Add the column(s); docs/data-contract.md lists the columns of '{contract.name}'",
            line=1,
        )
    return set(columns) - set(contract.columns)


def _read_csv_batches(path: Path, contract: TableContract, load: TableLoad):
    """Yield Arrow batches of a CSV file; unreadable records carry a `_load_error`."""
    with _open_text(path) as handle:
        reader = csv.reader(handle, strict=True)
        try:
            header = next(reader)
        except StopIteration:
            return
        except (csv.Error, OSError, EOFError) as error:
            raise LandingFileError(
                path, f"the header is not valid CSV ({error})", "Fix or remove the file", line=reader.line_num
            ) from error
        header = [name.lstrip("\ufeff").strip() for name in header]
        load.ignored_columns |= _check_header(path, header, contract)
        positions = [header.index(c) if c in header else None for c in contract.columns]
        columns: dict[str, list] = {c: [] for c in _raw_schema(contract).names}
        record = 0
        while True:
            try:
                values = next(reader)
            except StopIteration:
                break
            except csv.Error as error:
                raise LandingFileError(
                    path,
                    f"the file is not valid CSV ({error})",
                    "Fix the quoting or re-export the file",
                    line=reader.line_num,
                ) from error
            except (OSError, EOFError) as error:  # a truncated or corrupt gzip stream
                raise LandingFileError(
                    path, f"the file cannot be decompressed ({error})", "Re-export the file", line=reader.line_num
                ) from error
            record += 1
            problem = None
            if len(values) != len(header):
                problem = f"malformed_row: expected {len(header)} fields, found {len(values)} (line {reader.line_num})"
            try:
                "\x1f".join(values).encode("utf-8")
            except UnicodeEncodeError:
                bad = next(c for c, v in zip(header, values, strict=False) if _not_utf8(v))
                problem = f"invalid_encoding: {bad} is not valid UTF-8 (line {reader.line_num})"
                values = [v.encode("utf-8", "surrogateescape").decode("utf-8", "replace") for v in values]
            problem = problem or _too_long(header, values)
            for column, position in zip(contract.columns, positions, strict=True):
                columns[column].append(values[position] if position is not None and position < len(values) else None)
            columns[SOURCE_FILE].append(path.name)
            columns[SOURCE_ROW].append(record)
            columns[LOAD_ERROR].append(problem)
            load.unreadable_records += problem is not None
            if len(columns[SOURCE_ROW]) >= CSV_BATCH_ROWS:
                yield pa.RecordBatch.from_pydict(columns, schema=_raw_schema(contract))
                columns = {c: [] for c in columns}
        load.files[path.name] = record
        if columns[SOURCE_ROW]:
            yield pa.RecordBatch.from_pydict(columns, schema=_raw_schema(contract))


def _not_utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _parquet_batches(path: Path, contract: TableContract, load: TableLoad):
    """Yield Arrow batches of a parquet file in the raw schema: every column cast to text by an
    in-memory DuckDB (the same text on either warehouse engine), with its lineage and load error."""
    with duckdb.connect() as reader:
        try:
            described = _run(reader, "describe select * from read_parquet(?)", [str(path)])
        except duckdb.Error as error:
            raise LandingFileError(
                path,
                f"not a readable parquet file ({error})",
                "Re-export the file or remove it from the landing folder",
            ) from error
        present = [row[0] for row in described]
        load.ignored_columns |= _check_header(path, present, contract)
        selected = ", ".join(
            f'cast("{c}" as varchar) as "{c}"' if c in present else f'cast(null as varchar) as "{c}"'
            for c in contract.columns
        )
        too_long = " ".join(
            f"when length(\"{c}\") > {MAX_VALUE_CHARS} then 'value_too_long: {c} has ' || "
            f"format('{{:,}}', length(\"{c}\")) || ' characters (limit {MAX_VALUE_CHARS:,})'"
            for c in contract.columns
        )
        columns = ", ".join(f'"{c}"' for c in contract.columns)
        result = reader.sql(
            f"select {columns}, ? as {SOURCE_FILE}, file_row_number + 1 as {SOURCE_ROW}, "
            f"case {too_long} end as {LOAD_ERROR} "
            f"from (select {selected}, file_row_number from read_parquet(?, file_row_number = true)) "
            "order by file_row_number",
            params=[path.name, str(path)],
        )
        records = 0
        for batch in result.to_arrow_reader(CSV_BATCH_ROWS):
            records += batch.num_rows
            yield batch.cast(_raw_schema(contract)) if batch.schema != _raw_schema(contract) else batch
    load.files[path.name] = records


def _files_to_read(files: list[Path], ledger: dict[str, LedgerEntry], load: TableLoad) -> dict[str, str]:
    """The files to read (name -> sha256): new ones, and known ones whose content changed. A known
    file with the size and modification time of its ledger row is taken as unchanged, unhashed."""
    to_read = {}
    for path in files:
        status = path.stat()
        entry = ledger.get(path.name)
        if entry is not None and (entry.size_bytes, entry.modified_ns) == (status.st_size, status.st_mtime_ns):
            load.unchanged_files += 1
            continue
        digest = file_sha256(path)
        if entry is not None and entry.sha256 == digest:  # touched, not changed
            load.unchanged_files += 1
            continue
        if entry is not None:
            load.reloaded_files.append(path.name)
        to_read[path.name] = digest
    return to_read


class RawTables:
    """raw.* and the loader's ledger on one engine: what the load asks of the warehouse."""

    def __init__(self, connection):
        self.connection = connection

    def run(self, sql: str, parameters: list | None = None) -> list[tuple]:
        raise NotImplementedError

    def ledger(self, table: str) -> dict[str, LedgerEntry]:
        rows = self.run(
            f"select file_name, size_bytes, modified_ns, sha256, records, loaded_at from {LEDGER} where table_name = ?",
            [table],
        )
        return {name: LedgerEntry(*values) for name, *values in rows}

    def count(self, table: str) -> int:
        return self.run(f"select count(*) from {table}")[0][0]

    def drop(self, table: str) -> None:
        self.run(f"drop table if exists {RAW_SCHEMA}.{table}")


class DuckDBRawTables(RawTables):
    """raw.* and the ledger in the DuckDB warehouse: the whole load is one transaction (all tables
    or none)."""

    def run(self, sql: str, parameters: list | None = None) -> list[tuple]:
        return _run(self.connection, sql, parameters)

    def transaction(self):
        return _duckdb_transaction(self.connection)

    def ensure_ledger(self) -> bool:
        """Create the ledger if missing; True when it was created."""
        self.run(f"create schema if not exists {RAW_SCHEMA}")
        exists = self.run(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = 'landing_files'",
            [RAW_SCHEMA],
        )[0][0]
        if not exists:
            self.run(f"create table {LEDGER} ({LEDGER_COLUMNS})")
        return not exists

    def columns(self, contract: TableContract) -> list[str]:
        described = self.run(
            "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
            "order by ordinal_position",
            [RAW_SCHEMA, contract.name],
        )
        return [row[0] for row in described]

    def create(self, contract: TableContract) -> None:
        self.run(f"create or replace table {RAW_SCHEMA}.{contract.name} ({_raw_columns_sql(contract)})")
        self.run(f"delete from {LEDGER} where table_name = ?", [contract.name])

    def begin_staging(self, contract: TableContract) -> str:
        staging_table = f"{RAW_SCHEMA}.__loading_{contract.name}"
        self.run(f"create or replace table {staging_table} ({_raw_columns_sql(contract)})")
        return staging_table

    def stage(self, staging_table: str, batch: pa.RecordBatch) -> None:
        self.connection.register("landing_batch", batch)
        self.run(f"insert into {staging_table} select * from landing_batch")
        self.connection.unregister("landing_batch")

    def replace_files(self, contract: TableContract, staging_table: str, replaced: list[str], present: set[str]):
        """The staged rows into raw.<table>, in place of the rows of the files re-loaded or withdrawn."""
        if replaced:
            self.run(
                f"delete from {RAW_SCHEMA}.{contract.name} where list_contains(?::varchar[], {SOURCE_FILE})",
                [replaced],
            )
        self.run(f"insert into {RAW_SCHEMA}.{contract.name} select * from {staging_table}")
        self.run(f"drop table {staging_table}")

    def write_ledger(self, table: str, rows: list[tuple]) -> None:
        """The table's ledger rows (table, file, size, mtime, sha256, records, loaded_at or None: now)."""
        self.run(f"delete from {LEDGER} where table_name = ?", [table])
        for row in rows:
            self.run(f"insert into {LEDGER} values (?, ?, ?, ?, ?, ?, coalesce(?, current_localtimestamp()))", [*row])


class SparkRawTables(RawTables):
    """raw.* and the ledger as Spark tables (parquet, in the session's catalog). Spark has no
    transaction over several statements, so each landing table is partitioned by its source file: a
    file's rows are replaced or dropped as one partition, and the ledger is written after the rows.
    A load stopped half way leaves files whose rows are stored but not in the ledger; the next load
    reads them again (they are new or changed to it) and overwrites their partitions, so nothing is
    held twice."""

    def run(self, sql: str, parameters: list | None = None) -> list[tuple]:
        return self.connection.execute(sql, parameters).fetchall()

    def transaction(self):
        return contextlib.nullcontext()

    def ensure_ledger(self) -> bool:
        self.run(f"create database if not exists {RAW_SCHEMA}")
        if "landing_files" in self.connection.tables(RAW_SCHEMA):
            return False
        self.run(
            f"create table {LEDGER} (file_name string, size_bytes bigint, modified_ns bigint, sha256 string, "
            "records bigint, loaded_at timestamp, table_name string) using parquet partitioned by (table_name)"
        )
        return True

    def columns(self, contract: TableContract) -> list[str]:
        if contract.name not in self.connection.tables(RAW_SCHEMA):
            return []
        # The partition column is last in Spark's table: compare in the raw schema's order.
        columns = self.connection.columns(RAW_SCHEMA, contract.name)
        return columns if set(columns) != set(_raw_schema(contract).names) else _raw_schema(contract).names

    def create(self, contract: TableContract) -> None:
        self.drop(contract.name)
        columns = [f for f in _raw_schema(contract) if f.name != SOURCE_FILE]
        self.run(
            f"create table {RAW_SCHEMA}.{contract.name} ("
            + ", ".join(f"`{f.name}` {'bigint' if f.type == pa.int64() else 'string'}" for f in columns)
            + f", {SOURCE_FILE} string) using parquet partitioned by ({SOURCE_FILE})"
        )
        self.run(f"alter table {LEDGER} drop if exists partition (table_name = ?)", [contract.name])

    def begin_staging(self, contract: TableContract) -> str:
        staging_table = f"{RAW_SCHEMA}.__loading_{contract.name}"
        self.run(f"drop table if exists {staging_table}")
        self.run(f"create table {staging_table} like {RAW_SCHEMA}.{contract.name}")
        return staging_table

    def stage(self, staging_table: str, batch: pa.RecordBatch) -> None:
        columns = self.connection.columns(*staging_table.split("."))
        self.connection.register("landing_batch", pa.Table.from_batches([batch]).select(columns))
        self.run(f"insert into {staging_table} select * from landing_batch")
        self.connection.unregister("landing_batch")

    def replace_files(self, contract: TableContract, staging_table: str, replaced: list[str], present: set[str]):
        """Drop the partitions of the files re-loaded or withdrawn (and of any file stored by a load
        that stopped before its ledger was written and has left the folder since), then add the
        staged files' partitions."""
        table = f"{RAW_SCHEMA}.{contract.name}"
        stored = {row[0] for row in self.run(f"select distinct {SOURCE_FILE} from {table}")}
        for name in sorted(set(replaced) | (stored - present)):
            self.run(f"alter table {table} drop if exists partition ({SOURCE_FILE} = ?)", [name])
        self.run(f"insert overwrite table {table} partition ({SOURCE_FILE}) select * from {staging_table}")
        self.run(f"drop table {staging_table}")

    def write_ledger(self, table: str, rows: list[tuple]) -> None:
        if not rows:
            self.run(f"alter table {LEDGER} drop if exists partition (table_name = ?)", [table])
            return
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        frame = pd.DataFrame(
            [(*row[1:6], row[6] or now, row[0]) for row in rows],
            columns=["file_name", "size_bytes", "modified_ns", "sha256", "records", "loaded_at", "table_name"],
        )
        self.connection.register("ledger_rows", frame, schema=self.connection.session.table(LEDGER).schema)
        self.run(f"insert overwrite table {LEDGER} partition (table_name) select * from ledger_rows")
        self.connection.unregister("ledger_rows")


@contextlib.contextmanager
def _duckdb_transaction(connection):
    _run(connection, "begin transaction")
    try:
        yield
        _run(connection, "commit")
    except Exception:
        _run(connection, "rollback")
        raise


def _raw_columns_sql(contract: TableContract) -> str:
    return ", ".join(f'"{f.name}" {"bigint" if f.type == pa.int64() else "varchar"}' for f in _raw_schema(contract))


def _file_batches(path: Path, contract: TableContract, load: TableLoad):
    if path.name.lower().endswith(".parquet"):
        yield from _parquet_batches(path, contract, load)
        return
    yield from _read_csv_batches(path, contract, load)
    load.files.setdefault(path.name, 0)  # an empty CSV (header only, or nothing) read no records


def load_table(raw: RawTables, landing: Path, contract: TableContract) -> TableLoad:
    """Bring raw.<table> up to the current content of the table's landing folder: read the files the
    ledger has not seen or that changed, withdraw the rows of files that left the folder."""
    load = TableLoad(contract.name)
    files = landing_files(landing / contract.name)
    if not files and contract.is_required_table:
        raise LandingError(
            f"Required landing table '{contract.name}' has no .csv or .parquet file under "
            f"{landing / contract.name}. Export it there (docs/data-contract.md), or run `make data` for demo data."
        )
    if raw.columns(contract) != _raw_schema(contract).names:  # first load, or the contract's columns changed
        raw.create(contract)
    ledger = raw.ledger(contract.name)
    digests = _files_to_read(files, ledger, load)
    to_read = [path for path in files if path.name in digests]
    present = {path.name for path in files}
    load.withdrawn_files = sorted(set(ledger) - present)
    staging_table = raw.begin_staging(contract)
    for path in to_read:
        for batch in _file_batches(path, contract, load):
            raw.stage(staging_table, batch)
    loaded = raw.count(staging_table)
    if loaded != load.rows:  # the loader's own reconciliation: every record read is stored
        raise LandingError(f"raw.{contract.name}: read {load.rows} records but stored {loaded}")
    raw.replace_files(contract, staging_table, [*load.reloaded_files, *load.withdrawn_files], present)
    _record_in_ledger(raw, contract.name, files, ledger, digests, load)
    _warn_about_replaced_rows(contract.name, ledger, load)
    if load.ignored_columns:
        log.warning(
            "%s: ignored columns not in the landing contract: %s",
            contract.name,
            ", ".join(sorted(load.ignored_columns)),
        )
    log.info(
        "raw.%s: %d records from %d new or changed file(s) (%d unreadable), %d file(s) unchanged; %d records held",
        contract.name,
        load.rows,
        len(to_read),
        load.unreadable_records,
        load.unchanged_files,
        load.rows_held,
    )
    return load


def _record_in_ledger(
    raw: RawTables,
    table: str,
    files: list[Path],
    ledger: dict[str, LedgerEntry],
    digests: dict[str, str],
    load: TableLoad,
) -> None:
    """Rewrite the table's ledger rows: the files read now get a new row, the others keep theirs (with
    the size and modification time seen now), withdrawn files lose theirs."""
    rows = []
    for path in files:
        status = path.stat()
        if path.name in load.files:
            digest, records, loaded_at = digests[path.name], load.files[path.name], None
        else:
            entry = ledger[path.name]
            digest, records, loaded_at = entry.sha256, entry.records, entry.loaded_at
        rows.append((table, path.name, status.st_size, status.st_mtime_ns, digest, records, loaded_at))
    raw.write_ledger(table, rows)
    held = raw.count(f"{RAW_SCHEMA}.{table}")
    recorded = sum(row[5] for row in rows)
    if held != recorded:  # the ledger's reconciliation: raw holds exactly the records of the files recorded
        raise LandingError(
            f"raw.{table} holds {held:,} records but its landing files in {LEDGER} hold {recorded:,}. "
            f"Load into a new warehouse, or drop {LEDGER} to reload every file"
        )
    load.rows_held = held


def _warn_about_replaced_rows(table: str, ledger: dict[str, LedgerEntry], load: TableLoad) -> None:
    for name in load.reloaded_files:
        entry = ledger[name]
        log.warning(
            "%s/%s changed since it was loaded at %s (sha256 %s..., %d records): re-loaded, its %d records "
            "replace the earlier ones",
            table,
            name,
            entry.loaded_at,
            entry.sha256[:12],
            entry.records,
            load.files[name],
        )
    for name in load.withdrawn_files:
        log.warning(
            "%s/%s left the landing folder: its %d records were withdrawn from raw.%s (an erasure request "
            "stays applied through audit.erasure_ledger)",
            table,
            name,
            ledger[name].records,
            table,
        )


def load_landing(landing: Path, warehouse: Path) -> dict[str, TableLoad]:
    """Bring every contract table of `warehouse` up to `landing`; all tables or none."""
    if not landing.is_dir():
        raise LandingError(f"Landing folder {landing} does not exist. Set PZ_DATA_DIR or run `make data`.")
    unread = unread_paths(landing)
    if unread:
        log.warning(
            "not read from %s (the loader reads <table>/*.csv, *.csv.gz and *.parquet of the contract's tables; "
            "rename or move these if they hold data): %s",
            landing,
            ", ".join(str(p.relative_to(landing)) + ("/" if p.is_dir() else "") for p in unread),
        )
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    with open_warehouse(warehouse) as connection:
        raw = DuckDBRawTables(connection) if on_duckdb(connection) else SparkRawTables(connection)
        with raw.transaction():
            if raw.ensure_ledger():
                # The raw tables of a warehouse loaded before the ledger existed are dropped, so every
                # file is read once more and recorded.
                for name in CONTRACT:
                    raw.drop(name)
            return {name: load_table(raw, landing, contract) for name, contract in CONTRACT.items()}


class StaleLandingError(LandingError):
    """ds is further past the newest landed row than schedule.max_staleness_days allows."""


def dated_columns() -> dict[str, str]:
    """Each contract table's own timestamp (signup_at, ordered_at, ...): what dates its rows."""
    return {
        name: column
        for name, contract in CONTRACT.items()
        if (column := next((c for c in contract.required if c.endswith("_at")), None))
    }


def newest_landed_date(connection, ds: dt.date) -> dt.date | None:
    """The latest date of any landed row dated on or before ds (rows dated after ds are not yet data:
    staging quarantines them as later-dated); None when no row has a readable date."""
    tables = existing_tables(connection, "raw")
    parts = [
        f"select max(try_cast(left({column}, 10) as date)) as newest from raw.{table} "
        f"where try_cast(left({column}, 10) as date) <= date '{ds.isoformat()}'"
        for table, column in dated_columns().items()
        if table in tables
    ]
    if not parts:
        return None
    (newest,) = connection.execute(f"select max(newest) from ({' union all '.join(parts)}) as dated").fetchone()
    return newest


def staleness_problem(ds: dt.date, newest: dt.date | None, max_staleness_days: int) -> str | None:
    """Why ds is too far past the data to publish audiences from it (None when it is not)."""
    if newest is None:
        return (
            f"ds={ds}: no landed row is dated on or before {ds}, so there is nothing to build this night from. "
            "Land the data, choose a later ds, or pass --allow-stale for a deliberate backfill"
        )
    days = (ds - newest).days
    if days <= max_staleness_days:
        return None
    return (
        f"ds={ds} is {days} days past the newest landed row ({newest}); audiences built on it would be stale. "
        f"Land newer files, choose ds {newest} or later, raise schedule.max_staleness_days ({max_staleness_days}) "
        "in config/personalization.yml, or pass --allow-stale for a deliberate backfill"
    )


def load_landing_files(ds: dt.date, max_staleness_days: int, allow_stale: bool = False) -> dict[str, int]:
    """The load_landing stage: bring raw.* up to the landing files, then refuse a ds too far past the
    newest landed row (schedule.max_staleness_days) unless `allow_stale`; returns the records read this
    night per table and the newest landed date (small: fits XCom)."""
    from ml.paths import landing_dir, warehouse_path

    loads = load_landing(landing_dir(), warehouse_path())
    log.info("ds=%s landing records read: %s", ds, {name: load.rows for name, load in loads.items()})
    # Read-write like every stage: in one process (dag.test, the pipeline) dbt-duckdb may hold the file
    # open read-write, and DuckDB refuses a second connection with another configuration.
    with open_warehouse(warehouse_path()) as connection:
        newest = newest_landed_date(connection, ds)
    problem = staleness_problem(ds, newest, max_staleness_days)
    if problem and not allow_stale:
        raise StaleLandingError(problem)
    if problem:
        log.warning("--allow-stale: running all the same: %s", problem)
    return {
        **{name: load.rows for name, load in loads.items()},
        "newest_landed_date": newest.isoformat() if newest else None,
    }
