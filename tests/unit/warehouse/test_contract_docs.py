"""docs/data-contract.md is the users' copy of ml/warehouse/contract.py: they must not drift apart."""

import re

from ml.paths import REPO_ROOT
from ml.warehouse.contract import CONTRACT


def test_every_table_and_column_of_the_contract_is_documented():
    text = (REPO_ROOT / "docs" / "data-contract.md").read_text(encoding="utf-8")
    for table in CONTRACT.values():
        section = re.search(rf"^### `{table.name}`.*?(?=^### |\Z)", text, flags=re.M | re.S)
        assert section, f"docs/data-contract.md has no section for {table.name}"
        for column in table.required:
            assert re.search(rf"\| \*\*`{column}`\*\*", section.group(0)), f"{table.name}.{column} (required)"
        for column in table.optional:
            assert re.search(rf"\| `{column}`", section.group(0)), f"{table.name}.{column}"
