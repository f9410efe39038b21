"""Erasure that is never lost, and recovery that never destroys published data.

Two real nights on a copy of the small data set. Between them four erasure requests land: one with
a date that cannot be read, one whose id differs from a customer's only in letter case, one for a
customer who does not exist, and one plain request for a customer who also has a rejected order in
the first night's quarantine. Then the erasure file is deleted and the night rerun. Finally the data
directory is copied (a restore into another folder) and both copies run a night.
"""

from __future__ import annotations

import ast
import csv
import json
import shutil
import sqlite3

import pandas as pd
import pyarrow.parquet as pq
import pytest
from mlflow import MlflowClient

from ml.orchestration.config import load_config
from ml.warehouse.contract import TABLES
from tests.helpers import END_DATE, fresh_data_dir, orchestrate, query, run_pipeline, run_python, service_client

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("erasure")]

NIGHT_1 = (END_DATE - pd.Timedelta(days=1)).isoformat()
NIGHT_2 = END_DATE.isoformat()
NOBODY = "C9999999X"


def exported_customers(data_dir, ds: str | None = None) -> set[str]:
    """Every customer id in every published file (CSV and parquet) of every channel, or of one ds."""
    pattern = f"*/ds={ds}/*" if ds else "*/ds=*/*"
    found: set[str] = set()
    for path in (data_dir / "exports").glob(pattern):
        if path.suffix == ".parquet":
            found |= set(pq.read_table(path, columns=["customer_id"]).column("customer_id").to_pylist())
        elif path.suffix == ".csv":
            found |= set(pd.read_csv(path, dtype=str)["customer_id"])
    return found


def quarantined_customers(data_dir) -> set[str]:
    found: set[str] = set()
    for table in TABLES:
        if table == "erasure_requests":
            continue  # the record of the requests themselves
        columns = set(query(data_dir, f"select * from quarantine.{table} limit 0").columns)
        if "raw_customer_id" in columns:
            found |= set(query(data_dir, f"select trim(raw_customer_id) as c from quarantine.{table}")["c"])
    return found


def online_store_keys(data_dir) -> int:
    with sqlite3.connect(data_dir / "feature_store" / "online_store.db") as connection:
        return connection.execute(
            "select count(distinct entity_key) from personalization_customer_features"
        ).fetchone()[0]


def online_features_known(data_dir, customer_ids: list[str]) -> list[bool]:
    """Whether the online store has features of each customer (Feast's own lookup)."""
    result = run_python(
        data_dir,
        "import sys; from ml.mlops.feature_store import online_features; "
        "frame = online_features(sys.argv[1:]).drop(columns='customer_id'); "
        "print(' '.join(str(known) for known in frame.notna().any(axis=1)))",
        *customer_ids,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return [word == "True" for word in result.stdout.split()]


def bundle_ids(data_dir, version: str) -> set[str]:
    result = run_python(
        data_dir,
        "import sys; from ml.mlops.tracking import use_experiment; use_experiment('recommender'); "
        "from ml.recommender.training import load_bundle; "
        "print('\\n'.join(sorted(load_bundle(f'models:/recommender/{sys.argv[1]}').known_customer_ids())))",
        version,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return set(result.stdout.split())


def latest_recommender_version(data_dir) -> str:
    with sqlite3.connect(data_dir / "mlflow.db") as connection:
        return str(
            connection.execute("select max(version) from model_versions where name = 'recommender'").fetchone()[0]
        )


def revoke_over_http(data_dir, spare: list[str]) -> dict:
    """Between the nights, a customer of NIGHT_1's push or email files withdraws that consent over the
    online service (not one of the erasure requests' customers); returns who and the next answer."""
    config = load_config().activation
    customer, channel = next(
        (customer, channel)
        for channel in ("push", "email")
        for customer in sorted(exported_customers_of(data_dir, channel, NIGHT_1))
        if customer not in spare
    )
    consent = config.consent_of(channel)
    event = {"customer_id": customer, "event_type": "consent_revoked", "channel": consent}
    with service_client(data_dir / "serving", data_dir / "landing") as client:
        before = client.get(f"/v1/decisions/{customer}", params={"channel": channel}).json()
        posted = client.post("/v1/events", json=[{**event, "occurred_at": f"{NIGHT_2}T10:00:00Z"}])
        assert posted.status_code == 202, posted.text
        after = client.get(f"/v1/decisions/{customer}", params={"channel": channel}).json()
    return {"customer": customer, "channel": channel, "consent": consent, "before": before, "after": after}


def exported_customers_of(data_dir, channel: str, ds: str) -> set[str]:
    found: set[str] = set()
    for path in (data_dir / "exports" / channel / f"ds={ds}").glob("*.parquet"):
        found |= set(pq.read_table(path, columns=["customer_id"]).column("customer_id").to_pylist())
    return found


@pytest.fixture(scope="module")
def erasure_nights(small_landing, tmp_path_factory):
    data_dir = fresh_data_dir(small_landing, tmp_path_factory.mktemp("erasure"), "data")
    night_1 = run_pipeline(data_dir, NIGHT_1)
    assert night_1.returncode == 0, night_1.stdout[-3000:] + night_1.stderr[-3000:]
    emailed = sorted(exported_customers(data_dir, NIGHT_1) - {""})
    unreadable_date, case_mismatch, plain = emailed[0], emailed[1], emailed[2]
    assert case_mismatch.lower() != case_mismatch
    # A rejected order of the plain request's customer, in night 1's quarantine.
    rejected_order = data_dir / "landing" / "orders" / "zz_rejected.csv"
    rejected_order.write_text(f"order_id,customer_id,ordered_at,total_amount\nOX1,{plain},2026-10-01,lots\n")
    night_1 = run_pipeline(data_dir, NIGHT_1, models=False)
    assert night_1.returncode == 0, night_1.stderr[-3000:]
    assert plain in quarantined_customers(data_dir)
    version_before = latest_recommender_version(data_dir)
    assert online_features_known(data_dir, [unreadable_date, plain]) == [True, True]

    revoked = revoke_over_http(data_dir, sorted(set(emailed[:3])))

    requests = data_dir / "landing" / "erasure_requests" / "zz_requests.csv"
    with requests.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer_id", "requested_at"])
        writer.writerows(
            [
                [unreadable_date, "the 3rd of October"],
                [case_mismatch.lower(), "2026-10-30T10:00:00Z"],
                [NOBODY, "2026-10-30T10:00:00Z"],
                [plain, "2026-10-30T11:00:00Z"],
            ]
        )
    night_2 = run_pipeline(data_dir, NIGHT_2)
    assert night_2.returncode == 0, night_2.stdout[-3000:] + night_2.stderr[-3000:]
    return {
        "data_dir": data_dir,
        "erased": {unreadable_date, plain},
        "near_match": case_mismatch,
        "version_before": version_before,
        "log": night_2.stderr,
        "requests": requests,
        "revoked": revoked,
    }


def test_erased_customers_are_in_no_export_of_any_day(erasure_nights):
    data_dir, erased = erasure_nights["data_dir"], erasure_nights["erased"]
    assert not exported_customers(data_dir) & erased
    for channel in ("email", "push", "web", "call_center"):
        in_table = set(query(data_dir, f"select customer_id from channels.{channel}")["customer_id"])
        assert not in_table & erased, channel


def test_a_near_match_is_suppressed_not_erased_and_reported(erasure_nights):
    data_dir, near_match = erasure_nights["data_dir"], erasure_nights["near_match"]
    assert near_match not in exported_customers(data_dir, NIGHT_2)
    assert near_match in exported_customers(data_dir, NIGHT_1)  # not erased: what was sent stays
    unmatched = query(data_dir, "select * from audit.erasure_requests_unmatched order by 1")
    pairs = dict(zip(unmatched["requested_customer_id"], unmatched["near_match_customer_id"], strict=True))
    assert pairs[near_match.lower()] == near_match
    assert pd.isna(pairs[NOBODY])
    assert f"nearly matches {near_match}" in erasure_nights["log"]


def test_only_real_customers_are_listed_as_erased(erasure_nights):
    data_dir, erased = erasure_nights["data_dir"], erasure_nights["erased"]
    listed = set(query(data_dir, "select customer_id from audit.erased_customers")["customer_id"])
    assert erased <= listed
    assert NOBODY not in listed and erasure_nights["near_match"].lower() not in listed
    ledger = query(data_dir, "select * from audit.erasure_ledger where source_file = 'zz_requests.csv'")
    assert len(ledger) == 4 and set(ledger["first_applied_ds"].astype(str)) == {NIGHT_2}
    assert ledger.loc[ledger["is_requested_at_unreadable"], "requested_at_text"].tolist() == ["the 3rd of October"]


def test_no_quarantine_table_keeps_an_erased_customers_rows(erasure_nights):
    data_dir = erasure_nights["data_dir"]
    assert not quarantined_customers(data_dir) & erasure_nights["erased"]


def landed_emails(data_dir, customer_ids: set[str]) -> set[str]:
    """The emails the landing files hold for these customers, normalized as staging stores them."""
    found: set[str] = set()
    for path in (data_dir / "landing" / "customers").iterdir():
        # The resend CSVs carry injected bad rows, some not UTF-8: those bytes are replaced, not fatal.
        frame = (
            pd.read_parquet(path)
            if path.suffix == ".parquet"
            else pd.read_csv(path, dtype=str, encoding_errors="replace", on_bad_lines="skip")
        )
        rows = frame[frame["customer_id"].astype(str).str.strip().isin(customer_ids)]
        found |= {str(email).strip().lower() for email in rows["email"].dropna() if str(email).strip()}
    return found


def test_no_table_of_any_schema_holds_an_erased_customers_email(erasure_nights):
    """raw.* and the row-keeping staging models keep the erased rows for lineage, with their
    personal fields emptied; every text column of every table and view is read."""
    data_dir, erased = erasure_nights["data_dir"], erasure_nights["erased"]
    emails = landed_emails(data_dir, erased)
    assert emails, "the erased customers had emails to forget"
    columns = query(
        data_dir,
        "select table_schema, table_name, column_name from information_schema.columns "
        "where data_type = 'VARCHAR' and table_schema not in ('information_schema', 'pg_catalog')",
    )
    assert {"raw", "staging", "marts", "quarantine", "channels"} <= set(columns["table_schema"])
    found = []
    for (schema, table), group in columns.groupby(["table_schema", "table_name"]):
        matches = " or ".join(f'lower(trim("{column}")) in ?' for column in group["column_name"])
        hits = query(
            data_dir, f'select count(*) as n from "{schema}"."{table}" where {matches}', [list(emails)] * len(group)
        )
        if hits["n"].iloc[0]:
            found.append(f"{schema}.{table}")
    assert found == []
    # The rows themselves stay in raw, for the reconciliations.
    kept = query(data_dir, "select count(*) as n from raw.customers where trim(customer_id) in ?", [list(erased)])
    assert kept["n"].iloc[0] >= len(erased)


def test_the_online_store_and_the_new_model_forget_them(erasure_nights):
    data_dir, erased = erasure_nights["data_dir"], erasure_nights["erased"]
    assert online_features_known(data_dir, sorted(erased)) == [False, False]
    assert online_features_known(data_dir, [erasure_nights["near_match"]]) == [True]
    # The offline store (one file per snapshot date, rewritten only when a date's rows changed):
    # every date they had was rewritten without them.
    snapshots = pq.read_table(data_dir / "feature_store" / "customer_features_daily", columns=["customer_id"])
    offline = set(snapshots.column("customer_id").to_pylist())
    assert erasure_nights["near_match"] in offline and not offline & erased
    # Nor does the record of which rows the online store was last given (ml.mlops.online_store).
    digests = pq.read_table(data_dir / "feature_store" / "online_written.parquet", columns=["customer_id"])
    assert erasure_nights["near_match"] in set(digests.column("customer_id").to_pylist())
    assert not set(digests.column("customer_id").to_pylist()) & erased
    assert erased <= bundle_ids(data_dir, erasure_nights["version_before"])  # trained before the requests
    assert not bundle_ids(data_dir, latest_recommender_version(data_dir)) & erased
    # Their interactions shaped the old fits' item vectors too: the night after refits from scratch.
    client = MlflowClient(f"sqlite:///{data_dir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("recommender")
    (night_2,) = client.search_runs([experiment.experiment_id], f"tags.ds = '{NIGHT_2}'")
    tags = night_2.data.tags
    if tags["search_plan"].startswith("refit"):
        assert "customers v" in tags["warm_start"] and "are gone (erased)" in tags["warm_start"], tags["warm_start"]
    else:
        assert tags["warm_start"] == "full refit: the search chose the settings tonight"


def test_older_model_bundles_are_purged_by_the_command(erasure_nights):
    data_dir = erasure_nights["data_dir"]
    result = orchestrate(data_dir, "erasure", "purge-model-artifacts")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"recommender v{erasure_nights['version_before']}" in result.stdout
    with sqlite3.connect(data_dir / "mlflow.db") as connection:
        aliased = {v for (v,) in connection.execute("select version from registered_model_aliases")}
    if int(erasure_nights["version_before"]) not in aliased:
        assert "artifacts deleted" in result.stdout


def test_every_purge_runs_at_once_by_the_command_and_a_second_run_removes_nothing(erasure_nights):
    """`python -m ml erasure purge` runs every purge of ml.orchestration.privacy now; after the nights
    (which ran theirs) and the model purge above, nothing of the erased customers is left to remove."""
    data_dir = erasure_nights["data_dir"]
    runs = [orchestrate(data_dir, "erasure", "purge") for _ in range(2)]
    for result in runs:
        assert result.returncode == 0, result.stderr[-3000:]
        lines = dict(line.split(maxsplit=1) for line in result.stdout.strip().splitlines())
        assert list(lines) == [
            "personal_fields",
            "online_store",
            "export_files",
            "channel_tables",
            "serving_snapshots",
            "model_artifacts",
        ]
        assert lines["online_store"] == lines["export_files"] == lines["channel_tables"] == "0"
        assert lines["serving_snapshots"] == "0"
        assert set(ast.literal_eval(lines["personal_fields"]).values()) <= {0}  # rows scrubbed per table
    assert runs[0].stdout == runs[1].stdout


def test_erasure_outlives_its_landing_file(erasure_nights):
    data_dir, erased = erasure_nights["data_dir"], erasure_nights["erased"]
    erasure_nights["requests"].unlink()  # archived elsewhere, or lost
    rerun = run_pipeline(data_dir, NIGHT_2)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert erased <= set(query(data_dir, "select customer_id from audit.erased_customers")["customer_id"])
    assert not exported_customers(data_dir) & erased
    customers = set(
        query(data_dir, "select customer_id from marts.customer_360 where ds = ?", [NIGHT_2])["customer_id"]
    )
    assert not customers & erased


def test_a_copy_of_the_data_directory_never_touches_the_original(erasure_nights, tmp_path):
    original = erasure_nights["data_dir"]
    copy = tmp_path / "restored"
    shutil.copytree(original, copy)
    artifacts_before = sorted(p.name for p in (original / "mlartifacts" / "recommender").iterdir())
    # The two stages that wrote through recorded absolute paths: MLflow's artifact locations and
    # Feast's registry (its infrastructure objects name the online store's file).
    ran_in_copy = run_python(
        copy,
        "from ml.orchestration.stages import run_stage; "
        f"run_stage('train_recommender', '{NIGHT_2}'); run_stage('build_feature_store', '{NIGHT_2}')",
    )
    assert ran_in_copy.returncode == 0, ran_in_copy.stderr[-3000:]
    assert sorted(p.name for p in (original / "mlartifacts" / "recommender").iterdir()) == artifacts_before
    with sqlite3.connect(copy / "mlflow.db") as connection:
        locations = [uri for (uri,) in connection.execute("select artifact_uri from runs")]
    assert locations and all(uri.startswith(copy.as_uri()) for uri in locations)
    # The original goes on: its online store was not dropped by the copy's feast apply (the stage
    # that failed every night after a copy ran).
    ran_in_original = run_python(
        original, f"from ml.orchestration.stages import run_stage; run_stage('build_feature_store', '{NIGHT_2}')"
    )
    assert ran_in_original.returncode == 0, ran_in_original.stderr[-3000:]
    assert online_store_keys(original) > 0


def test_a_missing_online_table_is_rebuilt_by_the_next_night(erasure_nights):
    data_dir = erasure_nights["data_dir"]
    with sqlite3.connect(data_dir / "feature_store" / "online_store.db") as connection:
        connection.execute("drop table personalization_customer_features")
    result = run_python(
        data_dir, f"from ml.orchestration.stages import run_stage; run_stage('build_feature_store', '{NIGHT_2}')"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert online_store_keys(data_dir) > 0


def test_publishing_stops_when_the_tables_lost_a_published_day(erasure_nights):
    data_dir = erasure_nights["data_dir"]
    digests_before = {p: p.read_bytes() for p in (data_dir / "exports").rglob("*") if p.is_file()}
    rows_before = query(data_dir, "select * from channels.email where ds = ? order by all", [NIGHT_1])
    # A warehouse backup from before NIGHT_1 was published: the channel tables lack that day.
    result = run_python(
        data_dir,
        "import duckdb; from ml.paths import warehouse_path; "
        "c = duckdb.connect(str(warehouse_path())); "
        f"[c.execute(f\"delete from channels.{{ch}} where ds = '{NIGHT_1}'\") for ch in ('email', 'push', 'web', "
        "'call_center')]; c.close()",
    )
    assert result.returncode == 0, result.stderr
    stopped = run_python(
        data_dir, f"from ml.orchestration.stages import run_stage; run_stage('publish_channels', '{NIGHT_2}')"
    )
    assert stopped.returncode != 0
    assert "reload-tables" in stopped.stderr and f"ds={NIGHT_1}" in stopped.stderr
    assert {p: p.read_bytes() for p in (data_dir / "exports").rglob("*") if p.is_file()} == digests_before
    repaired = orchestrate(data_dir, "exports", "reload-tables")
    assert repaired.returncode == 0, repaired.stderr[-3000:]
    pd.testing.assert_frame_equal(
        query(data_dir, "select * from channels.email where ds = ? order by all", [NIGHT_1]), rows_before
    )
    published = run_python(
        data_dir, f"from ml.orchestration.stages import run_stage; run_stage('publish_channels', '{NIGHT_2}')"
    )
    assert published.returncode == 0, published.stderr[-3000:]
    assert {p: p.read_bytes() for p in (data_dir / "exports").rglob("*") if p.is_file()} == digests_before


def test_a_consent_withdrawn_over_http_applies_at_once_and_the_next_nights_files_agree(erasure_nights):
    data_dir, revoked = erasure_nights["data_dir"], erasure_nights["revoked"]
    customer, channel, consent = revoked["customer"], revoked["channel"], revoked["consent"]
    assert not revoked["before"]["default_experience"] and revoked["before"]["ds"] == NIGHT_1
    assert revoked["after"]["default_experience"] and revoked["after"]["reason"] == "no_consent"
    flags = query(
        data_dir,
        f"select has_consent_{consent} as granted from marts.customer_360 where ds = ? and customer_id = ?",
        [NIGHT_2, customer],
    )
    assert flags["granted"].tolist() == [False]  # the landing file the service wrote was loaded
    assert customer not in exported_customers_of(data_dir, channel, NIGHT_2)
    with service_client(data_dir / "serving", data_dir / "landing") as client:
        answer = client.get(f"/v1/decisions/{customer}", params={"channel": channel}).json()
    assert answer["ds"] == NIGHT_2 and answer["default_experience"]


def test_no_serving_snapshot_keeps_an_erased_customers_record(erasure_nights):
    data_dir, erased = erasure_nights["data_dir"], erasure_nights["erased"]
    snapshots = sorted((data_dir / "serving").glob("snapshot_ds=*.sqlite"))
    assert len(snapshots) == 2  # NIGHT_1's, written before the requests, and NIGHT_2's
    for path in snapshots:
        with sqlite3.connect(path) as connection:
            records = dict(connection.execute("select customer_id, record from customers").fetchall())
        connection.close()
        for customer in erased:
            assert json.loads(records.get(customer, '{"erased": true}')).get("erased") is True, (path.name, customer)
