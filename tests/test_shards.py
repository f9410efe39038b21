"""Sharded scoring (ml.shards): the slices cover every customer once, a merge refuses missing or
foreign shards, and the scoring stages write the same tables whatever the shard count."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ml import shards as sharding
from ml.config import REPO_ROOT
from tests.conftest import END_DATE, query, run_python

DS = "2026-10-31"


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


RESCORE = """
import json, os, sys
os.environ["PZ_CONFIG"] = sys.argv[1]
from ml.stages import score_propensity, score_recommendations
ds = sys.argv[2]
print(json.dumps({"recommendations": score_recommendations(ds), "scores": score_propensity(ds)}))
"""


@pytest.mark.slow
@pytest.mark.xdist_group("warehouse")
def test_sharded_scoring_writes_the_same_tables_as_unsharded(built_warehouse, tmp_path):
    """Rescoring ds unsharded (one shard) and with five shards writes identical tables. (Both runs
    are compared with each other, not with the fixture's first scores: other tests of the group may
    have registered a newer champion since.)"""
    tables = {
        "marts.customer_recommendations": "customer_id, rank",
        "marts.customer_scores": "customer_id",
    }
    settings_file = yaml.safe_load((REPO_ROOT / "config" / "personalization.yml").read_text())
    scored, summaries = {}, {}
    for shard_count in (1, 5):
        config: Path = tmp_path / f"shards_{shard_count}.yml"
        config.write_text(yaml.safe_dump({**settings_file, "scoring": {"shards": shard_count}}))
        result = run_python(built_warehouse, RESCORE, str(config), END_DATE.isoformat())
        assert result.returncode == 0, result.stderr[-3000:]
        summaries[shard_count] = json.loads(result.stdout.strip().splitlines()[-1])
        scored[shard_count] = {
            table: query(built_warehouse, f"select * from {table} where ds = ? order by {order}", [END_DATE])
            for table, order in tables.items()
        }
    for table in tables:
        pd.testing.assert_frame_equal(scored[1][table], scored[5][table], obj=f"{table} (1 vs 5 shards)")
    for shard_count, summary in summaries.items():
        assert summary["recommendations"]["shards"] == summary["scores"]["shards"] == shard_count
    assert summaries[1]["recommendations"]["rows"] == len(scored[5]["marts.customer_recommendations"]) > 0
    assert summaries[1]["scores"]["rows"] == len(scored[5]["marts.customer_scores"]) > 0
    assert set(scored[5]["marts.customer_scores"]["decile"]) == set(range(1, 11))  # deciles over all shards
    assert not (built_warehouse / "shards" / "scores" / f"ds={END_DATE}").exists()  # merged, then removed
