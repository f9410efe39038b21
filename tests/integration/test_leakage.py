"""No peeking: features and propensity scores as of a date do not change when data dated after it
is added to the landing files."""

from __future__ import annotations

import datetime as dt
import shutil

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml.synthetic.corruption import TIMESTAMP_COLUMNS
from ml.synthetic.generate import generate
from ml.synthetic.settings import GeneratorSettings
from tests.helpers import END_DATE, query, run_pipeline

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("leakage")]

# Clean data (no injected bad rows) so the landing files can be filtered with pandas.
LEAK = GeneratorSettings(customers=500, days=110, end_date=END_DATE, bad_row_rate=0.0, seed=5)
AS_OF = END_DATE - dt.timedelta(days=21)


def read(path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pandas()
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def write(frame: pd.DataFrame, path) -> None:
    if path.suffix == ".parquet":
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    else:
        frame.to_csv(path, index=False)


def truncate_landing(landing, as_of: dt.date) -> None:
    """Drop every landing row dated after as_of (order lines follow their order)."""
    end = pd.Timestamp(as_of + dt.timedelta(days=1))
    kept_orders: set[str] = set()
    all_orders: set[str] = set()
    for table, column in TIMESTAMP_COLUMNS.items():
        for path in sorted((landing / table).glob("*")):
            frame = read(path)
            stamps = pd.to_datetime(frame[column], errors="coerce", utc=True).dt.tz_localize(None)
            keep = stamps.isna() | (stamps < end)
            if table == "orders":
                all_orders |= set(frame["order_id"])
                kept_orders |= set(frame.loc[keep, "order_id"])
            write(frame[keep.to_numpy()], path)
    for path in sorted((landing / "order_items").glob("*")):
        frame = read(path)
        later = frame["order_id"].isin(all_orders - kept_orders)
        write(frame[~later.to_numpy()], path)


def snapshot(data_dir) -> tuple[pd.DataFrame, pd.DataFrame]:
    features = query(data_dir, "select * from marts.customer_features_daily order by feature_date, customer_id")
    scores = query(
        data_dir,
        "select customer_id, score, decile from marts.customer_scores where ds = ? order by customer_id",
        [AS_OF],
    )
    return features, scores


def test_features_and_scores_as_of_a_date_ignore_data_added_after_it(tmp_path):
    full, truncated = tmp_path / "full", tmp_path / "truncated"
    generate(LEAK, full / "landing")
    shutil.copytree(full / "landing", truncated / "landing")
    truncate_landing(truncated / "landing", AS_OF)
    for data_dir in (full, truncated):
        # The stages the features and the scores need (no recommender, nothing published).
        result = run_pipeline(data_dir, AS_OF.isoformat(), True, "--through", "score_propensity")
        assert result.returncode == 0, result.stderr[-3000:]
    later_rows = sum(len(read(p)) for p in (full / "landing").rglob("*.*")) - sum(
        len(read(p)) for p in (truncated / "landing").rglob("*.*")
    )
    assert later_rows > 1000  # the full landing really holds three weeks more

    # Erasure reaches every date by design (a later request removes a customer from earlier dates).
    erased = set(query(full, "select customer_id from audit.erased_customers")["customer_id"])
    (full_features, full_scores), (truncated_features, truncated_scores) = snapshot(full), snapshot(truncated)

    def without_erased(frame: pd.DataFrame) -> pd.DataFrame:
        return frame[~frame["customer_id"].isin(erased)].reset_index(drop=True)

    assert len(full_features) > 0 and len(full_scores) > 0
    pd.testing.assert_frame_equal(without_erased(full_features), without_erased(truncated_features))
    pd.testing.assert_frame_equal(without_erased(full_scores), without_erased(truncated_scores), atol=1e-12)
