"""What executing the chapters must show, beyond nbval's run of them in the offline profile (`make test`).

nbval executes every notebook in order; notebooks/conftest.py fails any cell whose figure would print as text. Here:
the `evaluate` cell's offline sentence, and chapters 04 and 05 opened first, in a fresh output folder (the smoke
profile's tiny model, trained on the spot).
"""

import json
import os
import time

import pytest
from conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("0*.ipynb"))
def execute(path, environment: dict[str, str], output_root, timeout: int = 1800):
    """Return (executed notebook, seconds) after running it with nbclient, its kernel seeing only `environment`'s
    DISTILNB_* settings (the caller's are set aside, then put back)."""
    import nbformat
    from nbclient import NotebookClient

    saved = dict(os.environ)
    for name in [n for n in os.environ if n.startswith("DISTILNB_")]:
        del os.environ[name]
    os.environ.update(environment)
    try:
        notebook = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        client = NotebookClient(
            notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
        )
        client.execute()
        seconds = time.perf_counter() - start
    finally:
        os.environ.clear()
        os.environ.update(saved)
    folder = output_root / "notebooks"
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, folder / path.name)
    return notebook, seconds


def course_environment(profile: str, output_root) -> dict[str, str]:
    return {
        "DISTILNB_PROFILE": profile,
        "DISTILNB_OUTPUT_ROOT": str(output_root),
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
    }


def test_the_evaluate_cell_gives_the_hub_sentence_when_evaluate_cannot_download(monkeypatch, capsys):
    """evaluate.load raises FileNotFoundError when it cannot fetch the metric's code: the cell says so in a sentence."""
    import sys
    import types

    cell = next(
        c
        for c in json.loads((ROOT / "notebooks" / "04_evaluate.ipynb").read_text())["cells"]
        if c["cell_type"] == "code" and 'evaluate.load("accuracy")' in "".join(c["source"])
    )
    fake = types.ModuleType("evaluate")

    def load(name):
        raise FileNotFoundError(
            f"Couldn't find a module script at {name}/{name}.py. Module '{name}' doesn't exist on the Hub either."
        )

    fake.load = load
    monkeypatch.setitem(sys.modules, "evaluate", fake)
    exec("".join(cell["source"]), {"y_pred": [0, 1], "y_true": [0, 1], "accuracy_score": lambda a, b: 1.0})
    printed = capsys.readouterr().out.strip()
    assert "could not download the metric's code from the Hugging Face Hub" in printed and printed.count("\n") == 0


@pytest.mark.slow
@pytest.mark.parametrize("stem", ["04_evaluate", "05_inference"])
def test_chapter_runs_alone_in_a_fresh_output_folder(stem, tmp_path):
    """Opened first, 04 and 05 rebuild the splits and train the model they need (the smoke profile's tiny one)."""
    path = ROOT / "notebooks" / f"{stem}.ipynb"
    # One epoch: this test is about what a chapter opened first builds, not about how well the tiny model learns.
    notebook, _ = execute(path, {**course_environment("smoke", tmp_path), "DISTILNB_EPOCHS": "1"}, tmp_path)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert not [o for cell in code for o in cell.get("outputs", []) if o.output_type == "error"]
    assert (tmp_path / "smoke" / "data" / "dataset_dict.json").is_file()
    assert (tmp_path / "smoke" / "model" / "model.safetensors").is_file()
