"""The dbt project on Spark: every model builds on a local Spark session and
passes the same dbt tests as on DuckDB, with the same rows; engine-specific SQL sits behind the
adapter.dispatch macros of dbt_project/macros/engine.sql.

Spark's catalog and warehouse live under the data dir (dbt_project/profiles.yml, output spark), so
each step below is its own process, as in a nightly run."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from tests.conftest import END_DATE, fresh_data_dir, run_python

pytestmark = pytest.mark.xdist_group("spark")

# The first night runs the models for ds - 1, the second builds ds with every dbt test: the
# second run takes the incremental paths (partitions kept per ds, the lookback windows of the
# daily facts, the erasure purge), and its tests see both nights. (Tests on the first night too
# would cost Spark two more minutes and check nothing the second does not.)
DATES = [(END_DATE - dt.timedelta(days=1)).isoformat(), END_DATE.isoformat()]


def run_dbt(data_dir: Path, command: str, target: str, ds: str) -> dict:
    """`dbt <command>` for ds on `target`, in its own process; the run's results by node."""
    result = run_python(
        data_dir,
        "import sys; from ml.warehouse.transform import main; sys.exit(main(sys.argv[1:]))",
        command,
        "--ds",
        ds,
        "--target",
        target,
        timeout=1200,
    )
    assert result.returncode == 0, (
        f"dbt {command} on {target} for {ds} failed:\n{result.stdout[-4000:]}{result.stderr[-4000:]}"
    )
    results = json.loads((data_dir / "dbt" / "target" / "run_results.json").read_text())
    return {node["unique_id"]: node["status"] for node in results["results"]}


def relations(data_dir: Path) -> list[str]:
    """Every model the DuckDB build made, as schema.name."""
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as connection:
        rows = connection.execute(
            "select table_schema || '.' || table_name from information_schema.tables "
            "where table_schema not in ('raw', 'main') order by 1"
        ).fetchall()
    return [row[0] for row in rows]


NUMBER_TYPES = (bool, int, float, Decimal, np.number, np.bool_)


def normalized(frame: pd.DataFrame) -> pd.DataFrame:
    """Comparable across engines: columns by name; numbers, decimals and booleans as floats rounded
    to 6 decimals (Spark and DuckDB may differ in the last bits); dates and timestamps as naive
    timestamps; rows sorted."""
    frame = frame[sorted(frame.columns)].copy()
    for column in frame.columns:
        values = frame[column]
        present = values.dropna()
        if pd.api.types.is_datetime64_any_dtype(values):
            frame[column] = pd.to_datetime(values).dt.tz_localize(None).astype("datetime64[us]")
        elif len(present) and present.map(lambda v: isinstance(v, dt.date)).all():
            frame[column] = pd.to_datetime(values).astype("datetime64[us]")
        elif (
            len(present) == 0
            or present.map(lambda v: isinstance(v, (bool, int, float, Decimal, np.number, np.bool_))).all()
        ):
            frame[column] = values.map(lambda v: np.nan if v is None or pd.isna(v) else round(float(v), 6))
    return frame.sort_values(list(frame.columns), na_position="first").reset_index(drop=True)


# Session scope: under xdist's loadgroup a module fixture can be built again when the worker
# runs another module's tests in between (CI built this one twice, 460 s each).
@pytest.fixture(scope="session")
def both_engines(small_landing, tmp_path_factory) -> tuple[Path, dict, dict]:
    """The small data set built for two nights on DuckDB and on Spark, in one data dir."""
    data_dir = fresh_data_dir(small_landing, tmp_path_factory.mktemp("spark"), "both")
    result = run_python(
        data_dir,
        "import sys; from ml.warehouse.landing import load_landing_files; load_landing_files(sys.argv[1])",
        DATES[-1],
    )
    assert result.returncode == 0, result.stderr[-3000:]
    statuses = {}
    for target in ("duckdb", "spark"):
        run_dbt(data_dir, "run", target, DATES[0])
        statuses[target] = run_dbt(data_dir, "build", target, DATES[1])
    return data_dir, statuses["duckdb"], statuses["spark"]


def test_every_model_builds_and_passes_the_same_tests_on_spark(both_engines):
    _, on_duckdb, on_spark = both_engines
    assert on_spark.keys() == on_duckdb.keys()
    tests = [node for node in on_spark if node.startswith("test.")]
    models = [node for node in on_spark if node.startswith("model.")]
    assert len(tests) > 100 and len(models) > 30
    failed = {node: status for node, status in on_spark.items() if status not in {"success", "pass"}}
    assert not failed, f"not built or failed on Spark: {failed}"


def test_spark_builds_the_same_rows_as_duckdb(both_engines):
    data_dir, _, _ = both_engines
    names = relations(data_dir)
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as connection:
        expected = {name: connection.sql(f"select * from {name}").df() for name in names}
    code = (
        "import sys; from ml.warehouse.transform import spark_session; spark = spark_session(); "
        "[spark.table(name).toPandas().to_parquet(f'{sys.argv[1]}/{name}.parquet') for name in sys.argv[2:]]"
    )
    exported = data_dir / "spark_export"
    exported.mkdir()
    result = run_python(data_dir, code, str(exported), *names, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]

    # Both nights are in the tables that keep a partition per ds.
    assert sorted(expected["quarantine.events"]["ds"].astype(str).unique()) == DATES
    for name in names:
        on_duckdb = normalized(expected[name])
        on_spark = normalized(pd.read_parquet(exported / f"{name}.parquet"))
        assert list(on_spark.columns) == list(on_duckdb.columns), name
        assert len(on_spark) == len(on_duckdb), f"{name}: {len(on_spark)} rows on Spark, {len(on_duckdb)} on DuckDB"
        for column in on_duckdb.columns:
            left, right = on_duckdb[column], on_spark[column]
            if pd.api.types.is_float_dtype(left):
                assert np.allclose(left, right, rtol=1e-9, atol=1e-6, equal_nan=True), f"{name}.{column} differs"
            else:
                assert left.equals(right), f"{name}.{column} differs:\n{pd.concat([left, right], axis=1).head()}"
