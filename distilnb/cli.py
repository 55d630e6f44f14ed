"""The course from a terminal: `python -m distilnb train | evaluate | predict | download | demo`.

This module holds the arguments, the settings rule and the error wording; distilnb.commands holds what each command
does, over the notebooks' functions.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from typing import Any

from distilnb.commands import CONFIG_FIELDS, TRAINED_SETTINGS, flag_of
from distilnb.config import ENV_PREFIX, PROFILES, Config, base_type, field_types, parse_value
from distilnb.errors import DistilnbError
from distilnb.readers import FORMATS

PUBLISHED_MODEL = "bhadresh-savani/distilbert-base-uncased-emotion"  # chapters 04/05 use it when 03 was skipped
# Options of readers.read_source that are not Config fields, so flags of their own.
READER_OPTIONS = ("encoding", "encoding_errors", "header", "format")
THREADS_HELP = ("CPU threads for torch (default: $OMP_NUM_THREADS when set, else the cores not already busy, at most 4:"
                " on a shared 2-core machine one thread trained 3x faster than two)")


# ---------------------------------------------------------------- flags


def value_parser(name: str, hint: Any, allow_auto: bool = False) -> Callable[[str], Any]:
    """Return an argparse type reading a flag's text as its DISTILNB_* variable is read (int, float, None, str)."""

    def parse(raw: str) -> Any:
        if allow_auto and raw.strip().lower() == "auto":
            return "auto"
        return parse_value(raw, hint, flag_of(name))  # a SettingError is a ValueError: argparse says "invalid ..."

    parse.__name__ = base_type(hint)[0].__name__  # argparse names it: "invalid float value: 'many'"
    return parse


def field_help(name: str, trained: bool) -> str:
    """Return a flag's help: its default (per profile, or the model's record for evaluate/predict) and its variable."""
    if trained and name in TRAINED_SETTINGS:
        default = "default: as the model was trained (its distilnb_config.json)"
    else:
        per_profile = {profile: values[name] for profile, values in PROFILES.items() if name in values}
        default = ", ".join(f"{profile}: {value}" for profile, value in per_profile.items())
        default = default or f"default: {Config.__dataclass_fields__[name].default}"
    extra = "; 'auto': the 99th percentile of the training texts' token lengths" if name == "max_length" else ""
    return f"{default}{extra}; beats {ENV_PREFIX}{name.upper()}"


def add_config_flags(parser: argparse.ArgumentParser, trained: bool = False, auto_length: bool = False,
                     profile: str = "offline") -> None:
    """Add --profile and a flag per Config field (--max-length, --epochs, ...); flags not given stay off args."""
    group = parser.add_argument_group(f"configuration (every Config field; a flag beats its {ENV_PREFIX}* variable, "
                                      "which beats the profile)")
    group.add_argument("--profile", choices=list(PROFILES), default=None,
                       help=f"profile of defaults (default: ${ENV_PREFIX}PROFILE, else {profile})")
    for name, hint in field_types().items():
        if name == "profile":
            continue
        if base_type(hint)[0] is bool:
            group.add_argument(flag_of(name), action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                               help=field_help(name, trained))
        else:
            group.add_argument(flag_of(name), type=value_parser(name, hint, auto_length and name == "max_length"),
                               default=argparse.SUPPRESS, metavar=name.upper(), help=field_help(name, trained))


def add_reader_flags(parser: argparse.ArgumentParser, split_files: tuple[str, ...] = ()) -> None:
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


# ---------------------------------------------------------------- messages in the command line's words


def in_cli_words(message: str) -> str:
    """Return a message written for the notebook in the command line's words: TEXT_COLUMN and text_column='x' become
    --text-column and --text-column x; DISTILNB_* variables stay, since they work here too."""
    names = [*CONFIG_FIELDS, *READER_OPTIONS]
    message = message.replace("in the parameters cell", "on the command line")
    for name in names:
        message = re.sub(rf"(?<![\w-]){name}='([^']*)'", rf"{flag_of(name)} \1", message)
        message = re.sub(rf"(?<![\w-]){name}=(\w+)", rf"{flag_of(name)} \1", message)
        message = re.sub(rf"(?<![\w-]){name.upper()}(?![\w-])", flag_of(name), message)
    return message


def one_line(error: BaseException) -> str:
    """Return an error's message on one line, in the command line's words."""
    message = error.args[0] if error.args and isinstance(error.args[0], str) else str(error)
    return in_cli_words(" ".join(message.split()))


# ---------------------------------------------------------------- the parser


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of `distilnb` and its subcommands."""
    from distilnb import commands, demo

    parser = argparse.ArgumentParser(prog="distilnb", description=__doc__.split("\n\n")[0],
                                     epilog="Threads: set OMP_NUM_THREADS (or --threads) on a shared machine; "
                                            "see `python -m distilnb train --help`.")
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="command")
    for add in (add_train, add_evaluate, add_predict, add_download):
        add(subcommands, commands)
    demo.add_demo_command(subcommands)  # the web app (distilnb.demo); gradio is imported only when it runs
    return parser


def common_flags(parser: argparse.ArgumentParser) -> None:
    """Add the flags every command that runs a model takes: threads."""
    parser.add_argument("--threads", type=int, help=THREADS_HELP)


def add_train(subcommands, commands) -> None:
    """Add `train`."""
    train = subcommands.add_parser(
        "train", help="fine-tune (chapters 01-03, headless)",
        description="Build the splits, tokenize and fine-tune with the Trainer, as chapters 01-03 do; save "
                    "outputs/<run>/model/ and metrics.json, and print the baselines beside the fine-tuned scores. "
                    "Runs under torchrun too. Ctrl-C keeps the last checkpoint: rerun with --resume.",
        epilog="Threads: OMP_NUM_THREADS=1 (or --threads 1) is much faster on a busy machine with few cores.")
    train.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    common_flags(train)
    add_reader_flags(train, ("train", "validation", "test"))
    add_config_flags(train, auto_length=True)
    train.set_defaults(run=commands.run_train)


def add_evaluate(subcommands, commands) -> None:
    """Add `evaluate`."""
    evaluate = subcommands.add_parser(
        "evaluate", help="evaluate on the test split (chapter 04)",
        description="Evaluate this run's model (or --model-dir) on the split it was trained beside, or on --test-file; "
                    "write eval_<split>.json beside the model, the scores into metrics.json and the figures into "
                    "figures/. Never scores rows the model was trained or validated on; never rewrites the run's data.")
    evaluate.add_argument("--model-dir", help="model folder or Hub id (default: this run's model folder)")
    evaluate.add_argument("--split", choices=("test", "validation"), default="test", help="split to evaluate on")
    evaluate.add_argument("--json", action="store_true", help="print every score as JSON instead of the report table")
    evaluate.add_argument("--test-file", metavar="FILE", help="a labelled file of rows the model never saw: score "
                                                              "every row (instead of the run's split)")
    common_flags(evaluate)
    add_reader_flags(evaluate)
    add_config_flags(evaluate, trained=True)
    evaluate.set_defaults(run=commands.run_evaluate)


def add_predict(subcommands, commands) -> None:
    """Add `predict`."""
    predict = subcommands.add_parser(
        "predict", help="classify texts (chapter 05)",
        description="Classify texts given as arguments, in --file (a text file, one per line, or a CSV/TSV/JSONL/JSON/"
                    "Parquet table with --text-column and an optional --id-column) or on standard input. One output "
                    "per input line, with its index; a blank line gets an error field.",
        epilog="example: echo 'where is my parcel' | python -m distilnb predict --profile smoke --top-k 2")
    predict.add_argument("texts", nargs="*", help="texts to classify (default: --file, else standard input)")
    predict.add_argument("--file", help="text file (one text per line) or table of texts")
    predict.add_argument("--id-column", help="column of --file to copy into each output (default: 'id' when present)")
    predict.add_argument("--output", help="write the predictions to FILE: .csv (a column per class) or .jsonl")
    predict.add_argument("--model-dir", help="model folder or Hub id (default: this run's model folder)")
    predict.add_argument("--top-k", type=int, help="keep the k most likely classes in scores (default: all)")
    predict.add_argument("--chunk", action="store_true", help="score texts longer than --max-length in overlapping "
                                                              "windows")
    common_flags(predict)
    add_reader_flags(predict)
    add_config_flags(predict, trained=True)
    predict.set_defaults(run=commands.run_predict)


def add_download(subcommands, commands) -> None:
    """Add `download`."""
    download = subcommands.add_parser(
        "download", help="pre-download for an offline classroom",
        description="On a machine with network: cache the profile's model (config, tokenizer, safetensors) and "
                    "dataset, and the published fine-tuned checkpoint, in HF_HOME; then copy that folder to machines "
                    "without network.")
    download.add_argument("--published", default=PUBLISHED_MODEL,
                          help="fine-tuned checkpoint chapters 04/05 use when 03 was skipped "
                               f"(default: {PUBLISHED_MODEL})")
    download.add_argument("--no-published", dest="published", action="store_const", const=None,
                          help="do not download the published checkpoint")
    add_config_flags(download, profile="full")
    download.set_defaults(run=commands.run_download)


# ---------------------------------------------------------------- running


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status: 0 done, 1 an error told in one sentence, 130 interrupted
    (argparse exits 2). Errors written for users (DistilnbError) print one line; anything else is a bug and keeps
    its traceback."""
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # an interrupted train repeats them with --resume
    try:
        args.run(args)
    except DistilnbError as error:
        print(f"distilnb {args.command}: {one_line(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
