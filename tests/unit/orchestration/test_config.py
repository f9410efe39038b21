import pytest
import yaml

from ml.errors import ConfigError
from ml.orchestration.config import load_config
from ml.paths import REPO_ROOT


def test_the_shipped_configuration_is_valid():
    config = load_config()
    assert config.demo.customers == 5_000
    assert config.demo.days == 180


def test_an_unknown_key_is_named_with_its_file(tmp_path):
    path = tmp_path / "personalization.yml"
    path.write_text("demo:\n  customer: 10\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(path) in str(error.value)
    assert "demo.customer" in str(error.value)


def test_a_bad_value_is_named_with_its_key(tmp_path):
    path = tmp_path / "personalization.yml"
    path.write_text("demo:\n  bad_row_rate: 2\n")
    with pytest.raises(ConfigError, match=r"demo\.bad_row_rate"):
        load_config(path)


def test_a_missing_file_says_how_to_fix_it(tmp_path):
    with pytest.raises(ConfigError, match="PZ_CONFIG"):
        load_config(tmp_path / "absent.yml")


@pytest.mark.parametrize(
    ("planted", "message"),
    [
        ({"audience": "no_such_audience", "arms": {"treatment": 0.2}, "days": 5}, "is not an audience"),
        ({"audience": "browse_abandonment", "arms": {"free_shipping": 0.2}, "days": 5}, "are not arms of"),
        ({"audience": "browse_abandonment", "arms": {"treatment": 1.5}, "days": 5}, r"not a share in \(0, 1\]"),
    ],
)
def test_a_planted_lift_must_name_an_audience_its_arms_and_shares(tmp_path, planted, message):
    settings = yaml.safe_load((REPO_ROOT / "config" / "personalization.yml").read_text())
    settings["demo"]["planted_lift"] = planted
    path = tmp_path / "personalization.yml"
    path.write_text(yaml.safe_dump(settings))
    with pytest.raises(ConfigError, match=message) as error:
        load_config(path)
    assert "planted_lift" in str(error.value) and str(path) in str(error.value)


def test_the_generator_plants_only_the_browse_abandoned_moment(tmp_path):
    from ml.synthetic.settings import PlantedLift

    settings = yaml.safe_load((REPO_ROOT / "config" / "personalization.yml").read_text())
    settings["demo"]["planted_lift"] = {"audience": "cart_abandonment", "arms": {"reminder": 0.2}, "days": 5}
    path = tmp_path / "personalization.yml"
    path.write_text(yaml.safe_dump(settings))
    with pytest.raises(ValueError, match="browse_abandoned moment only"):
        (lambda config: PlantedLift.from_config(config.demo, config.activation))(load_config(path))


def test_a_window_too_short_for_the_horizon_is_refused_naming_the_keys_and_the_smallest_value(tmp_path):
    path = tmp_path / "personalization.yml"
    path.write_text("propensity:\n  horizon_days: 90\n  training_window_days: 60\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    message = str(error.value)
    assert "propensity" in message and "training_window_days" in message and "horizon_days" in message
    assert "96 or more" in message  # 90 days and a week less a day: a labelled Sunday on any weekday


def test_a_90_day_horizon_is_accepted_with_every_other_setting_at_its_default(tmp_path):
    path = tmp_path / "personalization.yml"
    path.write_text("propensity:\n  horizon_days: 90\n")
    config = load_config(path).propensity
    assert config.label_lag_days == 91 and config.feature_snapshot_days == 180 + 91
