"""Who is told, and what fails at once: the notifiers deliver to local receivers (an HTTP server and
an SMTP server on 127.0.0.1, nothing else is contacted), a notifier that cannot deliver never fails
the night, and a PlatformError fails its task without a retry while other errors keep it."""

from __future__ import annotations

import asyncore
import datetime as dt
import json
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from airflow.sdk.exceptions import AirflowFailException

from ml.errors import ConfigError
from ml.orchestration.callbacks import log_task_failure, night_failure_message, run_in_task
from ml.orchestration.notifications import resolve_secret, send
from ml.orchestration.settings import NotificationsConfig

with warnings.catch_warnings():  # smtpd is deprecated, and the simplest SMTP server to test against
    warnings.simplefilter("ignore", DeprecationWarning)
    import smtpd


@pytest.fixture
def http_receiver():
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *arguments) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()


@pytest.fixture
def smtp_receiver(monkeypatch):
    received: list[tuple] = []

    class Server(smtpd.SMTPServer):
        def process_message(self, peer, mailfrom, rcpttos, data, **keywords):
            received.append((mailfrom, rcpttos, data.decode()))

    server = Server(("127.0.0.1", 0), None)
    port = server.socket.getsockname()[1]
    thread = threading.Thread(target=asyncore.loop, kwargs={"timeout": 0.05, "count": 200}, daemon=True)
    thread.start()
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_DEFAULT",
        f"smtp://127.0.0.1:{port}?disable_tls=true&disable_ssl=true&from_email=night%40example.invalid",
    )
    yield received
    server.close()


def test_the_webhook_receives_the_message_and_a_secret_stays_in_the_environment(http_receiver, monkeypatch):
    url, received = http_receiver
    monkeypatch.setenv("PZ_ALERT_WEBHOOK_URL", url)
    settings = NotificationsConfig(webhook_url="${PZ_ALERT_WEBHOOK_URL}")
    assert send(settings, "nightly_personalization ds=2026-10-31 FAILED at load_landing: LandingError: x") == 1
    assert received == [{"text": "nightly_personalization ds=2026-10-31 FAILED at load_landing: LandingError: x"}]
    assert resolve_secret("${PZ_NOT_SET_ANYWHERE}") == "" and resolve_secret("http://x") == "http://x"


def test_email_goes_through_the_airflow_smtp_connection(smtp_receiver):
    settings = NotificationsConfig(email_to=["ops@example.invalid"])
    assert send(settings, "recommender: the gate keeps the popularity baseline serving: ...") == 1
    for _ in range(40):
        if smtp_receiver:
            break
        time.sleep(0.05)
    (_sender, recipients, data), *_ = smtp_receiver
    assert recipients == ["ops@example.invalid"] and "Subject: [personalization] recommender" in data


def test_nothing_configured_logs_only_and_a_dead_receiver_never_fails_the_night(caplog):
    assert send(NotificationsConfig(), "a message") == 0
    assert "NOTIFY a message" in caplog.text
    dead = NotificationsConfig(webhook_url="http://127.0.0.1:9/nobody-listens", timeout_seconds=1)
    assert send(dead, "another") == 0
    assert "not delivered" in caplog.text


def test_a_platform_error_fails_the_task_at_once_and_another_error_keeps_the_retry():
    def refused(ds, config):
        assert isinstance(ds, dt.date) and config.schedule.cron  # parsed and loaded by the orchestrator
        raise ConfigError(f"ds={ds}: key 'schedule.cron' is wrong")

    with pytest.raises(AirflowFailException, match=r"ConfigError: ds=2026-10-31: key 'schedule.cron'"):
        run_in_task("load_landing", refused, "2026-10-31")

    def flaky(ds, config):
        raise OSError("Could not set lock on file")

    with pytest.raises(OSError):
        run_in_task("load_landing", flaky, "2026-10-31")


def test_the_night_fails_on_its_first_failed_task_and_cause(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))

    class TaskInstance:
        dag_id, try_number, run_id = "nightly_personalization", 1, "manual__2026-10-31"

        def __init__(self, task_id):
            self.task_id = task_id

    error = AirflowFailException("LandingError: Landing folder /x does not exist")
    for task in ("load_landing", "train_propensity"):
        log_task_failure({"task_instance": TaskInstance(task), "ds": "2026-10-31", "exception": error})
        time.sleep(0.01)
    message = night_failure_message("nightly_personalization", "2026-10-31", "manual__2026-10-31")
    assert message == (
        "nightly_personalization ds=2026-10-31 FAILED at load_landing: "
        "AirflowFailException: LandingError: Landing folder /x does not exist"
    )
    timed_out = night_failure_message("nightly_personalization", "2026-10-31", "another", "timed_out")
    assert "schedule.run_timeout_hours" in timed_out
