"""A randomized campaign's export onto the landing contract: one send per row, the control group as
`control`, history and outcomes as orders in the right places in time, and errors that name the line."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from pydantic import ValidationError

from ml.orchestration.cli import main
from ml.synthetic.campaign_export import CONTROL_VALUE, MAPPING, planted_export
from ml.warehouse.campaign_export import CampaignExport, CampaignExportError, landing_tables, write_landing
from ml.warehouse.contract import CONTRACT

SENT_ON = dt.date(2026, 3, 2)


def mapping(**changes) -> CampaignExport:
    return CampaignExport.model_validate({**MAPPING, "sent_on": SENT_ON, **changes})


@pytest.fixture(scope="module")
def export() -> pd.DataFrame:
    return planted_export(600, seed=3)[0].astype(str)


def test_every_row_is_one_send_and_the_outcomes_fall_inside_the_goal_window(export, tmp_path):
    tables = landing_tables(export, mapping(), tmp_path / "export.csv")
    sends = tables["campaign_sends"]
    assert len(sends) == len(export) and sends["customer_id"].is_unique
    assert set(sends["arm"]) == {"reminder", "sale", "control"}
    assert (sends["is_control"].eq("true") == export["group"].eq(CONTROL_VALUE).to_numpy()).all()
    for table, rows in tables.items():  # only contract columns, every required one present
        assert set(rows.columns) <= set(CONTRACT[table].columns) and set(CONTRACT[table].required) <= set(rows.columns)

    orders = tables["orders"].assign(ordered_at=lambda o: pd.to_datetime(o["ordered_at"]))
    sent_at = pd.Timestamp(SENT_ON, tz="UTC")
    outcomes = orders[orders["order_id"].str.contains("-outcome-")]
    assert len(outcomes) == int(export["converted"].astype(int).sum())
    assert outcomes["ordered_at"].between(sent_at, sent_at + pd.Timedelta(days=14)).all()
    prior = orders[orders["order_id"].str.contains("-prior-")].set_index("customer_id")
    first = export.iloc[0]
    months = int(first["months_since_purchase"])
    assert abs((sent_at - prior.loc[first["customer"], "ordered_at"]).days - months * 30.44) <= 1.5
    assert prior.loc[first["customer"], "total_amount"] == pytest.approx(float(first["spend_last_year"]))
    customers = tables["customers"].set_index("customer_id")
    assert (
        pd.to_datetime(customers["signup_at"]) <= prior["ordered_at"].reindex(customers.index).fillna(sent_at)
    ).all()
    assert customers.loc[first["customer"], "acquisition_channel"] == first["channel"]


def test_customers_already_landed_get_only_their_sends(export, tmp_path):
    tables = landing_tables(export, mapping(customers_known=True), tmp_path / "export.csv")
    assert list(tables) == ["campaign_sends"] and len(tables["campaign_sends"]) == len(export)


def test_a_bad_value_or_a_repeated_customer_names_its_line_and_column(export, tmp_path):
    broken = export.copy()
    broken.loc[4, "spend"] = "12,50"
    with pytest.raises(CampaignExportError, match=r"line 6, column 'spend': '12,50' is not a number"):
        landing_tables(broken, mapping(), tmp_path / "export.csv")
    repeated = export.copy()
    repeated.loc[9, "customer"] = repeated.loc[2, "customer"]
    with pytest.raises(CampaignExportError, match=r"line 4: customer id .* is empty or repeated"):
        landing_tables(repeated, mapping(), tmp_path / "export.csv")
    with pytest.raises(CampaignExportError, match=r"name the control group's value"):
        landing_tables(export, mapping(control_arms=["No E-Mail"]), tmp_path / "export.csv")


def test_a_mapping_that_cannot_work_is_refused_before_anything_is_read(export, tmp_path):
    with pytest.raises(ValidationError, match="not customers columns"):
        mapping(attributes={"channel": "loyalty_tier"})
    with pytest.raises(ValidationError, match="recency_unit"):
        mapping(recency_unit="fortnights")
    with pytest.raises(ValidationError, match="map at least one outcome"):
        mapping(conversion_column=None, revenue_column=None, visit_column=None)
    path = tmp_path / "export.csv"
    export.drop(columns="group").to_csv(path, index=False)
    with pytest.raises(CampaignExportError, match=r"no column \['group'\] named by the mapping"):
        write_landing(path, mapping(), tmp_path / "landing")


def test_the_command_lands_the_files_and_prints_the_configuration_to_add(export, tmp_path, capsys):
    path = tmp_path / "export.csv"
    export.to_csv(path, index=False)
    (tmp_path / "mapping.yml").write_text(
        "\n".join(f"{key}: {value!r}" for key, value in {**MAPPING, "sent_on": SENT_ON.isoformat()}.items())
    )
    status = main(["campaign-export", str(path), "--mapping", str(tmp_path / "mapping.yml"), "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert status == 0
    assert "spring_test:\n      goal: {metric: purchase, window_days: 14}" in printed
    assert "python -m ml run --ds 2026-03-16 --allow-stale" in printed
    landed = pd.read_csv(tmp_path / "campaign_sends" / "campaign_spring_test.csv")
    assert len(landed) == len(export) and not list(tmp_path.glob("*/*.partial"))
