"""The day's changes per audience: who entered, who exited (with the identifier to remove), whose message
changed; nobody unchanged, and everyone entered on the first day."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from ml.activation.changes import audience_changes, change_counts, previous_day

DS = dt.date(2026, 10, 31)


def rows(*customers: tuple[str, str, list[str] | None], ds: dt.date = DS) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ds": ds,
            "audience": "win_back",
            "customer_id": [c for c, _, _ in customers],
            "experiment_group": "reminder",
            "offer_code": [offer for _, offer, _ in customers],
            "content_id": None,
            "recommended_items": [items for _, _, items in customers],
            "email": [f"{c.lower()}@example.com" for c, _, _ in customers],
        }
    )


def test_entered_exited_and_changed_against_the_day_before():
    before = rows(("C1", "BACK10", ["I1", "I2"]), ("C2", "BACK10", None), ("C3", None, ["I1"]), ds=DS.replace(day=30))
    today = rows(("C1", "BACK10", ["I1", "I2"]), ("C3", None, ["I2"]), ("C4", "BACK10", None))
    changes = audience_changes(today, before, DS)
    by_customer = changes.set_index("customer_id")
    assert change_counts(changes) == {"entered": 1, "exited": 1, "changed": 1}
    assert by_customer.loc["C4", "change"] == "entered" and by_customer.loc["C3", "change"] == "changed"
    assert by_customer.loc["C3", "recommended_items"] == ["I2"]  # today's row
    assert by_customer.loc["C2", "change"] == "exited" and by_customer.loc["C2", "email"] == "c2@example.com"
    assert (changes["ds"] == DS).all() and "C1" not in by_customer.index
    assert list(changes.columns) == ["change", *today.columns]


def test_on_the_first_day_everyone_has_entered_and_an_unchanged_day_lists_nobody():
    today = rows(("C1", "BACK10", None), ("C2", None, ["I1"]))
    assert set(audience_changes(today, None, DS)["change"]) == {"entered"}
    assert audience_changes(today, today, DS).empty
    assert list(audience_changes(today, today, DS).columns) == ["change", *today.columns]


def test_the_previous_day_is_the_newest_published_one_before_ds(tmp_path):
    for day in ("2026-10-27", "2026-10-29", "2026-10-31", "2026-11-02"):
        (tmp_path / f"ds={day}").mkdir()
        (tmp_path / f"ds={day}" / "manifest.json").write_text("{}")
    (tmp_path / "ds=2026-10-30").mkdir()  # no manifest: never published
    assert previous_day(tmp_path, DS) == (dt.date(2026, 10, 29), tmp_path / "ds=2026-10-29")
    assert previous_day(tmp_path, dt.date(2026, 10, 27)) is None


def published_day(ds: dt.date, customers: list[str]) -> None:
    """Publish the email files of `ds` with `customers` in win_back (the real writer, a small config)."""
    from ml.activation.export import channel_columns, write_channel_files
    from ml.warehouse.frames import typed_frame
    from tests.unit.activation.test_decisions_and_exports import ACTIVATION

    frame = pd.DataFrame(
        {
            "ds": ds,
            "audience": "win_back",
            "customer_id": customers,
            "experiment_group": "a",
            "score": 0.5,
            "recommended_items": [None] * len(customers),
            "tactic": "offer",
            "offer_code": "BACK10",
            "content_id": None,
            "email": [f"{c.lower()}@example.com" for c in customers],
        }
    )
    frame = typed_frame(frame.to_dict("records"), channel_columns(ACTIVATION, "email"))  # the other columns empty
    assignments = frame[["audience", "customer_id", "experiment_group"]].assign(
        channels=[["email"]] * len(frame), experiment_version="v1"
    )
    funnel = pd.DataFrame(columns=["audience", "step", "customers"])  # other audiences: empty files
    write_channel_files("email", frame, ACTIVATION, "0" * 64, ds, assignments, {}, funnel)


def test_the_erasure_purge_reaches_a_customer_who_is_only_in_a_change_file(tmp_path, monkeypatch):
    import json

    from ml.activation.export import purge_erased_from_exports
    from tests.unit.activation.test_decisions_and_exports import ACTIVATION

    monkeypatch.setenv("PZ_DATA_DIR", str(tmp_path))
    published_day(DS.replace(day=30), ["C1", "C2"])
    published_day(DS, ["C1", "C3"])
    folder = tmp_path / "exports" / "email" / f"ds={DS}"
    changes = pd.read_parquet(folder / "changes" / "win_back.parquet").set_index("customer_id")
    assert changes["change"].to_dict() == {"C2": "exited", "C3": "entered"}
    assert changes.loc["C2", "email"] == "c2@example.com"

    purge_erased_from_exports(ACTIVATION, erased=["C2"])
    after = pd.read_parquet(folder / "changes" / "win_back.parquet")
    assert list(after["customer_id"]) == ["C3"]
    assert "c2@example.com" not in (folder / "changes" / "win_back.csv").read_text()
    entry = json.loads((folder / "manifest.json").read_text())["audiences"]
    (win_back,) = [e for e in entry if e["audience"] == "win_back"]
    assert win_back["changes"]["exited"] == 0 and win_back["changes"]["since"] == "2026-10-30"


def test_the_manifest_says_what_every_column_means(tmp_path, monkeypatch):
    import json

    monkeypatch.setenv("PZ_DATA_DIR", str(tmp_path))
    published_day(DS, ["C1"])
    manifest = json.loads((tmp_path / "exports" / "email" / f"ds={DS}" / "manifest.json").read_text())
    assert set(manifest["column_meanings"]) == set(manifest["columns"])
    score = manifest["column_meanings"]["score"]
    assert "probability" in score and "4 decimals" in score
