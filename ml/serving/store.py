"""The service's view of the published snapshot: opened read-only, checked, and swapped for a newer
one while requests are answered.

A snapshot file is never changed once renamed into place (ml.serving.snapshot), so SQLite opens it
`immutable` (no locks, no journal checks). The holder polls `serving/CURRENT`; when it names another
file, the new snapshot is opened and checked in a worker thread and then replaces the old one in a
single assignment: a request holds the snapshot it started with, so none fails during a swap. A
snapshot that cannot be opened or fails its checks is refused and the previous one keeps serving;
with none at all the service answers with the default experience and /ready says why.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from pathlib import Path

log = logging.getLogger(__name__)

FORMAT_VERSION = "1"  # ml.serving.snapshot writes this format
POINTER = "CURRENT"
REQUIRED_META = ("format_version", "ds", "channels", "consent_of", "customers", "popular_items", "recommender_version")


class SnapshotInvalid(Exception):
    """The file is not a usable snapshot (missing, unreadable, another format, inconsistent)."""


class Snapshot:
    """One night's snapshot: the meta data, catalog and neighbors in memory; customers looked up by key."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.connection = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, check_same_thread=False)
            self.meta = {
                key: json.loads(value) for key, value in self.connection.execute("select key, value from meta")
            }
            self.catalog = {key: json.loads(value) for key, value in self.connection.execute("select * from items")}
            self.neighbors = {
                key: [item for item, _ in json.loads(value)]
                for key, value in self.connection.execute("select * from neighbors")
            }
            customers = self.connection.execute("select count(*) from customers").fetchone()[0]
            tables = {name for (name,) in self.connection.execute("select name from sqlite_master")}
        except sqlite3.Error as error:
            raise SnapshotInvalid(f"{path}: not a readable snapshot ({error})") from error
        missing = [key for key in REQUIRED_META if key not in self.meta]
        if missing:
            raise SnapshotInvalid(f"{path}: meta lacks {', '.join(missing)}")
        if self.meta["format_version"] != FORMAT_VERSION:
            raise SnapshotInvalid(f"{path}: format {self.meta['format_version']}, this service reads {FORMAT_VERSION}")
        if customers != self.meta["customers"]:
            raise SnapshotInvalid(f"{path}: {customers} customers, its meta says {self.meta['customers']}")
        self.has_identities = "identities" in tables

    @property
    def ds(self) -> str:
        return self.meta["ds"]

    def record(self, customer_id: str) -> dict | None:
        row = self.connection.execute("select record from customers where customer_id = ?", (customer_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def linked(self, anonymous_id: str) -> str | None:
        """The customer the nightly identity graph links this anonymous id to (stg_identity_graph)."""
        if not self.has_identities:
            return None
        row = self.connection.execute(
            "select customer_id from identities where anonymous_id = ?", (anonymous_id,)
        ).fetchone()
        return row[0] if row else None

    def close(self) -> None:
        self.connection.close()


class SnapshotHolder:
    """The snapshot in use, and the last problem met looking for a newer one."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.current: Snapshot | None = None
        self.problem: str | None = None
        self._stamp: object = object()  # never equal to a pointer's stamp: the first refresh always looks

    def _pointer(self) -> tuple[tuple | None, dict | None]:
        path = self.root / POINTER
        try:
            stat = os.stat(path)
            return (stat.st_ino, stat.st_mtime_ns, stat.st_size), json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            return None, None

    def refresh(self) -> Snapshot | None:
        """Open the snapshot CURRENT names if it changed; returns the new snapshot when it swapped."""
        stamp, pointer = self._pointer()
        if stamp == self._stamp:
            return None
        self._stamp = stamp
        if pointer is None:
            self.problem = f"no serving snapshot published in {self.root}: run the night (python -m ml run)"
            return None
        try:
            snapshot = Snapshot(self.root / pointer["file"])
        except (SnapshotInvalid, KeyError, TypeError) as error:
            self.problem = f"snapshot refused, still serving {self.current.ds if self.current else 'nothing'}: {error}"
            log.error(self.problem)
            return None
        self.current, self.problem = snapshot, None
        log.info("serving snapshot of ds=%s (%s)", snapshot.ds, snapshot.path.name)
        return snapshot
