"""One configuration object for the whole course: profiles, one precedence rule, validation, output layout."""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distilnb.errors import SettingError, register_settings

# The sample data, named as the repository names it: written so in every record and message (no machine path), and
# found by resolve_path from any working directory, beside the package or, in an installed wheel, inside it.
SAMPLE_DATASET = "data/support_tickets.csv"
# class_weights left unset turns on only where the weights were measured to help (benchmarks/RESULTS.md, round 7):
# one class holding over this share of the training rows (emotion cut to joy 74 %: macro-F1 0.268 -> 0.631) or, several
# labels a text, a label on fewer than this share of them (GoEmotions' 28: 0.340 -> 0.506) or on fewer than
# RARE_CLASS_SIGHTINGS texts (the multi-label sample's praise, on 32: test macro-F1 0.776 -> 0.939 at 7 epochs, §44).
# Every other set measured stays inside all three (largest class 0.58; rarest label on 726 texts, 1.7 %).
SKEWED_CLASS_SHARE = 0.6
RARE_LABEL_SHARE = 0.01
# A class (or label) on fewer training rows than this is rare. Left unset, the epochs are enough passes to show the
# rarest one this many times, from DEFAULT_EPOCHS up to MAX_DECIDED_EPOCHS, within MAX_DECIDED_STEPS optimizer steps
# (train.decided_epochs). Chosen in benchmarks/RESULTS.md §44 after seeing the scores of the sets it changes:
# GoEmotions' grief, on 77 training texts, wanted a third pass (test macro-F1 0.459 at 2 epochs); the multi-label
# sample's praise, on 32, four or more (§21). Every other real set shows its rarest class over 500 times an epoch, the
# sample 149 times, and keeps 2.
RARE_CLASS_SIGHTINGS = 200
DEFAULT_EPOCHS = 2.0
MAX_DECIDED_EPOCHS = 10
# A guard on time, not a measured optimum: about an hour of MiniLM steps (batch 16, 64 tokens) on one CPU thread.
MAX_DECIDED_STEPS = 10_000

ENV_PREFIX = "DISTILNB_"
DEFAULT_PROFILE = "offline"

# Every field a profile sets; anything else stays at the dataclass default.
PROFILES: dict[str, dict[str, Any]] = {
    "full": {"model": "distilbert-base-uncased", "dataset": "dair-ai/emotion", "max_length": 128, "batch_size": 32,
             "epochs": 3.0},
    # Sized so that chapter 03 fine-tunes the pretrained MiniLM twice (Trainer, then the plain loop) on the sample
    # tickets in a few minutes on 2 CPU cores; two epochs already take it well past TF-IDF.
    # Its epochs are left to the data (train.decided_epochs): 2 on the sample, more where a class is rare.
    "offline": {"model": "minilm", "dataset": SAMPLE_DATASET, "max_length": 64, "batch_size": 16},
    # The tiny random model needs about 8 epochs to learn the sample beyond its majority class.
    "smoke": {"model": "tiny", "dataset": SAMPLE_DATASET, "max_length": 64, "batch_size": 16, "epochs": 8.0},
}
MAX_LENGTH_RANGE = (8, 512)
# 1,000 epochs: the tiny test model needs 8 and real runs stop early within tens, while on the smallest data a
# classifier can be split from (a few dozen rows, 2-4 steps an epoch) 1,000 epochs is still a few thousand steps.
# More is a typo (1e9 spreads the warm-up over every epoch, so the learning rate never leaves about zero).
MAX_EPOCHS = 1_000
# A batch of 1,024 texts at 512 tokens already needs tens of GB of activations on one device; the course uses 16-32.
MAX_BATCH_SIZE = 1_024
SEED_RANGE = (0, 2**32 - 1)  # numpy's seeds, which transformers.set_seed passes on: a negative one raises
TRUE_WORDS, FALSE_WORDS = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
NONE_WORDS = ("", "none", "null")
# The three shapes of the one pipeline: they change the labels, the loss and the decision rule, not the code path.
SINGLE_LABEL, MULTI_LABEL, PAIRS = "single-label", "multi-label", "pairs"


@dataclass(frozen=True)
class Config:
    """Everything a run needs, validated at construction; build it with Config.from_env(**parameters)."""

    profile: str = DEFAULT_PROFILE
    model: str = "distilbert-base-uncased"
    dataset: str = "dair-ai/emotion"
    text_column: str = "text"
    label_column: str = "label"
    text_pair_column: str | None = None  # set: each row is a pair of texts (the tokenizer's pair encoding)
    label_separator: str | None = None  # set: the label cell names several labels joined by it ("refund;delivery")
    dataset_config: str | None = None  # a Hub dataset's config name: load_dataset("glue", "sst2")
    max_length: int = 128
    batch_size: int = 32
    learning_rate: float | None = None  # None: scaled to the encoder's width, see train.default_learning_rate
    epochs: float | None = None  # None: decided from the training rows (train.decided_epochs)
    warmup: float = 0.1  # below 1: a share of the training steps; from 1: a number of steps
    weight_decay: float = 0.01
    early_stopping_patience: int = 3
    # One label: balanced class weights; several: a positive weight per label. None: decided from the training rows
    # (on when skewed past the two shares below; train.class_weights_reason).
    class_weights: bool | None = None
    seed: int = 42
    validation_size: float = 0.1
    test_size: float = 0.1
    drop_duplicates: bool = False
    merge_label_variants: bool = False
    max_train_examples: int | None = None
    save_steps: int = 200  # a checkpoint every this many steps as well as each epoch, so an interrupt loses little
    keep_checkpoints: bool = False  # False: a finished run removes its checkpoints (resume needs them only mid-run)
    run_name: str | None = None
    output_root: str | None = None

    def __post_init__(self) -> None:
        for name, hint in field_types().items():
            check_type(name, getattr(self, name), hint)
        if self.profile not in PROFILES:
            raise SettingError(f"Unknown profile {self.profile!r}: choose one of {', '.join(PROFILES)}.", "profile")
        low, high = MAX_LENGTH_RANGE
        checks = {
            "epochs": (True, "") if self.epochs is None else (
                at_most(self.epochs, MAX_EPOCHS) if self.epochs > 0 else (False, "must be more than 0")),
            # Adam's steps are about the learning rate in size: at 1 or more every weight jumps by its own scale.
            "learning_rate": (self.learning_rate is None or 0 < self.learning_rate < 1,
                              "must be more than 0 (or None)" if (self.learning_rate or 0) <= 0 else "must be below 1"),
            "batch_size": at_least_one(self.batch_size, MAX_BATCH_SIZE),
            "max_length": (low <= self.max_length <= high, f"must lie between {low} and {high} tokens"),
            "warmup": (self.warmup >= 0 and (self.warmup < 1 or float(self.warmup).is_integer()),
                       "must be a share below 1 or a whole number of steps"),
            "weight_decay": (self.weight_decay >= 0, "must be 0 or more"),
            # Patience counts evaluations, one an epoch: more than the epochs allowed could never stop a run.
            "early_stopping_patience": at_least_one(self.early_stopping_patience, MAX_EPOCHS),
            "seed": (SEED_RANGE[0] <= self.seed <= SEED_RANGE[1], f"must lie between 0 and {SEED_RANGE[1]:,}"),
            "validation_size": (0 < self.validation_size < 1, "must lie strictly between 0 and 1"),
            "test_size": (0 < self.test_size < 1, "must lie strictly between 0 and 1"),
            "max_train_examples": (self.max_train_examples is None or self.max_train_examples >= 2,
                                   "must be at least 2 (or None for all)"),
            # No upper bound: a save_steps beyond the run's steps only means a checkpoint at each epoch's end.
            "save_steps": (self.save_steps >= 1, "must be at least 1"),
        }
        for name, (ok, rule) in checks.items():
            if not ok:
                raise SettingError(rule, name, getattr(self, name))
        if self.label_separator is not None and not self.label_separator.strip():
            raise SettingError("must hold a character other than white space (or None)", "label_separator",
                               self.label_separator)
        if self.text_pair_column is not None and self.text_pair_column == self.text_column:
            raise SettingError("is the text column too: a pair needs two different columns", "text_pair_column",
                               self.text_pair_column)
        if self.validation_size + self.test_size >= 1:
            raise SettingError("leaves no training rows: it and {validation_size} must sum to less than 1",
                               "test_size", self.test_size)

    @classmethod
    def from_env(cls, profile: str | None = None, environ: dict[str, str] | None = None, **params: Any) -> Config:
        """Return a Config: a parameter other than None beats its DISTILNB_* variable, which beats the profile's."""
        environ = dict(os.environ if environ is None else environ)
        types_ = field_types()
        unknown = sorted(set(params) - set(types_))
        if unknown:
            raise SettingError(f"Config has no setting {', '.join(unknown)}; the settings are {', '.join(types_)}.")
        profile = profile or environ.get(ENV_PREFIX + "PROFILE") or DEFAULT_PROFILE
        values: dict[str, Any] = {**PROFILES.get(profile, {}), "profile": profile}  # __post_init__ names a bad one
        from_environment = {name: ENV_PREFIX + name.upper() for name in types_
                            if name != "profile" and ENV_PREFIX + name.upper() in environ}
        for name, variable in from_environment.items():
            values[name] = parse_value(environ[variable], types_[name], variable)
        typed = {name: value for name, value in params.items() if value is not None and name != "profile"}
        values.update(typed)
        try:
            return cls(**values)
        except SettingError as error:
            source = from_environment.get(error.setting or "") if error.setting not in typed else None
            if source is None:
                raise
            error.variable, error.raw = source, environ[source]  # the message names where the value came from
            raise

    def check_steps(self, total_steps: int) -> None:
        """Raise SettingError when warm-up in steps would last the whole run (known only once the data is split)."""
        if self.warmup >= 1 and self.warmup >= total_steps:
            rule = f"must be fewer steps than the run's {total_steps:,} training steps (or a share below 1)"
            raise SettingError(rule, "warmup", self.warmup)

    @property
    def task(self) -> str:
        """Return the task the settings name: PAIRS, MULTI_LABEL (a separator) or SINGLE_LABEL; a list-valued label
        column also makes the data multi-label (data.task_of reads it from the splits)."""
        if self.text_pair_column:
            return PAIRS
        return MULTI_LABEL if self.label_separator else SINGLE_LABEL

    @property
    def run(self) -> str:
        """Return the run's name: run_name if set, else the profile's name."""
        return self.run_name or self.profile

    @property
    def paths(self) -> RunPaths:
        """Return the output folder layout of this run."""
        root = Path(self.output_root) if self.output_root else project_root() / "outputs"
        return RunPaths(root / self.run)

    @property
    def resolved_model(self) -> str:
        """Return the model id or folder to load, with the profiles' short names ('tiny', 'minilm') resolved."""
        from distilnb.local_models import resolve_model  # builds the tiny model on first use: only when asked

        return resolve_model(self.model)

    def to_dict(self) -> dict[str, Any]:
        """Return the configuration as a JSON-ready dict."""
        return dataclasses.asdict(self)

    def save(self, path: Path) -> Path:
        """Write the configuration as JSON and return the path."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2))
        return path



register_settings(field.name for field in dataclasses.fields(Config))

@dataclass(frozen=True)
class RunPaths:
    """Where each stage writes under outputs/<run>/."""

    root: Path

    def shown(self, path: str | Path) -> str:
        """Return a path as a chapter prints it: from the run's folder name when inside the run (`offline/model`), else
        relative to the working directory, so that no output names this machine's folders."""
        if Path(path).resolve().is_relative_to(self.root.resolve()):
            return str(Path(self.root.name) / Path(path).resolve().relative_to(self.root.resolve()))
        return os.path.relpath(path)

    @property
    def data(self) -> Path:
        """Return the folder of the saved splits and load report."""
        return self.root / "data"

    @property
    def model(self) -> Path:
        """Return the folder of the fine-tuned model."""
        return self.root / "model"

    @property
    def checkpoints(self) -> Path:
        """Return the folder of the Trainer's checkpoints."""
        return self.root / "checkpoints"

    @property
    def figures(self) -> Path:
        """Return the folder of the PNG figures."""
        return self.root / "figures"

    @property
    def metrics(self) -> Path:
        """Return the run's metrics.json."""
        return self.root / "metrics.json"


def at_most(value: float, high: float) -> tuple[bool, str]:
    """Return (value <= high, the rule it breaks otherwise)."""
    return value <= high, f"must be at most {high:,}"


def at_least_one(value: int, high: int) -> tuple[bool, str]:
    """Return (1 <= value <= high, the side's rule it breaks): 'must be at least 1' or 'must be at most high'."""
    return at_most(value, high) if value >= 1 else (False, "must be at least 1")


def field_types() -> dict[str, Any]:
    """Return {setting: type hint} of every Config field, resolved from the annotations."""
    hints = typing.get_type_hints(Config)
    return {f.name: hints[f.name] for f in dataclasses.fields(Config)}


def base_type(hint: Any) -> tuple[type, bool]:
    """Return (the non-None type of a hint, whether None is allowed): `int | None` gives (int, True)."""
    args = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union else ()
    if args:
        return next(a for a in args if a is not type(None)), type(None) in args
    return hint, False


def check_type(name: str, value: Any, hint: Any) -> None:
    """Raise SettingError when a setting's value is not of its field's type (an int is fine where a float is wanted)."""
    kind, optional = base_type(hint)
    if value is None and optional:
        return
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    ok = ok or (kind is float and isinstance(value, int) and not isinstance(value, bool))
    if not ok:
        raise SettingError(f"must be a {kind.__name__}{' or None' if optional else ''}", name, value)


def parse_value(raw: str, hint: Any, source: str) -> Any:
    """Return a setting's text (a variable's or a flag's) as its field's type; `source` names it in errors."""
    kind, optional = base_type(hint)
    text = raw.strip()
    if optional and text.lower() in NONE_WORDS:
        return None
    if kind is bool:
        if text.lower() not in TRUE_WORDS + FALSE_WORDS:
            words = ", ".join(TRUE_WORDS + FALSE_WORDS)
            raise SettingError(f"{source}={raw!r} is not true or false: use one of {words}.")
        return text.lower() in TRUE_WORDS
    if kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise SettingError(f"{source}={raw!r} is not {what}.") from None
    return raw


def project_root(start: Path | None = None) -> Path:
    """Return the nearest folder at or above `start` (default: cwd) holding distilnb's pyproject.toml, else `start`."""
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and 'name = "distilnb"' in pyproject.read_text(errors="ignore"):
            return folder
    return start


def sample_file(name: str) -> Path | None:
    """Return a sample data file (a name under the repository's data/): the checkout's, else the installed wheel's
    copy, found with importlib.resources; None when neither has it."""
    from importlib import resources

    beside = Path(__file__).resolve().parent.parent / "data" / name
    if beside.is_file():
        return beside
    try:  # an installed wheel maps the repository's data/ to the package distilnb.sample_data
        packaged = resources.files("distilnb.sample_data").joinpath(name)
    except ModuleNotFoundError:
        return None
    return Path(str(packaged)) if packaged.is_file() else None


def resolve_path(source: str | Path) -> Path:
    """Return a local path as given; else under the project root (notebooks run in notebooks/); else, for data/...,
    the sample data shipped with the package."""
    path = Path(source).expanduser()
    if path.is_absolute() or path.exists():
        return path
    if (project_root() / path).exists():
        return project_root() / path
    if path.parts[:1] == ("data",) and len(path.parts) == 2:
        return sample_file(path.parts[1]) or path
    return path
