"""Audience definitions: the shipped ones cover the maturity curve; bad ones are refused with the
file, the audience and the key named; segment filters cannot carry anything but a boolean filter."""

from __future__ import annotations

import pytest
import yaml

from ml.activation.columns import segment_columns
from ml.activation.segments import SegmentError, compile_segment
from ml.errors import ConfigError
from ml.orchestration.config import load_config
from ml.paths import REPO_ROOT

SHIPPED = yaml.safe_load((REPO_ROOT / "config" / "personalization.yml").read_text())


def with_audience_change(tmp_path, audience: str, key: str, value) -> tuple:
    raw = yaml.safe_load((REPO_ROOT / "config" / "personalization.yml").read_text())
    raw["activation"]["audiences"][audience][key] = value
    path = tmp_path / "personalization.yml"
    path.write_text(yaml.safe_dump(raw))
    return path, raw


def config_error(path) -> str:
    with pytest.raises(ConfigError) as error:
        load_config(path)
    return str(error.value)


def test_the_demo_audiences_cover_the_maturity_curve_and_the_blueprint():
    audiences = load_config().activation.audiences
    assert len(audiences) >= 5
    levels = {name: audience.maturity for name, audience in audiences.items()}
    assert set(levels.values()) == {"demographic", "behavioral", "predictive"}
    assert levels["welcome_new_customers"] == "demographic"
    assert levels["cart_abandonment"] == levels["win_back_at_risk"] == "behavioral"
    assert levels["high_propensity_cross_sell"] == levels["churn_risk_care"] == "predictive"
    assert audiences["churn_risk_care"].channels == ["call_center"]
    assert any(len(audience.arms()) >= 3 for audience in audiences.values())  # a multivariate test
    assert len({audience.priority for audience in audiences.values()}) == len(audiences)
    for audience in audiences.values():  # every part of the blueprint is there
        assert audience.goal and audience.segment and audience.behavioral_identifier and audience.moment
        assert audience.channels and audience.tactics() and audience.hypothesis and audience.null_hypothesis


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("segment", "loyalty_tier = 'gold'", "unknown column 'loyalty_tier'"),
        ("segment", "frequency >= 1; drop table marts.customer_360", "must be one expression"),
        ("segment", "customer_id in (select customer_id from audit.erased_customers)", "subquery"),
        ("segment", "lower(country) = 'de'", "lower"),
        ("segment", "frequency + 1", "not a boolean expression"),
        ("segment", "country > 5", "does not type-check"),
        ("segment", "frequency >= 'often'", "does not type-check"),
        ("segment", "(" * 1_900 + "frequency > 1" + ")" * 1_900, "nested too deeply"),
        ("segment", " or ".join(["frequency > 1"] * 400), "at most 4,000"),
        ("holdout_percent", 120, "less than 100"),
        ("holdout_percent", 0, "greater than 0"),
        ("significance_level", 0.5, "less than or equal to 0.2"),
        ("priority", 0, "greater than or equal to 1"),
    ],
)
def test_a_bad_audience_key_names_the_file_the_audience_and_the_key(tmp_path, key, value, expected):
    path, _ = with_audience_change(tmp_path, "win_back_at_risk", key, value)
    message = config_error(path)
    assert str(path) in message
    assert f"activation.audiences.win_back_at_risk.{key}" in message
    assert expected in message


def test_an_unknown_channel_names_the_audience_and_the_key(tmp_path):
    path, _ = with_audience_change(tmp_path, "cart_abandonment", "channels", ["push", "fax"])
    message = config_error(path)
    assert str(path) in message and "'cart_abandonment'" in message and "'channels'" in message
    assert "unknown channels ['fax']" in message


def test_unknown_suppressions_personal_fields_and_too_many_arms_are_refused(tmp_path):
    path, _ = with_audience_change(tmp_path, "win_back_at_risk", "suppress", ["vip"])
    assert "'suppress': unknown suppressions ['vip']" in config_error(path)

    raw = yaml.safe_load((REPO_ROOT / "config" / "personalization.yml").read_text())
    raw["activation"]["channels"]["call_center"]["fields"] = ["language", "city"]
    path.write_text(yaml.safe_dump(raw))
    assert "activation.channels.call_center.fields" in config_error(path)

    arm = {"tactic": {"kind": "offer", "offer_code": "X"}}
    variants = [{"name": f"arm_{n}", **arm} for n in range(6)]
    path, _ = with_audience_change(tmp_path, "win_back_at_risk", "variants", variants)
    assert "activation.audiences.win_back_at_risk.variants" in config_error(path)

    path, _ = with_audience_change(tmp_path, "win_back_at_risk", "variants", [{"name": "control", **arm}])
    assert "holdout group's name" in config_error(path)


def test_recommendations_cannot_ask_for_more_items_than_the_recommender_scores(tmp_path):
    path, _ = with_audience_change(
        tmp_path, "high_propensity_cross_sell", "tactic", {"kind": "recommendations", "k": 50}
    )
    assert "'high_propensity_cross_sell', key 'tactic.k'" in config_error(path)


@pytest.mark.parametrize(
    ("segment", "rendered"),
    [
        ("country = 'DE' and frequency >= 1", "country = 'DE' AND frequency >= 1"),
        ("(rfm_segment in ('at_risk', 'lost'))", "rfm_segment IN ('at_risk', 'lost')"),
        (
            "has_consent_email and not latest_nps_category is null",
            "has_consent_email AND NOT latest_nps_category IS NULL",
        ),
        ("monetary / frequency > 50 -- average order", "monetary / frequency > 50"),
        ("tenure_days between 1 and 3", "tenure_days BETWEEN 1 AND 3"),
    ],
)
def test_segments_are_rendered_from_the_checked_tree(segment, rendered):
    assert compile_segment(segment, segment_columns()) == rendered


@pytest.mark.parametrize(
    "segment",
    [
        "select * from marts.customer_360",
        "country = 'DE' union select 1",
        "c.country = 'DE'",
        "country = (select max(country) from marts.customer_360)",
        "exists (select 1)",
        "read_csv('/etc/passwd') is not null",
        "*",
        "",
    ],
)
def test_anything_but_a_boolean_filter_over_known_columns_is_refused(segment):
    with pytest.raises(SegmentError):
        compile_segment(segment, segment_columns())
