"""examples/finetune.py, the course's take-away, runs on its own: only the libraries, no distilnb."""

import ast
import os
import subprocess
import sys

import pytest
from conftest import ROOT

SCRIPT = ROOT / "examples" / "finetune.py"


def test_the_script_imports_only_the_libraries_the_course_teaches():
    tree = ast.parse(SCRIPT.read_text())
    modules = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    modules |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "distilnb" not in modules
    assert modules <= {"argparse", "numpy", "torch", "datasets", "transformers", "sklearn"}, modules
    assert len(SCRIPT.read_text().splitlines()) <= 85, "the take-away stays short enough to read in one sitting"


@pytest.mark.slow
def test_the_script_fine_tunes_a_csv_and_prints_a_test_report(tmp_path):
    from distilnb.local_models import tiny_model_dir

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            str(ROOT / "data" / "support_tickets.csv"),
            "--model",
            str(tiny_model_dir()),
            "--epochs",
            "1",
            "--max-length",
            "64",
            "--output-dir",
            str(tmp_path / "model"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = result.stdout
    for heading in ("precision", "recall", "f1-score", "support", "macro avg"):
        assert heading in report
    import pandas as pd

    for label in pd.read_csv(ROOT / "data" / "support_tickets.csv")["label"].dropna().unique():
        assert any(line.split()[:1] == [label] for line in report.splitlines()), f"no report row for {label}"
    assert (tmp_path / "model" / "model.safetensors").is_file()
    assert (tmp_path / "model" / "config.json").is_file()
