"""Colab: badges point at real notebooks, and the setup cell installs only inside Colab, keeping Colab's torch."""

import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
from conftest import ROOT

from distilnb import colab

NOTEBOOKS = sorted((ROOT / "notebooks").glob("0*.ipynb"))


def setup_cell(path: Path) -> str:
    code = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    return "".join(code[0]["source"])


def badge_targets(text: str) -> list[str]:
    return re.findall(r"colab\.research\.google\.com/github/([^/]+/[^/]+)/blob/([^/]+)/([^)\s]+)", text)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_notebook_opens_with_a_badge_to_itself(path):
    first = "".join(json.loads(path.read_text())["cells"][0]["source"])
    assert colab.badge_markdown(f"notebooks/{path.name}") in first
    assert badge_targets(first) == [(colab.repository_path(), colab.BRANCH, f"notebooks/{path.name}")]


def test_readme_badges_resolve_to_files_of_the_repository():
    targets = badge_targets((ROOT / "README.md").read_text())
    assert targets
    for repository, branch, path in targets:
        assert (repository, branch) == (colab.repository_path(), colab.BRANCH) and (ROOT / path).is_file(), path


def test_every_notebook_has_the_same_setup_cell_naming_the_repository():
    cells = {setup_cell(path) for path in NOTEBOOKS}
    assert len(cells) == 1
    assert f'REPOSITORY = "{colab.REPOSITORY}"' in cells.pop()


def test_sync_rewrites_every_address_from_the_one_setting(tmp_path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    for path in NOTEBOOKS:
        (tmp_path / "notebooks" / path.name).write_text(path.read_text())
    (tmp_path / "README.md").write_text((ROOT / "README.md").read_text())
    assert colab.sync_links(tmp_path) == []
    monkeypatch.setattr(colab, "REPOSITORY", "https://github.com/someone/fork")
    assert len(colab.sync_links(tmp_path)) == len(NOTEBOOKS) + 1
    for path in (tmp_path / "notebooks").iterdir():
        assert 'REPOSITORY = "https://github.com/someone/fork"' in setup_cell(path)
        assert badge_targets(path.read_text())[0][0] == "someone/fork"


def run_setup_cell(monkeypatch, in_colab: bool, gpu: bool = True) -> list[list[str]]:
    """Execute the setup cell with Colab simulated (or not); return the commands it would have run."""
    commands = []
    monkeypatch.setattr(subprocess, "run", lambda command, **kwargs: commands.append(command))
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(os, "environ", dict(os.environ))
    if in_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "Tesla T4")
    exec(setup_cell(NOTEBOOKS[0]), {})
    return commands


def test_setup_cell_in_colab_clones_and_installs_without_touching_torch(monkeypatch, capsys):
    commands = run_setup_cell(monkeypatch, in_colab=True)
    assert commands == [["git", "clone", "--depth", "1", colab.REPOSITORY, "/content/distilnb"],
                        [sys.executable, "-m", "pip", "install", "-q", "-e", "/content/distilnb[demo]"]]
    assert not any("torch" in part for command in commands for part in command)
    assert "GPU: Tesla T4" in capsys.readouterr().out
    assert os.environ["TOKENIZERS_PARALLELISM"] == "false" and os.environ["WANDB_DISABLED"] == "true"
    assert sys.path[0] == "/content/distilnb"


def test_setup_cell_without_a_gpu_says_how_to_get_one(monkeypatch, capsys):
    run_setup_cell(monkeypatch, in_colab=True, gpu=False)
    assert "Change runtime type" in capsys.readouterr().out


def test_setup_cell_outside_colab_does_nothing(monkeypatch, capsys):
    before = dict(os.environ)
    assert run_setup_cell(monkeypatch, in_colab=False) == []
    assert capsys.readouterr().out == "" and dict(os.environ) == before


def test_pyproject_keeps_torch_a_range_so_colab_keeps_its_build():
    import tomllib

    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    torch_spec = next(d for d in dependencies if d.startswith("torch"))
    assert "==" not in torch_spec and ">=" in torch_spec
