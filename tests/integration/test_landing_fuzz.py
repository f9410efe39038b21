"""Landing fuzz (hypothesis): arbitrary text, unicode, huge and special numbers and odd timestamps in
every column of every table, as CSV or parquet, on top of a small valid landing area. Every night
must finish, and every row must be accounted for (read = accepted + rejected + duplicate +
later-dated + erased, per table).

Each example is a real load and dbt build (about 15 s), so CI runs a few, derandomized so that a
red build is reproducible; `PZ_FUZZ_EXAMPLES=200` runs more, with fresh random examples.
"""

from __future__ import annotations

import csv
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml.warehouse.contract import CONTRACT
from tests.helpers import END_DATE, query, run_pipeline

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("fuzz")]

EXAMPLES = int(os.environ.get("PZ_FUZZ_EXAMPLES", "4"))
DS = END_DATE.isoformat()

SPECIAL_VALUES = [
    "", " ", "NaN", "nan", "inf", "-inf", "Infinity", "1e400", "-1e400", "99999999999999999999", "-0", "0x1F",
    "1_000", "4.0", "4.5", "-1", "true", "NULL", "None", "-infinity", "infinity", "epoch", "now",
    "2026-10-01T00:00:00+99:00", "2026-10-01T00:00:00-14:00", "0001-01-01", "9999-12-31T23:59:59Z",
    "2026-02-30", "2026-10-31T23:59:59.999999999Z", "2026-11-01", "=HYPERLINK(\"http://x\")", "+cmd|' /C calc'!A0",
    "@SUM(1)", "'; drop table raw.orders; --", "\u202e\u0000\u200b", "C0000001", "c0000001 ", "I00001", "O00000001",
    "x" * 40_000,
]  # fmt: skip
BASE_IDS = ["C0000001", "C0000002", "C0000003"]

values = st.one_of(
    st.sampled_from(SPECIAL_VALUES),
    st.text(max_size=24),
    st.integers(min_value=-(10**25), max_value=10**25).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.datetimes().map(lambda moment: moment.isoformat()),
    st.sampled_from(BASE_IDS),
)


def table_rows(name: str):
    columns = CONTRACT[name].columns
    row = st.fixed_dictionaries({column: values for column in columns})
    return st.tuples(st.lists(row, max_size=5), st.booleans())  # rows, as parquet or not


landings = st.fixed_dictionaries({name: table_rows(name) for name in CONTRACT})


def write_base(landing) -> None:
    """A small valid landing area: three customers, an item, an order with its line."""
    files = {
        "customers": [
            {"customer_id": c, "signup_at": "2026-08-01T00:00:00Z", "email": f"{c.lower()}@example.com"}
            for c in BASE_IDS
        ],
        "items": [{"item_id": "I00001", "category": "home", "price": "10.00"}],
        "orders": [{"order_id": "O00000001", "customer_id": "C0000001", "ordered_at": "2026-09-01T00:00:00Z",
                    "total_amount": "10.00"}],
        "order_items": [{"order_id": "O00000001", "item_id": "I00001", "quantity": "1", "unit_price": "10.00"}],
    }  # fmt: skip
    for name, rows in files.items():
        (landing / name).mkdir(parents=True, exist_ok=True)
        write(landing / name / "base.csv", CONTRACT[name].columns, rows, as_parquet=False)


def write(path, columns, rows, as_parquet: bool) -> None:
    if as_parquet:
        pq.write_table(pa.table({c: pa.array([r.get(c) for r in rows], pa.string()) for c in columns}), path)
        return
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("fuzz")
    write_base(data_dir / "landing")
    return data_dir


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="PZ_FUZZ_EXAMPLES" not in os.environ,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(landing=landings)
def test_any_landed_value_leaves_the_night_finished_and_every_row_accounted_for(fuzz_dir, landing):
    written = {}
    for name, (rows, as_parquet) in landing.items():
        folder = fuzz_dir / "landing" / name
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("zz_fuzz.*"):
            old.unlink()
        if rows:
            write(folder / f"zz_fuzz.{'parquet' if as_parquet else 'csv'}", CONTRACT[name].columns, rows, as_parquet)
        written[name] = len(rows)
    # Arbitrary landings may hold no row dated near ds: the freshness guard is not what is tested here.
    result = run_pipeline(fuzz_dir, DS, False, "--allow-stale")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    reconciliation = query(fuzz_dir, "select * from audit.landing_reconciliation where ds = ?", [DS])
    assert reconciliation["is_reconciled"].all(), reconciliation.to_string()
    read = dict(zip(reconciliation["table_name"], reconciliation["rows_read"], strict=True))
    base = {"customers": 3, "items": 1, "orders": 1, "order_items": 1}
    assert read == {name: base.get(name, 0) + written[name] for name in CONTRACT}
