"""Events over HTTP: validated, applied to the next request, and written to the landing area.

The landing area stays the one source of truth: every event the service takes is appended to a file
under `$PZ_DATA_DIR/landing/<table>/` in the landing contract's columns (consents to `consents`,
erasures to `erasure_requests`, logins to `identity_links`, served decisions to `served_decisions`,
everything else to `events`), so the next night loads it as any landing file. A table's rows go to
one file per interval: written to a hidden `.online_*.csv.partial` file (the loader skips hidden
files), flushed on every append, and renamed to `online_<interval start>_<host>-<pid>.csv` when the
interval ends or the service stops: the loader never reads a file still being written.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import socket
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

CONSENT_EVENTS = ("consent_granted", "consent_revoked")
ERASURE_EVENT = "erasure_requested"
LOGIN_EVENT = "login"
CONTROL_EVENTS = (*CONSENT_EVENTS, ERASURE_EVENT, LOGIN_EVENT)

# The landing tables the service writes (their columns are the landing contract's, passed in).
SERVICE_TABLES = ("events", "consents", "erasure_requests", "identity_links", "served_decisions")
Identifier = Field(default=None, min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$")


class Event(BaseModel):
    """One event in the landing contract's shape; `customer_id` or `anonymous_id` names who."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    event_id: str | None = Identifier
    customer_id: str | None = Identifier
    anonymous_id: str | None = Identifier
    event_type: str = Field(min_length=1, max_length=50)
    occurred_at: dt.datetime
    item_id: str | None = Identifier
    channel: str | None = Field(default=None, max_length=50)
    device: str | None = Field(default=None, max_length=50)

    @field_validator("occurred_at")
    @classmethod
    def _utc(cls, value: dt.datetime) -> dt.datetime:
        """Timestamps without an offset are UTC, as in the landing contract."""
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)

    @model_validator(mode="after")
    def _who(self) -> Event:
        if self.customer_id is None and self.anonymous_id is None:
            raise ValueError("give customer_id or anonymous_id")
        if self.event_type == LOGIN_EVENT and (self.customer_id is None or self.anonymous_id is None):
            raise ValueError("a login links an anonymous_id to a customer_id: give both")
        if self.event_type in CONSENT_EVENTS and self.channel is None:
            raise ValueError(f"{self.event_type} needs the consent's channel")
        return self


class EventBatch(BaseModel):
    events: list[Event]


def check_vocabulary(event: Event, event_types: tuple[str, ...], consent_channels: tuple[str, ...]) -> str | None:
    """What is wrong with an event the model accepted, against the contract's lists (None if nothing)."""
    if event.event_type not in (*event_types, *CONTROL_EVENTS):
        return f"event_type {event.event_type!r} is not one of {', '.join((*event_types, *CONTROL_EVENTS))}"
    if event.event_type in CONSENT_EVENTS and event.channel not in consent_channels:
        return f"consent channel {event.channel!r} is not one of {', '.join(consent_channels)}"
    return None


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


class LandingWriter:
    """Appends rows to the landing area, one file per table and interval, renamed into view when done."""

    def __init__(
        self, landing: Path, interval_seconds: int, columns: dict[str, tuple[str, ...]], clock=time.time
    ) -> None:
        self.landing = landing
        self.columns = columns  # per table, the landing contract's columns (ml.warehouse.contract)
        self.interval = interval_seconds
        self.clock = clock
        self.tag = f"{socket.gethostname()}-{os.getpid()}"
        self.open: dict[str, tuple[int, Path, object, csv.writer]] = {}

    def _file(self, table: str) -> csv.writer:
        interval = int(self.clock() // self.interval) * self.interval
        current = self.open.get(table)
        if current is not None and current[0] == interval:
            return current[3]
        self.rotate(table)
        start = dt.datetime.fromtimestamp(interval, dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        folder = self.landing / table
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".online_{start}_{self.tag}.csv.partial"
        handle = partial.open("a", newline="", encoding="utf-8")
        writer = csv.writer(handle, lineterminator="\n")
        if handle.tell() == 0:
            writer.writerow(self.columns[table])
        self.open[table] = (interval, partial, handle, writer)
        return writer

    def append(self, table: str, rows: list[dict]) -> None:
        writer = self._file(table)
        columns = self.columns[table]
        writer.writerows([["" if row.get(c) is None else row[c] for c in columns] for row in rows])
        self.open[table][2].flush()

    def rotate(self, table: str | None = None, only_due: bool = False) -> None:
        """Close and publish a table's file (every table's when None; with `only_due`, only those
        whose interval has ended)."""
        now = int(self.clock() // self.interval) * self.interval
        for name in [table] if table else list(self.open):
            current = self.open.get(name)
            if current is None or (only_due and current[0] == now):
                continue
            _, partial, handle, _ = self.open.pop(name)
            handle.close()
            os.replace(partial, partial.with_name(partial.name[1:].removesuffix(".partial")))

    def recover(self) -> list[str]:
        """Publish the partial files a stopped service left (complete rows; a torn last line is
        quarantined by the night's checks with its reason)."""
        recovered = []
        for partial in sorted(self.landing.glob("*/.online_*.csv.partial")):
            os.replace(partial, partial.with_name(partial.name[1:].removesuffix(".partial")))
            recovered.append(str(partial))
        return recovered


def landing_rows(event: Event, customer_id: str | None, event_id: str) -> tuple[str, dict]:
    """The landing table and row of one event (customer_id: the event's, or its anonymous id's link)."""
    when = iso(event.occurred_at)
    if event.event_type in CONSENT_EVENTS:
        granted = "true" if event.event_type == "consent_granted" else "false"
        return "consents", {
            "customer_id": customer_id,
            "channel": event.channel,
            "granted": granted,
            "recorded_at": when,
        }
    if event.event_type == ERASURE_EVENT:
        return "erasure_requests", {"customer_id": customer_id, "requested_at": when}
    if event.event_type == LOGIN_EVENT:
        return "identity_links", {"anonymous_id": event.anonymous_id, "customer_id": customer_id, "linked_at": when}
    row = event.model_dump(include={"item_id", "channel", "device", "anonymous_id", "event_type"})
    return "events", {**row, "event_id": event_id, "customer_id": customer_id, "occurred_at": when}


# The column that says when each control table's row was recorded.
RECORDED_AT = {"consents": "recorded_at", "erasure_requests": "requested_at", "identity_links": "linked_at"}


def online_rows_since(landing: Path, table: str, since: str) -> list[dict]:
    """The rows of `table` this service (or another instance) wrote at or after `since`, in file order:
    what a restarted service applies again on top of a snapshot whose night ended at `since`."""
    rows = []
    for path in sorted((landing / table).glob("online_*.csv")):
        with path.open(newline="", encoding="utf-8") as handle:
            rows += [row for row in csv.DictReader(handle) if row.get(RECORDED_AT[table], "") >= since]
    return rows
