"""distilnb export: the ONNX folder's scores against PyTorch's, predict --model-dir on it, and the CPU flags line."""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from distilnb import cli, export, hardware
from distilnb.predict import OnnxClassifier, Predictor

ROOT = Path(__file__).resolve().parent.parent
# Stated tolerances on class probabilities: fp32 ONNX computes what PyTorch computes (measured 6e-7 on the smoke
# model); int8 rounds every weight to 1 part in 255 of its channel's range (measured 0.023 on the same texts).
FP32_TOLERANCE, INT8_TOLERANCE = 1e-5, 0.1
INT8_LABEL_AGREEMENT = 0.95

AVX2_ONLY = "processor\t: 0\nmodel name\t: AMD EPYC 7B12\nflags\t\t: fpu sse2 avx avx2 fma\n"
VNNI = "processor\t: 0\nmodel name\t: AMD EPYC 9B14\nflags\t\t: avx2 avx512f avx512_vnni avx_vnni\n"
AMX = "model name\t: Intel(R) Xeon(R) Platinum 8481C\nflags\t\t: avx2 avx512_vnni amx_bf16 amx_tile amx_int8\n"


def run_cli(*args: str) -> tuple[int, str, str]:
    """Return (exit status, stdout, stderr) of `python -m distilnb ...` run in this process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(args))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def texts(sample_splits) -> list[str]:
    """Test texts of the sample, short and long, that no export was traced with."""
    return list(sample_splits["test"]["text"][:120])


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory) -> dict[str, Path]:
    """The smoke model exported twice: {"fp32": folder, "int8": folder}."""
    _, folder = trained
    target = tmp_path_factory.mktemp("onnx")
    return {precision: export.export(folder, target / precision, int8=precision == export.INT8).folder
            for precision in (export.FP32, export.INT8)}


# ---------------------------------------------------------------- the CPU's flags


@pytest.mark.parametrize(("cpuinfo", "expected"), [
    (AVX2_ONLY, {"avx2": True, "avx512_vnni": False, "amx": False}),
    (VNNI, {"avx2": True, "avx512_vnni": True, "amx": False}),
    (AMX, {"avx2": True, "avx512_vnni": True, "amx": True}),
    ("", {"avx2": None, "avx512_vnni": None, "amx": None}),
])
def test_instruction_sets_are_read_from_the_cpuinfo_flags(cpuinfo, expected):
    assert hardware.instruction_sets(cpuinfo) == expected


def test_the_cpu_summary_names_the_model_and_every_flag():
    assert hardware.cpu_summary(AVX2_ONLY) == "AMD EPYC 7B12; avx2 yes, avx512_vnni no, amx no"
    assert hardware.cpu_summary(AMX).endswith("avx512_vnni yes, amx yes")


def test_every_benchmark_header_prints_the_cpu_flags(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    common = importlib.import_module("_common")
    monkeypatch.setattr(hardware, "cpuinfo_text", lambda: VNNI)
    line = next(line for line in common.header("t").splitlines() if "instruction sets" in line)
    assert line == "- CPU instruction sets for int8: avx2 yes, avx512_vnni yes, amx no"


# ---------------------------------------------------------------- the exported folder


def test_the_export_holds_the_graph_tokenizer_labels_and_records(exported, trained):
    _, model = trained
    folder = exported[export.INT8]
    files = {path.name for path in folder.iterdir()}
    assert {"model.onnx", "config.json", "labels.json", "tokenizer.json", "distilnb_config.json",
            "training_rows.json", "distilnb_export.json"} <= files
    names = Predictor.from_folder(model, on="cpu").label_names
    assert json.loads((folder / "labels.json").read_text()) == names
    record = json.loads((folder / "distilnb_export.json").read_text())
    assert record["precision"] == "int8" and record["output"] == "logits"
    assert (folder / "model.onnx").stat().st_size < (exported[export.FP32] / "model.onnx").stat().st_size / 2


@pytest.mark.parametrize("precision", [export.FP32, export.INT8])
def test_an_exported_graph_names_no_folder_of_this_machine(exported, precision):
    # torch.onnx records each node's Python stack, with the virtual environment's path: a shipped file must not, and
    # its size must not depend on where the project was installed (chapter 08 prints it).
    graph = (exported[precision] / "model.onnx").read_bytes()
    assert sys.prefix.encode() not in graph and str(ROOT).encode() not in graph
    assert b"pkg.torch.onnx.stack_trace" not in graph


@pytest.mark.parametrize(("precision", "tolerance"), [(export.FP32, FP32_TOLERANCE), (export.INT8, INT8_TOLERANCE)])
def test_exported_scores_equal_pytorchs_within_the_stated_tolerance(exported, trained, texts, precision, tolerance):
    _, model = trained
    reference = Predictor.from_folder(model, on="cpu").probabilities(texts)
    onnx = Predictor.from_folder(exported[precision])
    assert isinstance(onnx.model, OnnxClassifier)
    scores = onnx.probabilities(texts)
    assert np.abs(scores - reference).max() <= tolerance
    assert np.mean(scores.argmax(1) == reference.argmax(1)) >= (1.0 if precision == export.FP32
                                                                 else INT8_LABEL_AGREEMENT)


def test_predict_runs_the_exported_folder(exported, trained, texts):
    _, model = trained
    code, out, err = run_cli("predict", "--model-dir", str(exported[export.FP32]), "--top-k", "2", *texts[:3])
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    expected = Predictor.from_folder(model, on="cpu").predict(texts[:3], top_k=2)
    assert [row["label"] for row in rows] == [row["label"] for row in expected]
    assert [list(row["scores"]) for row in rows] == [list(row["scores"]) for row in expected]


def test_evaluate_scores_the_exported_folder_as_it_scores_the_model(exported, trained):
    _, model = trained
    scores = {}
    for folder in (model, exported[export.FP32]):
        code, out, err = run_cli("evaluate", "--model-dir", str(folder), "--json", "--skip-seen", "--threads", "1")
        assert code == 0, err[-2000:]
        scores[folder] = json.loads(out)
    ours, theirs = scores[exported[export.FP32]], scores[model]
    assert ours["accuracy"] == theirs["accuracy"] and ours["f1_macro"] == pytest.approx(theirs["f1_macro"])


def test_the_export_command_writes_beside_the_model_and_says_how_to_run_it(trained):
    _, model = trained
    code, out, err = run_cli("export", "--model-dir", str(model), "--int8")
    assert code == 0, err
    assert (model.parent / "onnx-int8" / "model.onnx").is_file()
    assert out.startswith("Exported int8 ONNX") and "model.onnx" in out
    assert "predict --model-dir" in err


def test_exporting_a_folder_without_a_model_is_one_line(tmp_path):
    code, out, err = run_cli("export", "--model-dir", str(tmp_path))
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and "config.json" in err


def test_quantized_builds_its_int8_copy_with_the_export_code(trained, texts, monkeypatch):
    _, model = trained
    calls = []
    original = export.onnx_graph
    monkeypatch.setattr(export, "onnx_graph", lambda *a, **k: calls.append(k) or original(*a, **k))
    int8 = Predictor.from_folder(model, on="cpu").quantized()
    assert calls == [{"int8": True}] and isinstance(int8.model, OnnxClassifier)
    assert "distilnb.export" in sys.modules


# ---------------------------------------------------------------- predict on a model folder with its export beside it

# What an export spares predict's start-up: torch (about 2 s to import on a small CPU) and transformers (which imports
# torch whenever it is installed, and its model classes accelerate and torch.distributed).
TRAINING_STACK = ("torch", "transformers")


def predict_fresh(model: Path, texts: list[str]) -> tuple[list[dict], str, bool]:
    """Run `predict --model-dir model` in a fresh process; return its rows, its stderr and whether it imported torch
    or transformers (the start-up an export saves)."""
    check = ("import json, sys\nfrom distilnb import cli\n"
             f"code = cli.main(['predict', '--threads', '1', '--top-k', '2', '--model-dir', {str(model)!r}, "
             f"*{texts!r}])\nprint(json.dumps([code, any(name in sys.modules for name in {TRAINING_STACK!r})]))")
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=300,
                          env={k: v for k, v in os.environ.items() if not k.startswith("DISTILNB_")})
    assert done.returncode == 0, done.stderr[-3000:]
    *rows, last = done.stdout.strip().splitlines()
    code, training_stack = json.loads(last)
    assert code == 0, done.stderr[-3000:]
    return [json.loads(row) for row in rows], done.stderr, training_stack


@pytest.fixture(scope="module")
def run_with_export(trained, tmp_path_factory) -> Path:
    """A copy of the smoke run's model folder (file times kept) in a run of its own, exported beside it (onnx/)."""
    _, model = trained
    copied = Path(shutil.copytree(model, tmp_path_factory.mktemp("copied") / "run" / "model"))
    assert export.export(copied).folder == copied.parent / "onnx"
    return copied


def test_predict_on_a_model_folder_scores_through_its_current_export_and_says_so(run_with_export, texts):
    (run_with_export / "eval_other.json").write_text("{}")  # evaluate's report on a file: the model is unchanged
    rows, err, training_stack = predict_fresh(run_with_export, texts[:3])
    expected = Predictor.from_folder(run_with_export, on="cpu").predict(texts[:3], top_k=2)
    assert [row["label"] for row in rows] == [row["label"] for row in expected]
    assert [row["scores"] for row in rows] == [pytest.approx(row["scores"], abs=FP32_TOLERANCE) for row in expected]
    assert f"Note: scoring with {run_with_export.parent / 'onnx'}, this model's ONNX export" in err
    assert not training_stack  # the start-up it saves: neither torch nor transformers was imported


def test_predict_does_not_use_an_export_older_than_its_model_and_says_how_to_renew_it(run_with_export, texts,
                                                                                      tmp_path):
    model = Path(shutil.copytree(run_with_export.parent, tmp_path / "run")) / "model"
    weights = model / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 1))  # as if trained again
    rows, err, training_stack = predict_fresh(model, texts[:2])
    assert "was not exported from this model as it is now: scoring with the model itself" in err
    assert f"export --model-dir {model}" in err
    assert training_stack and len(rows) == 2


def test_an_exported_folder_is_scored_with_its_own_tokenizer_and_refuses_word_attributions(exported):
    from distilnb import explain, serving

    onnx = Predictor.from_folder(exported[export.FP32])
    assert isinstance(onnx.tokenizer, serving.FolderTokenizer)  # transformers' tokenizer class would import torch
    with pytest.raises(TypeError, match="PyTorch model's gradients.*not on its ONNX export"):
        explain.word_attributions(onnx, "where is my parcel")
