"""Notebooks read like chapters, are committed clean, and import their logic from distilnb."""

import json
import os
import re

import pytest
from conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("0*.ipynb"))
EXPECTED = ["01_data", "02_tokenize", "03_finetune", "04_evaluate", "05_inference"]


def cells(path):
    return json.loads(path.read_text())["cells"]


def test_the_course_has_its_chapters_in_order():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    dirty = [i for i, c in enumerate(cells(path)) if c["cell_type"] == "code" and (c["outputs"] or c["execution_count"])]
    assert dirty == [], f"{path.name}: cells {dirty} carry outputs; clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapter_shape(path):
    nb = cells(path)
    assert nb[0]["cell_type"] == "markdown" and "".join(nb[0]["source"]).startswith("# ")
    tagged = [c for c in nb if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1 and "PROFILE" in "".join(tagged[0]["source"])
    last = "".join(nb[-1]["source"])
    exercises = re.findall(r"^\d\. ", last.split("## Exercises")[-1], flags=re.MULTILINE)
    assert "## Summary" in last and "## Exercises" in last and 3 <= len(exercises) <= 5
    code = [c for c in nb if c["cell_type"] == "code"]
    steps = [c for c in code[1:] if c not in tagged]  # the setup and parameters cells are set-up, not steps
    assert max(len("".join(c["source"]).splitlines()) for c in steps) <= 12, "code cells stay a few lines"
    assert "def " not in "".join("".join(c["source"]) for c in code), "functions belong in distilnb, not in cells"


def test_every_code_cell_but_runs_follows_an_explanation():
    for path in NOTEBOOKS:
        nb = cells(path)
        runs = 0
        for cell in nb:
            runs = runs + 1 if cell["cell_type"] == "code" else 0
            assert runs <= 2, f"{path.name}: more than two code cells in a row without a word of explanation"


@pytest.mark.parametrize("path", NOTEBOOKS[1:], ids=lambda p: p.stem)
def test_each_chapter_runs_alone_in_a_fresh_output_folder(path, tmp_path, monkeypatch):
    """Opened first, a chapter rebuilds what earlier chapters would have written (04 and 05 train the tiny model)."""
    import nbformat
    from nbclient import NotebookClient

    for name in [n for n in os.environ if n.startswith("DISTILNB_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DISTILNB_PROFILE", "smoke")
    monkeypatch.setenv("DISTILNB_OUTPUT_ROOT", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    assert (tmp_path / "smoke" / "data" / "dataset_dict.json").is_file()
    if path.stem >= "03":
        assert (tmp_path / "smoke" / "model" / "model.safetensors").is_file()
