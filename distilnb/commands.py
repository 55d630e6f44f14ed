"""What each `distilnb` command does (its arguments are in distilnb.cli): train, evaluate, predict, download, and
the settings rule they share (a flag, then its DISTILNB_* variable, then the model's record, then the profile).

Every message here speaks the command line (flags); the library's messages are reworded by cli.in_cli_words.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shlex
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from distilnb.config import ENV_PREFIX, MAX_LENGTH_RANGE, Config, field_types
from distilnb.errors import DataError, DistilnbError, HubUnreachableError, SettingError, from_hub
from distilnb.readers import ReadOptions, decode, read_source, read_table, reading, source_notes

# What loading a model needs from its Hub repository: configuration, tokenizer files and safetensors weights only.
MODEL_FILES = ["config.json", "*.safetensors", "*.safetensors.index.json", "tokenizer.json", "tokenizer_config.json",
               "special_tokens_map.json", "added_tokens.json", "vocab.txt", "vocab.json", "merges.txt", "spiece.model"]
LOCAL_MODELS = ("tiny", "minilm")  # the profiles' short names, resolved by smoke.resolve_model
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}(/[A-Za-z0-9][\w.-]{0,95})?")
GENERIC_LABEL = re.compile(r"LABEL_\d+")
FINE_TUNING_RECORDS = ("distilnb_config.json", "training_args.json")
TABLE_INPUTS = (".csv", ".tsv", ".jsonl", ".json", ".parquet")  # --file as a table; anything else: one text per line
BLANK = "blank line: nothing to classify"
FINE_TUNED = "fine-tuned (Trainer)"  # the row of metrics.json that train.run_fine_tuning writes
READING_RECORD = "distilnb_reading.json"  # beside the model: the reading flags its training data needed
CONFIG_FIELDS = [name for name in field_types() if name != "profile"]
# Settings evaluate and predict take from the model's fine-tuning record (distilnb_config.json) unless a flag or
# DISTILNB_* variable names them: a run's data, its columns and splits, and the length it was trained with.
TRAINED_SETTINGS = ("dataset", "text_column", "label_column", "seed", "validation_size", "test_size",
                    "drop_duplicates", "merge_label_variants", "max_train_examples", "max_length")


class UsageError(DistilnbError):
    """The command line asks for something that cannot be done; the message says what to type instead."""


# ---------------------------------------------------------------- settings: flag > variable > record > profile


def flag_of(name: str) -> str:
    """Return the flag of a setting or option: max_length -> --max-length."""
    return "--" + name.replace("_", "-")


def set_by_flag(args: argparse.Namespace) -> dict[str, Any]:
    """Return {setting: value} of the Config fields given as flags."""
    return {name: getattr(args, name) for name in CONFIG_FIELDS if hasattr(args, name)}


def setting_sources(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, str]:
    """Return {setting: how the user wrote it}, e.g. {'epochs': '--epochs 0', 'seed': 'DISTILNB_SEED=x'}."""
    sources = {name: f"{ENV_PREFIX}{name.upper()}={environ[ENV_PREFIX + name.upper()]}"
               for name in CONFIG_FIELDS if ENV_PREFIX + name.upper() in environ}
    return sources | {name: f"{flag_of(name)} {value}" for name, value in set_by_flag(args).items()}


def build_config(args: argparse.Namespace, environ: Mapping[str, str] | None = None,
                 recorded: Mapping[str, Any] | None = None) -> Config:
    """Return the run's Config: a flag beats its DISTILNB_* variable, which beats `recorded` (a model's own
    settings, for evaluate and predict), which beats the profile default."""
    environ = dict(os.environ if environ is None else environ)
    sources = setting_sources(args, environ)
    recorded = recorded or {}
    params = {name: recorded[name] for name in TRAINED_SETTINGS if name in recorded and name not in sources}
    flags = {name: value for name, value in set_by_flag(args).items() if value != "auto"}
    # from_env reads None as "not given"; a flag typed as `none` is given, so it is applied after.
    nones = {name: None for name, value in flags.items() if value is None}
    try:
        return dataclasses.replace(Config.from_env(profile=args.profile, environ=environ, **params, **flags), **nones)
    except SettingError as error:
        raise SettingError(name_the_flags(str(error), flags), error.setting) from None


def name_the_flags(message: str, flags: Mapping[str, Any]) -> str:
    """Return a Config validation message with the settings given as flags named as flags: 'epochs = 0 must be more
    than 0' becomes '--epochs 0 must be more than 0' (Config.from_env already names DISTILNB_* variables)."""
    for name, value in flags.items():
        message = re.sub(rf"^{name} = \S+ ", f"{flag_of(name)} {value} ", message)
        if "_" in name:  # a one-word name (model, seed) may be a plain word of the sentence
            message = re.sub(rf"(?<![\w-]){name}(?![\w-])", flag_of(name), message)
    return message


def err(*lines: str) -> None:
    """Print lines on stderr, where notes go so that stdout stays the command's result."""
    print(*lines, sep="\n", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the machine


def prepare_machine(args: argparse.Namespace) -> None:
    """Set torch's threads (--threads, else models.cpu_threads) and turn progress bars off when stderr is a log file."""
    import torch

    from distilnb.models import cpu_threads

    torch.set_num_threads(max(1, args.threads or cpu_threads()))
    if not progress_bars():
        import logging

        import datasets
        import transformers

        datasets.disable_progress_bars()
        transformers.utils.logging.disable_progress_bar()
        # TrainingArguments(disable_tqdm=None) turns the Trainer's bar off when its module's logger is quieter than
        # WARNING; the Trainer then prints one line per log (each epoch) instead, which a log file can hold.
        logging.getLogger("transformers.training_args").setLevel(logging.ERROR)


def progress_bars() -> bool:
    """Return True when stderr is a terminal: a redirected log gets no bars (the Trainer then prints a line per log)."""
    return sys.stderr.isatty()


# ---------------------------------------------------------------- models


def check_model_name(name: str, flag: str) -> None:
    """Raise UsageError, in one sentence, for a model that is neither an existing folder nor a well-formed Hub id."""
    path = Path(name).expanduser()
    if name in LOCAL_MODELS or path.exists():
        if path.exists() and not (path / "config.json").is_file():
            raise UsageError(f"{flag} {name}: that folder has no config.json, so it holds no model. Give a folder "
                             "saved with save_pretrained (or by `distilnb train`), or a Hub id.")
        return
    if name.startswith((".", "/", "~")) or not HUB_ID.fullmatch(name) or "--" in name or ".." in name:
        raise UsageError(f"{flag} {name}: there is no folder there, and it is not a Hub id like "
                         "distilbert-base-uncased or owner/name. Check the path (relative paths start at "
                         f"{Path.cwd()}).")


def model_folder(model_dir: str | None, cfg: Config) -> str:
    """Return the model to load: --model-dir (a folder or Hub id), else this run's model folder, which must exist."""
    if model_dir is None:
        folder = cfg.paths.model
        if not (folder / "config.json").is_file():
            raise UsageError(f"No model folder at {folder} yet: train one with `python -m distilnb train` and the same "
                             "--profile/--run-name/--output-root, or pass --model-dir.")
        return str(folder)
    check_model_name(model_dir, "--model-dir")
    return str(Path(model_dir).expanduser()) if Path(model_dir).expanduser().exists() else model_dir


def fine_tuning_record(model: str) -> dict:
    """Return the settings a model was fine-tuned with (distilnb_config.json), or {} for a model without one."""
    record = Path(model) / "distilnb_config.json"
    return json.loads(record.read_text()) if record.is_file() else {}


def check_head_is_trained(model: str, label_names: list[str]) -> None:
    """Refuse a local model labelled LABEL_0, LABEL_1... that has no fine-tuning record; warn for such a Hub id."""
    if not all(GENERIC_LABEL.fullmatch(name) for name in label_names):
        return
    folder = Path(model)
    if not folder.is_dir():
        err(f"Warning: {model} names its classes only {', '.join(label_names)}: check that its head was fine-tuned "
            "and what each label means before trusting these predictions.")
        return
    if not any((folder / name).is_file() for name in FINE_TUNING_RECORDS):
        raise UsageError(f"{model} has generic labels ({', '.join(label_names)}) and no fine-tuning record "
                         f"({' or '.join(FINE_TUNING_RECORDS)}): its classification head is untrained, so its "
                         f"predictions mean nothing. Fine-tune it first: python -m distilnb train --model {model}")


def load_predictor(model: str, cfg: Config, max_length: int | None):
    """Return a Predictor for the model (max_length: the given one, else as trained), refusing an untrained head."""
    from distilnb.predict import Predictor

    predictor = Predictor.from_folder(model, max_length=max_length, batch_size=cfg.batch_size)
    check_head_is_trained(model, predictor.label_names)
    return predictor


def chosen_max_length(args: argparse.Namespace) -> int | None:
    """Return --max-length, else DISTILNB_MAX_LENGTH, else None (the length the model was trained with)."""
    written = setting_sources(args, os.environ).get("max_length")
    if written is None:
        return None
    return getattr(args, "max_length", None) or int(os.environ["DISTILNB_MAX_LENGTH"])


# ---------------------------------------------------------------- train


def read_options(args: argparse.Namespace, recorded: dict | None = None) -> ReadOptions:
    """Return the reading flags as ReadOptions (with train's --validation-file and --test-file); an option not given
    takes its `recorded` value (how the run's training data was read), else its default."""
    files = {split: getattr(args, f"{split}_file", None) for split in ("validation", "test")}
    held_out = {split: file for split, file in files.items() if file} if getattr(args, "train_file", None) else None
    given = {"encoding": args.encoding, "encoding_errors": args.encoding_errors, "header": args.header,
             "format": args.format, "split_files": held_out}
    return ReadOptions(**{**(recorded or {}), **{name: value for name, value in given.items() if value is not None}})


def record_reading(model: Path, options: ReadOptions) -> None:
    """Write how the training data was read beside the model, so evaluate reads it the same way with no flags."""
    (model / READING_RECORD).write_text(json.dumps(dataclasses.asdict(options), indent=2))


def recorded_reading(model: str) -> dict:
    """Return how a model's training data was read (record_reading), or {} when nothing was recorded."""
    record = Path(model) / READING_RECORD
    return json.loads(record.read_text()) if record.is_file() else {}


def train_config(args: argparse.Namespace) -> Config:
    """Return the training Config; --train-file names the dataset as run_classification.py's flag does."""
    train_file = getattr(args, "train_file", None)
    if train_file and hasattr(args, "dataset"):
        raise UsageError("Give the data either with --dataset or with --train-file, not both.")
    if (args.validation_file or args.test_file) and not train_file:
        raise UsageError("--validation-file and --test-file go with --train-file (the training rows).")
    if train_file:
        args.dataset = train_file
    return build_config(args)


def model_max_length(model: str, tokenizer) -> int:
    """Return the longest input the model takes, in tokens (its position embeddings), at most 512."""
    from transformers import AutoConfig

    config = from_hub(f"the model {model!r}", lambda: AutoConfig.from_pretrained(model))
    positions = getattr(config, "max_position_embeddings", None) or MAX_LENGTH_RANGE[1]
    return min(positions, tokenizer.model_max_length, MAX_LENGTH_RANGE[1])


def length_advice(cfg: Config, splits, auto: bool) -> tuple[Config, str]:
    """Return the Config (max_length chosen when auto) and a line: how many training texts are cut, what 02 picks."""
    from distilnb import tokens
    from distilnb.models import load_tokenizer

    tokenizer = load_tokenizer(cfg.resolved_model)
    lengths = tokens.token_lengths(list(splits["train"]["text"]), tokenizer)
    limit = model_max_length(cfg.resolved_model, tokenizer)
    if auto:
        chosen = max(MAX_LENGTH_RANGE[0], tokens.suggest_max_length(lengths, 99.0, model_max=limit))
        cfg = dataclasses.replace(cfg, max_length=chosen)
    report = tokens.truncation_report(lengths, cfg.max_length, model_max=limit)
    how = (f" --max-length auto chose {cfg.max_length}: the 99th percentile, capped at the model's {limit}." if auto
           else " Pass --max-length auto to use it." if report.suggested != cfg.max_length else "")
    return cfg, f"Training texts: {report.summary()}{how}"


def read_and_split(cfg: Config):
    """Return (splits, notes, replaced) of the training data as data.prepare_splits builds them: notes include what
    reading detected or replaced; replaced counts the undecodable characters replaced per split."""
    from distilnb import data

    frames = read_source(cfg.dataset)
    splits, report = data.prepare_splits(frames, cfg)
    replaced = {split: frame.attrs["replaced_characters"] for split, frame in frames.items()
                if frame.attrs.get("replaced_characters")}
    return splits, [*source_notes(frames), *report.notes], replaced


def add_reading_to_report(data_folder: Path, notes: list[str], replaced: dict[str, int]) -> None:
    """Add what reading detected (notes) and replaced (counts) to the run's load_report.json.

    data.prepare_splits builds the report from the frames' rows and does not look at what the reader noted in
    frame.attrs; until it does, the command line adds it here, after training saved the report.
    """
    path = data_folder / "load_report.json"
    if not path.is_file():
        return
    report = json.loads(path.read_text())
    report["notes"] = [*(note for note in notes if note not in report["notes"]), *report["notes"]]
    for split, count in replaced.items():
        report["converted"][f"{split}: undecodable characters replaced with U+FFFD"] = count
    path.write_text(json.dumps(report, indent=2))


def baseline_scores(splits, seed: int) -> dict[str, dict]:
    """Return the validation scores of the majority class and TF-IDF + logistic regression (chapter 03's baselines)."""
    from distilnb import baselines, data

    names, train, valid = data.label_names(splits), splits["train"], splits["validation"]
    return {"majority class": baselines.majority_baseline(train["label"], valid["label"], names),
            "TF-IDF + logistic regression": baselines.tfidf_baseline(train["text"], train["label"], valid["text"],
                                                                     valid["label"], names, seed=seed)}


def score_table(rows: dict[str, dict]) -> str:
    """Return accuracy, macro-F1 and weighted F1 of each model as an aligned table with three decimals."""
    from distilnb.metrics import SUMMARY_METRICS

    frame = pd.DataFrame({name: {m: scores[m] for m in SUMMARY_METRICS} for name, scores in rows.items()}).T
    return frame.to_string(float_format="{:.3f}".format)


def interrupted(cfg: Config, argv: list[str]) -> str:
    """Return what an interrupted training run saved and the command that resumes it."""
    from transformers.trainer_utils import get_last_checkpoint

    folder = cfg.paths.checkpoints
    checkpoint = get_last_checkpoint(str(folder)) if folder.is_dir() else None
    if checkpoint is None:
        return (f"Nothing to resume from: the first checkpoint comes after {cfg.save_steps} steps (--save-steps) or "
                "an epoch. Run the same command again to start over.")
    again = shlex.join(["python", "-m", "distilnb", *[a for a in argv if a != "--resume"], "--resume"])
    return f"Saved: {checkpoint} (with the model, optimizer and schedule). To continue from there:\n  {again}"


def run_train(args: argparse.Namespace) -> None:
    """Fine-tune as chapters 01-03 do; print the data notes, the length advice, and the scores beside the baselines."""
    from distilnb import runs, train

    prepare_machine(args)
    cfg = train_config(args)
    check_model_name(cfg.model, "--model")
    options = read_options(args)
    with reading(options):
        splits, notes, replaced = read_and_split(cfg)
        cfg, advice = length_advice(cfg, splits, auto=getattr(args, "max_length", None) == "auto")
        if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, once
            err(*(f"Data: {note}" for note in notes), advice)
        try:
            folder = train.run_fine_tuning(cfg, resume=args.resume)
        except KeyboardInterrupt:
            err(interrupted(cfg, args.argv))
            raise
    if not is_main_process():
        return
    record_reading(folder, options)
    add_reading_to_report(cfg.paths.data, notes, replaced)
    baselines = baseline_scores(splits, cfg.seed)
    runs.update_metrics(cfg.paths.metrics, "validation", baselines)  # where chapter 03 writes them too
    rows = {**baselines, "fine-tuned (Trainer)": runs.read_metrics(cfg.paths.metrics)["validation"][FINE_TUNED]}
    print(f"Model saved to {folder}\nValidation scores ({len(splits['validation'])} texts), beside the baselines:\n"
          f"{score_table(rows)}\nMetrics: {cfg.paths.metrics}")


def is_main_process() -> bool:
    """Return True in the process that should print: the only one, or rank 0 under torchrun / accelerate launch."""
    from accelerate import PartialState

    return PartialState().is_main_process


# ---------------------------------------------------------------- evaluate


def rows_to_score(args: argparse.Namespace, cfg: Config, recorded: dict, model: str) -> tuple[Any, str, bool]:
    """Return (splits, where they come from, whether they are the run's saved splits): --test-file; else the run's
    saved splits (read, never rewritten) when the data settings are the ones the model was trained with; else the
    splits rebuilt in memory as cfg says."""
    import datasets

    from distilnb import data

    if args.test_file:
        frame = data.clean_frame(read_table(args.test_file), cfg.text_column, cfg.label_column,
                                 data.LoadReport(source=args.test_file), split=args.split)
        return file_splits(frame, args.split, model), f"every row of {args.test_file}", False
    changed = [name for name in TRAINED_SETTINGS if name != "max_length" and recorded
               and getattr(cfg, name) != recorded.get(name)]
    saved = Path(model).parent / "data"
    if not changed and recorded and (saved / "dataset_dict.json").is_file():
        return datasets.load_from_disk(str(saved)), f"the run's saved splits in {saved}", True
    splits, _ = data.prepare_splits(read_source(cfg.dataset), cfg)
    settings = ", ".join(f"{name} {getattr(cfg, name)}" for name in changed) or "the model's record"
    return splits, f"{cfg.dataset}, split again in memory ({settings})", False


def file_splits(frame: pd.DataFrame, split: str, model: str):
    """Return a DatasetDict holding a labelled file's rows as `split`, labels named as the model names them."""
    from transformers import AutoConfig

    from distilnb import data
    from distilnb.models import label_names_of

    names = label_names_of(from_hub(f"the model {model!r}", lambda: AutoConfig.from_pretrained(model)))
    unknown = sorted(set(frame["label"]) - set(names))
    if unknown:
        raise DataError(f"The file has labels the model was not trained on: {unknown}; it knows {names}.")
    return data.to_dataset_dict({"train": frame.iloc[:0], split: frame}, names)


def check_overlap(model: str, texts: list[str], split: str, own_split: bool) -> None:
    """Refuse to score rows the model was trained or validated on; for the run's own split, name the data's repeats."""
    from distilnb import runs

    if not (Path(model) / "training_rows.json").is_file():
        err(f"Note: {model} has no training_rows.json, so overlap with its training rows cannot be checked.")
        return
    overlap = {part: n for part, n in runs.training_overlap(model, texts).items()
               if n and not (part == "validation" == split)}
    if not overlap:
        return
    counts = " and ".join(f"{n} in its {part} rows" for part, n in overlap.items())
    if own_split:  # the very rows training set aside: a repeat here is a duplicate text in the data itself
        err(f"Note: {sum(overlap.values())} of the {len(texts)} {split} texts also appear in the model's training data "
            f"({counts}): the data repeats them. Train with --drop-duplicates to keep each text in one split.")
        return
    raise UsageError(f"{sum(overlap.values())} of the {len(texts)} rows to score were seen in fine-tuning ({counts}), "
                     "so their scores would flatter the model. Evaluate the run's own split (leave out the data "
                     "flags), or give --test-file with rows the model has not seen.")


def report_table(scores: dict) -> str:
    """Return the classification report with an accuracy row, every figure with three decimals."""
    from distilnb.metrics import report_frame

    frame = report_frame(scores)
    accuracy = pd.DataFrame({"f1": [scores["accuracy"]], "support": [scores["examples"]]}, index=["accuracy"])
    frame = pd.concat([frame.iloc[:-2], accuracy, frame.iloc[-2:]])
    frame["support"] = frame["support"].astype(int)
    return frame.to_string(float_format="{:.3f}".format, na_rep="")


def save_evaluation_figures(evaluation, folder: Path, split: str) -> list[Path]:
    """Write the confusion matrix and the per-class scores of an evaluation as PNGs; return their paths."""
    from distilnb import metrics, plots

    matrix = metrics.confusion(evaluation.labels, evaluation.logits.argmax(axis=-1), len(evaluation.label_names))
    per_class = metrics.report_frame(evaluation.scores).iloc[:-2]
    figures = {f"confusion_matrix_{split}": plots.confusion_matrix(matrix, evaluation.label_names),
               f"per_class_{split}": plots.per_class_scores(per_class)}
    return [plots.save_figure(figure, folder, name) for name, figure in figures.items()]


def run_evaluate(args: argparse.Namespace) -> None:
    """Evaluate a model on rows it never saw, as chapter 04 does; write eval_<split>.json, metrics.json and figures."""
    from distilnb import metrics, runs

    prepare_machine(args)
    model = model_folder(args.model_dir, build_config(args))
    recorded = fine_tuning_record(model)
    cfg = build_config(args, recorded=recorded)
    with reading(read_options(args, recorded=None if args.test_file else recorded_reading(model))):
        splits, source, saved = rows_to_score(args, cfg, recorded, model)
    if args.split not in splits:
        raise UsageError(f"The data has no {args.split} split.")
    check_overlap(model, list(splits[args.split]["text"]), args.split, own_split=saved)
    predictor = load_predictor(model, cfg, chosen_max_length(args))
    evaluation = metrics.evaluate_split(predictor, splits, args.split)
    written = runs.save_evaluation(cfg.paths.metrics, model, args.split, evaluation.scores)
    figures = save_evaluation_figures(evaluation, cfg.paths.figures, args.split)
    print(json.dumps(evaluation.scores, indent=2) if args.json else report_table(evaluation.scores))
    err(f"{args.split}: {len(splits[args.split])} texts from {source}; max_length {predictor.max_length}",
        f"Written: {written}, {cfg.paths.metrics}, {', '.join(map(str, figures))}")


# ---------------------------------------------------------------- predict


def split_lines(text: str) -> list[str]:
    """Return a text's lines without their ends; only \\n and \\r\\n end a line (a final one adds no empty line)."""
    lines = re.split(r"\r?\n", text)
    return lines[:-1] if lines and lines[-1] == "" else lines


def read_inputs(args: argparse.Namespace, cfg: Config) -> pd.DataFrame:
    """Return the inputs as rows with `text` (and `id` when the input has one), in order, blank lines kept."""
    if args.texts and args.file:
        raise UsageError("Give texts either as arguments or with --file, not both.")
    options = read_options(args)
    if args.texts:
        return pd.DataFrame({"text": args.texts})
    if args.file:
        path = Path(args.file).expanduser()
        if not path.is_file():
            raise UsageError(f"No file at {path}: --file wants a text file (one text per line) or a table of texts.")
        if args.format or path.suffix.lower() in TABLE_INPUTS:
            return table_inputs(path, args, cfg)
        return pd.DataFrame({"text": split_lines(decode(path.read_bytes(), str(path), options.encoding,
                                                        options.encoding_errors)[0])})
    if sys.stdin.isatty():
        err("Reading texts from standard input, one per line; end with Ctrl-D.")
    text, _ = decode(sys.stdin.buffer.read(), "standard input", options.encoding, options.encoding_errors)
    return pd.DataFrame({"text": split_lines(text)})


def table_inputs(path: Path, args: argparse.Namespace, cfg: Config) -> pd.DataFrame:
    """Return the text column (--text-column) and id column (--id-column, else 'id' when present) of a table."""
    options = read_options(args)
    frame = read_table(path, encoding=options.encoding, encoding_errors=options.encoding_errors,
                       header=options.header, format=options.format)
    id_column = args.id_column or ("id" if "id" in frame.columns else None)
    for flag, column in (("--text-column", cfg.text_column), ("--id-column", id_column)):
        if column is not None and column not in frame.columns:
            raise UsageError(f"{path.name} has no column {column!r} ({flag}); its columns are {list(frame.columns)}.")
    rows = pd.DataFrame({"text": frame[cfg.text_column].fillna("").astype(str)})
    if id_column:
        rows.insert(0, "id", frame[id_column].tolist())
    return rows


def truncation_warning(predictor, texts: list[str], chunk: bool) -> str | None:
    """Return a warning when texts are longer than the model's max_length and --chunk is off, else None."""
    from distilnb import tokens

    if chunk or not texts:
        return None
    cut = tokens.truncated_count(tokens.token_lengths(texts, predictor.tokenizer), predictor.max_length)
    if not cut:
        return None
    return (f"Warning: {cut} of {len(texts)} texts are longer than {predictor.max_length} tokens and were cut to their "
            "beginning: pass --chunk to score each whole, in overlapping windows.")


def predictions(inputs: pd.DataFrame, predictor, args: argparse.Namespace) -> list[dict]:
    """Return one result per input row, in order, with its index; a blank row gets an error instead of a label."""
    blank = inputs["text"].str.strip() == ""
    texts = inputs.loc[~blank, "text"].tolist()
    warning = truncation_warning(predictor, texts, args.chunk)
    if warning:
        err(warning)
    progress = None if progress_bars() else False  # None: the Predictor's own rule (a bar from 1,000 texts on)
    results = iter(predictor.predict(texts, top_k=args.top_k, chunk=args.chunk, progress=progress) if texts else [])
    rows = []
    for index, row in enumerate(inputs.to_dict("records")):
        outcome = {"error": BLANK} if blank.iloc[index] else next(results)
        rows.append({"index": index, **row, **outcome})
    return rows


def write_predictions(rows: list[dict], output: str | None) -> None:
    """Print the rows as JSON lines, or write them to --output: .jsonl, or .csv with a score_<class> per class."""
    if output is None:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False), flush=True)
        return
    path = Path(output).expanduser()
    if path.suffix.lower() == ".jsonl":
        path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    elif path.suffix.lower() == ".csv":
        flat = [{**{k: v for k, v in row.items() if k != "scores"},
                 **{f"score_{name}": value for name, value in row.get("scores", {}).items()}} for row in rows]
        pd.DataFrame(flat).to_csv(path, index=False)
    else:
        raise UsageError(f"--output {output}: name a .csv or .jsonl file.")
    err(f"Wrote {len(rows)} predictions to {path}")


def run_predict(args: argparse.Namespace) -> None:
    """Classify texts with a saved model: one result per input line, with its index, on stdout or in --output."""
    prepare_machine(args)
    model = model_folder(args.model_dir, build_config(args))
    cfg = build_config(args, recorded=fine_tuning_record(model))  # e.g. --text-column defaults to the trained one
    if args.output and Path(args.output).suffix.lower() not in (".csv", ".jsonl"):
        raise UsageError(f"--output {args.output}: name a .csv or .jsonl file.")
    inputs = read_inputs(args, cfg)
    if inputs.empty:
        raise UsageError("No texts to classify: give them as arguments, with --file, or on standard input.")
    if args.top_k is not None and args.top_k < 1:
        raise UsageError(f"--top-k {args.top_k}: keep at least 1 class (leave it out for every class).")
    predictor = load_predictor(model, cfg, chosen_max_length(args))
    write_predictions(predictions(inputs, predictor, args), args.output)


# ---------------------------------------------------------------- download


def download_model(model: str) -> str:
    """Return the local snapshot folder of a Hub model, downloading its config, tokenizer and safetensors weights."""
    from huggingface_hub import snapshot_download

    folder = from_hub(f"the model {model!r}", lambda: snapshot_download(model, allow_patterns=MODEL_FILES))
    if not list(Path(folder).glob("*.safetensors")):
        err(f"Warning: {model} has no .safetensors weights, and distilnb will not load pickle weights.")
    return folder


def download_dataset(dataset: str) -> str:
    """Return a line naming a Hub dataset's splits and sizes and the cache holding it, once load_dataset cached it."""
    import datasets

    loaded = from_hub(f"the dataset {dataset!r}", lambda: datasets.load_dataset(dataset))
    return f"{ {split: len(table) for split, table in loaded.items()} } in {datasets.config.HF_DATASETS_CACHE}"


def is_hub_id(name: str) -> bool:
    """Return True when a model or dataset name is a Hub id rather than a local file, folder or a profile's model."""
    return name not in LOCAL_MODELS and not Path(name).expanduser().exists()


def downloads(cfg: Config, published: str | None) -> list[tuple[str, str, Callable[[str], object] | None]]:
    """Return (what, name, fetch) per thing the profile needs; fetch is None for what is local."""
    items = [("model", cfg.model, download_model), ("dataset", cfg.dataset, download_dataset)]
    items = [(what, name, fetch if is_hub_id(name) else None) for what, name, fetch in items]
    return items + ([("published checkpoint", published, download_model)] if published else [])


def run_download(args: argparse.Namespace) -> None:
    """Cache the profile's model and dataset and the published checkpoint in HF_HOME; print how to use them offline."""
    from huggingface_hub import constants

    # What there is to download is the full profile's: the offline and smoke profiles need nothing from the Hub.
    args.profile = args.profile or os.environ.get(ENV_PREFIX + "PROFILE") or "full"
    for what, name, fetch in downloads(build_config(args), args.published):
        if fetch is None:
            print(f"{what} {name}: local, nothing to download")
            continue
        try:
            print(f"{what} {name}: {fetch(name)}")
        except HubUnreachableError:
            raise UsageError(f"Could not fetch the {what} {name!r}: `distilnb download` needs the Hugging Face Hub, so "
                             "run it on a machine with network, with HF_HUB_OFFLINE unset.") from None
    print(f"\nOn this machine, or one given a copy of {constants.HF_HOME}, run the course offline with:\n"
          f"export HF_HOME={constants.HF_HOME}\nexport HF_HUB_OFFLINE=1")
