"""Export: a model folder's ONNX graph (fp32, or int8 for the CPU) with its tokenizer and label names beside it.

This module is the one place distilnb writes an ONNX graph: `distilnb export` saves it in a folder that
`Predictor.from_folder` (and `distilnb predict --model-dir`) run through ONNX Runtime, and Predictor.quantized()
builds its int8 copy with the same functions in a temporary folder.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import json
import logging
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from distilnb.errors import NotFoundError
from distilnb.folder import CONFIG_FILE, READING_FILE, THRESHOLDS_FILE, TRAINING_ROWS_FILE
from distilnb.models import label_names_of, load_classifier, load_tokenizer
from distilnb.serving import ClassifierConfig

if TYPE_CHECKING:
    from transformers import PreTrainedModel

ONNX_FILE = "model.onnx"  # the graph in an exported folder, fp32 or int8 (EXPORT_FILE says which)
EXPORT_FILE = "distilnb_export.json"  # what was exported, from where, in which precision
LABELS_FILE = "labels.json"  # the label names in output order, for a serving stack that reads no config.json
# In EXPORT_FILE: every file of the model folder exported, as [bytes, modification time in ns], so that predict can
# tell whether the export beside a model folder was made from it as it is now (not from weights since retrained).
SOURCE_KEY = "source_files"
# Left out of that record: the score reports `evaluate` writes beside a model (scoring.write_reports' eval_<name>.json)
# are about the model, not part of it, and scoring it must not make its export look out of date.
SCORE_REPORTS = "eval_*.json"
# The records beside a model that evaluate and predict read: its settings, thresholds, training rows, how it was read.
RECORDS = (CONFIG_FILE, THRESHOLDS_FILE, TRAINING_ROWS_FILE, READING_FILE, "README.md")
FP32, INT8 = "fp32", "int8"

# What the exporters say on every export of a text classifier, none of it about the learner's model: torch.onnx lists
# torchvision's operators it skips and the axis names it merges, torch's pytree warns of its own deprecation, and
# ONNX Runtime's quantizer, on the root logger, suggests a pre-processing step meant for image models.
EXPORTER_WARNINGS = (r"# The axis name: .* will not be used", r".*LeafSpec.* is deprecated")
QUANTIZER_NOTICE = "Please consider to run pre-processing before quantization"


@dataclass(frozen=True)
class ExportResult:
    """What `export` wrote: the folder, the graph's precision and size, and the files beside it."""

    folder: Path
    precision: str
    graph_bytes: int
    files: list[str]


@contextlib.contextmanager
def exporter_notices_hidden() -> Iterator[None]:
    """Hide the exporters' routine notices inside the block: torch.onnx's below ERROR, the others by their text."""
    exporter, root = logging.getLogger("torch.onnx"), logging.getLogger()
    level = exporter.level

    def not_the_quantizer_notice(record: logging.LogRecord) -> bool:
        return QUANTIZER_NOTICE not in record.getMessage()

    with warnings.catch_warnings():
        for message in EXPORTER_WARNINGS:
            warnings.filterwarnings("ignore", message=message)
        exporter.setLevel(logging.ERROR)
        root.addFilter(not_the_quantizer_notice)  # the root logger's own records only: others' warnings still show
        try:
            yield
        finally:
            exporter.setLevel(level)
            root.removeFilter(not_the_quantizer_notice)


def export_onnx(model: PreTrainedModel, path: Path) -> Path:
    """Write a sequence classifier to path as ONNX, batch size and length left dynamic; return the path."""
    import torch  # here, not above: predict reads whether an export is current (export_beside) without torch

    model = model if model.device.type == "cpu" else copy.deepcopy(model).cpu()
    # Two distinct tensors, some padding: an input passed twice or a mask of ones could be traced as a special case.
    example = {"input_ids": torch.full((2, 8), 1000), "attention_mask": torch.tensor([[1] * 8, [1] * 4 + [0] * 4])}
    if uses_segments(model):  # BERT-like: a pair's segments, 0 then 1
        example["token_type_ids"] = torch.tensor([[0] * 4 + [1] * 4, [0] * 2 + [1] * 2 + [0] * 4])
    batch, length = torch.export.Dim("batch"), torch.export.Dim("length", max=model.config.max_position_embeddings)
    program = torch.onnx.export(model.eval(), (), kwargs=example, dynamo=True, verbose=False, external_data=False,
                                input_names=list(example), output_names=["logits"],
                                dynamic_shapes={name: {0: batch, 1: length} for name in example})
    program.save(str(path))
    drop_source_traces(path)
    return path


def drop_source_traces(path: Path) -> None:
    """Strip each node's metadata from a saved graph: torch.onnx records the Python stack that made each node, so
    the file would name this machine's folders (the virtual environment's) and its size would depend on them."""
    import onnx

    model = onnx.load(path)
    bodies = [model.graph, *model.functions]  # a function's body holds nodes as a graph does
    while bodies:
        body = bodies.pop()
        for node in body.node:
            del node.metadata_props[:]
            bodies.extend(attribute.g for attribute in node.attribute if attribute.HasField("g"))
            bodies.extend(subgraph for attribute in node.attribute for subgraph in attribute.graphs)
    onnx.save(model, path)


def quantize_onnx(source: Path, target: Path) -> Path:
    """Write an int8 copy of an ONNX model (weights per output channel, activations on the fly); return target."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(source, target, weight_type=QuantType.QInt8, per_channel=True)
    return target


def onnx_graph(model: PreTrainedModel, folder: Path, *, int8: bool = False) -> Path:
    """Write the classifier's ONNX graph to folder/model.onnx, fp32 or dynamic int8; return its path."""
    target = folder / ONNX_FILE
    with exporter_notices_hidden():
        if not int8:
            return export_onnx(model, target)
        with tempfile.TemporaryDirectory(prefix="distilnb-export-") as scratch:  # the fp32 graph is a step only
            return quantize_onnx(export_onnx(model, Path(scratch) / ONNX_FILE), target)


def is_onnx_folder(model: str | Path) -> bool:
    """Return True for a folder `export` wrote (an ONNX graph and its record)."""
    folder = Path(model)
    return (folder / ONNX_FILE).is_file() and (folder / EXPORT_FILE).is_file()


def onnx_config(folder: str | Path) -> ClassifierConfig:
    """Return the config saved beside an exported graph (labels, task, longest input), read without transformers."""
    return ClassifierConfig.from_folder(folder)


def default_target(model_dir: str | Path, int8: bool) -> Path:
    """Return where an export goes unless told: beside the model folder, in its run (outputs/X/onnx or onnx-int8),
    so evaluate finds the run's saved splits next to it as it does for the model."""
    return Path(model_dir).parent / ("onnx-int8" if int8 else "onnx")


def folder_fingerprint(folder: Path) -> dict[str, list[int]]:
    """Return each file of a model folder (not its subfolders or score reports) with its [bytes, time in ns]."""
    return {path.name: [stat.st_size, stat.st_mtime_ns] for path in sorted(folder.iterdir())
            if path.is_file() and not path.match(SCORE_REPORTS) for stat in [path.stat()]}


def export_beside(model_dir: str | Path) -> tuple[Path, bool] | None:
    """Return the fp32 export `export` writes beside a PyTorch model folder (its run's onnx/), with whether it is
    current: fp32 and made from the folder as it is now (every file's size and time alike); None when there is none."""
    folder = default_target(model_dir, int8=False)
    if not Path(model_dir).is_dir() or is_onnx_folder(model_dir) or not is_onnx_folder(folder):
        return None
    try:
        record = json.loads((folder / EXPORT_FILE).read_text())
    except (OSError, ValueError):  # an unreadable record cannot vouch for the graph
        return folder, False
    current = isinstance(record, dict) and record.get("precision") == FP32 and (
        record.get(SOURCE_KEY) == folder_fingerprint(Path(model_dir)))
    return folder, current


def export(model_dir: str | Path, target: str | Path | None = None, *, int8: bool = False) -> ExportResult:
    """Write model_dir's ONNX graph (fp32, or int8) into target with its tokenizer, config, label names and records;
    return what was written. An existing target is replaced."""
    if not (Path(model_dir) / "config.json").is_file():
        raise NotFoundError(f"{model_dir} holds no model (no config.json): export a folder `distilnb train` wrote.")
    folder = Path(target) if target is not None else default_target(model_dir, int8)
    source = folder_fingerprint(Path(model_dir))  # before loading: the state the graph is made from
    shutil.rmtree(folder, ignore_errors=True)  # an older export's graph must not sit beside this one's config
    folder.mkdir(parents=True)
    model = load_classifier(model_dir)
    graph = onnx_graph(model, folder, int8=int8)
    model.config.save_pretrained(folder)
    load_tokenizer(model_dir).save_pretrained(folder)
    (folder / LABELS_FILE).write_text(json.dumps(label_names_of(model), indent=2))
    for name in RECORDS:
        if (Path(model_dir) / name).is_file():
            shutil.copy2(Path(model_dir) / name, folder / name)
    precision = INT8 if int8 else FP32
    record = {"exported_from": str(model_dir), "precision": precision, "graph": ONNX_FILE,
              "inputs": ["input_ids", "attention_mask", *(["token_type_ids"] if uses_segments(model) else [])],
              "output": "logits", "runtime": "onnxruntime, CPUExecutionProvider", SOURCE_KEY: source}
    (folder / EXPORT_FILE).write_text(json.dumps(record, indent=2))
    return ExportResult(folder=folder, precision=precision, graph_bytes=graph.stat().st_size,
                        files=sorted(path.name for path in folder.iterdir()))


def uses_segments(model: PreTrainedModel) -> bool:
    """Return True for a model that takes segment ids (token_type_ids): BERT-like encoders, for pairs."""
    return "token_type_ids" in inspect.signature(model.forward).parameters
