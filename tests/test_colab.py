"""Colab: badges point at real notebooks; the set-up cell installs only in Colab, where a GPU chooses the profile."""

import importlib.util
import json
import os
import sys
import types
from pathlib import Path

import pytest
from conftest import ROOT

from distilnb import colab

NOTEBOOKS = sorted((ROOT / "notebooks").glob("0*.ipynb"))


def links_tool():
    spec = importlib.util.spec_from_file_location("colab_links", ROOT / "tools" / "colab_links.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def setup_cell(path: Path) -> str:
    code = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    return "".join(code[0]["source"])


def badge_targets(text: str) -> list[tuple[str, str, str]]:
    import re

    return re.findall(r"colab\.research\.google\.com/github/([^/]+/[^/]+)/blob/([^/]+)/([^)\s]+)", text)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_notebook_opens_with_a_badge_to_itself(path):
    links = links_tool()
    first = "".join(json.loads(path.read_text())["cells"][0]["source"])
    assert links.badge_markdown(f"notebooks/{path.name}") in first
    assert badge_targets(first) == [(links.repository_path(), links.BRANCH, f"notebooks/{path.name}")]


def test_readme_badges_resolve_to_files_of_the_repository():
    links = links_tool()
    targets = badge_targets((ROOT / "README.md").read_text())
    assert targets
    for repository, branch, path in targets:
        assert (repository, branch) == (links.repository_path(), links.BRANCH) and (ROOT / path).is_file(), path


def test_every_notebook_has_the_same_setup_cell_cloning_the_repository():
    cells = {setup_cell(path) for path in NOTEBOOKS}
    assert len(cells) == 1
    assert f"{links_tool().REPOSITORY} /content/distilnb" in cells.pop()


def test_the_tool_rewrites_every_address_from_the_one_setting(tmp_path):
    links = links_tool()
    (tmp_path / "notebooks").mkdir()
    for path in NOTEBOOKS:
        (tmp_path / "notebooks" / path.name).write_text(path.read_text())
    (tmp_path / "README.md").write_text((ROOT / "README.md").read_text())
    assert links.sync_links(tmp_path) == []
    links.REPOSITORY = "https://github.com/someone/fork"
    assert len(links.sync_links(tmp_path)) == len(NOTEBOOKS) + 1
    for path in (tmp_path / "notebooks").iterdir():
        assert "https://github.com/someone/fork /content/distilnb" in setup_cell(path)
        assert badge_targets(path.read_text())[0][0] == "someone/fork"


def run_setup_cell(monkeypatch, in_colab: bool, gpu: bool = True, environ: dict | None = None):
    """Execute the set-up cell as IPython would, Colab simulated (or not); return the shell commands and environment."""
    from IPython.core.inputtransformer2 import TransformerManager

    commands = []
    shell = types.SimpleNamespace(system=commands.append)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(os, "environ", dict(environ if environ is not None else {"HOME": "/root"}))
    if in_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    exec(TransformerManager().transform_cell(setup_cell(NOTEBOOKS[0])), {"get_ipython": lambda: shell})
    return commands, os.environ


def test_setup_cell_in_colab_with_a_gpu_installs_and_chooses_the_full_profile(monkeypatch, capsys):
    commands, environ = run_setup_cell(monkeypatch, in_colab=True, gpu=True)
    assert len(commands) == 1 and "git clone" in commands[0] and "pip install -q -e" in commands[0]
    assert "torch" not in commands[0]  # Colab's own CUDA build of torch stays
    assert environ["DISTILNB_PROFILE"] == "full" and environ["TOKENIZERS_PARALLELISM"] == "false"
    assert "DISTILNB_PROFILE=full" in capsys.readouterr().out
    assert sys.path[0] == "/content/distilnb"


def test_setup_cell_in_colab_without_a_gpu_keeps_offline_and_says_how_to_get_one(monkeypatch, capsys):
    _, environ = run_setup_cell(monkeypatch, in_colab=True, gpu=False)
    assert "DISTILNB_PROFILE" not in environ
    assert "Change runtime type" in capsys.readouterr().out


def test_setup_cell_in_colab_keeps_a_profile_set_before(monkeypatch, capsys):
    _, environ = run_setup_cell(monkeypatch, in_colab=True, gpu=True, environ={"DISTILNB_PROFILE": "offline"})
    assert environ["DISTILNB_PROFILE"] == "offline"
    assert "keeps it" in capsys.readouterr().out


def test_setup_cell_outside_colab_does_nothing(monkeypatch, capsys):
    commands, environ = run_setup_cell(monkeypatch, in_colab=False)
    assert commands == [] and capsys.readouterr().out == "" and environ == {"HOME": "/root"}


@pytest.mark.parametrize(("environ", "gpu", "expected"), [
    ({}, True, ("full", True)),
    ({}, False, ("offline", False)),
    ({"DISTILNB_PROFILE": "offline"}, True, ("offline", False)),
    ({"DISTILNB_PROFILE": "smoke"}, False, ("smoke", False)),
])
def test_choose_profile_gpu_means_full_none_means_offline_an_explicit_setting_wins(environ, gpu, expected):
    assert colab.choose_profile(environ, gpu) == expected
    if expected[1]:
        assert environ["DISTILNB_PROFILE"] == "full"  # set for every chapter, not only this one


def test_a_typed_profile_still_beats_the_one_colab_chose(tmp_path):
    from distilnb import Config

    environ = {}
    colab.choose_profile(environ, gpu=True)
    assert Config.from_env(environ=environ, output_root=str(tmp_path)).profile == "full"
    assert Config.from_env(profile="offline", environ=environ, output_root=str(tmp_path)).profile == "offline"


def test_pyproject_keeps_torch_a_range_so_colab_keeps_its_build():
    import tomllib

    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    torch_spec = next(d for d in dependencies if d.startswith("torch"))
    assert "==" not in torch_spec and ">=" in torch_spec

