"""Erased customers out of the model registry's artifacts: a bundle trained before an erasure request
still holds the erased ids in its id maps (the next trained version does not: training reads staging,
which has no erased rows). The warehouse's own erasure is ml.warehouse.erasure.

A bundle that keeps customer ids says which (`known_customer_ids()`, as the recommender's does); a
bundle without that method holds none (the propensity model's).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from urllib.parse import urlparse

import mlflow
from mlflow.tracking import MlflowClient

from ml.paths import mlflow_tracking_uri
from ml.warehouse.erasure import erased_customer_ids

log = logging.getLogger(__name__)


def purge_model_artifacts(dry_run: bool = False) -> list[str]:
    """Delete the artifacts of every registered model version whose bundle holds an erased id,
    except a version an alias points at (it is serving: the next night's version, trained without
    the erased rows, replaces it, and this command run again then removes it). The versions stay
    in the registry, with their metrics, marked by the tag `erasure_purged`. Returns what was done."""
    erased = set(erased_customer_ids())
    mlflow.set_tracking_uri(mlflow_tracking_uri())
    client = MlflowClient()
    done = []
    for registered in client.search_registered_models():
        aliased = {str(version) for version in registered.aliases.values()}
        for version in client.search_model_versions(f"name = '{registered.name}'"):
            if version.tags.get("erasure_purged"):
                continue
            held = _erased_ids_in_bundle(registered.name, version.version, erased)
            if not held:
                continue
            label = f"{registered.name} v{version.version}: {len(held)} erased id(s)"
            if str(version.version) in aliased:
                done.append(f"{label}, kept while it serves (alias); rerun after the next night promotes another")
                continue
            if not dry_run:
                run = client.get_run(version.run_id)
                artifacts = Path(urlparse(run.info.artifact_uri).path)
                shutil.rmtree(artifacts, ignore_errors=True)
                client.set_model_version_tag(registered.name, version.version, "erasure_purged", "artifacts deleted")
            done.append(f"{label}, artifacts {'would be ' if dry_run else ''}deleted")
    return done


def _erased_ids_in_bundle(model_name: str, version: str, erased: set[str]) -> set[str]:
    """The erased ids a version's bundle knows (its `known_customer_ids()`; a bundle without that
    method keeps no customer ids). A version whose artifacts are gone holds nothing."""
    if not erased:
        return set()
    try:
        bundle = mlflow.pyfunc.load_model(f"models:/{model_name}/{version}").unwrap_python_model().bundle
    except (OSError, FileNotFoundError) as error:
        log.info("%s v%s: no bundle to read (%s)", model_name, version, error)
        return set()
    known = getattr(bundle, "known_customer_ids", None)
    return erased & set(known()) if known is not None else set()
