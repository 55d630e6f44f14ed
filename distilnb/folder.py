"""The run folder's file names and the small readers of the records beside a model.

Imports nothing heavy (no pandas, scikit-learn or datasets), so that inference (distilnb.predict) can read a model's
records without the data stack; distilnb.runs writes these files and builds on the same names.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from distilnb.errors import ModelError, short_list

TRAINING_ROWS_FILE = "training_rows.json"  # beside the model: hashes of the rows it saw in fine-tuning
CONFIG_FILE = "distilnb_config.json"  # beside the model: the settings it was fine-tuned with
THRESHOLDS_FILE = "thresholds.json"  # beside a multi-label model: each label's decision threshold, tuned on validation
READING_FILE = "distilnb_reading.json"  # beside the model: how its training data was read (encoding, header, ...)
LOCK_FILE = ".lock"  # in the run folder while a process writes it


def read_json(path: Path) -> Any:
    """Return a JSON file's content, or None when there is no such file."""
    return json.loads(path.read_text()) if path.is_file() else None


def read_thresholds(path: str | Path, label_names: Sequence[str]) -> list[float]:
    """Return the thresholds saved in a thresholds.json (runs.save_thresholds), one per label in label_names' order;
    raise ModelError, in one sentence, for a file that cannot be read, lacks a label, or holds a value that is not a
    number in [0, 1] (a label never or always given)."""
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelError(f"{path} cannot be read as the model's thresholds ({type(error).__name__}: {error}): "
                         "restore it from the run, or retrain.") from None
    found = record.get("thresholds") if isinstance(record, dict) else None
    if not isinstance(found, dict):
        raise ModelError(f"{path} holds no thresholds object ({{\"thresholds\": {{label: number}}}}), but "
                         f"{type(record).__name__} {str(record)[:60]!r}: restore it from the run, or retrain.")
    missing = [name for name in label_names if name not in found]
    if missing:
        raise ModelError(f"{path} has no threshold for {len(missing)} of the model's {len(label_names)} labels: "
                         f"{short_list(map(repr, missing))}. Every label needs one: restore it from the run, or "
                         "retrain.")
    bad = [f"{name!r}: {found[name]!r}" for name in label_names if not _is_probability(found[name])]
    if bad:
        raise ModelError(f"{path} holds thresholds that are not numbers from 0 to 1 ({short_list(bad)}): a label "
                         "above 1 is never given, one below 0 always; restore the file from the run, or retrain.")
    return [float(found[name]) for name in label_names]


def _is_probability(value: Any) -> bool:
    """Return True for a number (not a bool) in [0, 1]."""
    return isinstance(value, int | float) and not isinstance(value, bool) and 0.0 <= float(value) <= 1.0


def fine_tuning_record(model: str | Path) -> dict[str, Any]:
    """Return the settings a model was fine-tuned with (distilnb_config.json), or {} for a model without one."""
    return read_json(Path(model) / CONFIG_FILE) or {}


def recorded_reading(model: str | Path) -> dict[str, Any]:
    """Return how a model's training data was read (runs.record_reading), or {} when nothing was recorded."""
    return read_json(Path(model) / READING_FILE) or {}


def run_of_model(model: str | Path) -> Path | None:
    """Return the run folder a model folder belongs to (outputs/<run>/ of outputs/<run>/model), or None."""
    folder = Path(model)
    return folder.parent if (folder / CONFIG_FILE).is_file() else None
