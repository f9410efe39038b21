"""Every table the platform writes is in dbt's lineage: a dbt model, or a source that dbt declares
(the landing tables the loader fills, the tables the Python stages write), with a description."""

from __future__ import annotations

import json

import duckdb
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("warehouse")]


def test_every_table_in_the_warehouse_is_a_dbt_model_or_a_declared_source(built_warehouse):
    manifest = json.loads((built_warehouse / "dbt" / "target" / "manifest.json").read_text())
    models = {
        f"{node['schema']}.{node['alias']}"
        for node in manifest["nodes"].values()
        if node["resource_type"] in ("model", "seed", "snapshot")
    }
    sources = {f"{source['schema']}.{source['identifier']}": source for source in manifest["sources"].values()}
    with duckdb.connect(str(built_warehouse / "warehouse.duckdb"), read_only=True) as connection:
        written = {
            f"{schema}.{table}"
            for schema, table in connection.execute(
                "select table_schema, table_name from information_schema.tables "
                "where table_schema not in ('information_schema', 'pg_catalog')"
            ).fetchall()
        }
    assert written - models - sources.keys() == set()
    python_tables = {name for name in sources if name.split(".")[0] != "raw"}
    assert len(python_tables & written) >= 15
    for name in python_tables:
        assert sources[name]["description"].strip(), f"{name} has no description in dbt"
