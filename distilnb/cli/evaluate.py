"""`distilnb evaluate`: score a model on rows it never saw, beside the baselines, as chapter 04 does."""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import TYPE_CHECKING

from distilnb.cli import options
from distilnb.cli.options import err
from distilnb.config import Config
from distilnb.errors import spell

if TYPE_CHECKING:
    from distilnb.predict import Predictor

SETTINGS = (*options.DATA_SETTINGS, "max_length", "batch_size", *options.RUN_SETTINGS)


def add_parser(subcommands: argparse._SubParsersAction) -> None:
    """Add `evaluate`."""
    evaluate = subcommands.add_parser(
        "evaluate", help="evaluate on the test split (chapter 04)",
        description="Evaluate this run's model (or --model-dir) on the split it was trained beside, or on --test-file, "
                    "beside the majority class and TF-IDF trained on the run's training rows; write eval_<split>.json "
                    "(eval_file_<name>.json for --test-file, so another file never overwrites the run's test score) "
                    "beside the model, the scores into metrics.json and the figures into figures/ of the model's own "
                    "run (unless --output-root or --run-name say where). Every row is scored or counted by why it was "
                    "left out (blank text, blank label, seen). Never scores rows the model was trained or validated "
                    "on; never rewrites the run's data.")
    evaluate.add_argument("--model-dir", help="model folder or Hub id (default: this run's model folder)")
    evaluate.add_argument("--split", choices=("test", "validation"), default="test", help="split to evaluate on")
    evaluate.add_argument("--json", action="store_true", help="print every score as JSON instead of the report table")
    evaluate.add_argument("--test-file", metavar="FILE", help="a labelled file of rows to score instead of the run's "
                                                              "split")
    evaluate.add_argument("--skip-seen", action="store_true",
                          help="score only the rows the model never saw in fine-tuning, and say how many were left out "
                               "(an official test file may repeat a few training rows); without it such rows stop "
                               "the evaluation")
    evaluate.add_argument("--chunk", action="store_true", help="score texts longer than --max-length whole, in "
                                                               "overlapping windows")
    add_default_thresholds(evaluate)
    options.add_threads(evaluate)
    options.add_reading(evaluate)
    options.add_settings(evaluate, SETTINGS, trained=True)
    evaluate.set_defaults(run=run)


def beside_the_model(cfg: Config, args: argparse.Namespace, model: str) -> Config:
    """Return cfg writing into the model's own run folder (--model-dir runs/X/model writes into runs/X/), unless
    --output-root or --run-name say where."""
    from distilnb.folder import run_of_model

    run = run_of_model(model) if getattr(args, "model_dir", None) else None
    if run is None or any(hasattr(args, name) for name in options.RUN_SETTINGS):
        return cfg
    return dataclasses.replace(cfg, output_root=str(run.parent), run_name=run.name)


def load_predictor(model: str, cfg: Config, args: argparse.Namespace) -> Predictor:
    """Return a Predictor for the model (max_length: the chosen one, else as trained), refusing an untrained head or
    a multi-label model without its thresholds (unless --default-thresholds)."""
    from distilnb import scoring

    predictor, warning = scoring.load_predictor(
        model, cfg, max_length=options.chosen_max_length(args), chunk=getattr(args, "chunk", False),
        progress=options.progress_display(), default_thresholds=getattr(args, "default_thresholds", False))
    if warning:
        err(warning)
    return predictor


def add_default_thresholds(parser: argparse.ArgumentParser) -> None:
    """Add --default-thresholds (evaluate and predict)."""
    parser.add_argument("--default-thresholds", action="store_true",
                        help="score a multi-label model whose thresholds.json is missing at 0.5 for every label "
                             "(without it such a model is refused)")


def run(args: argparse.Namespace) -> None:
    """Evaluate a model on rows it never saw; print its scores beside the baselines and the rows left out."""
    cfg = options.build_config(args)  # a setting that cannot work stops here, before the heavy imports
    options.prepare_machine(args)
    from distilnb import metrics, models, scoring
    from distilnb.folder import fine_tuning_record, recorded_reading

    model = models.model_folder(args.model_dir, cfg)
    scoring.check_model_folder(model)
    cfg = beside_the_model(options.build_config(args, recorded=fine_tuning_record(model)), args, model)
    recorded = None if args.test_file else recorded_reading(model)
    result = scoring.evaluate_run(
        cfg, model, split=args.split, test_file=args.test_file, skip_seen=args.skip_seen, chunk=args.chunk,
        read_options=options.read_options(args, recorded=recorded), max_length=options.chosen_max_length(args),
        default_thresholds=args.default_thresholds, progress=options.progress_display())
    err(*(f"Note: {spell(note, options.flag_words)}" for note in result.notes))
    if args.json:
        print(json.dumps({**result.scores, "baselines": result.baselines,
                          "rows": {"read": result.rows_read, "scored": result.scored, "left out": result.dropped}},
                         indent=2))
    else:
        print(metrics.report_table(result.scores))
        if result.baselines:
            print(f"\nBeside the baselines ({args.split}):\n"
                  f"{metrics.score_table({**result.baselines, metrics.FINE_TUNED: result.scores})}")
    err(f"{result.rows_line()}; max_length {result.max_length}"
        f"{'; long texts scored whole in windows' if result.chunk else ''}",
        f"Written: {', '.join(map(str, result.written))}")
