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


def package_modules() -> set[str]:
    """Return distilnb's modules: its .py files and its subpackages (a folder with __init__.py, such as cli/)."""
    return {path.stem for path in PACKAGE.glob("*.py")} | {path.parent.name for path in PACKAGE.glob("*/__init__.py")}


def distilnb_imports(module: str, source: str | None = None) -> set[str]:
    """Return the distilnb modules a module (or the given source) imports anywhere, function-level imports included."""
    tree = ast.parse(source if source is not None else (PACKAGE / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "distilnb":
            parts = node.module.split(".")
            found |= {parts[1]} if len(parts) > 1 else {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("distilnb.")}
    return found & package_modules()


def test_the_design_lists_every_module_once():
    order = design_order()
    assert len(order) == len(set(order)) and order[0] == "errors"
    assert order.index("config") < order.index("models") < order.index("train")
    assert set(order) | OUTSIDE_THE_TABLE >= {path.stem for path in PACKAGE.glob("*.py")}


@pytest.mark.parametrize("module", design_order())
def test_a_module_imports_only_modules_above_it(module):
    # A module the design lists must exist: a deleted one left in the table fails here rather than being skipped.
    assert (PACKAGE / f"{module}.py").is_file(), f"docs/design.md lists {module}.py, which distilnb does not have"
    order = design_order()
    above = set(order[: order.index(module)])
    assert distilnb_imports(module) - above == set()


def test_helpers_outside_the_table_do_not_import_the_command_line():
    for module in OUTSIDE_THE_TABLE - {"__init__", "__main__"}:
        if (PACKAGE / f"{module}.py").is_file():
            assert "cli" not in distilnb_imports(module)


def test_the_checker_sees_function_level_imports_and_subpackages():
    source = "def resolve():\n    from distilnb.errors import DistilnbError\n    import distilnb.data\n"
    assert distilnb_imports("any", source) == {"errors", "data"}  # imports inside a function count
    assert distilnb_imports("any", "from distilnb import no_such_module\n") == set()
    # The command line, a module or a subpackage (cli/__init__.py): importing it from below is seen either way.
    assert distilnb_imports("any", "from distilnb.cli import options\n") == {"cli"}


def imported_by(statement: str) -> set[str]:
    """Return the top-level modules `python -X importtime -c statement` reports importing, in a fresh process."""
    import os
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-X", "importtime", "-c", statement], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    # Each line: "import time: self [us] | cumulative | <indent>module.name".
    lines = [line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")]
    return {name.split(".")[0] for name in lines}


def test_inference_imports_no_data_stack():
    loaded = imported_by("import distilnb.predict")
    assert {"numpy", "distilnb"} <= loaded  # the measure sees what predict does import
    # nor torch and transformers: a Predictor imports them when it loads a PyTorch folder, not an export
    assert loaded & {"pandas", "sklearn", "datasets", "torch", "transformers"} == set()
