"""The online store takes only the customers whose features changed, and still answers every customer
exactly as the night's snapshot says: the day counts of rows written on an earlier night are brought
to the store's night when read (ml.mlops.online_store)."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.helpers import END_DATE, copy_night, run_pipeline, run_python

pytestmark = pytest.mark.xdist_group("online_store")

NEXT = END_DATE + dt.timedelta(days=1)

# Every customer of the snapshot of ds looked up online, and both as JSON records (one line).
LOOKUP_ALL = """
import json, sys
import datetime as dt
import pyarrow.parquet as pq
from ml.mlops.feature_store import online_features, snapshot_file
snapshot = pq.read_table(snapshot_file(dt.date.fromisoformat(sys.argv[1]))).to_pandas()
online = online_features(sorted(snapshot["customer_id"]))
print(json.dumps({"online": online.to_dict("records"), "snapshot": snapshot[online.columns].to_dict("records")}))
"""


def manifest(data_dir) -> dict:
    return json.loads((data_dir / "feature_store" / "online_store.json").read_text())


def test_a_night_writes_only_changed_customers_and_every_lookup_is_the_snapshot(built_warehouse, tmp_path):
    data_dir = copy_night(built_warehouse, tmp_path / "data")
    assert manifest(data_dir)["ds"] == END_DATE.isoformat()
    night = run_pipeline(data_dir, NEXT.isoformat(), True, "--through", "build_feature_store")
    assert night.returncode == 0, night.stderr[-3000:]
    written = manifest(data_dir)
    assert written["ds"] == NEXT.isoformat() and written["write"] == "changed customers only"
    # Nothing new arrived: only windows that dropped an old event or a lifecycle stage that moved.
    assert 0 < written["rows_written"] < written["customers"] / 2, written

    lookup = run_python(data_dir, LOOKUP_ALL, NEXT.isoformat())
    assert lookup.returncode == 0, lookup.stderr[-3000:]
    found = json.loads(lookup.stdout.strip().splitlines()[-1])
    online, snapshot = pd.DataFrame(found["online"]), pd.DataFrame(found["snapshot"])
    assert len(online) == written["customers"]
    # Every feature of every customer, the day counts of the rows not rewritten tonight included.
    pd.testing.assert_frame_equal(online, snapshot, check_dtype=False)

    # A rerun of the night writes nothing; a backfill of the night before leaves the newer night.
    for ds, expected in ((NEXT, "changed customers only"), (END_DATE, None)):
        rerun = run_python(
            data_dir, f"from ml.orchestration.stages import run_stage; print(run_stage('build_feature_store', '{ds}'))"
        )
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        assert "'online_rows_written': 0" in rerun.stdout
        if expected is None:
            assert f"kept: the online store holds the newer night {NEXT}" in rerun.stdout
    assert manifest(data_dir)["ds"] == NEXT.isoformat()
    digests = pq.read_table(data_dir / "feature_store" / "online_written.parquet")
    assert sorted(digests.column("customer_id").to_pylist()) == sorted(snapshot["customer_id"])
