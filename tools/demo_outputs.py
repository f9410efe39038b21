"""Record what a demo run produced and compare two records: the proof that a refactoring kept behaviour.

    python tools/demo_outputs.py record DATA_DIR OUT.json   # after `make demo` into DATA_DIR
    python tools/demo_outputs.py compare BEFORE.json AFTER.json

A record holds, for every warehouse table, its columns, its row count and a content hash of its rows
(order-free), plus a hash per column so a difference can be traced to a column; for every export file
its bytes' sha256; for every manifest its JSON less the fields that are a clock reading.

Some values differ between two runs of the same code on the same data, by their nature: wall-clock
timestamps, MLflow run ids, durations. They are named below, column by column, with the reason, and
left out of the row hashes. Doubles are compared to 10 significant digits (DuckDB's parallel sums
add in a varying order, so the last bits differ between two runs of the same code) and paths under
the data directory (and PZ_REPORTS_DIR) relative to it; everything else must be equal.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

import duckdb

# Column names whose values are clock readings or random ids minted per run: a rerun of the same code
# on the same data gives other values. Matched on the column name in any table.
VOLATILE_COLUMNS = {
    "loaded_at": "wall-clock time the landing file was copied",
    "published_at": "wall-clock time of publishing",
    "generated_at": "wall-clock time a report or manifest was written",
    "created_at": "wall-clock time a row was written",
    "updated_at": "wall-clock time a row was written",
    "computed_at": "wall-clock time a row was written",
    "decided_at": "wall-clock time a row was written",
    "recorded_at": "wall-clock time a row was written",
    "run_id": "MLflow run id (a random uuid per run)",
    "mlflow_run_id": "MLflow run id (a random uuid per run)",
    "duration_seconds": "how long a step took",
    "modified_ns": "modification time of a landing file when the loader last saw it",
}
# Manifest fields that are clock readings.
VOLATILE_MANIFEST_KEYS = {"generated_at", "published_at", "created_at"}
SKIPPED_SCHEMAS = {"information_schema", "pg_catalog"}


def _normalized(column: str, data_type: str, data_dir: Path) -> str:
    """The column as text that two runs of the same code agree on: doubles to 10 significant digits
    (DuckDB's parallel sums add in a varying order: the last bits differ from run to run), paths under
    the data directory relative to it."""
    quoted = f'"{column}"'
    if data_type in ("DOUBLE", "FLOAT", "REAL") or data_type.startswith("DECIMAL"):
        text = f"format('{{:.10g}}', cast({quoted} as double))"
    elif data_type == "VARCHAR":
        text = f"replace({quoted}, '{data_dir}', '$PZ_DATA_DIR')"
        reports = os.environ.get("PZ_REPORTS_DIR")
        if reports:  # report paths (drift reports) relative to the reports directory, as data paths are
            text = f"replace({text}, '{Path(reports).resolve()}', '$PZ_REPORTS_DIR')"
    else:
        text = f"cast({quoted} as varchar)"
    return f"coalesce({text}, '<null>')"


def _table_record(connection: duckdb.DuckDBPyConnection, schema: str, table: str, data_dir: Path) -> dict[str, object]:
    columns = connection.execute(
        "select column_name, data_type from information_schema.columns where table_schema = ? and table_name = ? "
        "order by ordinal_position",
        [schema, table],
    ).fetchall()
    stable = {
        name: _normalized(name, data_type, data_dir) for name, data_type in columns if name not in VOLATILE_COLUMNS
    }
    relation = f'"{schema}"."{table}"'
    row = "concat_ws('|', " + ", ".join(stable.values()) + ")" if stable else "''"
    rows, content = connection.execute(
        f"select count(*), md5(coalesce(string_agg(h, '' order by h), '')) from "
        f"(select md5({row}) as h from {relation})"
    ).fetchone()
    column_hashes = {}
    for name, expression in stable.items():
        (column_hash,) = connection.execute(
            f"select md5(coalesce(string_agg(h, '' order by h), '')) from "
            f"(select md5({expression}) as h from {relation})"
        ).fetchone()
        column_hashes[name] = column_hash
    return {"columns": [name for name, _ in columns], "rows": rows, "content": content, "column_hashes": column_hashes}


def record(data_dir: Path) -> dict[str, object]:
    connection = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    tables = connection.execute(
        "select table_schema, table_name from information_schema.tables "
        "where table_type in ('BASE TABLE', 'VIEW') order by 1, 2"
    ).fetchall()
    warehouse = {
        f"{schema}.{table}": _table_record(connection, schema, table, data_dir.resolve())
        for schema, table in tables
        if schema not in SKIPPED_SCHEMAS
    }
    connection.close()
    exports, manifests = {}, {}
    for path in sorted((data_dir / "exports").rglob("*")):
        if not path.is_file():
            continue
        name = str(path.relative_to(data_dir))
        if path.suffix == ".json":
            manifests[name] = _without_clock(json.loads(path.read_text()))
        else:
            exports[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"warehouse": warehouse, "exports": exports, "manifests": manifests}


def _without_clock(value: object) -> object:
    if isinstance(value, dict):
        return {key: _without_clock(item) for key, item in value.items() if key not in VOLATILE_MANIFEST_KEYS}
    if isinstance(value, list):
        return [_without_clock(item) for item in value]
    return value


def compare(before: dict, after: dict) -> list[str]:
    """Every difference, one line each; an empty list means the same outputs."""
    differences = []
    for section in ("warehouse", "exports", "manifests"):
        old, new = before[section], after[section]
        differences += [f"{section}: {name} only before" for name in sorted(old.keys() - new.keys())]
        differences += [f"{section}: {name} only after" for name in sorted(new.keys() - old.keys())]
        for name in sorted(old.keys() & new.keys()):
            if old[name] == new[name]:
                continue
            if section != "warehouse":
                differences.append(f"{section}: {name} differs")
                continue
            if old[name]["columns"] != new[name]["columns"]:
                differences.append(f"warehouse: {name} columns {old[name]['columns']} -> {new[name]['columns']}")
            elif old[name]["rows"] != new[name]["rows"]:
                differences.append(f"warehouse: {name} rows {old[name]['rows']} -> {new[name]['rows']}")
            else:
                columns = [c for c, h in old[name]["column_hashes"].items() if new[name]["column_hashes"].get(c) != h]
                differences.append(f"warehouse: {name} rows differ (columns: {', '.join(columns) or 'row pairing'})")
    return differences


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    recording = commands.add_parser("record", help="fingerprint a data directory after a demo run")
    recording.add_argument("data_dir", type=Path)
    recording.add_argument("output", type=Path)
    comparing = commands.add_parser("compare", help="list the differences between two records")
    comparing.add_argument("before", type=Path)
    comparing.add_argument("after", type=Path)
    arguments = parser.parse_args(argv)
    if arguments.command == "record":
        arguments.output.write_text(json.dumps(record(arguments.data_dir), indent=1, sort_keys=True))
        return 0
    differences = compare(json.loads(arguments.before.read_text()), json.loads(arguments.after.read_text()))
    for line in differences:
        print(line)
    print("same outputs" if not differences else f"{len(differences)} differences", file=sys.stderr)
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
