"""The run folder: saved splits and their source's fingerprint, model card, metrics.json, and the rows a model saw."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distilnb.config import Config, resolve_path
from distilnb.data import LoadReport, load_splits
from distilnb.errors import DataError, DistilnbError, SettingError
from distilnb.folder import (
    CONFIG_FILE,
    LOCK_FILE,
    READING_FILE,
    THRESHOLDS_FILE,
    TRAINING_ROWS_FILE,
    fine_tuning_record,
)
from distilnb.keys import row_key
from distilnb.local_models import HUB_ORIGIN
from distilnb.metrics import FINE_TUNED
from distilnb.models import is_hub_id, label_names_of

if TYPE_CHECKING:
    from datasets import DatasetDict
    from transformers import TrainingArguments

    from distilnb.readers import ReadOptions

SOURCE_SETTINGS = ("dataset", "text_column", "label_column", "text_pair_column", "label_separator", "dataset_config")
SPLIT_SETTINGS = ("seed", "validation_size", "test_size", "drop_duplicates", "merge_label_variants",
                  "max_train_examples")
TRAINED_ON = ("train", "validation")
# Where the rows evaluate scores come from, which decides what a row seen in fine-tuning means (rows_to_score).
CUT_SPLIT = "cut"  # a split the run cut from its training rows: a repeat is the data's own duplicate
GIVEN_SPLIT = "given"  # a split the data came with at train time: a test file, a folder's or a Hub dataset's split
OTHER_ROWS = "other"  # a file given to evaluate, or splits rebuilt in memory under other data settings
RESUME_FILE = "distilnb_resume.json"  # in checkpoints/: the settings the interrupted run trained with
# What shapes the data, the model or the schedule: a resumed run must train with the values it was interrupted with.
RESUME_SETTINGS = (*SOURCE_SETTINGS, *SPLIT_SETTINGS, "model", "max_length", "batch_size", "learning_rate", "epochs",
                   "warmup", "weight_decay", "early_stopping_patience", "class_weights")


class RunInUseError(DistilnbError):
    """Another process is writing the run folder."""


class SeenRowsError(DistilnbError):
    """Rows to score were seen in fine-tuning, so their scores would flatter the model."""


# ---------------------------------------------------------------- saved splits


def source_fingerprint(source: str) -> str:
    """Return size and modification time of a local source (file or folder of files), '' for a Hub id."""
    path = resolve_path(source)  # the reader's own resolution, so a relative path means the same file to both
    files = sorted(path.iterdir()) if path.is_dir() else [path] if path.is_file() else []
    return ";".join(f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files if f.is_file())


def data_settings(cfg: Config) -> dict:
    """Return what decides the splits: the source, its fingerprint and the split settings."""
    settings = {name: getattr(cfg, name) for name in SOURCE_SETTINGS + SPLIT_SETTINGS}
    return {**settings, "fingerprint": source_fingerprint(cfg.dataset)}


def save_splits(splits: DatasetDict, report: LoadReport, cfg: Config) -> Path:
    """Write the splits and the load report, with the settings that made them, to the run's data folder; return it."""
    report.settings = data_settings(cfg)  # what load_or_build_splits compares, so later chapters reuse these splits
    folder = cfg.paths.data
    folder.mkdir(parents=True, exist_ok=True)
    splits.save_to_disk(str(folder))
    (folder / "load_report.json").write_text(json.dumps(asdict(report), indent=2))
    return folder


def saved_splits(folder: Path) -> tuple[DatasetDict, LoadReport] | None:
    """Return (splits, report) saved in a run's data folder, or None when there are none."""
    import datasets

    if not ((folder / "dataset_dict.json").is_file() and (folder / "load_report.json").is_file()):
        return None
    return datasets.load_from_disk(str(folder)), LoadReport(**json.loads((folder / "load_report.json").read_text()))


def build_and_save_splits(cfg: Config) -> tuple[DatasetDict, LoadReport]:
    """Return (splits, report) built from the source now, after saving them to the run's data folder."""
    splits, report = load_splits(cfg)
    save_splits(splits, report, cfg)
    return splits, report


def load_or_build_splits(cfg: Config) -> tuple[DatasetDict, LoadReport]:
    """Return (splits, report): the run's saved splits when they come from the same unchanged source, else new ones.

    Saved splits win over differing split settings (seed, sizes, ...), with a printed note: later chapters must
    evaluate on the very splits the model was trained with. 01_data (or `distilnb train`) rebuilds them.
    """
    saved = saved_splits(cfg.paths.data)
    if saved is None:
        return build_and_save_splits(cfg)
    wanted, settings = data_settings(cfg), saved[1].settings
    if any(settings.get(k) != wanted[k] for k in (*SOURCE_SETTINGS, "fingerprint")):
        return build_and_save_splits(cfg)
    differing = {k: settings.get(k) for k in SPLIT_SETTINGS if settings.get(k) != wanted[k]}
    if differing:
        print(f"Using the splits saved in {cfg.paths.data}, made with {differing}; rerun 01_data to rebuild them.")
    return saved


# ---------------------------------------------------------------- metrics.json


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


def save_evaluation(metrics_path: Path, model: str, split: str, scores: dict, *,
                    baselines: dict[str, dict] | None = None) -> Path:
    """Write a split's metrics (and the baselines' beside them) into the run's metrics JSON and, for a local model
    folder, the model's to eval_<split>.json in it; return that file (metrics_path for a Hub model)."""
    update_metrics(metrics_path, split, {**(baselines or {}), FINE_TUNED: scores})
    folder = Path(model)
    if not folder.is_dir():
        return metrics_path
    target = folder / f"eval_{split}.json"
    target.write_text(json.dumps(scores, indent=2))
    return target


# ---------------------------------------------------------------- the model folder


def library_versions() -> dict[str, str]:
    """Return the versions of the libraries a result depends on."""
    import datasets
    import sklearn
    import torch
    import transformers

    import distilnb

    return {"distilnb": distilnb.__version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "datasets": datasets.__version__, "scikit-learn": sklearn.__version__}


def hyperparameters(cfg: Config, args: TrainingArguments | None = None) -> dict:
    """Return the hyper-parameters worth reporting, from the Trainer's arguments when given, else from the config."""
    if args is None:
        return {"learning_rate": cfg.learning_rate or "default for the width", "epochs (max)": cfg.epochs,
                "batch_size": cfg.batch_size, "warmup": cfg.warmup, "weight_decay": cfg.weight_decay,
                "max_length": cfg.max_length, "class_weights": cfg.class_weights, "seed": cfg.seed}
    precision = "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32"
    return {"learning_rate": args.learning_rate, "epochs (max)": args.num_train_epochs,
            "batch_size": args.per_device_train_batch_size, "warmup": cfg.warmup, "weight_decay": args.weight_decay,
            "schedule": str(args.lr_scheduler_type), "batches": args.train_sampling_strategy,
            "max_length": cfg.max_length, "class_weights": cfg.class_weights, "precision": precision, "seed": args.seed}


def card_data(cfg: Config, scores: dict) -> Any:
    """Return the card's metadata (huggingface_hub.ModelCardData): library, task, base model for a Hub id, and the
    validation scores as model-index results, which the Hub shows beside the model."""
    from huggingface_hub import EvalResult, ModelCardData

    dataset = cfg.dataset if is_hub_id(cfg.dataset) else Path(cfg.dataset).name
    results = [EvalResult(task_type="text-classification", dataset_type=dataset, dataset_name=dataset,
                          dataset_split="validation", metric_type=name, metric_value=round(value, 4))
               for name, value in scores.items() if name in ("accuracy", "f1_macro", "f1_micro") and
               isinstance(value, float)]
    # The Hub reads base_model as a repository id: a profile's short name or a local path would break it.
    return ModelCardData(library_name="transformers", pipeline_tag="text-classification",
                         base_model=cfg.model if is_hub_id(cfg.model) else HUB_ORIGIN.get(cfg.model),
                         model_name=f"{Path(cfg.model).name}-distilnb-{cfg.run}", eval_results=results or None)


def model_card(cfg: Config, names: list[str], split_sizes: dict[str, int], scores: dict, *, params: dict) -> str:
    """Return a model card (Markdown) naming the data, splits, hyper-parameters, metrics, date and library versions."""
    from huggingface_hub import ModelCard

    rows = "\n".join(f"| {name} | {value:.4f} |" for name, value in scores.items() if isinstance(value, float))
    table = "\n".join(f"| {name} | {value} |" for name, value in params.items())
    versions = ", ".join(f"{name} {version}" for name, version in library_versions().items())
    body = f"""
# Text classifier fine-tuned with distilnb

- **Base model:** `{HUB_ORIGIN.get(cfg.model, cfg.model)}` (as `{cfg.model}`, profile `{cfg.profile}`)
- **Data:** `{cfg.dataset}` (text column `{cfg.text_column}`, label column `{cfg.label_column}`)
- **Labels ({len(names)}):** {", ".join(names)}
- **Splits:** {", ".join(f"{split} {n}" for split, n in split_sizes.items())}
- **Trained:** {datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}
- **Libraries:** {versions}

## Validation metrics

| metric | value |
|---|---|
{rows}

## Hyper-parameters

| name | value |
|---|---|
{table}

## Use

```python
from distilnb.predict import Predictor
predictor = Predictor.from_folder("path/to/this/folder")
predictor.predict(["some text"])
```

Trained for teaching: check its errors (chapter 04) before trusting it with anything that matters.
"""
    return str(ModelCard(f"---\n{card_data(cfg, scores).to_yaml()}\n---\n{body}"))


def text_hash(text: str, pair: str | None = None) -> str:
    """Return the sha256 of a text's normalised form (the key duplicate detection uses); with `pair`, of the pair's
    key, the same in either order (a pair trained on as (b, a) counts as seen)."""
    return hashlib.sha256(row_key(text, pair).encode("utf-8")).hexdigest()


def row_hashes(texts: Sequence[str], pairs: Sequence[str] | None = None) -> list[str]:
    """Return text_hash of each text, or of each (text, pair) when `pairs` holds the second texts."""
    if pairs is None:
        return [text_hash(text) for text in texts]
    return [text_hash(text, pair) for text, pair in zip(texts, pairs, strict=True)]


def second_texts(table: Any) -> list[str] | None:
    """Return a split's second texts (its `text_pair` column), or None when its rows are single texts."""
    return list(table["text_pair"]) if "text_pair" in table.column_names else None


def save_thresholds(folder: Path, record: dict) -> Path:
    """Write a multi-label model's thresholds record (multilabel.choose_thresholds) beside it; return the file."""
    path = folder / THRESHOLDS_FILE
    path.write_text(json.dumps(record, indent=2))
    return path


def write_run_files(cfg: Config, trainer_or_model: Any, split_sizes: dict[str, int], validation_scores: dict,
                    splits: DatasetDict, *, folder: Path | None = None, row: str = FINE_TUNED,
                    baselines: dict[str, dict] | None = None) -> Path:
    """Write card, training_args.json, distilnb_config.json and training_rows.json beside a saved model; return it.

    The validation scores also go to metrics.json under `row`, beside the `baselines` rows scored on the same rows:
    this is their one writer.
    """
    folder = folder or cfg.paths.model
    args = getattr(trainer_or_model, "args", None)
    model = getattr(trainer_or_model, "model", trainer_or_model)
    folder.mkdir(parents=True, exist_ok=True)
    card = model_card(cfg, label_names_of(model), split_sizes, validation_scores, params=hyperparameters(cfg, args))
    (folder / "README.md").write_text(card)
    if args is not None:
        (folder / "training_args.json").write_text(json.dumps(run_relative(args.to_dict(), cfg), indent=2, default=str))
    # trainer.save_model pickles the arguments too; the JSON above says the same without a file that can run code.
    (folder / "training_args.bin").unlink(missing_ok=True)
    # The task is recorded by the Config (text_pair_column, label_separator) and by the model's config.json, whose
    # problem_type says multi-label also when the labels came as lists.
    (folder / CONFIG_FILE).write_text(json.dumps(recorded_settings(cfg), indent=2))
    rows = {split: sorted(set(row_hashes(splits[split]["text"], second_texts(splits[split])))) for split in TRAINED_ON}
    (folder / TRAINING_ROWS_FILE).write_text(json.dumps(rows))
    update_metrics(cfg.paths.metrics, "validation", {**(baselines or {}), row: validation_scores})
    return folder


def recorded_settings(cfg: Config) -> dict[str, Any]:
    """Return the settings recorded beside a model: all but where the run folder is (the record sits in it)."""
    return {name: value for name, value in cfg.to_dict().items() if name not in ("output_root", "run_name")}


def run_relative(arguments: dict[str, Any], cfg: Config) -> dict[str, Any]:
    """Return the Trainer's arguments with its folders written relative to the run folder (no machine path)."""
    root = cfg.paths.root
    return {name: os.path.relpath(value, root) if name.endswith("_dir") and isinstance(value, str) and value else value
            for name, value in arguments.items()}


def training_overlap(model_folder: str | Path, texts: Sequence[str],
                     pairs: Sequence[str] | None = None) -> dict[str, int]:
    """Return, per split a model was trained or validated on, how many of `texts` (with their `pairs`) it saw ({}
    without a record)."""
    record = Path(model_folder) / TRAINING_ROWS_FILE
    if not record.is_file():
        return {}
    seen = {split: set(hashes) for split, hashes in json.loads(record.read_text()).items()}
    hashes = row_hashes(texts, pairs)
    return {split: sum(h in known for h in hashes) for split, known in seen.items()}



def seen_rows(model_folder: str | Path, texts: Sequence[str], splits: Sequence[str] = TRAINED_ON,
              pairs: Sequence[str] | None = None) -> list[bool] | None:
    """Return, per text (or pair, with `pairs` the second texts, in either order), whether the model saw it in one of
    `splits` (None when the model has no record of its rows)."""
    record = Path(model_folder) / TRAINING_ROWS_FILE
    if not record.is_file():
        return None
    saved = json.loads(record.read_text())
    seen = set().union(*(saved.get(split, []) for split in splits))
    return [key in seen for key in row_hashes(texts, pairs)]


def rows_to_score(model_folder: str | Path, texts: Sequence[str], split: str, *, origin: str,
                  skip_seen: bool, pairs: Sequence[str] | None = None) -> tuple[list[int], str | None]:
    """Return (the indices of the texts to score, a note or None): every row, unless some were seen in fine-tuning.

    A row the model was trained or validated on would flatter it: refused, or left out with skip_seen (named in the
    note), whether the rows come from a file given to evaluate or from a split the data came with at train time (an
    official test file). A split the run cut from its own training rows (origin CUT_SPLIT) is the exception: its
    repeats are the data's duplicates, so it is scored, with a note. Validation rows count as seen only when scoring
    another split.
    """
    every = list(range(len(texts)))
    parts = [part for part in TRAINED_ON if not part == split == "validation"]
    seen = seen_rows(model_folder, texts, parts, pairs)
    if seen is None:
        return every, f"{model_folder} has no {TRAINING_ROWS_FILE}, so overlap with its training rows is unchecked."
    count = sum(seen)
    if not count:
        return every, None
    if origin == CUT_SPLIT:
        return every, (f"{count} of the {len(texts)} {split} texts also appear in the model's training data: the "
                       "data repeats them. Train with {drop_duplicates=True} to keep each text in one split.")
    if skip_seen:
        kept = [i for i in every if not seen[i]]
        return kept, f"Skipped {count} of the {len(texts)} rows: the model saw them in fine-tuning; scored {len(kept)}."
    instead = ("train again with {drop_duplicates=True}, which leaves them out of the " + split + " split"
               if origin == GIVEN_SPLIT else "score the run's own split (the data settings the model was trained with)")
    raise SeenRowsError(f"{count} of the {len(texts)} rows to score were seen in fine-tuning, so their scores would "
                        "flatter the model. Set {skip_seen=True} to score only the rows it never saw, or "
                        f"{instead}.")


# ---------------------------------------------------------------- records beside the model, and the run's lock


def record_reading(model: Path, options: Any) -> None:
    """Write how the training data was read (readers.ReadOptions) beside the model: evaluate reads it the same way."""
    (model / READING_FILE).write_text(json.dumps(asdict(options), indent=2))


@contextmanager
def run_lock(folder: Path) -> Iterator[Path]:
    """Hold outputs/<run>/.lock inside the block: a second process wanting the same run folder stops at once.

    The lock file holds the holder's process id, so the refusal can name it.
    """
    from filelock import FileLock, Timeout

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    lock = FileLock(path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        holder = path.read_text().strip() if path.is_file() else ""
        who = f"process {holder}" if holder.isdigit() else "another process"
        raise RunInUseError(f"The run folder {folder} is in use by {who}: wait for it to finish, or choose another "
                            "run name or output root.") from None
    try:
        path.write_text(str(os.getpid()))  # flock is advisory: writing beside the lock leaves it held
        yield path
    finally:
        path.unlink(missing_ok=True)  # a finished run leaves no lock behind (removed while still held: no race)
        lock.release()


# ---------------------------------------------------------------- the rows evaluate scores

DATA_SETTINGS = (*SOURCE_SETTINGS, *SPLIT_SETTINGS)


def evaluation_splits(cfg: Config, model: str, *, split: str,
                      options: ReadOptions | None = None) -> tuple[DatasetDict, str, str]:
    """Return (the run's splits, where they come from, where `split`'s rows come from: CUT_SPLIT, GIVEN_SPLIT or
    OTHER_ROWS): its saved splits (read, never rewritten) when the data settings are the ones the model was trained
    with; else the splits rebuilt in memory as cfg says. (A file given to evaluate is read by scoring.file_rows.)"""
    recorded = fine_tuning_record(model)
    changed = [name for name in DATA_SETTINGS if recorded and getattr(cfg, name) != recorded.get(name)]
    saved = Path(model).parent / "data"
    found = saved_splits(saved) if not changed and recorded else None
    if found is not None:
        origin = GIVEN_SPLIT if split in found[1].rows_read else CUT_SPLIT  # read as a split of its own, or cut
        return found[0], f"the run's saved splits in {saved}", origin
    splits, _ = load_splits(cfg, options)
    settings = ", ".join(f"{name} {getattr(cfg, name)}" for name in changed) or "the model's record"
    return splits, f"{cfg.dataset}, split again in memory ({settings})", OTHER_ROWS


def training_split(model: str) -> DatasetDict | None:
    """Return the run's saved splits beside a model folder (for baselines trained on its training rows), or None."""
    saved = saved_splits(Path(model).parent / "data") if Path(model).is_dir() else None
    return saved[0] if saved else None


# ---------------------------------------------------------------- resuming the same run


def record_resume_settings(cfg: Config, checkpoint_dir: Path) -> Path:
    """Write the settings a run trains with (RESUME_SETTINGS and the data's fingerprint) into its checkpoint folder,
    before the first checkpoint, so that check_resume can compare a resumed run with them; return the file."""
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    settings = {name: getattr(cfg, name) for name in RESUME_SETTINGS}
    path = checkpoint_dir / RESUME_FILE
    path.write_text(json.dumps({**settings, "fingerprint": source_fingerprint(cfg.dataset)}, indent=2))
    return path


def check_resume(cfg: Config, checkpoint_dir: Path) -> None:
    """Refuse, in one sentence naming it, a resume whose data, model or schedule settings differ from the interrupted
    run's (its record_resume_settings file, else the settings its saved splits were made with); its data changed
    since is refused too. Without either record there is nothing to compare."""
    path = Path(checkpoint_dir) / RESUME_FILE
    if path.is_file():
        recorded = json.loads(path.read_text())
    else:
        saved = Path(checkpoint_dir).parent / "data" / "load_report.json"
        recorded = json.loads(saved.read_text()).get("settings", {}) if saved.is_file() else {}
    wanted = {name: getattr(cfg, name) for name in RESUME_SETTINGS if name in recorded}
    for name, value in wanted.items():
        if value != recorded[name]:
            raise SettingError(f"differs from the interrupted run's {recorded[name]!r}: resume with the same value, or "
                               "train afresh without resuming", name, value)
    if "fingerprint" in recorded and recorded["fingerprint"] != source_fingerprint(cfg.dataset):
        raise DataError(f"{cfg.dataset} changed since the interrupted run (its size or modification time differ): "
                        "resuming would train on other rows than its splits hold. Train afresh without resuming.")
