"""The base of every settings section: each package owns its section, ml.orchestration.config combines them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictSettings(BaseModel):
    # Unknown keys are errors: a typo in a key must not silently fall back to a default.
    model_config = ConfigDict(extra="forbid", frozen=True)
