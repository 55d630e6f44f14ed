"""`distilnb evaluate`: score a model on rows it never saw, beside the baselines, as chapter 04 does."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING

from distilnb.cli import options
from distilnb.cli.options import UsageError, err
from distilnb.config import Config
from distilnb.errors import spell

if TYPE_CHECKING:
    from datasets import DatasetDict

    from distilnb.metrics import Evaluation
    from distilnb.predict import Predictor

SETTINGS = (*options.DATA_SETTINGS, "max_length", "batch_size", *options.RUN_SETTINGS)


def add_parser(subcommands: argparse._SubParsersAction) -> None:
    """Add `evaluate`."""
    evaluate = subcommands.add_parser(
        "evaluate", help="evaluate on the test split (chapter 04)",
        description="Evaluate this run's model (or --model-dir) on the split it was trained beside, or on --test-file, "
                    "beside the majority class and TF-IDF trained on the run's training rows; write eval_<split>.json "
                    "beside the model, the scores into metrics.json and the figures into figures/ of the model's own "
                    "run (unless --output-root or --run-name say where). Never scores rows the model was trained or "
                    "validated on; never rewrites the run's data.")
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
    options.add_threads(evaluate)
    options.add_reading(evaluate)
    options.add_settings(evaluate, SETTINGS, trained=True)
    evaluate.set_defaults(run=run)


def beside_the_model(cfg: Config, args: argparse.Namespace, model: str) -> Config:
    """Return cfg writing into the model's own run folder (--model-dir runs/X/model writes into runs/X/), unless
    --output-root or --run-name say where."""
    from distilnb.runs import run_of_model

    run = run_of_model(model) if getattr(args, "model_dir", None) else None
    if run is None or any(hasattr(args, name) for name in options.RUN_SETTINGS):
        return cfg
    return dataclasses.replace(cfg, output_root=str(run.parent), run_name=run.name)


def load_predictor(model: str, cfg: Config, args: argparse.Namespace) -> Predictor:
    """Return a Predictor for the model (max_length: the chosen one, else as trained), refusing an untrained head."""
    from distilnb.models import check_head_is_trained
    from distilnb.predict import Predictor

    predictor = Predictor.from_folder(model, max_length=options.chosen_max_length(args), batch_size=cfg.batch_size)
    warning = check_head_is_trained(model, predictor.label_names)
    if warning:
        err(warning)
    predictor.progress = options.progress_display()
    predictor.chunk = getattr(args, "chunk", False)
    return predictor


def test_baselines(splits: DatasetDict, model: str, split: str, seed: int) -> dict[str, dict]:
    """Return the majority class and TF-IDF scores on `split`, trained on the run's training rows ({} without any)."""
    from datasets import DatasetDict

    from distilnb.baselines import baseline_scores
    from distilnb.data import label_names
    from distilnb.runs import training_split

    source = splits if len(splits["train"]) else training_split(model)  # a test file comes without training rows
    if source is None or label_names(source) != label_names(splits):
        return {}
    # the validation rows tune the multi-label baseline's threshold, as they tuned the model's
    tuning = {"validation": source["validation"]} if split != "validation" and "validation" in source else {}
    return baseline_scores(DatasetDict({"train": source["train"], **tuning, split: splits[split]}), split, seed)


def save_figures(evaluation: Evaluation, folder: Path, split: str) -> list[Path]:
    """Write the confusion matrix and the per-class scores of an evaluation as PNGs; return their paths."""
    import pandas as pd

    from distilnb import metrics, plots

    if "per_label" in evaluation.scores:  # several labels a text: no confusion matrix, the per-label scores
        per_label = plots.per_class_scores(pd.DataFrame(evaluation.scores["per_label"]).T)
        return [plots.save_figure(per_label, folder, f"per_label_{split}")]
    matrix = metrics.confusion(evaluation.labels, evaluation.logits.argmax(axis=-1), len(evaluation.label_names))
    per_class = metrics.report_frame(evaluation.scores).iloc[:-2]
    figures = {f"confusion_matrix_{split}": plots.confusion_matrix(matrix, evaluation.label_names),
               f"per_class_{split}": plots.per_class_scores(per_class)}
    return [plots.save_figure(figure, folder, name) for name, figure in figures.items()]


def run(args: argparse.Namespace) -> None:
    """Evaluate a model on rows it never saw; write eval_<split>.json, metrics.json (with baselines) and figures."""
    cfg = options.build_config(args)  # a setting that cannot work stops here, before the heavy imports
    options.prepare_machine(args)
    from distilnb import metrics, models, runs

    model = models.model_folder(args.model_dir, cfg)
    cfg = beside_the_model(options.build_config(args, recorded=runs.fine_tuning_record(model)), args, model)
    read = options.read_options(args, recorded=None if args.test_file else runs.recorded_reading(model))
    splits, source, own = runs.evaluation_splits(cfg, model, test_file=args.test_file, split=args.split, options=read)
    if args.split not in splits:
        raise UsageError(f"The data has no {args.split} split.")
    keep, note = runs.rows_to_score(model, splits[args.split]["text"], args.split, own_split=own,
                                    skip_seen=args.skip_seen, pairs=runs.second_texts(splits[args.split]))
    if note:
        err(f"Note: {spell(note, options.flag_words)}")
    if len(keep) < len(splits[args.split]):
        splits[args.split] = splits[args.split].select(keep)
    if not len(splits[args.split]):
        raise UsageError("No rows left to score: the model saw every one of them in fine-tuning.")
    predictor = load_predictor(model, cfg, args)
    evaluation = metrics.evaluate_split(predictor, splits, args.split)
    baselines = test_baselines(splits, model, args.split, cfg.seed)
    written = runs.save_evaluation(cfg.paths.metrics, model, args.split, evaluation.scores, baselines=baselines)
    figures = save_figures(evaluation, cfg.paths.figures, args.split)
    if args.json:
        print(json.dumps({**evaluation.scores, "baselines": baselines}, indent=2))
    else:
        print(metrics.report_table(evaluation.scores))
        if baselines:
            print(f"\nBeside the baselines ({args.split}):\n"
                  f"{metrics.score_table({**baselines, metrics.FINE_TUNED: evaluation.scores})}")
    err(f"{args.split}: {len(splits[args.split])} texts from {source}; max_length {predictor.max_length}"
        f"{'; long texts scored whole in windows' if predictor.chunk else ''}",
        f"Written: {written}, {cfg.paths.metrics}, {', '.join(map(str, figures))}")
