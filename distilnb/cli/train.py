"""`distilnb train`: read and split the data once, fine-tune as chapters 01-03 do, print the scores beside the
baselines and, when the model loses to them, the likely causes."""

from __future__ import annotations

import argparse
import dataclasses
import shlex
from contextlib import nullcontext
from typing import TYPE_CHECKING

from distilnb.cli import options
from distilnb.cli.options import UsageError, err
from distilnb.config import MAX_LENGTH_RANGE, Config

if TYPE_CHECKING:
    from datasets import DatasetDict


def add_parser(subcommands: argparse._SubParsersAction) -> None:
    """Add `train`."""
    train = subcommands.add_parser(
        "train", help="fine-tune (chapters 01-03, headless)",
        description="Build the splits, tokenize and fine-tune with the Trainer, as chapters 01-03 do; save "
                    "outputs/<run>/model/ and metrics.json, and print the baselines beside the fine-tuned scores. "
                    "Runs under torchrun too. Ctrl-C keeps the last checkpoint: rerun with --resume. A finished run "
                    "removes its checkpoints unless --keep-checkpoints. A second train into a run folder in use "
                    "stops at once (outputs/<run>/.lock).",
        epilog="Threads: OMP_NUM_THREADS=1 (or --threads 1) is much faster on a busy machine with few cores.")
    train.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    options.add_threads(train)
    options.add_reading(train, ("train", "validation", "test"))
    options.add_settings(train, options.CONFIG_FIELDS, auto_length=True)
    options.add_config(train)
    train.set_defaults(run=run)


def training_config(args: argparse.Namespace) -> Config:
    """Return the training Config; --train-file names the dataset as run_classification.py's flag does."""
    if args.train_file and hasattr(args, "dataset"):
        raise UsageError("Give the data either with --dataset or with --train-file, not both.")
    if (args.validation_file or args.test_file) and not args.train_file:
        raise UsageError("--validation-file and --test-file go with --train-file (the training rows).")
    if args.train_file:
        args.dataset = args.train_file
    return options.build_config(args)


def read_and_split(cfg: Config) -> tuple[DatasetDict, object, list[str]]:
    """Return (splits, load report, notes) of the training data: notes include what reading detected or replaced."""
    from distilnb import data
    from distilnb.readers import read_source, source_notes

    frames = read_source(cfg.dataset, config=cfg.dataset_config)
    splits, report = data.prepare_splits(frames, cfg)
    for split, frame in frames.items():  # what reading replaced, kept in the run's load_report.json
        report.count(report.converted, f"{split}: undecodable characters replaced with U+FFFD",
                     frame.attrs.get("replaced_characters", 0))
    report.notes[:0] = [note for note in source_notes(frames) if note not in report.notes]
    return splits, report, report.notes


def length_advice(cfg: Config, splits: DatasetDict, *, auto: bool) -> tuple[Config, str, float]:
    """Return the Config (max_length chosen when auto), a line saying how many training texts max_length cuts, and
    the share it cuts."""
    import numpy as np

    from distilnb import models, tokens

    tokenizer = models.load_tokenizer(cfg.resolved_model)
    train = splits["train"]
    if "text_pair" in train.column_names:  # a pair's length is both texts', separators included
        encoded = tokenizer(list(train["text"]), list(train["text_pair"]), verbose=False)["input_ids"]
        lengths = np.array([len(ids) for ids in encoded])
    else:
        lengths = tokens.token_lengths(list(train["text"]), tokenizer)
    limit = models.model_max_length(cfg.resolved_model, tokenizer)
    if auto:
        chosen = max(MAX_LENGTH_RANGE[0], tokens.suggest_max_length(lengths, 99.0, model_max=limit))
        cfg = dataclasses.replace(cfg, max_length=chosen)
    report = tokens.truncation_report(lengths, cfg.max_length, model_max=limit)
    how = (f" --max-length auto chose {cfg.max_length}: the 99th percentile, capped at the model's {limit}." if auto
           else " Pass --max-length auto to use it." if report.suggested != cfg.max_length else "")
    return cfg, f"Training texts: {report.summary()}{how}", report.truncated / max(report.texts, 1)


def interrupted(cfg: Config, argv: list[str]) -> str:
    """Return what an interrupted training run saved and the command that resumes it."""
    from distilnb.train import last_checkpoint

    checkpoint = last_checkpoint(cfg.paths.checkpoints)
    if checkpoint is None:
        return (f"Interrupted before the first checkpoint, which comes after {cfg.save_steps} steps (--save-steps) or "
                "an epoch: nothing to resume. Run the same command again to start over.")
    again = shlex.join(["python", "-m", "distilnb", *[a for a in argv if a != "--resume"], "--resume"])
    return (f"Interrupted. Saved: {checkpoint} (with the model, optimizer and schedule). To continue from there:\n"
            f"  {again}")


def class_shares(splits: DatasetDict) -> tuple[float, float]:
    """Return the shares of the training rows that the most and the least frequent class (or label) are on."""
    from distilnb import data

    counts = data.class_counts(splits)["train"]
    return float(counts.max() / len(splits["train"])), float(counts.min() / len(splits["train"]))


def run(args: argparse.Namespace) -> None:
    """Fine-tune as chapters 01-03 do; print the data notes, the length advice, the scores beside the baselines."""
    cfg = training_config(args)  # a setting that cannot work stops here, before the heavy imports
    options.prepare_machine(args)
    from distilnb import data, metrics, models, runs, train
    from distilnb.readers import reading

    models.check_model_name(cfg.model)
    main = models.is_main_process()
    with reading(options.read_options(args)) as read:
        splits, report, notes = read_and_split(cfg)
        cfg, advice, cut_share = length_advice(cfg, splits, auto=getattr(args, "max_length", None) == "auto")
        if main:
            lines = [*report.console_lines(), *notes]
            err(f"Task: {data.task_line(splits, cfg)}", *(f"Data: {line}" for line in lines), advice)
        with runs.run_lock(cfg.paths.root) if main else nullcontext():
            try:
                folder = train.run_fine_tuning(cfg, splits, report, resume=args.resume)
            except KeyboardInterrupt as stop:
                stop.args = (interrupted(cfg, args.argv),)  # main prints it: the one interrupt message
                raise
            if not main:
                return
            runs.record_reading(folder, read)
            baselines = train.baseline_scores(splits, "validation", cfg.seed)
            runs.update_metrics(cfg.paths.metrics, "validation", baselines)  # where chapter 03 writes them too
    fine_tuned = runs.read_metrics(cfg.paths.metrics)["validation"][metrics.FINE_TUNED]
    rows = {**baselines, metrics.FINE_TUNED: fine_tuned}
    print(f"Model saved to {folder}\nValidation scores ({len(splits['validation'])} texts), beside the baselines:\n"
          f"{metrics.score_table(rows)}\nMetrics: {cfg.paths.metrics}")
    largest, rarest = class_shares(splits)
    from distilnb.verdict import Evidence, advise, sentence  # TODO(run.train): the run's RunResult.verdict

    smallest = int(data.class_counts(splits)["validation"].min())
    evidence = Evidence(task=data.task_of(splits), rows=rows, epochs=cfg.epochs, best_epoch=None,
                        epochs_run=cfg.epochs, validation_rows=len(splits["validation"]),
                        smallest_validation_class=smallest, largest_class_share=largest, rarest_share=rarest,
                        cut_share=cut_share, class_weights=cfg.class_weights)
    verdict = sentence(advise(evidence), options.flag_of)
    if verdict:
        err(verdict)
