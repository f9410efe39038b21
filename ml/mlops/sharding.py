"""Customer shards for the nightly scoring stages, so that more workers give a faster night.

A scoring stage implements `ShardedScoring` (the recommender's and the propensity model's scoring
both do) and runs in three steps (Airflow dynamic task mapping in dags/, `run_in_process` elsewhere):

1. **plan** (in the `warehouse` pool): read once what every shard needs from the warehouse (shared
   inputs, and per-customer input rows that each shard reads only its slice of), decide the model
   version, split the customers known at ds into `scoring.shards` contiguous slices of the sorted
   ids, and save all of it under `<data dir>/shards/<stage>/ds=<ds>/`. Returns one small dict per
   shard, the kwargs of the mapped task.
2. **score one shard** (no pool: shards run side by side on any worker that sees the data volume):
   reads only the plan's files, never the warehouse (on either engine: DuckDB's single writer and
   Spark's session are never in the way, and a shard starts no JVM); writes
   `shard-<i>-of-<n>.parquet` atomically.
3. **merge** (in the `warehouse` pool): checks that every shard reported and that together they
   wrote only customers of its own slice, computes whatever needs all customers at once (deciles),
   and replaces the ds partition in one transaction; then removes the stage's files for ds.

Because the plan fixes the customers and the model version before any shard starts, the shards of
one night can never disagree with each other, and the result does not depend on the shard count.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from ml.constants import CUSTOMER_ID
from ml.errors import PlatformError
from ml.paths import data_dir
from ml.warehouse.frames import text_frame

log = logging.getLogger(__name__)

CUSTOMERS_FILE = "customers.parquet"
SHARED_FILE = "shared.pickle"
PLAN_FILE = "plan.json"
ROWS_FILE = "rows.parquet"
# Row groups of the plan's input rows: small enough that a shard reads little beyond its own slice
# (parquet's statistics per group let the reader skip the others).
ROWS_PER_GROUP = 20_000


class ShardError(PlatformError, RuntimeError):
    """A shard's input or output is missing or does not match the plan; the message says what to rerun."""


@dataclass(frozen=True)
class Shard:
    """One mapped task's share of a stage's night (the kwargs Airflow expands over)."""

    stage: str
    ds: dt.date
    shard: int
    shards: int

    @property
    def label(self) -> str:
        return f"{self.stage} ds={self.ds} shard {self.shard + 1} of {self.shards}"

    def as_kwargs(self) -> dict[str, object]:
        return {"shard": self.shard, "shards": self.shards}


class ShardedScoring(Protocol):
    """A scoring stage split over customer shards. `plan` reads the warehouse once and saves what the
    shards need (`plan` below); `score_shard` scores one slice from those files alone; `merge` checks
    every shard's rows (`collect`), writes the ds partition and removes the files (`finish`)."""

    stage: str

    def plan(self, ds: dt.date) -> list[Shard]: ...

    def score_shard(self, shard: Shard) -> dict[str, object]: ...

    def merge(self, ds: dt.date, shards: int) -> dict[str, object]: ...


def stage_dir(stage: str, ds: dt.date) -> Path:
    return data_dir() / "shards" / stage / f"ds={ds}"


def result_path(shard: Shard) -> Path:
    return stage_dir(shard.stage, shard.ds) / f"shard-{shard.shard:04d}-of-{shard.shards:04d}.parquet"


def plan(
    stage: str,
    ds: dt.date,
    customer_ids: pd.Series,
    shards: int,
    facts: dict[str, object],
    shared: object = None,
    rows: pd.DataFrame | None = None,
) -> list[Shard]:
    """Save the customers, small `facts` every step reads (the model version, why), what every
    shard needs (`shared`, pickled: written and read only by this platform's own tasks) and input
    rows keyed by customer of which each shard reads its own (`rows`, read back by `rows_of`).
    Starts from an empty directory, so a rerun never mixes two plans."""
    if shards < 1:
        raise ValueError(f"scoring.shards must be at least 1, got {shards}")
    directory = stage_dir(stage, ds)
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    customers = text_frame(CUSTOMER_ID, np.sort(customer_ids.astype(str).unique()))
    customers.to_parquet(directory / CUSTOMERS_FILE, index=False)
    (directory / PLAN_FILE).write_text(json.dumps({**facts, "customers": len(customers), "shards": shards}))
    with (directory / SHARED_FILE).open("wb") as handle:
        pickle.dump(shared, handle, protocol=pickle.HIGHEST_PROTOCOL)
    if rows is not None:
        ordered = rows.sort_values(CUSTOMER_ID, kind="stable", ignore_index=True)
        ordered.to_parquet(directory / ROWS_FILE, index=False, row_group_size=ROWS_PER_GROUP)
    log.info("%s ds=%s: %d customers planned in %d shards under %s", stage, ds, len(customers), shards, directory)
    return [Shard(stage, ds, number, shards) for number in range(shards)]


def _plan_file(stage: str, ds: dt.date, name: str) -> Path:
    path = stage_dir(stage, ds) / name
    if not path.exists():
        raise ShardError(f"{stage} ds={ds}: {path} is missing; rerun the stage's plan task for ds={ds} first")
    return path


def planned_customers(stage: str, ds: dt.date) -> pd.Series:
    return pd.read_parquet(_plan_file(stage, ds, CUSTOMERS_FILE))[CUSTOMER_ID]


def plan_facts(stage: str, ds: dt.date) -> dict[str, object]:
    return json.loads(_plan_file(stage, ds, PLAN_FILE).read_text())


def _slice(customers: pd.Series, shard: int, shards: int) -> pd.Series:
    """Shard `shard`'s contiguous slice of the sorted customer ids (sizes differ by at most one)."""
    bounds = np.linspace(0, len(customers), shards + 1).round().astype(int)
    return customers.iloc[bounds[shard] : bounds[shard + 1]].reset_index(drop=True)


def customers_of(shard: Shard) -> pd.Series:
    """The shard's slice of the planned customers."""
    return _slice(planned_customers(shard.stage, shard.ds), shard.shard, shard.shards)


def shared_inputs(shard: Shard) -> object:
    with _plan_file(shard.stage, shard.ds, SHARED_FILE).open("rb") as handle:
        return pickle.load(handle)  # our own plan step wrote it, on our data volume


def rows_of(shard: Shard) -> pd.DataFrame:
    """The plan's input rows of the shard's customers, in customer order; only the row groups that
    can hold them are read."""
    customers = customers_of(shard)
    path = _plan_file(shard.stage, shard.ds, ROWS_FILE)
    if customers.empty or pq.read_metadata(path).num_rows == 0:  # (no rows: the file's id column has no type)
        return pq.read_schema(path).empty_table().to_pandas()
    first, last = customers.iloc[0], customers.iloc[-1]
    table = pq.read_table(path, filters=[(CUSTOMER_ID, ">=", first), (CUSTOMER_ID, "<=", last)])
    return table.to_pandas()


def write_result(shard: Shard, rows: pd.DataFrame) -> dict[str, object]:
    """Write the shard's rows (temporary name, then rename: a reader never sees half a file)."""
    path = result_path(shard)
    partial = path.with_suffix(".partial")
    rows.to_parquet(partial, index=False)
    partial.replace(path)
    customers = int(rows[CUSTOMER_ID].nunique()) if len(rows) else 0
    log.info("%s: %d rows for %d customers in %s", shard.label, len(rows), customers, path.name)
    return {"shard": shard.shard, "shards": shard.shards, "rows": len(rows), "customers": customers}


def collect(stage: str, ds: dt.date, shards: int) -> pd.DataFrame:
    """Every shard's rows, after checking that none is missing and that each wrote only customers of
    its own slice (so no customer is scored twice, and none outside the plan)."""
    missing = [
        path.name for path in (result_path(Shard(stage, ds, n, shards)) for n in range(shards)) if not path.exists()
    ]
    if missing:
        raise ShardError(
            f"{stage} ds={ds}: {len(missing)} of {shards} shards have not written their rows "
            f"({', '.join(missing[:5])}); rerun the failed shard tasks, then this merge"
        )
    parts = [pd.read_parquet(result_path(Shard(stage, ds, n, shards))) for n in range(shards)]
    rows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    customers = planned_customers(stage, ds)  # read once, not once per shard
    for number, part in enumerate(parts):
        if len(part) and not set(part[CUSTOMER_ID]) <= set(_slice(customers, number, shards)):
            raise ShardError(
                f"{stage} ds={ds}: shard {number + 1} of {shards} wrote customers outside its slice; "
                "rerun the stage from its plan task"
            )
    return rows


def run_in_process(scoring: ShardedScoring, ds: dt.date) -> dict[str, object]:
    """A whole sharded stage in this process: plan, every shard in turn, merge (the in-process pipeline
    and tests; the DAG maps the shards over workers instead)."""
    planned = scoring.plan(ds)
    for shard in planned:
        scoring.score_shard(shard)
    return scoring.merge(ds, len(planned))


def finish(stage: str, ds: dt.date) -> None:
    """Remove the stage's working files for ds once the merge has committed."""
    shutil.rmtree(stage_dir(stage, ds), ignore_errors=True)
