"""Destinations: the published day's files sent on from the export folder, which stays the record.

Three kinds (activation.destinations):
- folder: the day's folder copied to another path (a mounted share), swapped in whole;
- s3: every file of the day uploaded to an S3-compatible bucket, the manifest last, so a reader
  that waits for the manifest finds every file it lists;
- http_batch: the day's changes (entered, changed, exited: the change files, not the full snapshot)
  as Braze-style `users/track` attribute batches, each request carrying an Idempotency-Key.

Exactly once, as far as the receiver allows: a ledger per destination, channel and day
(`$PZ_DATA_DIR/deliveries/<name>/<channel>/ds=<ds>.json`) records each file (by sha256) or batch
(by its idempotency key) once the receiver confirmed it. A rerun or a retry after a failure sends
only what is not in the ledger, so a half-sent day is finished, never sent twice; a batch whose
confirmation was lost is sent again with the same key, which an idempotent receiver ignores.

Each request or upload is tried `max_attempts` times with exponential backoff; what still fails is
raised after every destination was tried, naming the destination, channel and file or batch.
Credentials come from the environment only (boto3's AWS_* variables; the token in `token_env`),
and never appear in logs or errors.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from ml.activation.changes import CHANGE, EXITED
from ml.activation.settings import DestinationSettings
from ml.constants import CUSTOMER_ID
from ml.errors import PlatformError
from ml.paths import data_dir

log = logging.getLogger(__name__)

BACKOFF_SECONDS = 0.5  # first retry's wait; doubled each time
MANIFEST = "manifest.json"
# What a Braze-style attribute update carries of a change row (namespaced per audience: a customer may
# leave one audience and enter another on the same day).
SENT_FIELDS = ("experiment_group", "offer_code", "offer_value", "offer_expires_on", "content_id", "send_at", "reason")


class DeliveryError(PlatformError, RuntimeError):
    """A destination did not confirm a file or batch after every attempt (the ledger keeps what it did)."""


def ledger_path(name: str, channel: str, ds: dt.date) -> Path:
    return data_dir() / "deliveries" / name / channel / f"ds={ds}.json"


def _read_ledger(path: Path) -> dict[str, str]:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _write_ledger(path: Path, ledger: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_suffix(".tmp")
    staged.write_text(json.dumps(ledger, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    staged.replace(path)


def with_retries(action: Callable[[], object], attempts: int, what: str) -> object:
    """`action` until it succeeds, at most `attempts` times, waiting longer after each failure."""
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except Exception as error:
            if attempt == attempts:
                raise DeliveryError(f"{what}: failed {attempts} times, last: {type(error).__name__}: {error}") from None
            log.warning("%s: attempt %d of %d failed (%s); retrying", what, attempt, attempts, type(error).__name__)
            time.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def day_files(folder: Path) -> list[Path]:
    """The day's files, the manifest last (it says the others are there)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)
    return [*files, folder / MANIFEST]


def deliver_to_folder(settings: DestinationSettings, channel: str, folder: Path, ledger: dict[str, str]) -> int:
    """Copy the day's folder under settings.path/<channel>/, swapped in whole; returns files copied."""
    target = Path(settings.path) / channel / folder.name
    wanted = {str(p.relative_to(folder)): _sha256(p) for p in day_files(folder)}
    if ledger == wanted and target.exists():
        return 0
    staged = target.with_name(f".staging-{target.name}")
    shutil.rmtree(staged, ignore_errors=True)
    with_retries(lambda: shutil.copytree(folder, staged), settings.max_attempts, f"folder {target}")
    shutil.rmtree(target, ignore_errors=True)
    staged.rename(target)
    ledger.clear()
    ledger.update(wanted)
    return len(wanted)


def s3_client(settings: DestinationSettings):
    import boto3  # only a night with an s3 destination pays for the import

    return boto3.client("s3", endpoint_url=settings.endpoint_url, region_name=settings.region)


def deliver_to_s3(
    settings: DestinationSettings, channel: str, folder: Path, ledger: dict[str, str], client=None
) -> int:
    """Upload each file not yet confirmed with its current sha256; returns files uploaded."""
    client = client or s3_client(settings)
    uploaded = 0
    for path in day_files(folder):
        relative = str(path.relative_to(folder))
        digest = _sha256(path)
        if ledger.get(relative) == digest:
            continue
        key = f"{settings.prefix}{channel}/{folder.name}/{relative}"
        body = path.read_bytes()
        with_retries(
            lambda key=key, body=body, digest=digest: client.put_object(
                Bucket=settings.bucket, Key=key, Body=body, Metadata={"sha256": digest}
            ),
            settings.max_attempts,
            f"s3://{settings.bucket}/{key}",
        )
        ledger[relative] = digest
        uploaded += 1
    return uploaded


def change_attributes(changes: pd.DataFrame, audience: str, identifier: str | None) -> list[dict]:
    """Pure compute: one Braze-style attribute object per change row; exits first, so a customer who
    left and re-entered on a day ends in the audience."""
    objects = []
    ordered = changes.assign(is_entering=changes[CHANGE] != EXITED).sort_values(["is_entering", CUSTOMER_ID])
    for row in ordered.itertuples(index=False):
        attributes = {"external_id": getattr(row, CUSTOMER_ID), f"pz_in_{audience}": row.is_entering}
        if identifier and isinstance(getattr(row, identifier, None), str):
            attributes[identifier] = getattr(row, identifier)
        if row.is_entering:
            for field in SENT_FIELDS:
                value = getattr(row, field, None)
                attributes[f"pz_{audience}_{field}"] = None if value is None or pd.isna(value) else value
            items = getattr(row, "recommended_items", None)
            attributes[f"pz_{audience}_recommended_items"] = list(items) if items is not None else []
        objects.append(attributes)
    return objects


def idempotency_key(name: str, channel: str, ds: dt.date, audience: str, batch: list[dict]) -> str:
    """The same batch of the same day gets the same key, so a receiver can drop a repeat."""
    body = json.dumps(batch, sort_keys=True, default=str)
    return hashlib.sha256(f"{name}|{channel}|{ds}|{audience}|{body}".encode()).hexdigest()


def post_batch(settings: DestinationSettings, token: str, key: str, batch: list[dict]) -> int:
    request = urllib.request.Request(
        settings.url,
        data=json.dumps({"attributes": batch}, default=str).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}", "Idempotency-Key": key},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=settings.timeout_seconds) as response:
        return response.status


def deliver_to_http(
    name: str, settings: DestinationSettings, channel: str, ds: dt.date, folder: Path, ledger: dict[str, str]
) -> int:
    """POST the day's change rows in batches; returns batches sent (the ledger skips confirmed ones)."""
    token = os.environ.get(settings.token_env or "")
    if not token:
        raise DeliveryError(f"destination {name!r} needs its token in the environment variable {settings.token_env}")
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    identifier = {"email": "email", "email_sha256": "email_sha256"}.get(manifest["identifier"])
    sent = 0
    for entry in manifest["audiences"]:
        path = folder / "changes" / f"{entry['audience']}.parquet"
        if not path.exists():
            continue
        objects = change_attributes(pq.read_table(path).to_pandas(), entry["audience"], identifier)
        for start in range(0, len(objects), settings.batch_size):
            batch = objects[start : start + settings.batch_size]
            key = idempotency_key(name, channel, ds, entry["audience"], batch)
            if key in ledger:
                continue
            what = (
                f"destination {name!r} {channel} ds={ds} {entry['audience']} batch {start // settings.batch_size + 1}"
            )
            with_retries(
                lambda batch=batch, key=key: post_batch(settings, token, key, batch), settings.max_attempts, what
            )
            ledger[key] = f"{entry['audience']}:{start}"
            sent += 1
    return sent


def deliver(destinations: dict[str, DestinationSettings], ds: dt.date, exports: Path) -> dict[str, int]:
    """Send ds's published folders to every destination; returns what was sent per destination and
    channel. Every destination is tried; failures are raised together afterwards."""
    sent: dict[str, int] = {}
    failures = []
    for name, settings in destinations.items():
        for channel in settings.channels or sorted(p.name for p in exports.iterdir() if p.is_dir()):
            folder = exports / channel / f"ds={ds}"
            if not (folder / MANIFEST).exists():
                continue
            path = ledger_path(name, channel, ds)
            ledger = _read_ledger(path)
            try:
                if settings.kind == "folder":
                    sent[f"{name}/{channel}"] = deliver_to_folder(settings, channel, folder, ledger)
                elif settings.kind == "s3":
                    sent[f"{name}/{channel}"] = deliver_to_s3(settings, channel, folder, ledger)
                else:
                    sent[f"{name}/{channel}"] = deliver_to_http(name, settings, channel, ds, folder, ledger)
            except DeliveryError as error:
                failures.append(str(error))
            finally:
                _write_ledger(path, ledger)  # what was confirmed stays confirmed, failure or not
    if failures:
        raise DeliveryError(
            f"ds={ds}: the files are published, {len(failures)} delivery(ies) failed (a rerun of publish_channels "
            f"sends only what is missing): {'; '.join(failures)}"
        )
    return sent
