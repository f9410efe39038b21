"""Destinations against local servers on loopback: an S3 server (moto's) and an HTTP receiver that
fails on purpose. A day is sent whole, a rerun sends nothing again, a failure is retried and
reported, and a delivery cut short is finished later without sending any batch twice."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from ml.activation import destinations
from ml.activation.destinations import DeliveryError, deliver, ledger_path
from ml.activation.settings import DestinationSettings
from tests.unit.activation.test_changes import DS, published_day

TOKEN = "test-token-not-a-secret"


@pytest.fixture
def two_days(tmp_path, monkeypatch):
    """Published email folders of two days (the second with entered and exited customers)."""
    monkeypatch.setenv("PZ_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(destinations, "BACKOFF_SECONDS", 0.0)
    published_day(DS - dt.timedelta(days=1), ["C1", "C2"])
    published_day(DS, ["C1", "C3", "C4"])
    return tmp_path / "exports"


@pytest.fixture
def s3_server(monkeypatch):
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    # Credentials come from the environment (boto3's chain): moto accepts any.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    yield f"http://{host}:{port}"
    server.stop()


def test_the_s3_destination_uploads_the_day_once_and_only_what_changed_again(two_days, s3_server):
    import boto3

    settings = DestinationSettings(
        kind="s3", bucket="exports", prefix="pz/", endpoint_url=s3_server, channels=["email"]
    )
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    client.create_bucket(Bucket="exports")
    folder = two_days / "email" / f"ds={DS}"

    assert deliver({"lake": settings}, DS, two_days) == {"lake/email": len(destinations.day_files(folder))}
    listed = {o["Key"] for o in client.list_objects_v2(Bucket="exports")["Contents"]}
    expected = {f"pz/email/ds={DS}/{p.relative_to(folder)}" for p in destinations.day_files(folder)}
    assert listed == expected and f"pz/email/ds={DS}/changes/win_back.parquet" in listed
    manifest = client.get_object(Bucket="exports", Key=f"pz/email/ds={DS}/manifest.json")
    assert manifest["Body"].read() == (folder / "manifest.json").read_bytes()
    assert manifest["Metadata"]["sha256"] == hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest()

    assert deliver({"lake": settings}, DS, two_days) == {"lake/email": 0}  # a rerun sends nothing
    (folder / "win_back.csv").write_bytes(b"changed\n")
    assert deliver({"lake": settings}, DS, two_days) == {"lake/email": 1}


class Receiver(BaseHTTPRequestHandler):
    """A Braze-style users/track endpoint: checks the token, records each batch by its idempotency
    key, and answers 503 to the requests listed in `fail` (by arrival number)."""

    received: ClassVar[list[tuple[str, dict]]] = []
    fail: ClassVar[set[int]] = set()
    arrivals = 0

    def do_POST(self):
        cls = type(self)
        cls.arrivals += 1
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.headers["Authorization"] != f"Bearer {TOKEN}":
            self.send_response(401)
        elif cls.arrivals in cls.fail:
            self.send_response(503)
        else:
            cls.received.append((self.headers["Idempotency-Key"], body))
            self.send_response(201)
        self.end_headers()

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture
def receiver():
    Receiver.received, Receiver.fail, Receiver.arrivals = [], set(), 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/users/track"
    server.shutdown()


def test_the_http_destination_sends_the_changes_in_batches_retries_and_never_twice(two_days, receiver, monkeypatch):
    monkeypatch.setenv("PZ_BRAZE_TOKEN", TOKEN)
    settings = DestinationSettings(
        kind="http_batch", url=receiver, token_env="PZ_BRAZE_TOKEN", batch_size=1, max_attempts=3, channels=["email"]
    )
    Receiver.fail = {2}  # the second request fails once, then succeeds on its retry
    assert deliver({"braze": settings}, DS, two_days) == {"braze/email": 3}
    attributes = [body["attributes"][0] for _, body in Receiver.received]
    # C2 exited (sent first), C3 and C4 entered with what they are sent; the e-mail rides along.
    assert [(a["external_id"], a["pz_in_win_back"]) for a in attributes] == [("C2", False), ("C3", True), ("C4", True)]
    assert attributes[1]["pz_win_back_offer_code"] == "BACK10" and attributes[1]["email"] == "c3@example.com"
    assert len({key for key, _ in Receiver.received}) == 3

    assert deliver({"braze": settings}, DS, two_days) == {"braze/email": 0}  # rerun: every batch is in the ledger
    assert len(Receiver.received) == 3


def test_a_failing_receiver_is_reported_and_the_rerun_sends_only_the_missing_batches(two_days, receiver, monkeypatch):
    monkeypatch.setenv("PZ_BRAZE_TOKEN", TOKEN)
    settings = DestinationSettings(
        kind="http_batch", url=receiver, token_env="PZ_BRAZE_TOKEN", batch_size=1, max_attempts=2, channels=["email"]
    )
    Receiver.fail = {2, 3}  # the second batch fails both of its attempts
    with pytest.raises(DeliveryError, match=r"destination 'braze' email .* win_back batch 2: failed 2 times"):
        deliver({"braze": settings}, DS, two_days)
    assert len(Receiver.received) == 1 and len(json.loads(ledger_path("braze", "email", DS).read_text())) == 1

    assert deliver({"braze": settings}, DS, two_days) == {"braze/email": 2}  # the receiver is back
    ids = [body["attributes"][0]["external_id"] for _, body in Receiver.received]
    assert ids == ["C2", "C3", "C4"]  # each once


def test_a_missing_token_names_the_variable_and_never_the_value(two_days, receiver, monkeypatch):
    monkeypatch.delenv("PZ_BRAZE_TOKEN", raising=False)
    settings = DestinationSettings(kind="http_batch", url=receiver, token_env="PZ_BRAZE_TOKEN", channels=["email"])
    with pytest.raises(DeliveryError, match="environment variable PZ_BRAZE_TOKEN"):
        deliver({"braze": settings}, DS, two_days)
    assert Receiver.arrivals == 0


def test_the_folder_destination_copies_the_day_whole_once(two_days, tmp_path):
    settings = DestinationSettings(kind="folder", path=str(tmp_path / "share"), channels=["email"])
    folder = two_days / "email" / f"ds={DS}"
    assert deliver({"share": settings}, DS, two_days) == {"share/email": len(destinations.day_files(folder))}
    copied = tmp_path / "share" / "email" / f"ds={DS}"
    assert (copied / "manifest.json").read_bytes() == (folder / "manifest.json").read_bytes()
    assert (copied / "changes" / "win_back.parquet").exists()
    assert deliver({"share": settings}, DS, two_days) == {"share/email": 0}


def test_a_destination_needs_what_its_kind_needs():
    with pytest.raises(ValueError, match="a http_batch destination needs url, token_env"):
        DestinationSettings(kind="http_batch")
