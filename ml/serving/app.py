"""The online decision service (FastAPI): decisions, recommendations and events over HTTP, answered
from the night's serving snapshot (docs/serving.md).

`create_app` takes everything it needs as arguments (only the orchestrator's CLI reads the
configuration), so tests and the benchmark run the same app on their own directories.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hmac
import json
import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as Path_
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import ValidationError

from ml.serving import decide
from ml.serving.events import (
    CONSENT_EVENTS,
    ERASURE_EVENT,
    EventBatch,
    LandingWriter,
    check_vocabulary,
    iso,
    landing_rows,
    online_rows_since,
)
from ml.serving.page import product_page
from ml.serving.settings import ServingConfig
from ml.serving.store import SnapshotHolder

log = logging.getLogger(__name__)

ID_PATTERN = r"^[^\x00-\x1f/]+$"
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0)


@dataclass(frozen=True)
class Vocabulary:
    """What the service takes from the landing contract: the lists events are checked against
    (dbt_project.yml vars) and the columns of the landing tables it writes (ml.warehouse.contract)."""

    event_types: tuple[str, ...]
    consent_channels: tuple[str, ...]
    landing_columns: dict[str, tuple[str, ...]]


class Metrics:
    """Prometheus metrics of one app (its own registry: two apps in a process never share counters)."""

    def __init__(self, holder: SnapshotHolder) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "pz_request_seconds", "Request latency.", ["endpoint"], buckets=LATENCY_BUCKETS, registry=self.registry
        )
        self.requests = Counter("pz_requests", "Requests by outcome.", ["endpoint", "outcome"], registry=self.registry)
        self.decisions = Counter(
            "pz_decisions", "Decisions served.", ["channel", "default_experience"], registry=self.registry
        )
        ds_gauge = Gauge("pz_snapshot_ds_timestamp", "The serving snapshot's ds (Unix time).", registry=self.registry)
        age = Gauge("pz_snapshot_age_seconds", "Seconds since the end of the snapshot's ds.", registry=self.registry)
        ds_gauge.set_function(lambda: _ds_end(holder) - 86_400 if holder.current else 0)
        age.set_function(lambda: time.time() - _ds_end(holder) if holder.current else float("nan"))


def _ds_end(holder: SnapshotHolder) -> float:
    day = dt.date.fromisoformat(holder.current.ds)
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC).timestamp()


class Service:
    """What the endpoints share: the snapshot holder, what arrived since the night, the landing writer."""

    def __init__(self, config: ServingConfig, serving_root: Path, landing: Path, vocabulary: Vocabulary) -> None:
        self.config = config
        self.holder = SnapshotHolder(serving_root)
        self.overlay = decide.Overlay()
        self.writer = LandingWriter(landing, config.event_file_seconds, vocabulary.landing_columns)
        self.vocabulary = vocabulary
        self.metrics = Metrics(self.holder)

    def linked_customer(self, anonymous_id: str | None) -> str | None:
        """The customer an anonymous id belongs to: the night's identity graph, then logins since."""
        if not anonymous_id:
            return None
        snapshot = self.holder.current
        return (snapshot.linked(anonymous_id) if snapshot else None) or self.overlay.linked(anonymous_id)

    def resolve(self, identifier: str) -> tuple[str, dict | None, str | None]:
        """(customer_id, record, anonymous_id): an id the snapshot does not know may be an anonymous
        id a login linked to a customer; the customer's record answers for it."""
        snapshot = self.holder.current
        record = snapshot.record(identifier) if snapshot else None
        customer = self.linked_customer(identifier) if record is None else None
        if customer is not None:
            return customer, (snapshot.record(customer) if snapshot else None), identifier
        return identifier, record, None

    def log_decision(self, answer: dict, anonymous_id: str | None, context_item: str | None = None) -> None:
        recommender = self.holder.current.meta["recommender_version"] if self.holder.current else None
        row = {
            **answer,
            "served_at": iso(dt.datetime.now(dt.UTC)),
            "anonymous_id": anonymous_id,
            "recommender_version": recommender,
            "context_item": context_item,
            "default_experience": "true" if answer["default_experience"] else "false",
            "decision_reason": answer["reason"],
        }
        self.writer.append("served_decisions", [row])
        self.metrics.decisions.labels(answer["channel"], row["default_experience"]).inc()

    def apply(self, batch: EventBatch) -> int:
        """Write every event to the landing area, then apply consents, erasures and logins at once."""
        rows: dict[str, list[dict]] = {}
        for event in batch.events:
            customer = event.customer_id or self.linked_customer(event.anonymous_id)
            table, row = landing_rows(event, customer, event.event_id or uuid.uuid4().hex)
            rows.setdefault(table, []).append(row)
        for table, table_rows in rows.items():
            self.writer.append(table, table_rows)
        for table, table_rows in rows.items():
            apply_row(self.overlay, table, table_rows)
        return len(batch.events)

    def decision(self, identifier: str, channel: str) -> dict:
        """The answer for a customer (or linked anonymous id) in a channel; 422 for an unknown channel."""
        snapshot = self.holder.current
        if snapshot is None:
            return no_snapshot_answer(identifier, channel)
        if channel not in snapshot.meta["channels"]:
            raise HTTPException(422, f"channel {channel!r} is not one of {', '.join(snapshot.meta['channels'])}")
        customer, record, anonymous = self.resolve(identifier)
        answer = decide.channel_decision(snapshot.meta, customer, record, channel, self.overlay, snapshot.catalog)
        return {**answer, "anonymous_id": anonymous} if anonymous else answer

    def recommendations(self, identifier: str, k: int, context_item: str | None, channel: str) -> dict:
        snapshot = self.holder.current
        if snapshot is None:
            raise HTTPException(503, f"no serving snapshot: {self.holder.problem}")
        if channel not in snapshot.meta["consent_of"]:
            raise HTTPException(422, f"channel {channel!r} is not one of {', '.join(snapshot.meta['channels'])}")
        customer, record, _ = self.resolve(identifier)
        neighbors = snapshot.neighbors.get(context_item, [])[: self.config.context_neighbors] if context_item else []
        answer = decide.recommendations(
            snapshot.meta, customer, record, self.overlay, k, context_item, neighbors, snapshot.catalog, channel
        )
        return {**answer, "context_item_known": context_item in snapshot.catalog if context_item else None}

    def swapped(self) -> None:
        """After a swap: forget what the new snapshot's night already holds."""
        self.overlay.forget_before(iso(dt.datetime.fromtimestamp(_ds_end(self.holder), dt.UTC)))


def apply_row(overlay: decide.Overlay, table: str, rows: list[dict]) -> None:
    """Apply landing rows of consents, erasures and identity links to the overlay (events: nothing)."""
    for row in rows:
        if table == "consents":
            overlay.record_consent(row["customer_id"], row["channel"], row["granted"] == "true", row["recorded_at"])
        elif table == "erasure_requests":
            overlay.erased.setdefault(row["customer_id"], row["requested_at"])
        elif table == "identity_links":
            # Deterministic links only, and the first login of an anonymous id keeps it.
            overlay.links.setdefault(row["anonymous_id"], (row["customer_id"], row["linked_at"]))


def _problems(batch_json: object, service: Service) -> tuple[EventBatch | None, list[str]]:
    """The batch, or the problems that refuse it (each naming the event's position and field)."""
    limit = service.config.max_events
    if isinstance(batch_json, list):
        batch_json = {"events": batch_json}
    if isinstance(batch_json, dict) and len(batch_json.get("events") or []) > limit:
        return None, [f"at most {limit} events per request"]
    try:
        batch = EventBatch.model_validate(batch_json)
    except ValidationError as error:
        return None, [
            f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}" for problem in error.errors()
        ]
    problems = []
    for position, event in enumerate(batch.events):
        problem = check_vocabulary(event, service.vocabulary.event_types, service.vocabulary.consent_channels)
        needs_customer = event.event_type in (*CONSENT_EVENTS, ERASURE_EVENT)
        if (
            problem is None
            and needs_customer
            and not (event.customer_id or service.linked_customer(event.anonymous_id))
        ):
            problem = f"{event.event_type} needs a customer_id (or an anonymous_id a login linked)"
        if problem:
            problems.append(f"events.{position}: {problem}")
    return (None if problems else batch), problems


def no_snapshot_answer(customer_id: str, channel: str) -> dict:
    """The default experience when no valid snapshot is loaded (and the reason says so)."""
    answer = {
        "ds": None,
        "customer_id": customer_id,
        "channel": channel,
        **dict.fromkeys(("audience", "experiment_group", "experiment_version", "assignment_probability")),
        **dict.fromkeys(("tactic", "offer_code", "content_id")),
        "recommended_items": [],
        "default_experience": True,
        "reason": "no_snapshot",
    }
    return {**answer, "decision_id": decide.decision_id("", customer_id, channel, answer)}


class Timing:
    """ASGI middleware: latency and outcome of every request into the app's Prometheus metrics, and
    413 for a declared body above the limit before anything reads it."""

    def __init__(self, app, service: Service) -> None:
        self.app, self.service = app, service

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), [500]
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > self.service.config.max_body_bytes:
            response = JSONResponse({"error": f"body above {self.service.config.max_body_bytes} bytes"}, 413)
            await response(scope, receive, send)
            return

        async def sending(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", "unmatched")
            metrics = self.service.metrics
            metrics.latency.labels(endpoint).observe(time.perf_counter() - start)
            metrics.requests.labels(endpoint, f"{status[0] // 100}xx").inc()


async def _maintain(service: Service) -> None:
    """Every reload_seconds: look for a new snapshot, and publish event files whose interval ended."""
    while True:
        await asyncio.sleep(service.config.reload_seconds)
        try:
            if await asyncio.to_thread(service.holder.refresh) is not None:
                service.swapped()
            service.writer.rotate(only_due=True)
        except Exception:  # the loop must outlive one bad pass (a full disk, a vanished folder)
            log.exception("serving maintenance pass failed")


def _start(service: Service, landing: Path) -> None:
    """Publish a stopped service's partial files, load the snapshot, and apply again what arrived
    over HTTP after its night (consents, erasures) and every login link."""
    for path in service.writer.recover():
        log.warning("published the events file a stopped service left: %s", path)
    service.holder.refresh()
    since = iso(dt.datetime.fromtimestamp(_ds_end(service.holder), dt.UTC)) if service.holder.current else ""
    for table in ("consents", "erasure_requests"):
        apply_row(service.overlay, table, online_rows_since(landing, table, since))
    apply_row(service.overlay, "identity_links", online_rows_since(landing, "identity_links", ""))


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(p) for p in problem['loc'])}: {problem['msg']}" for problem in error.errors()]
        return JSONResponse({"error": "invalid request", "problems": problems}, 422)

    @app.exception_handler(HTTPException)
    async def refused(request: Request, error: HTTPException) -> JSONResponse:
        return JSONResponse({"error": error.detail}, error.status_code, headers=error.headers)

    @app.exception_handler(Exception)
    async def failed(request: Request, error: Exception) -> JSONResponse:
        log.exception("request %s %s failed", request.method, request.url.path)
        return JSONResponse({"error": "internal error: see the service log"}, 500)


def create_app(
    config: ServingConfig, serving_root: Path, landing: Path, vocabulary: Vocabulary, token: str | None = None
) -> FastAPI:
    """The service on `serving_root`'s published snapshot, writing events under `landing`; with a
    `token`, every endpoint but /health and /ready needs `Authorization: Bearer <token>`."""
    service = Service(config, serving_root, landing, vocabulary)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        await asyncio.to_thread(_start, service, landing)
        task = asyncio.create_task(_maintain(service))
        yield
        task.cancel()
        service.writer.rotate()

    app = FastAPI(
        title="Personalization decisions",
        description="One decision per customer across batch and real time (docs/serving.md).",
        version="1",
        lifespan=lifespan,
    )
    app.state.service = service
    _error_handlers(app)

    def authorized(request: Request) -> None:
        if token is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    _routes(app, service, Depends(authorized))
    app.add_middleware(Timing, service=service)
    return app


def _routes(app: FastAPI, service: Service, auth) -> None:
    """The decision, recommendation and page endpoints."""

    @app.get("/v1/decisions/{customer_id}", dependencies=[auth], tags=["decisions"])
    async def decision(
        customer_id: str = Path_(max_length=200, pattern=ID_PATTERN), channel: str = Query(max_length=50)
    ) -> JSONResponse:
        """The night's decision for the customer (or a linked anonymous id) in `channel`."""
        answer = service.decision(customer_id, channel)
        service.log_decision(answer, answer.get("anonymous_id"))
        return JSONResponse(answer)

    @app.get("/v1/recommendations/{customer_id}", dependencies=[auth], tags=["recommendations"])
    async def recommendations(
        customer_id: str = Path_(max_length=200, pattern=ID_PATTERN),
        k: int = Query(10, ge=1, le=service.config.max_k),
        context_item: str | None = Query(None, max_length=200, pattern=ID_PATTERN),
        channel: str = Query("web", max_length=50),
    ) -> JSONResponse:
        """The top k items; with `context_item`, re-ranked around it (reciprocal rank fusion)."""
        return JSONResponse(service.recommendations(customer_id, k, context_item, channel))

    @app.post("/v1/events", status_code=202, dependencies=[auth], tags=["events"])
    async def events(request: Request) -> JSONResponse:
        """Landing-contract events (a JSON list, or {"events": [...]}); consents, erasures and logins
        apply to the next request."""
        size, chunks = 0, []
        async for chunk in request.stream():
            size += len(chunk)
            if size > service.config.max_body_bytes:
                raise HTTPException(413, f"body above {service.config.max_body_bytes} bytes")
            chunks.append(chunk)
        try:
            body = json.loads(b"".join(chunks) or b"null")
        except ValueError as error:
            raise HTTPException(400, f"the body is not JSON: {error}") from None
        batch, problems = _problems(body, service)
        if batch is None:
            return JSONResponse({"error": "events refused, none applied", "problems": problems}, 422)
        return JSONResponse({"accepted": service.apply(batch)}, 202)

    @app.get("/demo/products/{item_id}", dependencies=[auth], response_class=HTMLResponse, tags=["demo"])
    async def product(
        item_id: str = Path_(max_length=200, pattern=ID_PATTERN), visitor: str = Query("anonymous", max_length=200)
    ) -> HTMLResponse:
        """A storefront product page for `visitor` (a customer or anonymous id)."""
        snapshot = service.holder.current
        if snapshot is None or item_id not in snapshot.catalog:
            raise HTTPException(404, f"no item {item_id!r} in the serving snapshot's catalog")
        decision = service.decision(visitor, "web")
        service.log_decision(decision, decision.get("anonymous_id"), item_id)
        shown = service.recommendations(visitor, 8, item_id, "web")
        return HTMLResponse(product_page(snapshot.catalog[item_id], decision, shown))

    _operations(app, service, auth)


def _operations(app: FastAPI, service: Service, auth) -> None:
    @app.get("/health", tags=["operations"])
    async def health() -> dict:
        """The process answers."""
        return {"status": "ok"}

    @app.get("/ready", tags=["operations"])
    async def ready() -> JSONResponse:
        """A snapshot is loaded (503 with the reason otherwise)."""
        snapshot = service.holder.current
        body = {
            "ready": snapshot is not None,
            "ds": snapshot.ds if snapshot else None,
            "problem": service.holder.problem,
        }
        return JSONResponse(body, 200 if snapshot is not None else 503)

    @app.get("/metrics", dependencies=[auth], tags=["operations"])
    async def metrics() -> Response:
        """Prometheus metrics: latency histogram, requests by outcome, snapshot ds and age."""
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)
