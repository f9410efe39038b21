"""Erasure, in one place: every purge that removes an erased customer, where it runs, and a command
that runs them all now.

An erasure request lands like any other file (`erasure_requests`); dbt keeps the ledger
(`audit.erasure_ledger`) and drops erased customers from staging, quarantine and the marts as each
model builds. The purges below reach what dbt does not own. Each runs in its stage every night;
`python -m ml erasure purge` runs them all at once (under the run lock), for a request that must not
wait for the night, and `python -m ml erasure list` says what each removes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ml.orchestration.config import PlatformConfig


@dataclass(frozen=True)
class Purge:
    name: str
    removes: str  # what of an erased customer it removes
    runs_in: str  # the nightly stage that runs it, or the command
    run: Callable[[PlatformConfig], object]  # runs it now; returns what it removed


def _personal_fields(config: PlatformConfig) -> object:
    from ml.warehouse.erasure import scrub_personal_fields

    return scrub_personal_fields()


def _online_store(config: PlatformConfig) -> object:
    from ml.mlops.feature_store import purge_online_store
    from ml.warehouse.erasure import erased_customer_ids

    return purge_online_store(erased_customer_ids())


def _export_files(config: PlatformConfig) -> object:
    from ml.activation.export import purge_erased_from_exports

    return purge_erased_from_exports(config.activation)


def _channel_tables(config: PlatformConfig) -> object:
    from ml.activation.export import purge_erased_from_tables

    return purge_erased_from_tables(config.activation)


def _serving_snapshots(config: PlatformConfig) -> object:
    from ml.serving.snapshot import purge_erased_from_snapshots
    from ml.warehouse.erasure import erased_customer_ids

    return purge_erased_from_snapshots(erased_customer_ids())


def _model_artifacts(config: PlatformConfig) -> object:
    from ml.mlops.erasure import purge_model_artifacts

    return purge_model_artifacts()


PURGES: tuple[Purge, ...] = (
    Purge(
        "personal_fields",
        "the email, city, birth year and survey comments of erased customers' landing rows in raw.* and in "
        "the staging models that keep every landing row (the ids stay: lineage and reconciliation)",
        "build_staging",
        _personal_fields,
    ),
    Purge(
        "online_store",
        "erased customers' rows in the Feast online store (the offline snapshots are rebuilt without them)",
        "build_feature_store",
        _online_store,
    ),
    Purge(
        "export_files",
        "erased customers' rows in every published export folder, rewritten with its manifest",
        "publish_channels",
        _export_files,
    ),
    Purge(
        "channel_tables",
        "erased customers' rows in every day of the channel tables",
        "publish_channels",
        _channel_tables,
    ),
    Purge(
        "serving_snapshots",
        "erased customers' records in every kept serving snapshot (decisions, consents, recommendations, "
        "purchases), replaced by the erased flag; a running service reloads",
        "publish_serving_snapshot",
        _serving_snapshots,
    ),
    Purge(
        "model_artifacts",
        "the artifacts of older model versions whose bundle holds an erased id (a version that serves is "
        "kept until the next night replaces it)",
        "python -m ml erasure purge-model-artifacts",
        _model_artifacts,
    ),
)


def purge_now(config: PlatformConfig) -> list[str]:
    """Run every purge now, under the run lock (never beside a night); one line per purge."""
    from ml.warehouse.run_lock import exclusive_run

    with exclusive_run("python -m ml erasure purge"):
        return [f"{purge.name:<16} {purge.run(config)}" for purge in PURGES]


def purge_table() -> list[str]:
    """What each purge removes and where it runs (`python -m ml erasure list`)."""
    return [f"{purge.name:<16} in {purge.runs_in}: {purge.removes}" for purge in PURGES]
