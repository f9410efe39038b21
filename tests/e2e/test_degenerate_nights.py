"""Empty is normal: whole nights on landings that are degenerate in the ways real data is in its first
week, and on MovieLens (no consents, no surveys), end with rc 0, reconciled counts and well-formed,
possibly empty, files and manifests, each empty output with a one-line reason.

Each landing is cut from one small generated data set; the nights run through the in-process
pipeline (every stage of the registry, in order, as the DAG runs them).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from ml.paths import REPO_ROOT
from ml.synthetic.generate import generate
from ml.synthetic.settings import GeneratorSettings
from ml.warehouse.movielens import read_movielens, write_landing
from tests.helpers import query, run_pipeline

# No xdist group: each landing is its own data directory, so the nights spread over both workers.
pytestmark = pytest.mark.slow

END = dt.date(2026, 10, 31)
TINY = GeneratorSettings(customers=400, days=75, end_date=END, bad_row_rate=0.0, seed=11)
MOVIELENS = REPO_ROOT.parent / "shared" / "datasets" / "ml-latest-small"


def keep_rows(landing: Path, table: str, keep) -> None:
    """Keep only the rows of `table` for which `keep(frame)` holds, in every file of it."""
    for path in sorted((landing / table).iterdir()):
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
            frame[keep(frame)].to_parquet(path, index=False)
        else:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
            frame[keep(frame)].to_csv(path, index=False)


def cut(landing: Path, kind: str) -> None:
    """Make the landing degenerate in one way."""
    if kind == "no_consents":  # nobody may be contacted: every audience is empty
        shutil.rmtree(landing / "consents")
    elif kind == "email_consents_only":  # channels nobody opted into
        keep_rows(landing, "consents", lambda frame: frame["channel"] == "email")
    elif kind == "customers_and_orders_only":  # no catalog, no baskets, no events: nothing to recommend from
        for table in ("items", "order_items", "events", "survey_responses", "consents", "erasure_requests"):
            shutil.rmtree(landing / table)
    elif kind == "no_orders":  # nobody has bought: no propensity label, no purchase history
        keep_rows(landing, "orders", lambda frame: frame["order_id"] == "")
        keep_rows(landing, "order_items", lambda frame: frame["order_id"] == "")
    else:
        raise ValueError(kind)


@pytest.fixture(scope="module")
def tiny_landing(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    generate(TINY, root / "landing")
    return root / "landing"


def assert_night_is_whole(data_dir: Path, ds: str) -> None:
    """Counts reconcile, every channel has a manifest whose files exist and match, and every empty
    audience file says why it is empty."""
    reconciliation = query(data_dir, "select * from audit.landing_reconciliation where ds = ?", [ds])
    assert not reconciliation.empty and reconciliation["is_reconciled"].all(), reconciliation
    manifests = sorted((data_dir / "exports").glob(f"*/ds={ds}/manifest.json"))
    assert {path.parent.parent.name for path in manifests} == {"email", "push", "web", "call_center"}
    for path in manifests:
        manifest = json.loads(path.read_text())
        assert manifest["rows"] == sum(audience["rows"] for audience in manifest["audiences"])
        assert (manifest["rows"] == 0) == ("empty_reason" in manifest), path
        for audience in manifest["audiences"]:
            assert (audience["rows"] == 0) == ("empty_reason" in audience), (path, audience)
            for described in audience["files"]:
                written = path.parent / described["path"]
                assert hashlib.sha256(written.read_bytes()).hexdigest() == described["sha256"]
            csv = pd.read_csv(path.parent / f"{audience['audience']}.csv")
            assert list(csv.columns) == manifest["columns"] and len(csv) == audience["rows"]
    assert (data_dir / "reports" / "kpi" / f"kpi_{ds}.html").exists()
    assert (data_dir / "reports" / "audiences" / f"audiences_{ds}.html").exists()


@pytest.mark.parametrize("kind", ["no_consents", "email_consents_only", "customers_and_orders_only", "no_orders"])
def test_a_degenerate_landing_runs_a_whole_night(kind, tiny_landing, tmp_path):
    data_dir = tmp_path / kind
    shutil.copytree(tiny_landing, data_dir / "landing")
    cut(data_dir / "landing", kind)
    night = run_pipeline(data_dir, END.isoformat())
    assert night.returncode == 0, night.stderr[-4000:]
    assert_night_is_whole(data_dir, END.isoformat())
    published = query(data_dir, "select count(*) as n from channels.email where ds = ?", [END])["n"].iloc[0]
    if kind == "no_consents":
        assert published == 0
    if kind == "no_consents":
        funnel = query(data_dir, "select * from activation.audience_funnel where ds = ? and step = 'decided'", [END])
        assert (funnel["customers"] == 0).all()
    if kind == "no_consents":
        # The next night lands nothing new: it runs all the same (once: a quiet night is the same on
        # every landing).
        next_ds = (END + dt.timedelta(days=1)).isoformat()
        quiet = run_pipeline(data_dir, next_ds)
        assert quiet.returncode == 0, quiet.stderr[-4000:]
        assert_night_is_whole(data_dir, next_ds)


def test_movielens_runs_a_whole_night(tmp_path):
    """Real data with no consents, no surveys and no demographics: the models train and score, and
    every channel publishes valid, empty files saying that nobody consented."""
    assert MOVIELENS.is_dir(), f"{MOVIELENS} is missing: the shared data sets lie beside the repository"
    data_dir = tmp_path / "movielens"
    release = read_movielens(MOVIELENS)
    write_landing(release, data_dir / "landing")
    ds = release.ratings["rated_at"].max().date().isoformat()
    night = run_pipeline(data_dir, ds)
    assert night.returncode == 0, night.stderr[-4000:]
    assert_night_is_whole(data_dir, ds)
    scored = query(data_dir, "select count(distinct customer_id) as n from marts.customer_scores where ds = ?", [ds])
    assert scored["n"].iloc[0] == 610
