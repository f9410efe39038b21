"""Audience decisions benchmark, results into bench/results.md.

The demo configuration's five audiences decided over generated populations of 100k and 1M
customers (the pure `ml.activation.decisions.decide`, with a day of contact history for the caps),
then the channel rows built for the treated customers. Each size runs in its own process so its
peak memory is its own.

Usage: python bench/bench_activation.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from common import REPO, machine, write_section

sys.path.insert(0, str(REPO))

SIZES = (100_000, 1_000_000)


def population(size: int):
    import numpy as np
    import pandas as pd

    from ml.activation.columns import consent_channels, consent_column

    rng = np.random.default_rng(7)
    frequency = rng.poisson(1.2, size)
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{n:08d}" for n in range(size)],
            "frequency": frequency,
            "recency_days": np.where(frequency > 0, rng.integers(0, 180, size), np.nan),
            "rfm_segment": rng.choice(["champions", "loyal", "at_risk", "hibernating", "lost", "no_purchase"], size),
            "latest_nps_category": rng.choice(
                [None, "promoter", "passive", "detractor"], size, p=[0.6, 0.15, 0.15, 0.1]
            ),
            "language": rng.choice(["en", "de", "fr"], size),
            "country": rng.choice(["GB", "DE", "FR"], size),
            "tenure_days": rng.integers(0, 400, size),
            "hours_since_cart_abandoned": np.where(rng.random(size) < 0.02, rng.random(size) * 48, np.nan),
            "score": rng.random(size),
            "is_erased": rng.random(size) < 0.001,
        }
    )
    for channel in consent_channels():
        frame[consent_column(channel)] = rng.random(size) < 0.5
    return frame


def child(size: int) -> None:
    import datetime as dt
    import resource

    import pandas as pd

    from ml.activation.decisions import decide
    from ml.activation.export import build_channel_rows
    from ml.orchestration.config import load_config

    activation = load_config().activation
    ds = dt.date(2026, 10, 31)
    people = population(size)
    empty = pd.DataFrame({"ds": pd.Series(dtype="datetime64[us]"), "audience": [], "customer_id": [], "channel": []})
    yesterday = decide(people, empty, activation, ds - dt.timedelta(days=1)).assignments
    history = (
        yesterday.explode("channels")
        .rename(columns={"channels": "channel"})
        .assign(ds=pd.Timestamp(ds - dt.timedelta(days=1)))
    )
    started = time.perf_counter()
    result = decide(people, history, activation, ds)
    decide_seconds = time.perf_counter() - started
    emails = pd.Series({c: f"{c.lower()}@example.com" for c in result.assignments["customer_id"]})
    items = pd.Series({c: ["I1", "I2", "I3", "I4", "I5"] for c in result.assignments["customer_id"]})
    started = time.perf_counter()
    frames = build_channel_rows(result.assignments, people, emails, items, activation, ds)
    rows_seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "size": size,
                "decided": len(result.assignments),
                "history": len(history),
                "rows": sum(len(f) for f in frames.values()),
                "decide_seconds": decide_seconds,
                "rows_seconds": rows_seconds,
                "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
            }
        )
    )


def main() -> None:
    results = []
    for size in SIZES:
        output = subprocess.run(
            [sys.executable, __file__, "--child", str(size)], cwd=REPO, capture_output=True, text=True, check=True
        )
        results.append(json.loads(output.stdout.strip().splitlines()[-1]))
        print(results[-1])
    lines = [
        "## Audience decisions",
        "",
        f"Machine: {machine()}.",
        "",
        "The demo configuration's five audiences over generated populations, with the previous day's",
        "decisions as contact history (`python bench/bench_activation.py`).",
        "",
        "| customers | decided | channel rows | decide | build channel rows | peak memory |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['size']:,} | {r['decided']:,} | {r['rows']:,} | {r['decide_seconds']:.1f} s "
            f"| {r['rows_seconds']:.1f} s | {r['peak_gb']:.2f} GB |"
        )
    write_section("activation", "\n".join(lines) + "\n")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(int(sys.argv[2]))
    else:
        main()
