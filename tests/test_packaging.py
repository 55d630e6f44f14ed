"""The set-up files agree with each other and with the README."""

import ast
import re
import tomllib
from pathlib import Path

import yaml
from conftest import ROOT


def requirement_names(specs: list[str]) -> dict[str, str]:
    """Return {normalised name: version spec} of requirement strings."""
    result = {}
    for spec in specs:
        name = re.match(r"[A-Za-z0-9_.\-]+", spec).group(0).lower().replace("_", "-")
        result[{"pytorch": "torch"}.get(name, name)] = spec[len(name):].replace(" ", "")
    return result


def test_environment_yml_names_the_same_dependencies_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = [spec for group in project["optional-dependencies"].values() for spec in group]
    wanted = requirement_names(project["dependencies"] + extras)
    conda = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    pip_section = next(item["pip"] for item in conda if isinstance(item, dict))
    listed = [item for item in conda if isinstance(item, str) and not item.startswith(("python", "pip"))]
    got = requirement_names(listed + [item for item in pip_section if not item.startswith("-e")])
    assert got == wanted


def make_dry_run(target: str) -> str:
    """Return the commands `make -n target` would run (none is run), as if set-up were already done."""
    import subprocess

    done = subprocess.run(["make", "-n", "-o", "setup", target, "PY=python"], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_readme_commands_are_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    commands = set(re.findall(r"^make (\w+)\b", readme, flags=re.MULTILINE))  # the commands, as typed
    assert commands >= {"course", "test"}
    assert " -m pytest " in make_dry_run("test") and " -m ruff check " in make_dry_run("test")
    assert " nbconvert " in make_dry_run("course") and "notebooks/0*.ipynb" in make_dry_run("course")
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines() if not line.startswith("#")]
    assert "make test" in ci  # a command CI runs, not a comment


def calls_and_keywords(tree: ast.AST) -> tuple[set[str], list[tuple[str, ast.expr]]]:
    """Return the dotted names called in a module, and its (keyword, value) pairs, dict literals' keys included."""
    called, keywords = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            called.add(ast.unparse(node.func))
            keywords += [(k.arg, k.value) for k in node.keywords if k.arg]
        elif isinstance(node, ast.Dict):
            keywords += [(k.value, v) for k, v in zip(node.keys, node.values, strict=True)
                         if isinstance(k, ast.Constant) and isinstance(k.value, str)]
    return called, keywords


def python_files() -> list[Path]:
    """Return the package's modules, every subpackage included, and the repository's scripts and examples."""
    folders = ("distilnb", "benchmarks", "examples", "tools")
    return [path for folder in folders for path in (ROOT / folder).rglob("*.py")]


def test_no_remote_code_and_no_pickle_loading_anywhere_in_the_package():
    assert ROOT / "distilnb" / "cli" / "predict.py" in python_files()  # subpackages are searched too
    for path in python_files():
        called, keywords = calls_and_keywords(ast.parse(path.read_text()))
        remote = [ast.unparse(value) for name, value in keywords if name == "trust_remote_code"]
        assert all(value == "False" for value in remote), f"{path.relative_to(ROOT)} trusts remote code: {remote}"
        assert called & {"torch.load", "pickle.load", "pickle.loads", "joblib.load"} == set(), path


def test_dead_code_stays_gone():
    # Settings, parameters and checks that nothing used: they stay removed, so passing them is refused.
    import pytest

    from distilnb import config, plots, predict
    from distilnb.errors import SettingError

    with pytest.raises((TypeError, SettingError)):
        config.Config.from_env(profile="smoke", environ={}, extra="x")
    with pytest.raises(TypeError):
        plots.length_by_class(["a"], ["p"], unit="tokens")
    assert not hasattr(predict, "require_int8_packages") and not hasattr(config, "seed_everything")


def test_the_wheel_ships_every_module_and_the_sample_data_that_an_installed_copy_uses(tmp_path):
    """The wheel holds every module and asset; an installed copy (no checkout beside it) reads its own sample data."""
    import shutil
    import subprocess
    import sys
    import zipfile

    import pandas as pd

    # From a copy: setuptools leaves build/ and *.egg-info/ in the tree it builds.
    source = shutil.copytree(ROOT, tmp_path / "source", ignore=shutil.ignore_patterns(
        ".git", ".venv", "outputs", "build", "*.egg-info", "__pycache__", ".pytest_cache"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
                            str(tmp_path), str(source)], capture_output=True, text=True, check=True)
    wheel = zipfile.ZipFile(next(tmp_path.glob("distilnb-*.whl")))
    modules = {path.relative_to(ROOT).as_posix() for path in (ROOT / "distilnb").rglob("*.py")}
    assert modules - set(wheel.namelist()) == set()  # a subpackage missing from pyproject's list fails here
    assert {"distilnb/assets/vocab.txt", "distilnb/sample_data/support_tickets.csv"} <= set(wheel.namelist())
    assert "Package would be ignored" not in built.stdout + built.stderr
    # Installed as pip would (unpacked into a site folder) and imported from elsewhere, away from the checkout.
    site = tmp_path / "site"
    wheel.extractall(site)
    check = ("from distilnb.config import Config, resolve_path; from distilnb.readers import read_source; "
             "cfg = Config.from_env(profile='offline'); import distilnb; "
             "print(resolve_path(cfg.dataset)); print(distilnb.__file__); print(len(read_source(cfg.dataset)['all']))")
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site), "HOME": str(tmp_path)}, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    dataset, package, rows = done.stdout.split()
    assert Path(package).is_relative_to(site) and Path(dataset) == site / "distilnb/sample_data/support_tickets.csv"
    assert int(rows) == len(pd.read_csv(ROOT / "data" / "support_tickets.csv", dtype=str)) > 1000
