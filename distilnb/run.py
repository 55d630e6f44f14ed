"""A whole run in one call: read once, clean, split, choose max_length, tokenize once, fine-tune, tune thresholds,
score the baselines, advise, write the run folder; return what happened as a typed result.

The command line (`distilnb train`), the chapters that rebuild a missing run, the benchmarks and the tests all call
`train` and only render the RunResult it returns, so each of them shows the same run.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from distilnb import baselines, data, models, runs, tokens
from distilnb import train as training
from distilnb.config import DEFAULT_EPOCHS, MAX_LENGTH_RANGE, MULTI_LABEL, Config
from distilnb.errors import NotFoundError, mention
from distilnb.metrics import FINE_TUNED, TRAINING_THRESHOLD
from distilnb.verdict import Advice, Evidence, advise

if TYPE_CHECKING:
    import pandas as pd
    from datasets import DatasetDict
    from transformers import PreTrainedTokenizerBase, Trainer

    from distilnb.readers import ReadOptions

Notify = Callable[[str], None]


@dataclass(frozen=True)
class RunResult:
    """What a training run did and found: every front end renders this and adds nothing to it."""

    config: Config  # the settings the run used (max_length as chosen)
    task: str  # config.SINGLE_LABEL, MULTI_LABEL or PAIRS
    task_line: str  # the task in words: "multi-label (5 labels, separator ';')"
    label_names: list[str]
    load_report: data.LoadReport  # rows read, dropped and converted, split sizes, notes, warnings
    length: tokens.TruncationReport  # how many training texts max_length cuts
    max_length_chosen: bool  # True when max_length was chosen from the training texts' lengths
    scores: dict[str, dict[str, dict]]  # split -> model row (metrics.FINE_TUNED, MAJORITY, ...) -> scores
    history: list[dict]  # one row per epoch: train_loss, eval_loss, eval metrics
    best_epoch: float | None  # the epoch of the checkpoint kept (early stopping may end the run later)
    epochs_run: float  # epochs trained before the run ended (early stopping may end it before config.epochs)
    thresholds: dict | None  # several labels: the decision rule kept on validation (multilabel.choose_thresholds)
    advice: list[Advice] = field(default_factory=list)  # what the run shows to change (verdict.advise)
    model_dir: Path = Path()
    metrics_path: Path = Path()

    @property
    def split_sizes(self) -> dict[str, int]:
        """Return the rows per split."""
        return dict(self.load_report.split_sizes)

    def rows(self, split: str = "validation") -> dict[str, dict]:
        """Return {model row: scores} on a split: the baselines, then the fine-tuned model."""
        return self.scores.get(split, {})

    def summary(self) -> dict[str, Any]:
        """Return the result as JSON-ready data (what `distilnb train --json` prints)."""
        return {"task": self.task, "labels": self.label_names, "split_sizes": self.split_sizes,
                "max_length": self.config.max_length, "max_length_chosen": self.max_length_chosen,
                "truncated_training_texts": self.length.truncated, "dropped": self.load_report.dropped,
                "scores": self.scores, "best_epoch": self.best_epoch, "epochs_run": self.epochs_run,
                "thresholds": self.thresholds, "advice": [dataclasses.asdict(a) for a in self.advice],
                "model_dir": str(self.model_dir), "metrics": str(self.metrics_path)}


def train(cfg: Config, *, read_options: ReadOptions | None = None, frames: dict[str, pd.DataFrame] | None = None,
          resume: bool = False, auto_max_length: bool = False, notify: Notify | None = None) -> RunResult:
    """Run stages 01 to 03 on cfg and write the run folder; return the RunResult.

    read_options: how to read the data files (readers.ReadOptions; recorded beside the model for evaluate).
    frames: the data already read ({split: DataFrame}), for a format no reader knows; None reads cfg.dataset.
    auto_max_length: choose max_length from the training texts (their 99th percentile, capped at the model's limit).
    notify: called with each line worth showing while the run goes on (the data report before training starts).
    Threads are the caller's to set (models.set_threads). Ctrl-C leaves the last checkpoint and raises
    KeyboardInterrupt; a finished run removes its checkpoints unless cfg.keep_checkpoints.
    """
    from accelerate import PartialState
    from transformers import set_seed

    models.check_model_name(cfg.model)
    say = notify or (lambda line: None)
    main = models.is_main_process()
    with runs.run_lock(cfg.paths.root) if main else nullcontext():  # refused before a single line is printed
        set_seed(cfg.seed)
        checkpoint = training.last_checkpoint(cfg.paths.checkpoints) if resume else None
        if resume and checkpoint is None:
            raise NotFoundError(f"Nothing to resume: {cfg.paths.checkpoints} has no checkpoint. Train without "
                                "resuming first.")
        # Under torchrun the main process reads, splits and saves first; the others then find the same splits.
        with PartialState(cpu=models.distributed_on_cpu()).main_process_first():
            splits, report = data.load_splits(cfg, read_options, frames=frames)
            tokenizer = models.load_tokenizer(cfg.resolved_model)
            encoded = encode(splits, tokenizer)
        cfg, length = choose_length(cfg, encoded, tokenizer, auto=auto_max_length)
        cfg, weighting = decide_class_weights(cfg, splits)
        cfg, passes = decide_epochs(cfg, splits)
        if resume:  # the same run or none: splits, model and schedule as they were when it stopped
            runs.check_resume(cfg, cfg.paths.checkpoints)
        if main:
            runs.save_splits(splits, report, cfg)
        say(f"Task: {data.task_line(splits, cfg)}")
        for line in [*report.console_lines(mention), *report.notes]:
            say(f"Data: {line}")
        say(length_line(length, cfg, auto_max_length))
        if weighting:
            say(f"Class weights: on, because {weighting}; {{class_weights=False}} trains without them.")
        if passes:
            say(f"Epochs: {cfg.epochs:g}, because {passes}; {{epochs={DEFAULT_EPOCHS:g}}} trains the usual two.")
        cfg.check_steps(training.total_training_steps(len(splits["train"]), cfg.batch_size, training.epochs_of(cfg)))
        tokenized = truncate(encoded, tokenizer, cfg.max_length)
        if not resume:
            shutil.rmtree(cfg.paths.checkpoints, ignore_errors=True)  # a fresh run must not mix with an older one's
            if main:
                runs.record_resume_settings(cfg, cfg.paths.checkpoints)
        trainer = fit(cfg, splits, tokenized, tokenizer, checkpoint)
        result = finish(cfg, splits, report, trainer, tokenized, length, auto_max_length, read_options, main)
    return result


def encode(splits: DatasetDict, tokenizer: PreTrainedTokenizerBase) -> DatasetDict:
    """Return the splits tokenized whole (no truncation yet): the lengths choose max_length, the ids are kept."""
    multi = data.task_of(splits) == MULTI_LABEL

    def whole(batch: dict) -> dict:
        return tokenizer(batch["text"], batch.get("text_pair"), verbose=False)

    # Several labels: the loss reads the multi-hot `labels`; `label` (the ids as lists) would be collated over it.
    return splits.map(whole, batched=True, desc="Tokenizing", remove_columns=["label"] if multi else None)


def train_lengths(encoded: DatasetDict) -> np.ndarray:
    """Return the token count of each training text (or pair, separators included), before truncation."""
    return np.array([len(ids) for ids in encoded["train"]["input_ids"]])


def choose_length(cfg: Config, encoded: DatasetDict, tokenizer: PreTrainedTokenizerBase, *,
                  auto: bool) -> tuple[Config, tokens.TruncationReport]:
    """Return (cfg with max_length chosen when auto, the report of how many training texts it cuts); refuse a
    max_length longer than the model takes."""
    lengths = train_lengths(encoded)
    limit = models.model_max_length(cfg.resolved_model, tokenizer)
    if auto:
        chosen = max(MAX_LENGTH_RANGE[0], tokens.suggest_max_length(lengths, 99.0, model_max=limit))
        cfg = dataclasses.replace(cfg, max_length=chosen)
    training.check_max_length(cfg, limit)
    return cfg, tokens.truncation_report(lengths, cfg.max_length, model_max=limit)


def decide_class_weights(cfg: Config, splits: DatasetDict) -> tuple[Config, str | None]:
    """Return cfg with class_weights decided from the training labels when left unset (None), and why they turned on
    (None when off or set by the user); the run folder records the decision, so `train --config` repeats it."""
    multi = data.task_of(splits) == MULTI_LABEL
    used, reason = training.decided_class_weights(cfg, splits["train"], len(data.label_names(splits)), multi)
    return dataclasses.replace(cfg, class_weights=used), reason


def decide_epochs(cfg: Config, splits: DatasetDict) -> tuple[Config, str | None]:
    """Return cfg with epochs decided from the training rows when left unset (None), and why they are more than the
    usual two (None otherwise); the run folder records the decision, so `train --config` repeats it."""
    multi = data.task_of(splits) == MULTI_LABEL
    epochs, reason = training.decided_epochs(cfg, splits["train"], data.label_names(splits), multi)
    return dataclasses.replace(cfg, epochs=epochs), reason


def length_line(length: tokens.TruncationReport, cfg: Config, auto: bool) -> str:
    """Return the line that says how many training texts max_length cuts, and how it was chosen."""
    how = f" Chose max_length {cfg.max_length}: the 99th percentile, capped at the model's {length.model_max}."
    return f"Training texts: {length.summary()}{how if auto else ''}"


def truncate(encoded: DatasetDict, tokenizer: PreTrainedTokenizerBase, max_length: int) -> DatasetDict:
    """Return the encoded splits with every row longer than max_length tokenized again, truncated."""

    # Only the rows max_length cuts are tokenized a second time (a pair is cut from its longer text first, which a
    # slice of the ids could not do); the rest keep the ids encode() made.
    def cut(batch: dict) -> dict:
        long = [i for i, ids in enumerate(batch["input_ids"]) if len(ids) > max_length]
        if long:
            pairs = [batch["text_pair"][i] for i in long] if "text_pair" in batch else None
            again = tokenizer([batch["text"][i] for i in long], pairs, truncation=True, max_length=max_length)
            for key, values in again.items():
                for i, value in zip(long, values, strict=True):
                    batch[key][i] = value
        return batch

    return encoded.map(cut, batched=True, desc="Truncating")


def fit(cfg: Config, splits: DatasetDict, tokenized: DatasetDict, tokenizer: PreTrainedTokenizerBase,
        checkpoint: str | None) -> Trainer:
    """Return the Trainer after fine-tuning the pretrained encoder with a new head on the tokenized splits."""
    names = data.label_names(splits)
    multi = data.task_of(splits) == MULTI_LABEL
    model = models.load_classifier(cfg.resolved_model, names, multi_label=multi)
    trainer = training.build_trainer(cfg, model, tokenized, tokenizer)
    trainer.train(resume_from_checkpoint=checkpoint)
    return trainer


def finish(cfg: Config, splits: DatasetDict, report: data.LoadReport, trainer: Trainer, tokenized: DatasetDict,
           length: tokens.TruncationReport, auto: bool, read_options: ReadOptions | None, main: bool) -> RunResult:
    """Return the RunResult of a trained model: thresholds, baselines and advice; the main process writes the run."""
    names = data.label_names(splits)
    multi = data.task_of(splits) == MULTI_LABEL
    scores, thresholds = (training.tuned_thresholds(trainer, tokenized["validation"], names) if multi
                          else (training.validation_scores(trainer, tokenized["validation"], names), None))
    validation = {**baselines.baseline_scores(splits, "validation", cfg.seed), FINE_TUNED: scores}
    history = training.history_frame(trainer.state.log_history)
    best_epoch = best_epoch_of(trainer)
    result = RunResult(
        config=cfg, task=data.task_of(splits), task_line=data.task_line(splits, cfg), label_names=names,
        load_report=report, length=length, max_length_chosen=auto, scores={"validation": validation},
        history=history.to_dict("records"), best_epoch=best_epoch, epochs_run=float(trainer.state.epoch or 0.0),
        thresholds=thresholds, model_dir=cfg.paths.model, metrics_path=cfg.paths.metrics)
    result = dataclasses.replace(result, advice=advice_for(result, splits))
    if main:  # under torchrun every process trains, one writes
        write_run(result, trainer, splits, read_options)
    return result


def best_epoch_of(trainer: Trainer) -> float | None:
    """Return the epoch of the checkpoint the Trainer kept as best, or None when it kept none."""
    step = trainer.state.best_global_step
    epochs = [entry["epoch"] for entry in trainer.state.log_history if entry.get("step") == step and "epoch" in entry]
    return round(float(epochs[0]), 4) if step and epochs else None


def write_run(result: RunResult, trainer: Trainer, splits: DatasetDict, read_options: ReadOptions | None) -> None:
    """Write the model folder, its records and metrics.json; remove the checkpoints unless asked to keep them."""
    from distilnb.readers import ReadOptions

    cfg = result.config
    trainer.save_model(str(cfg.paths.model))
    validation = result.rows("validation")
    baselines = {row: scores for row, scores in validation.items() if row != FINE_TUNED}
    runs.write_run_files(cfg, trainer, result.split_sizes, validation[FINE_TUNED], splits, baselines=baselines)
    runs.record_reading(cfg.paths.model, read_options or ReadOptions())
    if result.thresholds is not None:  # predict and evaluate apply them; metrics.json says how they were chosen
        record = {**result.thresholds, "during_training": TRAINING_THRESHOLD}  # what the logged epoch scores used
        runs.save_thresholds(cfg.paths.model, record)
        runs.update_metrics(cfg.paths.metrics, "thresholds", record)
    if not cfg.keep_checkpoints:  # hundreds of MB of optimizer state, needed only to resume an unfinished run
        shutil.rmtree(cfg.paths.checkpoints, ignore_errors=True)


def advice_for(result: RunResult, splits: DatasetDict) -> list[Advice]:
    """Return what the run shows to change, as data (verdict.advise): a validation split too small to choose on, and
    the likely causes when the fine-tuned model loses to a baseline."""
    counts = data.class_counts(splits)
    share = counts["train"] / len(splits["train"])
    evidence = Evidence(task=result.task, rows=result.rows("validation"), epochs=training.epochs_of(result.config),
                        best_epoch=result.best_epoch, epochs_run=result.epochs_run,
                        validation_rows=result.split_sizes["validation"],
                        smallest_validation_class=int(counts["validation"].min()),
                        largest_class_share=float(share.max()), rarest_share=float(share.min()),
                        cut_share=result.length.truncated / max(result.length.texts, 1),
                        class_weights=bool(result.config.class_weights))  # decided by now
    return advise(evidence)


def model_for_evaluation(cfg: Config, published: str | None = None) -> str:
    """Return the model to evaluate: this run's folder; else, in the full profile, a published one; else the model
    of a whole run trained now."""
    if (cfg.paths.model / "config.json").is_file():
        return str(cfg.paths.model)
    if published and cfg.profile == "full":
        return published
    return str(train(cfg).model_dir)

