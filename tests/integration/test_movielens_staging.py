"""A MovieLens slice goes through landing and staging with nothing quarantined and every count reconciled."""

from __future__ import annotations

import duckdb

from ml.warehouse.landing import load_landing_files
from ml.warehouse.movielens import read_movielens, write_landing
from ml.warehouse.transform import build_staging

RATINGS = [  # user, movie, rating, Unix seconds
    (1, 10, 4.0, 964982703),
    (1, 20, 3.0, 964982800),
    (1, 30, 5.0, 964983000),
    (2, 10, 2.5, 1445714835),
    (2, 30, 4.5, 1445715000),
    (3, 20, 4.0, 1500000000),
]


MOVIES = [
    (10, "Toy Story (1995)", "Adventure|Animation"),
    (20, "Heat (1995)", "Action|Crime"),
    (30, "Seven (1995)", ""),
]


def write_csv_release(folder):
    folder.mkdir()
    lines = ["userId,movieId,rating,timestamp", *(f"{u},{m},{r},{t}" for u, m, r, t in RATINGS)]
    (folder / "ratings.csv").write_text("\r\n".join(lines) + "\r\n")  # GroupLens ships CRLF
    movies = [
        "movieId,title,genres",
        *(f'{m},"{title}",{genres or "(no genres listed)"}' for m, title, genres in MOVIES),
    ]
    (folder / "movies.csv").write_text("\r\n".join(movies) + "\r\n")
    return folder


def test_a_landed_slice_goes_through_staging_with_nothing_quarantined(tmp_path, monkeypatch):
    monkeypatch.setenv("PZ_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PZ_REPORTS_DIR", str(tmp_path / "reports"))
    counts = write_landing(read_movielens(write_csv_release(tmp_path / "release")), tmp_path / "landing")
    ds = "2017-07-14"  # the day of the last rating
    loads = load_landing_files(ds)
    assert {table: loads[table] for table in counts} == counts
    build_staging(ds)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as connection:  # as dbt-duckdb opened it here
        reconciliation = connection.execute(
            "select table_name, rows_read, rows_accepted,"
            " rows_rejected + rows_duplicate + rows_later_dated as rows_quarantined, is_reconciled"
            " from audit.landing_reconciliation where ds = ?",
            [ds],
        ).df()
        staged_orders = connection.execute("select count(*) from staging.stg_orders").fetchone()[0]
    by_table = reconciliation.set_index("table_name")
    assert by_table["is_reconciled"].all() and (by_table["rows_quarantined"] == 0).all(), reconciliation
    assert by_table.loc["orders", "rows_accepted"] == counts["orders"] == staged_orders
