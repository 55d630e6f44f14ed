"""Stage 04: metrics with scikit-learn, reports, error analysis and calibration (not evaluate.py: that is Hugging Face's)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import metrics as skm

SUMMARY_METRICS = ("accuracy", "f1_macro", "f1_weighted")


def classification_metrics(y_true, y_pred, label_names: list[str]) -> dict:
    """Return accuracy, macro and weighted precision/recall/F1, and per-class scores, as plain floats."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if len(y_true) != len(y_pred) or len(y_true) == 0:
        raise ValueError(f"Need as many predictions as labels, and at least one: got {len(y_pred)} and {len(y_true)}.")
    ids = list(range(len(label_names)))
    result: dict = {"accuracy": float(skm.accuracy_score(y_true, y_pred)), "examples": int(len(y_true))}
    for average in ("macro", "weighted"):
        p, r, f, _ = skm.precision_recall_fscore_support(y_true, y_pred, labels=ids, average=average, zero_division=0)
        result.update({f"precision_{average}": float(p), f"recall_{average}": float(r), f"f1_{average}": float(f)})
    p, r, f, support = skm.precision_recall_fscore_support(y_true, y_pred, labels=ids, average=None, zero_division=0)
    result["per_class"] = {name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(support[i])}
                           for i, name in enumerate(label_names)}
    return result


def trainer_metrics(label_names: list[str]):
    """Return a compute_metrics function for the Trainer: it scores predictions against the label_ids they came with."""

    def compute(eval_prediction) -> dict:
        # label_ids travel with their predictions, so this holds even when evaluation batches are length-grouped.
        logits, labels = eval_prediction.predictions, eval_prediction.label_ids
        scores = classification_metrics(labels, np.argmax(logits, axis=-1), label_names)
        return {name: scores[name] for name in SUMMARY_METRICS}

    return compute


def summary_row(scores: dict) -> dict:
    """Return the metrics shown in comparison tables: accuracy, macro-F1 and weighted F1."""
    return {name: scores[name] for name in SUMMARY_METRICS}


def comparison_table(results: dict[str, dict]) -> pd.DataFrame:
    """Return one row per model with accuracy, macro-F1 and weighted F1."""
    return pd.DataFrame({name: summary_row(scores) for name, scores in results.items()}).T.rename_axis("model")


def read_metrics(path: Path) -> dict:
    """Return the metrics JSON of a run (an empty dict when it does not exist yet)."""
    return json.loads(path.read_text()) if path.is_file() else {}


def update_metrics(path: Path, section: str, values: dict) -> dict:
    """Merge `values` into one section of the run's metrics JSON, write it, and return the whole file's content."""
    content = read_metrics(path)
    content.setdefault(section, {}).update(values)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=2))
    return content
