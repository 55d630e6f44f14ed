"""The set-up files agree with each other and with the README."""

import re
import tomllib

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
    # Defect 11 of issue 12: settings, parameters and checks that nothing used.
    import inspect

    from distilnb import config, plots, predict

    assert "extra" not in config.field_types()
    assert "unit" not in inspect.signature(plots.length_by_class).parameters
    assert not hasattr(predict, "require_int8_packages") and not hasattr(config, "seed_everything")


def test_the_wheel_ships_the_package_and_its_assets_without_packaging_warnings(tmp_path):
    """The smoke profile's vocabulary must be in the installed package, not only in a checkout."""
    import shutil
    import subprocess
    import sys
    import zipfile

    # From a copy: setuptools leaves build/ and *.egg-info/ in the tree it builds.
    source = shutil.copytree(ROOT, tmp_path / "source", ignore=shutil.ignore_patterns(
        ".git", ".venv", "outputs", "build", "*.egg-info", "__pycache__", ".pytest_cache"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
                            str(tmp_path), str(source)], capture_output=True, text=True, check=True)
    names = zipfile.ZipFile(next(tmp_path.glob("distilnb-*.whl"))).namelist()
    assert {"distilnb/cli/__init__.py", "distilnb/cli/train.py", "distilnb/assets/vocab.txt"} <= set(names)
    assert "Package would be ignored" not in built.stdout + built.stderr
