"""`distilnb tune`: search the settings that fit the data within a budget (trainer.hyperparameter_search with
Optuna), train the best settings' model as a whole run, and score its test split once."""

from __future__ import annotations

import argparse
import contextlib
import sys

from distilnb.cli import options
from distilnb.cli.options import err, flag_words
from distilnb.errors import SettingError, spell


def trials(raw: str) -> int:
    """Return --trials as a number, 1 or more."""
    if not raw.strip().isdigit() or int(raw) < 1:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a number of trials: give 1 or more")
    return int(raw)


def duration(raw: str) -> float:
    """Return --budget in seconds (90s, 30m, 2h)."""
    from distilnb.tune import parse_duration

    try:
        return parse_duration(raw)
    except SettingError as error:
        raise argparse.ArgumentTypeError(error.rule_words(options.flag_of, " ", str)) from None


def add_parser(subcommands: argparse._SubParsersAction) -> None:
    """Add `tune`."""
    tune = subcommands.add_parser(
        "tune", help="search the settings that fit the data, within a budget",
        description="Search the learning rate (log scale), epochs, batch size, warm-up, weight decay and class weights "
                    "with Trainer.hyperparameter_search (Optuna), each trial from the same pretrained weights, chosen "
                    "on the validation macro-F1 (k-fold cross-validation when the validation split is too small); "
                    "trials clearly behind from their second epoch on are pruned. The study is kept in "
                    "outputs/<run>/tune/ (--resume continues it); the best settings go to tune/best.json, which "
                    "`distilnb train --config` reads; the final model is trained like any `train` and its test split "
                    "scored once.",
        epilog="Several workers, one study: start `distilnb tune --storage URL` on each machine with the same URL "
               "(sqlite:///study.db on one machine; postgresql://... or mysql://... across machines). The Trainer's "
               "Ray Tune backend is the other way to spread a search (docs/tuning.md).")
    tune.add_argument("--trials", type=trials, help="the study's number of trials (default: 12 when no --budget)")
    tune.add_argument("--budget", type=duration, help="wall time for the search, e.g. 30m (trials running at the "
                                                      "end finish)")
    tune.add_argument("--resume", action="store_true", help="continue the run folder's study")
    tune.add_argument("--storage", metavar="URL", help="an Optuna RDB storage shared by several workers")
    tune.add_argument("--no-final", dest="final", action="store_false",
                      help="stop after the search: no final model, no test score")
    options.add_threads(tune)
    options.add_reading(tune, ("train", "validation", "test"))
    options.add_settings(tune, options.CONFIG_FIELDS)
    options.add_config(tune)
    tune.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    """Search, then print the trials table, the best settings and the final model's test score."""
    cfg = options.config_with_files(args)
    from distilnb.tune import Budget

    budget = Budget(trials=args.trials if args.trials or args.budget else 12, seconds=args.budget)
    options.prepare_machine(args)
    from distilnb import metrics, models
    from distilnb.tune import search

    models.check_model_name(cfg.model)
    with contextlib.redirect_stdout(sys.stderr):  # the Trainer's epoch lines are progress: stdout is the result
        result = search(cfg, budget, resume=args.resume, storage_url=args.storage,
                        read_options=options.read_options(args), say=lambda line: err(spell(line, flag_words)),
                        final=args.final)
    print(f"Trials ({result.plan.kind}):\n{result.trials.to_string(float_format='{:.4g}'.format)}")
    settings = " ".join(flag_words(name, value) for name, value in result.best.items())
    print(f"Best validation macro-F1 {result.best_value:.3f}: {settings}\nSettings: {result.config_path} "
          "(distilnb train --config reads it)")
    if result.test_scores:
        print(f"Test split, scored once by the final model ({result.model_dir}):\n"
              f"{metrics.score_table({metrics.FINE_TUNED: result.test_scores})}")
    for figure in result.figures:
        err(f"Figure: {figure}")
