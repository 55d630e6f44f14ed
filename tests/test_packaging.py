"""The set-up files agree with each other and with the README."""

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


def test_readme_commands_are_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    assert "make course" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_no_remote_code_and_no_pickle_loading_anywhere_in_the_package():
    source = "\n".join(path.read_text() for path in (ROOT / "distilnb").glob("*.py"))
    assert "trust_remote_code=True" not in source
    assert "torch.load(" not in source and "pickle.load" not in source


def test_dead_code_stays_gone():
    # Settings, parameters and checks that nothing used: they stay removed.
    import inspect

    from distilnb import config, plots, predict

    assert "extra" not in config.field_types()
    assert "unit" not in inspect.signature(plots.length_by_class).parameters
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
    check = ("from distilnb.config import Config; from distilnb.readers import read_source; "
             "cfg = Config.from_env(profile='offline'); import distilnb; "
             "print(cfg.dataset); print(distilnb.__file__); print(len(read_source(cfg.dataset)['all']))")
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site), "HOME": str(tmp_path)}, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    dataset, package, rows = done.stdout.split()
    assert Path(package).is_relative_to(site) and Path(dataset) == site / "distilnb/sample_data/support_tickets.csv"
    assert int(rows) == len(pd.read_csv(ROOT / "data" / "support_tickets.csv", dtype=str)) > 1000
