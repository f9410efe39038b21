"""No value stops the night: special numbers, odd timestamps, formulas and very long text in landing
files are quarantined row by row with a reason, from CSV and parquet alike, and counts reconcile.
A fixed file rerun for the same ds replaces that ds's quarantine, also when nothing is left in it."""

from __future__ import annotations

import csv
import gzip
import logging

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml.warehouse.landing import MAX_VALUE_CHARS, load_landing
from tests.helpers import END_DATE, fresh_data_dir, query, run_pipeline

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("warehouse")]

DS = END_DATE.isoformat()
CUSTOMER_COLUMNS = [
    "customer_id", "signup_at", "email", "country", "city", "language",
    "birth_year", "gender", "device_type", "acquisition_channel",
]  # fmt: skip


def customer(customer_id: str, **values: str) -> dict[str, str]:
    row = {
        "customer_id": customer_id,
        "signup_at": "2026-08-01T10:00:00Z",
        "email": f"{customer_id.lower()}@example.com",
        "country": "DE",
        "city": "Berlin",
        "language": "de",
        "birth_year": "1980",
        "gender": "female",
        "device_type": "ios",
        "acquisition_channel": "social",
    }
    return {**row, **values}


# key -> (row, the reason code it must be quarantined with)
BAD_CUSTOMERS = {
    "XB01": (customer("XB01", birth_year="NaN"), "unparseable_number"),
    "XB02": (customer("XB02", birth_year="inf"), "unparseable_number"),
    "XB03": (customer("XB03", birth_year="99999999999999999999"), "unparseable_number"),
    "XB04": (customer("XB04", birth_year="-inf"), "unparseable_number"),
    "XB05": (customer("XB05", signup_at="-infinity"), "unparseable_timestamp"),
    "XB06": (customer("XB06", signup_at="2026-08-01T10:00:00+99:00"), "unparseable_timestamp"),
    "XB07": (customer("XB07", signup_at="epoch"), "unparseable_timestamp"),
    "XB08": (customer("XB08", signup_at="0001-01-01"), "unparseable_timestamp"),
    "XB09": (customer("XB09", email='=HYPERLINK("http://x.example","click")'), "invalid_value"),
    "XB10": (customer("XB10", email="+cmd|' /C calc'!A0"), "invalid_value"),
    "XB11": (customer("XB11", email="@SUM(1+1)*cmd|' /C calc'!A0"), "invalid_value"),
    "XB12": (customer("XB12", language="=1+1"), "invalid_value"),
    "XB13": (customer("XB13", city="x" * (MAX_VALUE_CHARS + 1)), "value_too_long"),
}
GOOD_CUSTOMERS = {
    "XG01": customer("XG01", signup_at="2026-08-01T10:00:00+14:00"),
    "XG02": customer("XG02", language="pt-br", birth_year="1980.0"),
}


def write_csv(path, columns: list[str], rows: list[dict[str, str]], compress: bool = False) -> None:
    opener = gzip.open if compress else open
    with opener(path, "wt", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture(scope="module")
def bad_values_dir(small_landing, tmp_path_factory):
    """The small data set plus files of bad values in CSV, gzip CSV and parquet, built for ds."""
    data_dir = fresh_data_dir(small_landing, tmp_path_factory.mktemp("bad_values"), "data")
    landing = data_dir / "landing"
    write_csv(landing / "customers" / "zz_bad.csv", CUSTOMER_COLUMNS, [row for row, _ in BAD_CUSTOMERS.values()])
    write_csv(landing / "customers" / "zz_good.csv.gz", CUSTOMER_COLUMNS, list(GOOD_CUSTOMERS.values()), True)
    # Parquet with typed columns: NaN and infinities in a float column, a huge integer in another.
    pq.write_table(
        pa.table(
            {
                "customer_id": ["XP01", "XP02", "XP03"],
                "signup_at": ["2026-08-01T10:00:00Z"] * 3,
                "birth_year": pa.array([float("nan"), float("inf"), 1980.0]),
            }
        ),
        landing / "customers" / "zz_bad.parquet",
    )
    existing_order = query_landing_order(landing)
    write_csv(
        landing / "survey_responses" / "zz_bad.csv",
        ["response_id", "customer_id", "responded_at", "survey_type", "score"],
        [
            {"response_id": f"XS{i}", "customer_id": "XG01", "responded_at": "2026-10-01T10:00:00Z",
             "survey_type": "nps", "score": score}
            for i, score in enumerate(["NaN", "inf", "99999999999999999999", "1e400"])
        ],
    )  # fmt: skip
    write_csv(
        landing / "order_items" / "zz_bad.csv",
        ["order_id", "item_id", "quantity", "unit_price"],
        [
            {"order_id": existing_order, "item_id": f"XI{i}", "quantity": quantity, "unit_price": "1.00"}
            for i, quantity in enumerate(["NaN", "-inf", "99999999999999999999"])
        ],
    )
    (landing / "orders" / "notes.txt").write_text("not data")
    (landing / "orders" / "archive").mkdir()
    (landing / "returns").mkdir()
    result = run_pipeline(data_dir, DS, models=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return data_dir, result


def query_landing_order(landing) -> str:
    table = pq.read_table(next((landing / "orders").glob("*.parquet")), columns=["order_id"])
    return table.column("order_id")[0].as_py()


def test_every_bad_value_is_quarantined_with_its_reason(bad_values_dir):
    data_dir, _ = bad_values_dir
    quarantined = query(
        data_dir,
        "select raw_customer_id, reason_code, reason from quarantine.customers where ds = ? and source_file = ?",
        [DS, "zz_bad.csv"],
    )
    reasons = dict(zip(quarantined["raw_customer_id"], quarantined["reason_code"], strict=True))
    assert reasons == {key: reason for key, (_, reason) in BAD_CUSTOMERS.items()}
    too_long = quarantined.loc[quarantined["raw_customer_id"] == "XB13", "reason"].iloc[0]
    assert "city" in too_long and f"{MAX_VALUE_CHARS:,}" in too_long


def test_special_numbers_from_parquet_are_quarantined(bad_values_dir):
    data_dir, _ = bad_values_dir
    rows = query(
        data_dir,
        "select raw_customer_id, reason_code from quarantine.customers where ds = ? and source_file = ? order by 1",
        [DS, "zz_bad.parquet"],
    )
    assert rows.to_dict("list") == {"raw_customer_id": ["XP01", "XP02"], "reason_code": ["unparseable_number"] * 2}
    assert query(data_dir, "select birth_year from staging.stg_customers where customer_id = 'XP03'")[
        "birth_year"
    ].tolist() == [1980]


def test_whole_number_columns_of_other_tables_take_no_special_number(bad_values_dir):
    data_dir, _ = bad_values_dir
    for table in ("survey_responses", "order_items"):
        reasons = query(
            data_dir, f"select reason_code from quarantine.{table} where ds = ? and source_file = 'zz_bad.csv'", [DS]
        )["reason_code"]
        assert len(reasons) >= 3 and set(reasons) == {"unparseable_number"}, table


def test_gzip_csv_is_read_and_valid_edge_values_are_accepted(bad_values_dir):
    data_dir, _ = bad_values_dir
    accepted = query(
        data_dir,
        "select customer_id, signup_at, language from staging.stg_customers where customer_id in ('XG01', 'XG02') "
        "order by 1",
    )
    assert accepted["customer_id"].tolist() == ["XG01", "XG02"]
    assert str(accepted["signup_at"].iloc[0]) == "2026-07-31 20:00:00"  # +14:00 converted to UTC
    assert accepted["language"].iloc[1] == "pt-br"


def test_counts_reconcile_with_every_bad_file(bad_values_dir):
    data_dir, _ = bad_values_dir
    assert query(data_dir, "select bool_and(is_reconciled) as ok from audit.landing_reconciliation")["ok"][0]


def test_files_the_loader_does_not_read_are_listed_in_a_warning(tmp_path, caplog):
    landing = tmp_path / "landing"
    (landing / "customers").mkdir(parents=True)
    (landing / "orders").mkdir()
    write_csv(landing / "customers" / "a.csv", CUSTOMER_COLUMNS, [customer("C1")])
    write_csv(landing / "orders" / "a.csv", ["order_id", "customer_id", "ordered_at"], [])
    (landing / "orders" / "b.tsv").write_text("order_id\tcustomer_id\n")
    (landing / "orders" / ".partial.csv").write_text("order_id\n")
    (landing / "orders" / "2026").mkdir()
    (landing / "custmers").mkdir()
    with caplog.at_level(logging.WARNING, logger="ml.warehouse.landing"):
        load_landing(landing, tmp_path / "w.duckdb")
    warning = next(r.getMessage() for r in caplog.records if "not read" in r.getMessage())
    for name in ("orders/b.tsv", "orders/.partial.csv", "orders/2026/", "custmers/"):
        assert name in warning


def test_a_long_field_quarantines_its_record_not_the_file(tmp_path):
    landing = tmp_path / "landing"
    (landing / "customers").mkdir(parents=True)
    (landing / "orders").mkdir()
    rows = [customer("C1"), customer("C2", city="y" * 200_000), customer("C3")]
    write_csv(landing / "customers" / "a.csv", CUSTOMER_COLUMNS, rows)
    write_csv(landing / "orders" / "a.csv", ["order_id", "customer_id", "ordered_at"], [])
    loads = load_landing(landing, tmp_path / "w.duckdb")
    assert loads["customers"].rows == 3 and loads["customers"].unreadable_records == 1


def test_a_fixed_file_rerun_for_the_same_ds_empties_its_quarantine(bad_values_dir):
    data_dir, _ = bad_values_dir
    items_quarantined = "select count(*) as n from quarantine.items where ds = ?"
    assert query(data_dir, items_quarantined, [DS])["n"][0] > 0  # the resend's bad and re-sent rows
    # Fixed at the source: the bad files are gone, and the items resend (every bad item row and
    # every re-sent item) is gone, so the ds's new quarantine of items is empty.
    for fixed in [*data_dir.glob("landing/*/zz_bad.*"), *data_dir.glob("landing/items/*resend*.csv")]:
        fixed.unlink()
    result = run_pipeline(data_dir, DS, models=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for table in ("customers", "survey_responses", "order_items"):
        left = query(data_dir, f"select count(*) as n from quarantine.{table} where source_file like 'zz_bad%'")
        assert left["n"][0] == 0, table
    assert query(data_dir, items_quarantined, [DS])["n"][0] == 0
    assert query(data_dir, "select bool_and(is_reconciled) as ok from audit.landing_reconciliation")["ok"][0]
