"""Sharded scoring (ml.mlops.sharding): the slices cover every customer once, a merge refuses missing or
foreign shards, and the scoring stages write the same tables whatever the shard count."""

from __future__ import annotations

import datetime as dt
import tempfile

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.mlops import sharding

DS = dt.date(2026, 10, 31)


@settings(max_examples=60, deadline=None)
@given(
    customers=st.lists(st.text(alphabet="abcdef0123456789", min_size=1, max_size=6), max_size=60),
    shard_count=st.integers(1, 12),
)
def test_the_shards_cover_every_customer_exactly_once_in_balanced_slices(customers, shard_count):
    with tempfile.TemporaryDirectory() as directory, pytest.MonkeyPatch.context() as patch:
        patch.setenv("PZ_DATA_DIR", directory)
        planned = sharding.plan("stage", DS, pd.Series(customers, dtype=str), shard_count, {"model_version": "3"})
        slices = [list(sharding.customers_of(shard)) for shard in planned]
        assert len(planned) == shard_count
        assert [customer for part in slices for customer in part] == sorted(set(customers))
        sizes = [len(part) for part in slices]
        assert max(sizes) - min(sizes) <= 1
        assert sharding.plan_facts("stage", DS) == {
            "model_version": "3",
            "customers": len(set(customers)),
            "shards": shard_count,
        }


@settings(max_examples=40, deadline=None)
@given(
    rows_per_customer=st.lists(st.integers(0, 3), min_size=1, max_size=40),
    shard_count=st.integers(1, 7),
    rows_per_group=st.integers(1, 9),
)
def test_each_shard_reads_exactly_its_customers_rows_of_the_plan(rows_per_customer, shard_count, rows_per_group):
    """The plan's per-customer input rows (propensity scoring's features of ds) come back to each
    shard as its own customers' rows, in customer order, whatever the row groups of the file."""
    customers = [f"C{number:04d}" for number in range(len(rows_per_customer))]
    rows = pd.DataFrame(
        {
            "customer_id": [c for c, n in zip(customers, rows_per_customer, strict=True) for _ in range(n)],
            "value": range(sum(rows_per_customer)),
        }
    ).sample(frac=1.0, random_state=3)  # the plan sorts them
    with tempfile.TemporaryDirectory() as directory, pytest.MonkeyPatch.context() as patch:
        patch.setenv("PZ_DATA_DIR", directory)
        patch.setattr(sharding, "ROWS_PER_GROUP", rows_per_group)
        planned = sharding.plan("stage", DS, pd.Series(customers), shard_count, {}, rows=rows)
        for shard in planned:
            own = set(sharding.customers_of(shard))
            read = sharding.rows_of(shard)
            expected = rows[rows["customer_id"].isin(own)].sort_values(["customer_id", "value"], ignore_index=True)
            pd.testing.assert_frame_equal(read.sort_values(["customer_id", "value"], ignore_index=True), expected)
            assert read["customer_id"].is_monotonic_increasing and list(read.columns) == ["customer_id", "value"]


def planned_stage(tmp_path, monkeypatch, customers=("a", "b", "c", "d"), shard_count=2):
    monkeypatch.setenv("PZ_DATA_DIR", str(tmp_path))
    return sharding.plan("scores", DS, pd.Series(list(customers)), shard_count, {}, shared={"k": 1})


def test_a_merge_names_the_shards_that_did_not_report(tmp_path, monkeypatch):
    first, _ = planned_stage(tmp_path, monkeypatch)
    sharding.write_result(first, pd.DataFrame({"customer_id": ["a", "b"], "score": [0.1, 0.2]}))
    with pytest.raises(sharding.ShardError, match=r"1 of 2 shards .*shard-0001-of-0002\.parquet.*rerun the failed"):
        sharding.collect("scores", DS, 2)


def test_a_merge_refuses_a_shard_that_scored_customers_outside_its_slice(tmp_path, monkeypatch):
    first, second = planned_stage(tmp_path, monkeypatch)
    sharding.write_result(first, pd.DataFrame({"customer_id": ["a", "b"], "score": [0.1, 0.2]}))
    sharding.write_result(second, pd.DataFrame({"customer_id": ["b", "c", "d"], "score": [0.2, 0.3, 0.4]}))
    with pytest.raises(sharding.ShardError, match="shard 2 of 2 wrote customers outside its slice"):
        sharding.collect("scores", DS, 2)


def test_a_new_plan_replaces_the_last_one_and_finish_removes_it(tmp_path, monkeypatch):
    first, _ = planned_stage(tmp_path, monkeypatch)
    sharding.write_result(first, pd.DataFrame({"customer_id": ["a", "b"], "score": [0.1, 0.2]}))
    replanned = planned_stage(tmp_path, monkeypatch, shard_count=3)
    assert not sharding.result_path(first).exists()  # a rerun never merges an older plan's rows
    assert sharding.shared_inputs(replanned[2]) == {"k": 1}
    sharding.finish("scores", DS)
    with pytest.raises(sharding.ShardError, match="rerun the stage's plan task"):
        sharding.customers_of(replanned[0])
