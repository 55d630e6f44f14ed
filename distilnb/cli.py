"""The course from a terminal: `python -m distilnb train | evaluate | predict | download`, over the notebooks' functions."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from distilnb.config import ENV_PREFIX, PROFILES, Config, HubUnreachableError, parse_env_value

PUBLISHED_MODEL = "bhadresh-savani/distilbert-base-uncased-emotion"  # chapters 04/05 use it when 03 was skipped
# What loading a model needs from its Hub repository: configuration, tokenizer files and safetensors weights only.
MODEL_FILES = ["config.json", "*.safetensors", "*.safetensors.index.json", "tokenizer.json", "tokenizer_config.json",
               "special_tokens_map.json", "added_tokens.json", "vocab.txt", "vocab.json", "merges.txt", "spiece.model"]
# Errors whose message already says what went wrong and what to do; anything else is a bug and keeps its traceback.
EXPECTED_ERRORS = (HubUnreachableError, FileNotFoundError, ValueError, KeyError, TypeError)
CONFIG_FIELDS = [f for f in dataclasses.fields(Config) if f.name not in ("profile", "extra")]


class UsageError(Exception):
    """Raised, with one sentence, when the command line asks for something that cannot be done."""


# ---------------------------------------------------------------- configuration flags


def value_parser(annotation: str) -> Callable[[str], Any]:
    """Return an argparse type that reads a flag's text as its DISTILNB_* variable would be read (int, float, None, str)."""

    def parse(raw: str) -> Any:
        return parse_env_value(raw, annotation)

    parse.__name__ = annotation.split(" ")[0]  # argparse names it in "invalid int value"
    return parse


def field_help(name: str, default: Any) -> str:
    """Return a flag's help: its defaults per profile (or its dataclass default) and the variable it beats."""
    per_profile = {profile: values[name] for profile, values in PROFILES.items() if name in values}
    defaults = ", ".join(f"{profile}: {value}" for profile, value in per_profile.items()) or f"default: {default}"
    return f"{defaults}; beats {ENV_PREFIX}{name.upper()}"


def add_config_flags(parser: argparse.ArgumentParser, profile: str | None = None) -> None:
    """Add --profile and one flag per Config field (--max-length, --epochs, ...); flags left out stay off the namespace."""
    group = parser.add_argument_group("configuration (every Config field; a flag beats its DISTILNB_* variable)")
    default = profile or f"${ENV_PREFIX}PROFILE, else full"
    group.add_argument("--profile", choices=sorted(PROFILES), default=profile, help=f"profile of defaults (default: {default})")
    for f in CONFIG_FIELDS:
        flag = "--" + f.name.replace("_", "-")
        if f.type == "bool":
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                               help=field_help(f.name, f.default))
        else:
            group.add_argument(flag, type=value_parser(f.type), default=argparse.SUPPRESS, metavar=f.name.upper(),
                               help=field_help(f.name, f.default))


def build_config(args: argparse.Namespace, environ: dict[str, str] | None = None) -> Config:
    """Return the run's Config: profile defaults, then DISTILNB_* variables, then the flags given, which beat both."""
    environ = dict(os.environ if environ is None else environ)
    if args.profile:
        environ.pop(ENV_PREFIX + "PROFILE", None)  # Config.from_env lets the variable beat its argument; the flag must win
    cfg = Config.from_env(profile=args.profile, environ=environ)
    return dataclasses.replace(cfg, **{f.name: getattr(args, f.name) for f in CONFIG_FIELDS if hasattr(args, f.name)})


# ---------------------------------------------------------------- helpers


def model_folder(model_dir: str | None, cfg: Config) -> str:
    """Return the model to load: --model-dir (a folder or Hub id), else this run's model folder, which must exist."""
    if model_dir is None:
        folder = cfg.paths.model
        if not (folder / "config.json").is_file():
            raise UsageError(f"No model folder at {folder} yet: train one with `python -m distilnb train` and the same "
                             "--profile/--run-name/--output-root, or pass --model-dir.")
        return str(folder)
    path = Path(model_dir).expanduser()
    looks_like_path = path.exists() or model_dir.startswith((".", "/", "~")) or model_dir.count("/") > 1
    if looks_like_path and not (path / "config.json").is_file():
        raise UsageError(f"{model_dir} is not a model folder (it has no config.json): pass a folder saved by `distilnb train`.")
    return str(path) if looks_like_path else model_dir


def non_blank(lines: Iterable[str], source: str) -> list[str]:
    """Return the lines that hold text, without their line ends; say on stderr how many blank ones were skipped."""
    lines = [line.rstrip("\r\n") for line in lines]
    texts = [line for line in lines if line.strip()]
    skipped = len(lines) - len(texts)
    if skipped:
        print(f"Skipped {skipped} blank line{'s' * (skipped != 1)} of {source}: there is nothing to classify in them.",
              file=sys.stderr)
    return texts


def read_texts(args: argparse.Namespace) -> list[str]:
    """Return the texts to classify: positional arguments, else the lines of --file, else the lines of standard input."""
    if args.texts and args.file:
        raise UsageError("Give texts either as arguments or with --file, not both.")
    if args.texts:
        return non_blank(args.texts, "the arguments")
    if args.file:
        path = Path(args.file).expanduser()
        if not path.is_file():
            raise UsageError(f"No file at {path}: --file wants a text file with one text per line.")
        with path.open(encoding="utf-8") as handle:
            return non_blank(handle, str(path))
    if sys.stdin.isatty():
        print("Reading texts from standard input, one per line; end with Ctrl-D.", file=sys.stderr)
    return non_blank(sys.stdin, "standard input")


def is_main_process() -> bool:
    """Return True in the process that should print: the only one, or rank 0 under torchrun / accelerate launch."""
    from accelerate import PartialState

    return PartialState().is_main_process


def is_hub_id(name: str) -> bool:
    """Return True when a model or dataset name is a Hub id rather than a local file, folder or the smoke profile's tiny model."""
    return name != "tiny" and not Path(name).expanduser().exists()


# ---------------------------------------------------------------- commands


def run_train(args: argparse.Namespace, cfg: Config) -> None:
    """Fine-tune as chapters 01-03 do; print where the model went and its validation metrics."""
    from distilnb import metrics, train

    folder = train.run_fine_tuning(cfg, resume=args.resume)
    if not is_main_process():
        return
    scores = metrics.read_metrics(cfg.paths.metrics)["validation"]["fine-tuned (Trainer)"]
    summary = ", ".join(f"{name} {scores[name]:.3f}" for name in (*metrics.SUMMARY_METRICS, "loss"))
    print(f"Model saved to {folder}\nValidation: {summary}\nMetrics: {cfg.paths.metrics}")


def run_evaluate(args: argparse.Namespace, cfg: Config) -> None:
    """Evaluate a model on a split as chapter 04 does; write eval_<split>.json and metrics.json; print the report."""
    from distilnb import data, metrics
    from distilnb.predict import Predictor

    model = model_folder(args.model_dir, cfg)
    splits, _ = data.load_or_build_splits(cfg)
    predictor = Predictor.from_folder(model, max_length=getattr(args, "max_length", None), batch_size=cfg.batch_size)  # as trained unless --max-length
    evaluation = metrics.evaluate_split(predictor, splits, args.split)
    written = metrics.save_evaluation(cfg.paths.metrics, model, args.split, evaluation.scores)
    if args.json:
        print(json.dumps(evaluation.scores, indent=2))
    else:
        print(metrics.report_frame(evaluation.scores).round(3).to_string())
    print(f"{args.split}: {len(splits[args.split])} examples; written to {written} and {cfg.paths.metrics}", file=sys.stderr)


def run_predict(args: argparse.Namespace, cfg: Config) -> None:
    """Classify texts with a saved model; print one JSON line per text (text, label, score, scores) in input order."""
    from distilnb.predict import Predictor

    model = model_folder(args.model_dir, cfg)
    texts = read_texts(args)
    if not texts:
        raise UsageError("No texts to classify: give them as arguments, with --file, or on standard input.")
    predictor = Predictor.from_folder(model, max_length=getattr(args, "max_length", None), batch_size=cfg.batch_size)  # as trained unless --max-length
    for text, result in zip(texts, predictor.predict(texts, top_k=args.top_k, chunk=args.chunk)):
        print(json.dumps({"text": text, **result}, ensure_ascii=False), flush=True)


def download_model(model: str) -> str:
    """Return the local snapshot folder of a Hub model, downloading its config, tokenizer and safetensors weights."""
    from huggingface_hub import snapshot_download

    from distilnb.config import from_hub

    folder = from_hub(f"the model {model!r}", lambda: snapshot_download(model, allow_patterns=MODEL_FILES))
    if not list(Path(folder).glob("*.safetensors")):
        print(f"Warning: {model} has no .safetensors weights, and distilnb will not load pickle weights.", file=sys.stderr)
    return folder


def download_dataset(dataset: str) -> str:
    """Return a line naming a Hub dataset's splits and sizes and the cache holding it, after datasets.load_dataset cached it."""
    import datasets

    from distilnb.config import from_hub

    loaded = from_hub(f"the dataset {dataset!r}", lambda: datasets.load_dataset(dataset))
    sizes = {split: len(table) for split, table in loaded.items()}
    return f"{sizes} in {datasets.config.HF_DATASETS_CACHE}"


def downloads(cfg: Config, published: str | None) -> list[tuple[str, str, Callable[[str], object] | None]]:
    """Return (what, name, fetch) per thing the profile needs; fetch is None for what is local (a file or the tiny model)."""
    items = [("model", cfg.model, download_model), ("dataset", cfg.dataset, download_dataset)]
    items = [(what, name, fetch if is_hub_id(name) else None) for what, name, fetch in items]
    return items + ([("published checkpoint", published, download_model)] if published else [])


def run_download(args: argparse.Namespace, cfg: Config) -> None:
    """Cache the profile's model and dataset and the published checkpoint in HF_HOME; print how to use them offline."""
    from huggingface_hub import constants

    for what, name, fetch in downloads(cfg, args.published):
        if fetch is None:
            print(f"{what} {name}: local, nothing to download")
            continue
        try:
            print(f"{what} {name}: {fetch(name)}")
        except HubUnreachableError:
            raise UsageError(f"Could not fetch the {what} {name!r}: `distilnb download` needs the Hugging Face Hub, so run "
                             "it on a machine with network, with HF_HUB_OFFLINE unset.") from None
    print(f"\nOn this machine, or one given a copy of {constants.HF_HOME}, run the course offline with:\n"
          f"export HF_HOME={constants.HF_HOME}\nexport HF_HUB_OFFLINE=1")


# ---------------------------------------------------------------- the parser


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of `distilnb` and its four subcommands."""
    parser = argparse.ArgumentParser(prog="distilnb", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")

    train = commands.add_parser("train", help="fine-tune (chapters 01-03, headless)",
                                description="Build the splits, tokenize and fine-tune with the Trainer, as chapters 01-03 do; "
                                            "save outputs/<run>/model/ and metrics.json. Runs under torchrun too.")
    train.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    add_config_flags(train)
    train.set_defaults(run=run_train)

    evaluate = commands.add_parser("evaluate", help="evaluate on the test split (chapter 04)",
                                   description="Evaluate this run's model (or --model-dir) on a split; write "
                                               "eval_<split>.json beside the model and the scores into metrics.json.")
    evaluate.add_argument("--model-dir", help="model folder or Hub id (default: this run's model folder)")
    evaluate.add_argument("--split", choices=("test", "validation"), default="test", help="split to evaluate on (default: test)")
    evaluate.add_argument("--json", action="store_true", help="print every score as JSON instead of the report table")
    add_config_flags(evaluate)
    evaluate.set_defaults(run=run_evaluate)

    predict = commands.add_parser("predict", help="classify texts (chapter 05)",
                                  description="Classify texts given as arguments, in --file (one per line) or on standard "
                                              "input; print one JSON line per text, in input order. Blank lines are "
                                              "skipped and counted on stderr. --batch-size and --max-length apply here too.",
                                  epilog="example: echo 'where is my parcel' | python -m distilnb predict --profile smoke --top-k 2")
    predict.add_argument("texts", nargs="*", help="texts to classify (default: --file, else standard input)")
    predict.add_argument("--file", help="text file, one text per line")
    predict.add_argument("--model-dir", help="model folder or Hub id (default: this run's model folder)")
    predict.add_argument("--top-k", type=int, help="keep the k most likely classes in scores (default: all)")
    predict.add_argument("--chunk", action="store_true", help="score texts longer than --max-length in overlapping windows")
    add_config_flags(predict)
    predict.set_defaults(run=run_predict)

    download = commands.add_parser("download", help="pre-download for an offline classroom",
                                   description="On a machine with network: cache the profile's model (config, tokenizer, "
                                               "safetensors) and dataset, and the published fine-tuned checkpoint, in "
                                               "HF_HOME; then copy that folder to machines without network.")
    download.add_argument("--published", default=PUBLISHED_MODEL,
                          help=f"fine-tuned checkpoint chapters 04/05 use when 03 was skipped (default: {PUBLISHED_MODEL})")
    download.add_argument("--no-published", dest="published", action="store_const", const=None,
                          help="do not download the published checkpoint")
    add_config_flags(download, profile="full")
    download.set_defaults(run=run_download)
    return parser


def one_sentence(error: BaseException) -> str:
    """Return an error's message on one line (KeyError's without the quotes its str() adds)."""
    message = error.args[0] if error.args and isinstance(error.args[0], str) else str(error)
    return " ".join(message.split())


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status: 0 done, 1 an error told in one sentence, 130 interrupted (argparse exits 2)."""
    args = build_parser().parse_args(argv)
    try:
        args.run(args, build_config(args))
    except (UsageError, *EXPECTED_ERRORS) as error:
        print(f"distilnb {args.command}: {one_sentence(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
