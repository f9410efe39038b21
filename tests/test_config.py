import pytest

from ml.config import ConfigError, load_config


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
