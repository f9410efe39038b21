"""The online service on a built night: every decision equals the night's files, recommendations are
the nightly lists (re-ranked around a context item), events apply at once and land as files, and the
service is safe to expose (token, validation, bounded bodies, no stack traces).

The app runs in this process (FastAPI's TestClient) on the night's published snapshot; what it writes
goes to a landing folder of the test's own, never into the shared data set.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
import sqlite3
import time

import pandas as pd
import pyarrow.parquet as pq
import pytest

from ml.orchestration.config import load_config
from ml.serving.snapshot import publish_pointer, snapshot_path
from tests.helpers import END_DATE, query, service_client

DS = END_DATE.isoformat()
CHANNELS = tuple(load_config().activation.channels)
FIELDS = ("audience", "experiment_group", "tactic", "offer_code", "content_id")


@pytest.fixture(scope="module")
def client(built_warehouse, tmp_path_factory):
    with service_client(built_warehouse / "serving", tmp_path_factory.mktemp("landing")) as client:
        yield client


def exported_rows(data_dir) -> dict[tuple[str, str], dict]:
    """(customer, channel) -> the row of the night's published parquet files."""
    rows = {}
    for channel in CHANNELS:
        for path in sorted((data_dir / "exports" / channel / f"ds={DS}").glob("*.parquet")):
            for row in pq.read_table(path).to_pylist():
                rows[(row["customer_id"], channel)] = row
    return rows


def test_every_customers_decision_in_every_channel_equals_the_nights_files(built_warehouse, client):
    exported = exported_rows(built_warehouse)
    customers = query(built_warehouse, "select customer_id from activation.decisions where ds = ?", [DS])
    assert len(exported) > 50, "the night exported too little to compare"
    compared = 0
    for customer in customers["customer_id"]:
        for channel in CHANNELS:
            answer = client.get(f"/v1/decisions/{customer}", params={"channel": channel}).json()
            assert answer["ds"] == DS
            row = exported.get((customer, channel))
            if row is None:
                assert answer["default_experience"], (customer, channel, answer)
                continue
            compared += 1
            assert not answer["default_experience"], (customer, channel, answer["reason"])
            assert {f: answer[f] for f in FIELDS} == {f: row[f] for f in FIELDS}, (customer, channel)
            assert [item["item_id"] for item in answer["recommended_items"]] == list(row["recommended_items"] or [])
    assert compared == len(exported)  # every exported row was served back, none missed


def test_asking_twice_gives_the_same_answer_and_every_decision_is_logged(built_warehouse, client):
    customer = query(built_warehouse, "select customer_id from experiments.assignments where ds = ? limit 1", [DS])
    first = client.get(f"/v1/decisions/{customer.iloc[0, 0]}", params={"channel": "email"}).json()
    again = client.get(f"/v1/decisions/{customer.iloc[0, 0]}", params={"channel": "email"}).json()
    assert first == again and len(first["decision_id"]) == 20
    assert first["assignment_probability"] is not None and 0 < first["assignment_probability"] < 1
    writer = client.app.state.service.writer
    writer.rotate()
    logged = []
    for path in (writer.landing / "served_decisions").glob("online_*.csv"):
        with path.open() as handle:
            logged += list(csv.DictReader(handle))
    assert sum(row["decision_id"] == first["decision_id"] for row in logged) >= 2
    assert {row["ds"] for row in logged} == {DS}


def test_recommendations_are_the_nightly_list_and_a_context_item_reranks_them(built_warehouse, client):
    lists = query(
        built_warehouse,
        "select r.customer_id, list(r.item_id order by r.rank) as items from marts.customer_recommendations as r "
        "join marts.customer_360 as c on c.ds = r.ds and c.customer_id = r.customer_id and c.has_consent_web "
        "join activation.decisions as d on d.ds = r.ds and d.customer_id = r.customer_id "
        "and d.reason <> 'global_holdout' where r.ds = ? group by 1 order by 1 limit 50",
        [DS],
    )
    assert len(lists) == 50
    neighbors = query(built_warehouse, "select * from marts.item_neighbors where ds = ?", [DS])
    assert neighbors["strategy"].eq("model").all() and neighbors["item_id"].nunique() > 100
    for customer, items in zip(lists["customer_id"], lists["items"], strict=True):
        answer = client.get(f"/v1/recommendations/{customer}", params={"k": len(items)}).json()
        assert [item["item_id"] for item in answer["items"]] == list(items)
        assert not answer["default_experience"] and all("name" in item for item in answer["items"])
    customer, items = lists["customer_id"].iloc[0], list(lists["items"].iloc[0])
    context = items[0]
    answer = client.get(f"/v1/recommendations/{customer}", params={"k": 10, "context_item": context}).json()
    shown = [item["item_id"] for item in answer["items"]]
    bought = set(
        query(
            built_warehouse,
            "select oi.item_id from staging.stg_orders as o join staging.stg_order_items as oi using (order_id) "
            "where o.customer_id = ?",
            [customer],
        )["item_id"]
    )
    assert context not in shown and not bought & set(shown) and len(shown) == 10
    assert answer["strategy"] == "personal_with_context" and shown != items[1:11]
    stranger = client.get("/v1/recommendations/nobody-at-all", params={"context_item": context, "k": 5}).json()
    close = neighbors[neighbors["item_id"] == context].sort_values("rank")["neighbor_item_id"].tolist()
    assert stranger["default_experience"] and [item["item_id"] for item in stranger["items"]] == close[:5]


def test_a_consent_withdrawn_over_http_applies_to_the_next_request(built_warehouse, tmp_path):
    exported = exported_rows(built_warehouse)
    customer, channel = next(key for key in sorted(exported) if key[1] in ("email", "push"))
    consent = load_config().activation.consent_of(channel)
    with service_client(built_warehouse / "serving", tmp_path / "landing") as client:
        assert not client.get(f"/v1/decisions/{customer}", params={"channel": channel}).json()["default_experience"]
        event = {"customer_id": customer, "event_type": "consent_revoked", "channel": consent}
        posted = client.post("/v1/events", json=[{**event, "occurred_at": "2026-11-01T10:00:00Z"}])
        assert posted.status_code == 202 and posted.json() == {"accepted": 1}
        answer = client.get(f"/v1/decisions/{customer}", params={"channel": channel}).json()
        assert answer["default_experience"] and answer["reason"] == "no_consent"
    landed = pd.read_csv(next((tmp_path / "landing" / "consents").glob("online_*.csv")), dtype=str)
    assert landed.to_dict("records") == [
        {"customer_id": customer, "channel": consent, "granted": "false", "recorded_at": "2026-11-01T10:00:00Z"}
    ]
    with service_client(
        built_warehouse / "serving", tmp_path / "landing"
    ) as restarted:  # replayed from the landing file
        assert restarted.get(f"/v1/decisions/{customer}", params={"channel": channel}).json()["reason"] == "no_consent"


def test_an_anonymous_visitor_is_answered_as_the_customer_after_login(built_warehouse, tmp_path):
    exported = exported_rows(built_warehouse)
    customer, channel = next(iter(sorted(exported)))
    with service_client(built_warehouse / "serving", tmp_path / "landing") as client:
        before = client.get("/v1/decisions/anon-123", params={"channel": channel}).json()
        assert before["default_experience"] and before["reason"] == "unknown_customer"
        view = {"anonymous_id": "anon-123", "event_type": "product_view", "occurred_at": "2026-11-01T09:00:00Z"}
        login = {"anonymous_id": "anon-123", "customer_id": customer, "event_type": "login"}
        assert (
            client.post("/v1/events", json=[view, {**login, "occurred_at": "2026-11-01T09:01:00Z"}]).status_code == 202
        )
        after = client.get("/v1/decisions/anon-123", params={"channel": channel}).json()
        direct = client.get(f"/v1/decisions/{customer}", params={"channel": channel}).json()
        assert after["anonymous_id"] == "anon-123" and after["customer_id"] == customer
        assert after["decision_id"] == direct["decision_id"] and not after["default_experience"]
    links = pd.read_csv(next((tmp_path / "landing" / "identity_links").glob("online_*.csv")), dtype=str)
    assert links[["anonymous_id", "customer_id"]].values.tolist() == [["anon-123", customer]]


def test_bad_requests_get_4xx_naming_the_problem_and_no_stack_trace(client):
    unknown = client.get("/v1/decisions/C1", params={"channel": "fax"})
    assert unknown.status_code == 422 and "'fax' is not one of" in unknown.json()["error"]
    assert client.get("/v1/decisions/C1").status_code == 422  # channel missing
    assert client.get("/v1/recommendations/C1", params={"k": 0}).status_code == 422
    assert client.get("/v1/recommendations/C1", params={"k": 10_000}).status_code == 422
    assert client.post("/v1/events", content=b"{not json").status_code == 400
    refused = client.post("/v1/events", json=[{"event_type": "page_view", "occurred_at": "2026-11-01"}])
    assert refused.status_code == 422 and "customer_id or anonymous_id" in json.dumps(refused.json())
    typo = client.post(
        "/v1/events", json=[{"customer_id": "C1", "event_type": "pageview", "occurred_at": "2026-11-01"}]
    )
    assert typo.status_code == 422 and typo.json()["problems"][0].startswith("events.0: event_type 'pageview'")
    huge = client.post("/v1/events", content=b"[" + b" " * 2_000_000 + b"]")
    assert huge.status_code == 413
    for response in (unknown, refused, typo, huge):
        assert "Traceback" not in response.text


def test_a_token_guards_everything_but_health_and_readiness(built_warehouse, tmp_path):
    with service_client(built_warehouse / "serving", tmp_path / "landing", token="s3cret") as client:
        assert client.get("/v1/decisions/C1", params={"channel": "web"}).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert client.get("/v1/decisions/C1", params={"channel": "web"}, headers=wrong).status_code == 401
        assert client.get("/metrics").status_code == 401
        good = {"Authorization": "Bearer s3cret"}
        assert client.get("/v1/decisions/C1", params={"channel": "web"}, headers=good).status_code == 200
        assert client.get("/health").status_code == 200 and client.get("/ready").status_code == 200


def test_a_new_snapshot_is_swapped_in_without_a_failed_request_and_metrics_show_it(built_warehouse, tmp_path):
    root = tmp_path / "serving"
    shutil.copytree(built_warehouse / "serving", root)
    with service_client(root, tmp_path / "landing") as client:
        assert client.get("/ready").json()["ds"] == DS
        later = END_DATE + dt.timedelta(days=1)
        current = json.loads((root / "CURRENT").read_text())
        shutil.copy(root / current["file"], snapshot_path(later, root))
        # The copy of tonight's file stands for the next night's: only its ds differs.
        with sqlite3.connect(snapshot_path(later, root)) as connection:
            connection.execute("update meta set value = ? where key = 'ds'", [json.dumps(later.isoformat())])
        connection.close()
        assert publish_pointer(later, snapshot_path(later, root))
        statuses, deadline = [], time.monotonic() + 10
        while client.get("/ready").json()["ds"] != later.isoformat() and time.monotonic() < deadline:
            statuses.append(client.get("/v1/decisions/C1", params={"channel": "web"}).status_code)
        assert client.get("/ready").json()["ds"] == later.isoformat() and set(statuses) <= {200}
        assert not publish_pointer(END_DATE, snapshot_path(END_DATE, root))  # never back to an older night
        metrics = client.get("/metrics").text
        assert 'pz_request_seconds_bucket{endpoint="/v1/decisions/{customer_id}"' in metrics
        assert 'pz_requests_total{endpoint="/v1/decisions/{customer_id}",outcome="2xx"}' in metrics
        assert "pz_snapshot_age_seconds" in metrics


def test_without_a_snapshot_the_service_says_so_and_serves_the_default_experience(tmp_path):
    with service_client(tmp_path / "serving", tmp_path / "landing") as client:
        ready = client.get("/ready")
        assert ready.status_code == 503 and "no serving snapshot" in ready.json()["problem"]
        answer = client.get("/v1/decisions/C1", params={"channel": "web"}).json()
        assert answer["default_experience"] and answer["reason"] == "no_snapshot"
