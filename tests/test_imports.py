"""Imports point one way: each distilnb module imports only modules above it in docs/design.md's table."""

import ast
import re

import pytest
from conftest import ROOT

PACKAGE = ROOT / "distilnb"
# Modules outside the table: the package's own entry points and helpers, which may import anything listed.
OUTSIDE_THE_TABLE = {"__init__", "__main__", "colab"}


def design_order() -> list[str]:
    """Return the module names of the design's table, lowest (most basic) first."""
    text = (ROOT / "docs" / "design.md").read_text()
    table = text.split("## Modules, lowest first")[1].split("\n## ")[0]
    return re.findall(r"^\| `(\w+)\.py` \|", table, flags=re.MULTILINE)


def distilnb_imports(module: str) -> set[str]:
    """Return the distilnb modules a module imports anywhere in it, function-level imports included."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "distilnb":
            parts = node.module.split(".")
            found |= {parts[1]} if len(parts) > 1 else {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("distilnb.")}
    return found & {path.stem for path in PACKAGE.glob("*.py")}


def test_the_design_lists_every_module_once():
    order = design_order()
    assert len(order) == len(set(order)) and order[:4] == ["errors", "local_models", "config", "models"]
    assert set(order) | OUTSIDE_THE_TABLE >= {path.stem for path in PACKAGE.glob("*.py")}


@pytest.mark.parametrize("module", design_order())
def test_a_module_imports_only_modules_above_it(module):
    if not (PACKAGE / f"{module}.py").is_file():
        pytest.skip(f"{module}.py is not written yet")
    order = design_order()
    above = set(order[: order.index(module)])
    assert distilnb_imports(module) - above == set()


def test_helpers_outside_the_table_do_not_import_the_command_line():
    for module in OUTSIDE_THE_TABLE - {"__init__", "__main__"}:
        if (PACKAGE / f"{module}.py").is_file():
            assert "cli" not in distilnb_imports(module)


def test_the_checker_sees_function_level_imports():
    assert "local_models" in distilnb_imports("config")  # imported inside a property: found, so a hidden cycle too
