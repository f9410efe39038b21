"""The landing loader: lenient with bad records, loud about broken files, nothing lost."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml.warehouse.landing import LandingError, LandingFileError, load_landing

CUSTOMERS_HEADER = (
    "customer_id,signup_at,email,country,city,language,birth_year,gender,device_type,acquisition_channel\n"
)
ORDERS_HEADER = "order_id,customer_id,ordered_at,total_amount,currency,status,channel\n"


@pytest.fixture
def landing(tmp_path):
    """A minimal valid landing area: the two required tables only."""
    (tmp_path / "landing" / "customers").mkdir(parents=True)
    (tmp_path / "landing" / "orders").mkdir(parents=True)
    (tmp_path / "landing" / "customers" / "a.csv").write_text(
        CUSTOMERS_HEADER + "C1,2026-01-01T00:00:00Z,c1@example.com,DE,Berlin,de,1980,female,ios,social\n"
    )
    pq.write_table(
        pa.table({"order_id": ["O1"], "customer_id": ["C1"], "ordered_at": ["2026-02-01"]}),
        tmp_path / "landing" / "orders" / "a.parquet",
    )
    return tmp_path / "landing"


def raw(warehouse, sql):
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def test_missing_optional_tables_load_empty(landing, tmp_path):
    loads = load_landing(landing, tmp_path / "w.duckdb")
    assert loads["customers"].rows == 1 and loads["orders"].rows == 1
    assert loads["events"].rows == 0
    assert raw(tmp_path / "w.duckdb", "select count(*) from raw.events") == [(0,)]
    columns = [row[0] for row in raw(tmp_path / "w.duckdb", "describe raw.survey_responses")]
    assert columns[:5] == ["response_id", "customer_id", "responded_at", "survey_type", "score"]


def test_optional_columns_may_be_absent_and_are_null(landing, tmp_path):
    load_landing(landing, tmp_path / "w.duckdb")
    assert raw(tmp_path / "w.duckdb", "select status, _source_file, _source_row from raw.orders") == [
        (None, "a.parquet", 1)
    ]


def test_a_missing_required_table_is_an_error_that_says_what_to_do(landing, tmp_path):
    (landing / "orders" / "a.parquet").unlink()
    with pytest.raises(LandingError, match=r"Required landing table 'orders'.*make data"):
        load_landing(landing, tmp_path / "w.duckdb")


def test_an_unterminated_quote_fails_naming_the_file_and_line(landing, tmp_path):
    broken = landing / "customers" / "b.csv"
    broken.write_text(CUSTOMERS_HEADER + 'C2,2026-01-02,"unterminated,DE\n')
    with pytest.raises(LandingFileError) as error:
        load_landing(landing, tmp_path / "w.duckdb")
    assert str(broken) in str(error.value) and "line" in str(error.value)


def test_a_header_without_a_required_column_fails_naming_file_and_column(landing, tmp_path):
    broken = landing / "orders" / "b.csv"
    broken.write_text("order_id,customer_id\nO2,C1\n")
    with pytest.raises(LandingFileError, match=r"b\.csv.*ordered_at"):
        load_landing(landing, tmp_path / "w.duckdb")


def test_a_file_that_is_not_parquet_fails_naming_the_file(landing, tmp_path):
    (landing / "orders" / "c.parquet").write_bytes(b"this is not parquet")
    with pytest.raises(LandingFileError, match=r"c\.parquet"):
        load_landing(landing, tmp_path / "w.duckdb")


def test_a_failed_load_leaves_the_previous_raw_tables_untouched(landing, tmp_path):
    load_landing(landing, tmp_path / "w.duckdb")
    (landing / "orders" / "c.parquet").write_bytes(b"this is not parquet")
    with pytest.raises(LandingFileError):
        load_landing(landing, tmp_path / "w.duckdb")
    assert raw(tmp_path / "w.duckdb", "select count(*) from raw.orders") == [(1,)]


def test_unreadable_records_are_kept_with_the_reason(landing, tmp_path):
    extra = landing / "customers" / "b.csv"
    extra.write_bytes(
        CUSTOMERS_HEADER.encode()
        + "C2,2026-01-02,,DE,Zürich,de,,,,\n".encode("latin-1")
        + b"C3,2026-01-03,,DE,Berlin,de,,,,,one too many\n"
        + b"C4,2026-01-04,,DE,Berlin,de,,,,\n"
    )
    loads = load_landing(landing, tmp_path / "w.duckdb")
    assert loads["customers"].rows == 4 and loads["customers"].unreadable_records == 2
    rows = raw(
        tmp_path / "w.duckdb",
        "select customer_id, _source_row, _load_error from raw.customers where _source_file = 'b.csv' "
        "order by _source_row",
    )
    assert rows[0][:2] == ("C2", 1) and rows[0][2].startswith("invalid_encoding: city")
    assert rows[1][:2] == ("C3", 2) and rows[1][2].startswith("malformed_row: expected 10 fields, found 11")
    assert rows[2] == ("C4", 3, None)


def test_columns_outside_the_contract_are_ignored(landing, tmp_path):
    pq.write_table(
        pa.table({"order_id": ["O2"], "customer_id": ["C1"], "ordered_at": ["2026-02-02"], "coupon": ["X"]}),
        landing / "orders" / "b.parquet",
    )
    loads = load_landing(landing, tmp_path / "w.duckdb")
    assert loads["orders"].ignored_columns == {"coupon"}


def test_a_second_load_reads_only_the_files_that_arrived(landing, tmp_path):
    warehouse = tmp_path / "w.duckdb"
    load_landing(landing, warehouse)
    (landing / "customers" / "b.csv").write_text(
        CUSTOMERS_HEADER + "C2,2026-01-02T00:00:00Z,c2@example.com,DE,Berlin,de,1981,male,ios,social\n"
    )
    loads = load_landing(landing, warehouse)
    assert loads["customers"].files == {"b.csv": 1} and loads["customers"].unchanged_files == 1
    assert loads["orders"].rows == 0 and loads["orders"].rows_held == 1
    assert raw(warehouse, "select customer_id, _source_file from raw.customers order by 1") == [
        ("C1", "a.csv"),
        ("C2", "b.csv"),
    ]
    ledger = raw(warehouse, "select table_name, file_name, records from raw.landing_files order by 1, 2")
    assert ledger == [("customers", "a.csv", 1), ("customers", "b.csv", 1), ("orders", "a.parquet", 1)]


def test_a_touched_file_with_the_same_content_is_not_read_again(landing, tmp_path):
    warehouse = tmp_path / "w.duckdb"
    load_landing(landing, warehouse)
    path = landing / "customers" / "a.csv"
    path.write_bytes(path.read_bytes())  # a copy by a sync tool: new modification time, same bytes
    loads = load_landing(landing, warehouse)
    assert loads["customers"].rows == 0 and loads["customers"].unchanged_files == 1
    assert raw(warehouse, "select count(*) from raw.customers") == [(1,)]


def test_a_changed_file_is_reloaded_and_a_removed_one_withdrawn_with_a_warning(landing, tmp_path, caplog):
    warehouse = tmp_path / "w.duckdb"
    (landing / "customers" / "b.csv").write_text(
        CUSTOMERS_HEADER + "C9,2026-01-02T00:00:00Z,c9@example.com,DE,Berlin,de,1981,male,ios,social\n"
    )
    load_landing(landing, warehouse)
    (landing / "customers" / "a.csv").write_text(
        CUSTOMERS_HEADER
        + "C1,2026-01-01T00:00:00Z,c1@example.com,DE,Berlin,de,1980,female,ios,social\n"
        + "C3,2026-01-03T00:00:00Z,c3@example.com,FR,Paris,fr,1990,female,web,search\n"
    )
    (landing / "customers" / "b.csv").unlink()
    loads = load_landing(landing, warehouse)
    assert loads["customers"].reloaded_files == ["a.csv"] and loads["customers"].withdrawn_files == ["b.csv"]
    assert raw(warehouse, "select customer_id from raw.customers order by 1") == [("C1",), ("C3",)]
    assert raw(warehouse, "select file_name, records from raw.landing_files where table_name = 'customers'") == [
        ("a.csv", 2)
    ]
    messages = " ".join(record.getMessage() for record in caplog.records)
    assert "customers/a.csv changed since it was loaded" in messages
    assert "customers/b.csv left the landing folder: its 1 records were withdrawn" in messages


def test_a_warehouse_loaded_before_the_ledger_is_reloaded_once(landing, tmp_path):
    warehouse = tmp_path / "w.duckdb"
    load_landing(landing, warehouse)
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute("drop table raw.landing_files")
    loads = load_landing(landing, warehouse)
    assert loads["customers"].rows == 1 and loads["customers"].rows_held == 1
