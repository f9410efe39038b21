"""The `serving` section: where the online service listens and how it treats snapshots and events."""

from __future__ import annotations

from pydantic import Field

from ml.settings import StrictSettings


class ServingConfig(StrictSettings):
    """The online decision service (`make serve`, docs/serving.md)."""

    host: str = Field("127.0.0.1", description="Address to listen on; loopback unless PZ_API_TOKEN is set.")
    port: int = Field(8000, gt=0, lt=65536, description="Port to listen on.")
    snapshots_kept: int = Field(3, ge=1, description="Serving snapshots kept on disk (the newest ones).")
    reload_seconds: float = Field(1.0, gt=0, description="How often the service looks for a new snapshot.")
    event_file_seconds: int = Field(
        60, gt=0, description="Events, consents, erasures and served decisions land in one file per interval."
    )
    max_body_bytes: int = Field(1_000_000, gt=0, description="Largest request body accepted (413 above).")
    max_events: int = Field(1_000, gt=0, description="Most events in one POST /v1/events.")
    max_k: int = Field(50, gt=0, description="Largest k of GET /v1/recommendations.")
    context_neighbors: int = Field(20, gt=0, description="Neighbors of a context item considered for re-ranking.")
