"""Telling someone: a failed night, a gate that keeps the baseline, drift that blocks the exports, an
erasure request a person must check.

Each goes through Airflow notifiers (`BaseNotifier`): a webhook notifier that POSTs `{"text": ...}`
(the body a Slack incoming webhook takes; any HTTP receiver can read it) and Airflow's SMTP notifier,
as the `notifications` section of the configuration says. With nothing configured, the task log is
the only record. A notifier that cannot deliver logs why and never fails the night.
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import urllib.request
from collections.abc import Mapping

from airflow.sdk import BaseNotifier

from ml.orchestration.settings import NotificationsConfig

log = logging.getLogger("personalization.notifications")

ENVIRONMENT_REFERENCE = re.compile(r"^\$\{(\w+)\}$")


def resolve_secret(value: str) -> str:
    """`${NAME}` read from the environment (empty when unset); anything else as written."""
    reference = ENVIRONMENT_REFERENCE.match(value.strip())
    return os.environ.get(reference.group(1), "") if reference else value


class WebhookNotifier(BaseNotifier):
    """POST `{"text": message}` as JSON to `url`."""

    template_fields = ("message",)

    def __init__(self, url: str, message: str = "", timeout_seconds: float = 5):
        super().__init__()
        self.url, self.message, self.timeout_seconds = url, message, timeout_seconds

    def notify(self, context) -> None:
        url = resolve_secret(self.url)
        if not url:
            log.warning("notifications.webhook_url names an unset environment variable: %s not sent", self.message)
            return
        request = urllib.request.Request(
            url,
            data=json.dumps({"text": self.message}).encode("utf-8"),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
            response.read()


def notifiers(settings: NotificationsConfig, message: str) -> list[BaseNotifier]:
    """The notifiers the configuration asks for, each carrying `message`."""
    found: list[BaseNotifier] = []
    if settings.webhook_url:
        found.append(WebhookNotifier(settings.webhook_url, message, settings.timeout_seconds))
    if settings.email_to:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        subject = message.split(":", 1)[0][:120]
        found.append(
            SmtpNotifier(
                to=settings.email_to,
                subject=f"[personalization] {subject}",
                html_content=f"<pre>{html.escape(message)}</pre>",
                smtp_conn_id=settings.smtp_conn_id,
            )
        )
    return found


def send(settings: NotificationsConfig, message: str, context: Mapping | None = None) -> int:
    """Send `message` through every configured notifier; returns how many delivered. Always logged."""
    log.warning("NOTIFY %s", message)
    delivered = 0
    for notifier in notifiers(settings, message):
        try:
            notifier.notify(dict(context or {}))
            delivered += 1
        except Exception as error:  # a notification must never fail the night it reports on
            log.error("notification by %s not delivered: %s", type(notifier).__name__, error)
    return delivered
