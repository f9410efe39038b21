"""The package's shape: no import cycles, a paths module that imports nothing from the package, and one
stage registry that the DAG, the pipeline and the docs read."""

from __future__ import annotations

import ast
from pathlib import Path

from ml.paths import REPO_ROOT

PACKAGE = REPO_ROOT / "ml"


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imported_modules(path: Path) -> set[str]:
    """The package's modules this file imports, at any depth of the file (a function-level import
    is still an edge: it runs when the function does)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name in MODULES}


def import_cycles() -> list[list[str]]:
    graph = {name: imported_modules(path) - {name} for name, path in MODULES.items()}
    cycles, state = [], {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for neighbour in sorted(graph[name]):
            if state.get(neighbour) == "open":
                cycles.append([*trail[trail.index(neighbour) :], neighbour])
            elif neighbour not in state:
                visit(neighbour, [*trail, neighbour])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    return cycles


def test_no_module_of_the_package_imports_itself_back_through_others():
    assert import_cycles() == []


def test_the_paths_module_imports_nothing_from_the_package():
    assert imported_modules(MODULES["ml.paths"]) == set()


def test_each_package_owns_its_settings_and_config_only_combines_them():
    config = imported_modules(MODULES["ml.orchestration.config"])
    assert {
        "ml.synthetic.demo_settings",
        "ml.warehouse.settings",
        "ml.orchestration.settings",
        "ml.recommender.settings",
        "ml.propensity.settings",
        "ml.activation.settings",
        "ml.mlops.settings",
    } <= config
    source = MODULES["ml.orchestration.config"].read_text(encoding="utf-8")
    assert source.count("class ") == 1  # PlatformConfig: the sections live in their packages


def test_every_error_a_user_can_act_on_derives_from_the_platform_error():
    from ml.errors import PlatformError

    errors = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and node.name.endswith("Error"):
                errors.append((name, node.name))
    assert errors
    for module, error in errors:
        cls = getattr(__import__(module, fromlist=[error]), error)
        assert issubclass(cls, PlatformError), f"{module}.{error}"


def warehouse_opening_calls(path: Path) -> list[int]:
    """Lines of `duckdb.connect(<a file>)` calls: a connection to a database file, not an in-memory one."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "connect"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "duckdb"
        and (node.args or any(keyword.arg == "database" for keyword in node.keywords))
    ]


def test_only_the_engine_module_opens_the_warehouse():
    """Every stage opens the warehouse through ml.warehouse.engine.open_warehouse: its settings (and the
    engine) are decided there once. In-memory DuckDB connections (`duckdb.connect()`) are free."""
    opened = {name: warehouse_opening_calls(path) for name, path in MODULES.items()}
    assert opened["ml.warehouse.engine"], "the engine module should open the warehouse file"
    assert {name: lines for name, lines in opened.items() if lines and name != "ml.warehouse.engine"} == {}


MAX_FUNCTION_LINES = 80


def test_no_function_of_the_package_is_longer_than_80_lines():
    """A stage reads, computes and writes in functions of its own (STYLE, and issue 40's rule)."""
    long = [
        f"{path.relative_to(REPO_ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in sorted(PACKAGE.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []
