"""The scoring stages write the same tables whatever the shard count (ml.orchestration.shards)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from ml.paths import REPO_ROOT
from tests.helpers import END_DATE, query, run_python

DS = "2026-10-31"


RESCORE = """
import json, os, sys
os.environ["PZ_CONFIG"] = sys.argv[1]
from ml.orchestration.stages import run_stage
ds = sys.argv[2]
results = {"recommendations": run_stage("score_recommendations", ds), "scores": run_stage("score_propensity", ds)}
print(json.dumps(results))
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
