"""The run folder's file names and the small readers of the records beside a model.

Imports nothing heavy (no pandas, scikit-learn or datasets), so that inference (distilnb.predict) can read a model's
records without the data stack; distilnb.runs writes these files and builds on the same names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TRAINING_ROWS_FILE = "training_rows.json"  # beside the model: hashes of the rows it saw in fine-tuning
CONFIG_FILE = "distilnb_config.json"  # beside the model: the settings it was fine-tuned with
THRESHOLDS_FILE = "thresholds.json"  # beside a multi-label model: each label's decision threshold, tuned on validation
READING_FILE = "distilnb_reading.json"  # beside the model: how its training data was read (encoding, header, ...)
LOCK_FILE = ".lock"  # in the run folder while a process writes it


def read_json(path: Path) -> Any:
    """Return a JSON file's content, or None when there is no such file."""
    return json.loads(path.read_text()) if path.is_file() else None


def saved_thresholds(model: str | Path) -> dict[str, float] | None:
    """Return {label: threshold} saved beside a model folder, or None when it has none (0.5 then applies)."""
    record = read_json(Path(model) / THRESHOLDS_FILE)
    return None if record is None else record["thresholds"]


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
