"""The dbt project held to dbt's own rules (dbt-project-evaluator's coverage, counted here from the
YAML, since dbt packages cannot be installed from this network): every model documented and tested on
its grain, by a multi-column test rather than a concatenated expression."""

from __future__ import annotations

import pytest
import yaml

from ml.paths import REPO_ROOT

MODELS = REPO_ROOT / "dbt_project" / "models"
GRAIN_TESTS = {"unique", "unique_combination_of_columns"}


def declared_models() -> dict[str, dict]:
    declared = {}
    for path in MODELS.rglob("*.yml"):
        for model in yaml.safe_load(path.read_text(encoding="utf-8")).get("models") or []:
            assert model["name"] not in declared, f"{model['name']} is declared twice ({path})"
            declared[model["name"]] = model
    return declared


def data_tests_of(model: dict) -> set[str]:
    return {next(iter(test)) if isinstance(test, dict) else test for test in model.get("data_tests") or []}


def grain_of(model: dict) -> list[str]:
    """The columns the model's grain test names (a model-level combination, or a column's `unique`)."""
    for test in model.get("data_tests") or []:
        if isinstance(test, dict) and "unique_combination_of_columns" in test:
            return test["unique_combination_of_columns"]["arguments"]["combination_of_columns"]
    return [column["name"] for column in model.get("columns") or [] if "unique" in data_tests_of(column)]


SQL_MODELS = sorted(path.stem for path in MODELS.rglob("*.sql"))


@pytest.mark.parametrize("name", SQL_MODELS)
def test_every_model_is_documented_and_tested_on_its_grain(name):
    model = declared_models().get(name)
    assert model is not None, f"{name} has no YAML entry"
    assert (model.get("description") or "").strip(), f"{name} has no description"
    assert grain_of(model), f"{name} has no test of its grain (unique or unique_combination_of_columns)"


def test_no_uniqueness_is_tested_on_a_concatenated_expression():
    """`unique` on `a || b` skips a row whose part is NULL and can join two keys into one."""
    for path in MODELS.rglob("*.yml"):
        text = path.read_text(encoding="utf-8")
        assert 'column_name: "' not in text or "||" not in text, f"{path}: test the columns themselves"


def test_every_declared_model_exists():
    assert set(declared_models()) <= set(SQL_MODELS)


def test_the_custom_grain_test_is_the_one_dbt_utils_names():
    """So that a project which can reach the dbt hub swaps in dbt_utils without touching a YAML file."""
    macro = (REPO_ROOT / "dbt_project" / "tests" / "generic" / "unique_combination_of_columns.sql").read_text()
    assert "{% test unique_combination_of_columns(model, combination_of_columns) %}" in macro
