"""The day's changes per audience and channel, beside each full snapshot: what an ESP list sync or a
reverse-ETL tool sends instead of the whole list.

Against the newest published day before ds of the same channel (named in the manifest as
`changes.since`; none on the first day, when everyone has entered):
- `entered`: in today's file, not in that day's (today's row);
- `exited`: in that day's file, not in today's (that day's row, so the identifier to remove is there);
- `changed`: in both, with another arm, offer, content or recommended items (today's row).
Unchanged customers are not listed. Each row's `ds` is today's.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from ml.constants import CUSTOMER_ID

CHANGE = "change"
ENTERED, EXITED, CHANGED = "entered", "exited", "changed"
WHAT_IS_SENT = ("experiment_group", "offer_code", "content_id", "recommended_items")


def previous_day(channel_folder: Path, ds: dt.date) -> tuple[dt.date, Path] | None:
    """The newest published day (a folder with its manifest) of the channel before ds."""
    days = []
    for manifest in channel_folder.glob("ds=*/manifest.json"):
        day = dt.date.fromisoformat(manifest.parent.name.removeprefix("ds="))
        if day < ds:
            days.append((day, manifest.parent))
    return max(days) if days else None


def _sent(rows: pd.DataFrame) -> pd.Series:
    """What the customer is sent, as one comparable text per row."""
    items = rows["recommended_items"].map(lambda v: "|".join(v) if isinstance(v, list | np.ndarray) else "")
    parts = [rows[column].astype(object).where(rows[column].notna(), "") for column in WHAT_IS_SENT[:-1]]
    return pd.concat([*parts, items], axis=1).astype(str).agg("\x1f".join, axis=1)


def audience_changes(today: pd.DataFrame, before: pd.DataFrame | None, ds: dt.date) -> pd.DataFrame:
    """One audience's entered, exited and changed rows (columns: `change` then today's columns)."""
    columns = [CHANGE, *today.columns]
    if before is None or before.empty:
        return today.assign(**{CHANGE: ENTERED})[columns].reset_index(drop=True)
    earlier = before.set_index(CUSTOMER_ID)
    now = today.set_index(CUSTOMER_ID)
    entered = now.index.difference(earlier.index)
    exited = earlier.index.difference(now.index)
    both = now.index.intersection(earlier.index)
    differs = both[_sent(now.loc[both]).to_numpy() != _sent(earlier.loc[both]).to_numpy()] if len(both) else both
    parts = [
        now.loc[entered].assign(**{CHANGE: ENTERED}),
        earlier.loc[exited].reindex(columns=now.columns).assign(ds=ds, **{CHANGE: EXITED}),
        now.loc[differs].assign(**{CHANGE: CHANGED}),
    ]
    found = pd.concat([part for part in parts if len(part)] or [now.iloc[:0].assign(**{CHANGE: ENTERED})])
    return found.reset_index()[columns].sort_values([CHANGE, CUSTOMER_ID], ignore_index=True)


def change_counts(changes: pd.DataFrame) -> dict[str, int]:
    return {kind: int((changes[CHANGE] == kind).sum()) for kind in (ENTERED, EXITED, CHANGED)}
