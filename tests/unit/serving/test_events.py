"""Events over HTTP: what is refused and why, and the landing files the service writes (one per table
and interval, invisible to the loader until complete)."""

from __future__ import annotations

import csv

import pytest
from pydantic import ValidationError

from ml.serving.events import SERVICE_TABLES, Event, LandingWriter, check_vocabulary, landing_rows, online_rows_since
from ml.warehouse.contract import CONTRACT
from ml.warehouse.landing import landing_files

TYPES = ("page_view", "product_view")
COLUMNS = {table: CONTRACT[table].columns for table in SERVICE_TABLES}
CONSENTS = ("email", "push", "web")


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        ({"event_type": "page_view", "occurred_at": "2026-11-01T10:00:00"}, "customer_id or anonymous_id"),
        ({"event_type": "login", "anonymous_id": "a1", "occurred_at": "2026-11-01T10:00:00"}, "give both"),
        ({"event_type": "consent_revoked", "customer_id": "c1", "occurred_at": "2026-11-01"}, "channel"),
        ({"event_type": "page_view", "customer_id": "c1", "occurred_at": "yesterday"}, "datetime"),
        ({"event_type": "page_view", "customer_id": "c1", "occurred_at": "2026-11-01", "x": 1}, "Extra inputs"),
        ({"event_type": "page_view", "customer_id": "c\n1", "occurred_at": "2026-11-01"}, "pattern"),
    ],
)
def test_an_event_that_breaks_the_contract_is_refused_naming_the_problem(event, problem):
    with pytest.raises(ValidationError, match=problem):
        Event.model_validate(event)


def test_event_types_and_consent_channels_come_from_the_contract():
    unknown = Event(event_type="teleport", customer_id="c1", occurred_at="2026-11-01")
    assert "not one of" in check_vocabulary(unknown, TYPES, CONSENTS)
    sms = Event(event_type="consent_granted", customer_id="c1", channel="fax", occurred_at="2026-11-01")
    assert "consent channel 'fax'" in check_vocabulary(sms, TYPES, CONSENTS)
    fine = Event(event_type="consent_revoked", customer_id="c1", channel="push", occurred_at="2026-11-01T12:00+02:00")
    assert check_vocabulary(fine, TYPES, CONSENTS) is None
    table, row = landing_rows(fine, "c1", "e1")
    assert table == "consents" and row == {
        "customer_id": "c1",
        "channel": "push",
        "granted": "false",
        "recorded_at": "2026-11-01T10:00:00Z",
    }


def test_files_rotate_per_interval_and_the_loader_sees_only_finished_ones(tmp_path):
    now = [1_000_000.0]
    writer = LandingWriter(tmp_path, 60, COLUMNS, clock=lambda: now[0])
    writer.append("events", [{"event_id": "e1", "customer_id": "c1", "occurred_at": "x", "event_type": "page_view"}])
    assert landing_files(tmp_path / "events") == []  # still being written: hidden
    writer.rotate(only_due=True)
    assert landing_files(tmp_path / "events") == []  # its interval has not ended
    now[0] += 60
    writer.append("events", [{"event_id": "e2", "customer_id": "c1", "occurred_at": "x", "event_type": "page_view"}])
    finished = landing_files(tmp_path / "events")
    assert len(finished) == 1
    with finished[0].open() as handle:
        assert [row["event_id"] for row in csv.DictReader(handle)] == ["e1"]
    writer.rotate()
    assert len(landing_files(tmp_path / "events")) == 2


def test_a_stopped_services_partial_file_is_published_and_replayed(tmp_path):
    writer = LandingWriter(tmp_path, 60, COLUMNS)
    writer.append(
        "consents",
        [{"customer_id": "c1", "channel": "push", "granted": "false", "recorded_at": "2026-11-01T10:00:00Z"}],
    )
    writer.append(
        "consents",
        [{"customer_id": "c2", "channel": "push", "granted": "false", "recorded_at": "2026-10-31T10:00:00Z"}],
    )
    restarted = LandingWriter(tmp_path, 60, COLUMNS)  # the first one was never closed (a kill)
    assert len(restarted.recover()) == 1
    replayed = online_rows_since(tmp_path, "consents", "2026-11-01T00:00:00Z")
    assert [row["customer_id"] for row in replayed] == ["c1"]
