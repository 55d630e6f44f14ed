"""One configuration object for the whole course: profiles, environment overrides, output layout."""

from __future__ import annotations

import dataclasses
import json
import os
import random
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, TypeVar

import numpy as np

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
SAMPLE_DATASET = DATA_DIR / "support_tickets.csv"

# Every field a profile may set; anything else stays at the dataclass default.
PROFILES: dict[str, dict[str, Any]] = {
    "full": {
        "model": "distilbert-base-uncased",
        "dataset": "dair-ai/emotion",
        "max_length": 128,
        "batch_size": 32,
        "epochs": 3.0,
        "max_train_examples": None,
    },
    "smoke": {
        "model": "tiny",  # resolved to a folder by smoke.tiny_model_dir(): see Config.resolved_model
        "dataset": str(SAMPLE_DATASET),
        "max_length": 64,
        "batch_size": 16,
        "epochs": 15.0,
        "max_train_examples": None,
    },
}

# Environment variables that override the notebook's parameters cell, so CI and instructors edit nothing.
ENV_PREFIX = "DISTILNB_"

T = TypeVar("T")


class HubUnreachableError(RuntimeError):
    """Raised, with one plain sentence, when something must come from the Hugging Face Hub and cannot."""


@dataclass
class Config:
    """Everything a run needs; build it with Config.from_env() so environment variables can override it."""

    profile: str = "full"
    model: str = "distilbert-base-uncased"
    dataset: str = "dair-ai/emotion"
    text_column: str = "text"
    label_column: str = "label"
    max_length: int = 128
    batch_size: int = 32
    learning_rate: float | None = None  # None: scaled to the encoder's width, see train.default_learning_rate
    epochs: float = 3.0
    warmup: float = 0.1  # share of training steps
    weight_decay: float = 0.01
    early_stopping_patience: int = 3
    class_weights: bool = False
    seed: int = 42
    validation_size: float = 0.1
    test_size: float = 0.1
    drop_duplicates: bool = False
    max_train_examples: int | None = None
    run_name: str | None = None
    output_root: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, profile: str | None = None, environ: dict[str, str] | None = None, **params: Any) -> "Config":
        """Return a Config: profile defaults, then the given parameters (None means 'profile default'), then DISTILNB_* variables."""
        environ = dict(os.environ if environ is None else environ)
        profile = environ.get(ENV_PREFIX + "PROFILE") or profile or "full"
        if profile not in PROFILES:
            raise ValueError(f"Unknown profile {profile!r}: choose one of {sorted(PROFILES)}.")
        values: dict[str, Any] = {"profile": profile, **PROFILES[profile]}
        known = {f.name: f for f in fields(cls)}
        for name, value in params.items():
            if name not in known:
                raise TypeError(f"Config has no parameter {name!r}; known: {sorted(known)}.")
            if value is not None:
                values[name] = value
        for name, f in known.items():
            raw = environ.get(ENV_PREFIX + name.upper())
            if raw is not None and name not in ("profile", "extra"):
                values[name] = parse_env_value(raw, f.type)
        return cls(**values)

    @property
    def run(self) -> str:
        """Return the run's name: run_name if set, else the profile's name."""
        return self.run_name or self.profile

    @property
    def paths(self) -> "RunPaths":
        """Return the output folder layout of this run."""
        root = Path(self.output_root) if self.output_root else project_root() / "outputs"
        return RunPaths(root / self.run)

    @property
    def resolved_model(self) -> str:
        """Return the model id or folder to load: the smoke profile's 'tiny' is built locally on first use."""
        if self.model == "tiny":
            from distilnb.smoke import tiny_model_dir

            return str(tiny_model_dir())
        return self.model

    def to_dict(self) -> dict[str, Any]:
        """Return the configuration as a JSON-ready dict."""
        return dataclasses.asdict(self)

    def save(self, path: Path) -> Path:
        """Write the configuration as JSON and return the path."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, default=str))
        return path


@dataclass(frozen=True)
class RunPaths:
    """Where each stage writes under outputs/<run>/."""

    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"


def parse_env_value(raw: str, annotation: Any) -> Any:
    """Return an environment string converted to the field's type (int, float, bool, None or str)."""
    text = str(annotation)
    if raw.strip().lower() in ("", "none", "null") and "None" in text:
        return None
    if text.startswith("bool"):
        if raw.strip().lower() not in ("1", "0", "true", "false", "yes", "no"):
            raise ValueError(f"Expected a boolean (true/false) in the environment, got {raw!r}.")
        return raw.strip().lower() in ("1", "true", "yes")
    if text.startswith("int"):
        return int(raw)
    if text.startswith("float"):
        return float(raw)
    return raw


def project_root(start: Path | None = None) -> Path:
    """Return the nearest folder at or above `start` (default: cwd) holding distilnb's pyproject.toml, else `start`."""
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and 'name = "distilnb"' in pyproject.read_text(errors="ignore"):
            return folder
    return start


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) with one number."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)


def from_hub(what: str, load: Callable[[], T]) -> T:
    """Return load(); where it fails for want of the Hub, raise HubUnreachableError with one sentence saying what to do."""
    try:
        return load()
    except Exception as error:  # the libraries raise many types for one cause; we translate only the offline ones
        if not _is_offline_error(error):
            raise
        raise HubUnreachableError(
            f"Could not download {what} from the Hugging Face Hub (no network, or HF_HUB_OFFLINE is set): "
            "connect and run again, pre-download it with `python -m distilnb download` on a machine with network, "
            "point the parameter at a local folder or file, or use the offline course with DISTILNB_PROFILE=smoke."
        ) from None


def _is_offline_error(error: BaseException) -> bool:
    """Return True when an exception (or one it wraps) means the Hub could not be reached or the file is not cached."""
    names = {
        "LocalEntryNotFoundError",
        "OfflineModeIsEnabled",
        "ConnectionError",
        "ConnectTimeout",
        "ConnectError",
        "ReadTimeout",
        "NameResolutionError",
        "MaxRetryError",
    }
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        names.add("DatasetNotFoundError")  # online, the same error means a misspelt id, not a missing network
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if any(cls.__name__ in names for cls in type(error).__mro__):
            return True
        message = str(error)
        if "offline" in message.lower() or "couldn't connect" in message.lower():
            return True
        error = error.__cause__ or error.__context__
    return False
