"""What the commands share: flag groups, the settings rule (a flag, then its DISTILNB_* variable, then the model's
record, then the profile), the machine's threads and progress bars, and errors said in flag words.

Imports only the light modules (config, errors): building the parser must not load torch or pandas.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

from distilnb.config import (
    DEFAULT_EPOCHS,
    ENV_PREFIX,
    MAX_DECIDED_EPOCHS,
    PROFILES,
    RARE_CLASS_SIGHTINGS,
    RARE_LABEL_SHARE,
    SKEWED_CLASS_SHARE,
    Config,
    base_type,
    field_types,
    parse_value,
)
from distilnb.errors import DistilnbError, SettingError

CONFIG_FIELDS = [name for name in field_types() if name != "profile"]
RUN_SETTINGS = ("run_name", "output_root")
DATA_SETTINGS = ("dataset", "text_column", "label_column", "text_pair_column", "label_separator", "dataset_config",
                 "seed", "validation_size", "test_size", "drop_duplicates",
                 "merge_label_variants", "max_train_examples")
# Settings evaluate and predict take from the model's fine-tuning record (distilnb_config.json) unless a flag or
# DISTILNB_* variable names them: a run's data, its columns and splits, and the length it was trained with.
TRAINED_SETTINGS = (*DATA_SETTINGS, "max_length")
# What the task settings do, before their defaults in --help.
TASK_HELP = {"text_pair_column": "the second text column: each row a pair of texts (tokenizer(first, second)); ",
             "label_separator": "several labels a row, joined by it, e.g. ';' (a column of lists needs none); ",
             "dataset_config": "a Hub dataset's config name, e.g. rte for --dataset glue; ",
             "warmup": "the learning rate's warm-up: below 1 a share of the training steps (0.1), from 1 a number of "
                       "steps (200); "}
UNSET_HELP = {"class_weights": f"decided from the training labels, on when one class holds over "
                               f"{SKEWED_CLASS_SHARE:.0%} of the rows or a label is on under {RARE_LABEL_SHARE:.0%} "
                               f"of the texts or under {RARE_CLASS_SIGHTINGS} of them",
              "epochs": f"decided from the training rows, {DEFAULT_EPOCHS:g} or enough passes to show the rarest "
                        f"class {RARE_CLASS_SIGHTINGS} times (at most {MAX_DECIDED_EPOCHS})"}
# readers.FORMATS, spelt here so that building the parser imports no pandas; a test checks that the two agree.
FORMATS = ("csv", "tsv", "jsonl", "json", "parquet")
THREADS_HELP = ("CPU threads for torch and ONNX Runtime, 1 or more (default: their own, $OMP_NUM_THREADS when set, "
                "else one per core; on a busy 2-core machine one thread trained about 3x faster than two)")


class UsageError(DistilnbError):
    """The command line asks for something that cannot be done; the message says what to type instead."""


def flag_of(name: str) -> str:
    """Return the flag of a setting or option: max_length -> --max-length."""
    return "--" + name.replace("_", "-")


def err(*lines: str) -> None:
    """Print lines on stderr, where notes go so that stdout stays the command's result."""
    print(*lines, sep="\n", file=sys.stderr, flush=True)


def shown(path: object) -> str:
    """Return a path as printed: relative to the working directory, so no output names the machine's folders."""
    return os.path.relpath(str(path))


def flag_words(name: str, value: object = None) -> str:
    """Return a setting as the command line types it: `--epochs 4`, `--skip-seen`, `--no-header` (a value written
    in a message, "True", counts as True)."""
    if value in (None, True, "True"):
        return flag_of(name)
    if value in (False, "False"):
        return f"--no-{name.replace('_', '-')}"
    return f"{flag_of(name)} {value:.3g}" if isinstance(value, float) else f"{flag_of(name)} {value}"


# ---------------------------------------------------------------- flag groups


def value_parser(name: str, hint: Any, allow_auto: bool = False) -> Callable[[str], Any]:
    """Return an argparse type reading a flag's text as its DISTILNB_* variable is read (int, float, None, str)."""

    def parse(raw: str) -> Any:
        if allow_auto and raw.strip().lower() == "auto":
            return "auto"
        return parse_value(raw, hint, flag_of(name))  # a SettingError is a ValueError: argparse says "invalid ..."

    parse.__name__ = base_type(hint)[0].__name__  # argparse names it: "invalid float value: 'many'"
    return parse


def setting_help(name: str, trained: bool, auto_length: bool = False) -> str:
    """Return a flag's help: its default (per profile, or the model's record for evaluate/predict), 'auto' where the
    command takes it, and its variable."""
    if trained and name in TRAINED_SETTINGS:
        default = "default: as the model was trained (its distilnb_config.json)"
    else:
        # A profile that leaves a setting unset gets it decided from the data where UNSET_HELP says how.
        per_profile = {profile: values.get(name, UNSET_HELP.get(name)) for profile, values in PROFILES.items()
                       if name in values or name in UNSET_HELP}
        default = ", ".join(f"{profile}: {value}" for profile, value in per_profile.items())
        if len(set(per_profile.values())) == 1:  # every profile alike (class_weights): said once
            default = f"default: {next(iter(per_profile.values()))}"
        default = default or f"default: {Config.__dataclass_fields__[name].default}"
    auto = auto_length and name == "max_length"
    extra = "; 'auto': the 99th percentile of the training texts' token lengths" if auto else ""
    # argparse formats a help with %: a share such as 60% is written 60%% to reach the reader as 60%.
    return f"{TASK_HELP.get(name, '')}{default}{extra}; beats {ENV_PREFIX}{name.upper()}".replace("%", "%%")


def add_settings(parser: argparse.ArgumentParser, names: list[str] | tuple[str, ...], *, trained: bool = False,
                 auto_length: bool = False, profile: str = "offline") -> None:
    """Add --profile and a flag per named Config field (--max-length, --epochs, ...); flags not given stay off args."""
    group = parser.add_argument_group(f"settings (a flag beats its {ENV_PREFIX}* variable, which beats the profile)")
    group.add_argument("--profile", choices=list(PROFILES), default=None,
                       help=f"profile of defaults (default: ${ENV_PREFIX}PROFILE, else {profile})")
    types = field_types()
    for name in names:
        if base_type(types[name])[0] is bool:
            group.add_argument(flag_of(name), action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                               help=setting_help(name, trained, auto_length))
        else:
            parse = value_parser(name, types[name], auto_length and name == "max_length")
            group.add_argument(flag_of(name), type=parse, default=argparse.SUPPRESS, metavar=name.upper(),
                               help=setting_help(name, trained, auto_length))


def threads(raw: str) -> int:
    """Return --threads as a number of threads, 1 or more."""
    if not raw.strip().isdigit() or int(raw) < 1:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a number of threads: give 1 or more (1 is the fastest on a "
                                         "busy machine)")
    return int(raw)


def add_threads(parser: argparse.ArgumentParser) -> None:
    """Add --threads, which every command that runs a model takes."""
    parser.add_argument("--threads", type=threads, help=THREADS_HELP)


def add_output_dir(parser: argparse.ArgumentParser) -> None:
    """Add --output-dir, the run folder itself (run_classification.py's name), instead of --output-root/--run-name."""
    parser.add_argument("--output-dir", metavar="DIR",
                        help="the run folder to write (default: <output root>/<run name>, outputs/<profile>)")


def add_reading(parser: argparse.ArgumentParser, split_files: tuple[str, ...] = ()) -> None:
    """Add the flags that say how to read a data file (encoding, header line, format) and the split files named."""
    group = parser.add_argument_group("reading files")
    # Left unset (None) when not given, so evaluate can fall back on how the model's training data was read.
    group.add_argument("--encoding", help="the files' text encoding, e.g. latin-1 (default: utf-8)")
    group.add_argument("--encoding-errors", choices=("strict", "replace"),
                       help="undecodable bytes: stop with the byte named (strict, the default), or replace each and "
                            "count them")
    group.add_argument("--header", action=argparse.BooleanOptionalAction, default=None,
                       help="whether CSV/TSV files start with a header line (default: detected); without one the "
                            "columns are named text, label by position")
    group.add_argument("--format", choices=FORMATS, help="file format (default: from the extension, else sniffed)")
    helps = {"train": "the training rows, as run_classification.py's --train_file (instead of --dataset)",
             "validation": "the validation rows, with --train-file (default: cut from the training rows)",
             "test": "the test rows, with --train-file (default: cut from the training rows)"}
    for split in split_files:
        group.add_argument(f"--{split}-file", metavar="FILE", help=helps[split])


# ---------------------------------------------------------------- settings: flag > variable > record > profile


def set_by_flag(args: argparse.Namespace) -> dict[str, Any]:
    """Return {setting: value} of the Config fields given as flags."""
    return {name: getattr(args, name) for name in CONFIG_FIELDS if hasattr(args, name)}


def build_config(args: argparse.Namespace, environ: Mapping[str, str] | None = None,
                 recorded: Mapping[str, Any] | None = None) -> Config:
    """Return the run's Config: a flag beats its DISTILNB_* variable, which beats `recorded` (a model's own
    settings, for evaluate and predict), which beats the profile default."""
    environ = dict(os.environ if environ is None else environ)
    flags = {name: value for name, value in set_by_flag(args).items() if value != "auto"}
    by_variable = {name for name in CONFIG_FIELDS if ENV_PREFIX + name.upper() in environ}
    params = {name: value for name, value in (recorded or {}).items()
              if name in TRAINED_SETTINGS and name not in flags and name not in by_variable}
    # from_env reads None as "not given"; a flag typed as `none` is given, so it is applied after.
    nones: dict[str, Any] = {name: None for name, value in flags.items() if value is None}
    output_dir = getattr(args, "output_dir", None)
    if output_dir:  # the run folder itself: its parent is the output root, its name the run's
        if any(hasattr(args, name) for name in RUN_SETTINGS):
            raise UsageError("Give the run folder either with --output-dir or with --output-root/--run-name, not both.")
        flags.update(output_root=os.path.dirname(os.path.normpath(output_dir)) or ".",
                     run_name=os.path.basename(os.path.normpath(output_dir)))
    cfg = Config.from_env(profile=getattr(args, "profile", None), environ=environ, **params, **flags)
    return dataclasses.replace(cfg, **nones) if nones else cfg


def config_with_files(args: argparse.Namespace) -> Config:
    """Return the Config of a command that reads training data (train, tune); --train-file names the dataset, as
    run_classification.py's flag does, and --validation-file and --test-file go with it."""
    if args.train_file and hasattr(args, "dataset"):
        raise UsageError("Give the data either with --dataset or with --train-file, not both.")
    if (args.validation_file or args.test_file) and not args.train_file:
        raise UsageError("--validation-file and --test-file go with --train-file (the training rows).")
    if args.train_file:
        args.dataset = args.train_file
    return build_config(args)


def read_options(args: argparse.Namespace, recorded: Mapping[str, Any] | None = None) -> Any:
    """Return the reading flags as readers.ReadOptions (with train's --validation-file and --test-file); an option not
    given takes its `recorded` value (how the run's training data was read), else its default."""
    from distilnb.readers import ReadOptions

    files = {split: getattr(args, f"{split}_file", None) for split in ("validation", "test")}
    held_out = {split: file for split, file in files.items() if file} if getattr(args, "train_file", None) else None
    given = {"encoding": args.encoding, "encoding_errors": args.encoding_errors, "header": args.header,
             "format": args.format, "split_files": held_out}
    return ReadOptions(**{**(recorded or {}), **{name: value for name, value in given.items() if value is not None}})


def chosen_max_length(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int | None:
    """Return --max-length, else DISTILNB_MAX_LENGTH, else None (the length the model was trained with)."""
    environ = os.environ if environ is None else environ
    if getattr(args, "max_length", None) is not None:
        return args.max_length
    variable = environ.get(ENV_PREFIX + "MAX_LENGTH")
    return int(variable) if variable else None


# ---------------------------------------------------------------- the machine


def progress_bars() -> bool:
    """Return True when stderr is a terminal: a redirected log gets no bars."""
    return sys.stderr.isatty()


def prepare_machine(args: argparse.Namespace, *, reads_datasets: bool = True) -> None:
    """Set the threads (set_threads) and quiet the libraries' notices and bars (quiet_libraries)."""
    set_threads(args)
    quiet_libraries(reads_datasets=reads_datasets)


def set_threads(args: argparse.Namespace) -> None:
    """Set torch's and ONNX Runtime's threads when --threads is given (else each keeps its own default)."""
    if getattr(args, "threads", None):
        from distilnb import models

        models.set_threads(args.threads)


def quiet_libraries(*, reads_datasets: bool) -> None:
    """Quiet transformers' notices, and turn progress bars off when stderr is a log file (datasets' too when the
    command reads data through it: predict does not). This imports transformers, and so torch."""
    import logging

    # The LOAD REPORT says a new head was initialised, which the command line does by design, and names the model's
    # cache folder: chapter 03 shows and explains it once; here it would only be noise with a machine path in it.
    logging.getLogger("transformers.modeling_utils").setLevel(logging.ERROR)
    # A quieter modeling_utils makes transformers 5 check the tensor-parallel plan and list every layer of a BERT
    # encoder as "not sharded": a notice about multi-GPU sharding, meaningless here.
    logging.getLogger("transformers.distributed.tensor_parallel").setLevel(logging.ERROR)
    if not progress_bars():
        import transformers

        transformers.utils.logging.disable_progress_bar()
        # TrainingArguments(disable_tqdm=None) turns the Trainer's bar off when its module's logger is quieter than
        # WARNING; the Trainer then prints one line per log (each epoch) instead, which a log file can hold.
        logging.getLogger("transformers.training_args").setLevel(logging.ERROR)
        if reads_datasets:  # importing datasets only to quiet its bars cost predict about 3 s of start-up
            import datasets

            datasets.disable_progress_bars()


def progress_display() -> bool | str:
    """Return the Predictor's progress display: a bar on a terminal, else a plain line per tenth of the work."""
    return True if progress_bars() else "lines"


# ---------------------------------------------------------------- errors in the command line's words


def cli_value(value: object) -> str:
    """Return a value as a flag would be typed: 0.5, 1e+09, tiny."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def in_flag_words(error: BaseException) -> str:
    """Return an error's message on one line; a SettingError names its flag, or its DISTILNB_* variable."""
    if isinstance(error, SettingError) and error.variable:
        variable, raw = error.variable, str(error.raw)
        said = error.rule_words(lambda name: variable if name == error.setting else flag_of(name), "=", lambda _: raw)
    elif isinstance(error, SettingError):
        said = error.rule_words(flag_of, " ", cli_value)
    elif isinstance(error, DistilnbError):
        said = error.words(flag_words)
    else:
        said = error.args[0] if error.args and isinstance(error.args[0], str) else str(error)
    return " ".join(said.split())


# ---------------------------------------------------------------- a config file (tune's best.json)


class ConfigFile(argparse.Action):
    """--config FILE: the file's settings count as flags given before every other flag, so a flag still beats it."""

    # value is one str (the flag takes no nargs), narrower than Action's str | Sequence[Any] | None
    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,  # type: ignore[override]
                 value: str, option_string: str | None = None) -> None:
        import json
        from pathlib import Path

        try:
            settings = json.loads(Path(value).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            parser.error(f"--config {value}: not a readable JSON file of settings ({error.__class__.__name__})")
        unknown = sorted(set(settings) - {*CONFIG_FIELDS, "profile", "output_root"})
        if not isinstance(settings, dict) or unknown:
            parser.error(f"--config {value}: {', '.join(unknown) or 'not an object'} is not a setting")
        for name, setting in settings.items():
            if name == "output_root" or (name != "profile" and hasattr(namespace, name)):
                continue  # a flag given before --config wins; output_root is the machine's, never a file's
            if name != "profile" or getattr(namespace, "profile", None) is None:
                setattr(namespace, name, setting)
        namespace.config = value


def add_config(parser: argparse.ArgumentParser) -> None:
    """Add --config FILE: settings from a JSON file, such as the best.json `distilnb tune` writes."""
    parser.add_argument("--config", metavar="FILE", action=ConfigFile,
                        help="read settings from a JSON file (tune's best.json); a flag beats the file, which beats "
                             f"the {ENV_PREFIX}* variables and the profile")
