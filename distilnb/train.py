"""Stage 03: the course's training arguments, class weights, the Trainer the CLI builds, and its headless run."""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from sklearn.utils.class_weight import compute_class_weight

from distilnb import multilabel, runs
from distilnb.config import MULTI_LABEL, PAIRS, Config
from distilnb.data import LoadReport, label_names, task_of
from distilnb.errors import NotFoundError, SettingError
from distilnb.metrics import TFIDF_ONE_VS_REST, TRAINING_THRESHOLD, multilabel_metrics, trainer_metrics
from distilnb.models import (
    distributed_on_cpu,
    is_main_process,
    is_multi_label,
    label_names_of,
    load_classifier,
    load_tokenizer,
    mixed_precision,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from datasets import DatasetDict
    from transformers import (
        PreTrainedModel,
        PreTrainedTokenizerBase,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

# Fine-tuning learning rate for a 768-wide encoder (DistilBERT, BERT-base); narrower encoders want proportionally more.
REFERENCE_LEARNING_RATE, REFERENCE_WIDTH = 5e-5, 768
BEST_METRIC = "f1_macro"


def default_learning_rate(hidden_size: int) -> float:
    """Return the default peak learning rate: 5e-5 at width 768, scaled by 768 / width (MiniLM, 384: 1e-4)."""
    return REFERENCE_LEARNING_RATE * REFERENCE_WIDTH / hidden_size


def learning_rate_for(cfg: Config, model: PreTrainedModel) -> float:
    """Return cfg.learning_rate, or the default scaled to the model's width when it is None."""
    return cfg.learning_rate or default_learning_rate(model.config.hidden_size)


def class_weights(labels, n_classes: int) -> torch.Tensor:
    """Return scikit-learn's "balanced" class weights (n / (classes * count)) as a tensor for the loss."""
    weights = compute_class_weight("balanced", classes=np.arange(n_classes), y=np.asarray(labels))
    return torch.tensor(weights, dtype=torch.float32)


def weighted_loss(weights: torch.Tensor) -> Callable[..., torch.Tensor]:
    """Return a loss function (outputs, labels) for the Trainer or a plain loop: cross-entropy with class weights."""

    def loss(outputs, labels, num_items_in_batch=None):
        logits = outputs["logits"]
        return torch.nn.functional.cross_entropy(logits, labels, weight=weights.to(logits.device))

    return loss


def label_weights(matrix: np.ndarray) -> torch.Tensor:
    """Return BCEWithLogitsLoss's pos_weight for multi-hot labels: the square root of each label's negatives over its
    positives (a label on 1 text in 100 weighs its positives about 10 times)."""
    # The full ratio is the usual choice, but GoEmotions' rarest label has ~560 negatives per positive, and weights
    # that large make a few texts dominate each step; the square root still lifts rare labels out of the noise.
    positives = np.asarray(matrix, dtype=float).sum(axis=0)
    return torch.tensor(np.sqrt((len(matrix) - positives) / np.maximum(positives, 1)), dtype=torch.float32)


def weighted_multilabel_loss(pos_weight: torch.Tensor) -> Callable[..., torch.Tensor]:
    """Return a loss function (outputs, labels) for the Trainer: BCEWithLogitsLoss with a positive weight per label."""

    def loss(outputs, labels, num_items_in_batch=None):
        logits = outputs["logits"]
        return torch.nn.functional.binary_cross_entropy_with_logits(
            logits, labels.to(logits.dtype), pos_weight=pos_weight.to(logits.device))

    return loss


def loss_for(cfg: Config, train_split, n_labels: int, multi: bool) -> Callable[..., torch.Tensor] | None:
    """Return the Trainer's loss when cfg.class_weights asks for one (per class, or per label for several labels),
    else None (the model's own loss)."""
    if not cfg.class_weights:
        return None
    if multi:
        return weighted_multilabel_loss(label_weights(np.asarray(train_split["labels"]).reshape(-1, n_labels)))
    return weighted_loss(class_weights(train_split["label"], n_labels))


def total_training_steps(examples: int, batch_size: int, epochs: float) -> int:
    """Return the optimizer steps of a run as the Trainer counts them: a fractional epoch is a fraction of the steps."""
    return math.ceil(epochs * math.ceil(examples / batch_size))


def training_arguments(cfg: Config, learning_rate: float) -> TrainingArguments:
    """Return TrainingArguments with the course's defaults (see 03_finetune for why each is chosen)."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(cfg.paths.checkpoints),
        learning_rate=learning_rate,
        num_train_epochs=cfg.epochs,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=2 * cfg.batch_size,
        warmup_steps=cfg.warmup,  # a float below 1 is a share of the training steps
        weight_decay=cfg.weight_decay,
        lr_scheduler_type="linear",
        max_grad_norm=1.0,
        eval_strategy="epoch",
        # Saved each epoch (load_best_model_at_end needs saves to match evaluations) and every save_steps steps
        # (CheckpointEvery); the limit keeps the best checkpoint and the last one.
        save_strategy="epoch",
        save_steps=cfg.save_steps,
        save_total_limit=2,
        logging_strategy="epoch",
        load_best_model_at_end=True,
        metric_for_best_model=BEST_METRIC,
        greater_is_better=True,
        train_sampling_strategy="group_by_length",
        seed=cfg.seed,
        data_seed=cfg.seed,
        report_to="none",
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        use_cpu=distributed_on_cpu(),  # accelerate runs DistributedDataParallel over gloo on the CPU only when told so
        # One label per text, so DDP's mean of per-process mean losses is already right; True would multiply the loss by
        # the number of processes, since DistilBERT's classification head ignores the token count the Trainer passes it.
        average_tokens_across_devices=False,
        **mixed_precision(),
    )


def checkpoint_every(steps: int) -> TrainerCallback:
    """Return a Trainer callback that also saves a checkpoint every `steps` optimizer steps, within an epoch."""
    from transformers import TrainerCallback

    class CheckpointEvery(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step % steps == 0:
                control.should_save = True
            return control

    return CheckpointEvery()


def last_checkpoint(folder: Path) -> str | None:
    """Return the newest checkpoint folder of a run, or None."""
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(folder)) if folder.is_dir() else None


def build_trainer(cfg: Config, model: PreTrainedModel, tokenized: DatasetDict, tokenizer: PreTrainedTokenizerBase,
                  callbacks: list[TrainerCallback] | None = None, *,
                  trainer_class: Callable[..., Trainer] | None = None) -> Trainer:
    """Return a Trainer over tokenized train and validation splits with the course's defaults and early stopping;
    trainer_class: a Trainer subclass (or a partial of one) to build instead, e.g. distill.DistillationTrainer."""
    from transformers import DataCollatorWithPadding, EarlyStoppingCallback, Trainer

    names = label_names_of(model)
    multi = is_multi_label(model)
    return (trainer_class or Trainer)(
        model=model,
        args=training_arguments(cfg, learning_rate_for(cfg, model)),
        train_dataset=tokenized["train"],
        eval_dataset=tokenized["validation"],
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=trainer_metrics(names, multi_label=multi),
        compute_loss_func=loss_for(cfg, tokenized["train"], len(names), multi),
        callbacks=[EarlyStoppingCallback(cfg.early_stopping_patience), checkpoint_every(cfg.save_steps),
                   *(callbacks or [])],
    )


def best_validation_scores(trainer: Trainer) -> dict:
    """Return the validation scores the Trainer logged at its best checkpoint (no extra evaluation pass)."""
    evaluations = [entry for entry in trainer.state.log_history if f"eval_{BEST_METRIC}" in entry]
    best = [e for e in evaluations if e.get("step") == trainer.state.best_global_step] or \
        sorted(evaluations, key=lambda e: e[f"eval_{BEST_METRIC}"])[-1:]
    return {key.removeprefix("eval_"): value for key, value in best[0].items()
            if key.startswith("eval_") and not key.endswith(("runtime", "per_second"))}


def history_frame(log_history: list[dict]) -> pd.DataFrame:
    """Return one row per epoch from a Trainer's log history: train_loss, eval_loss and the eval metrics."""
    rows: dict[float, dict] = {}
    for entry in log_history:
        if "epoch" not in entry:
            continue
        row = rows.setdefault(round(entry["epoch"], 4), {"epoch": round(entry["epoch"], 4)})
        if "loss" in entry:
            row["train_loss"] = entry["loss"]
        row.update({key: value for key, value in entry.items() if key.startswith("eval_")})
    frame = pd.DataFrame(sorted(rows.values(), key=lambda row: row["epoch"]))
    timing = ("runtime", "per_second")
    keep = [c for c in frame.columns
            if c in ("epoch", "train_loss") or (c.startswith("eval_") and not c.endswith(timing))]
    return frame[keep]


def check_max_length(cfg: Config, model_max: int) -> None:
    """Raise SettingError when cfg.max_length is longer than the model takes."""
    if cfg.max_length > model_max:
        raise SettingError(f"is longer than {cfg.model} takes ({model_max} tokens): choose at most {model_max}",
                           "max_length", cfg.max_length)


def tokenize_batch(tokenizer: PreTrainedTokenizerBase, batch: dict, max_length: int) -> dict:
    """Return the tokenized batch: its texts, or its pairs as tokenizer(first, second), which puts the separator
    between them (and, for BERT-like models, segment ids 0 then 1); truncation cuts the longer text first."""
    return tokenizer(batch["text"], batch.get("text_pair"), truncation=True, max_length=max_length)


def tuned_thresholds(trainer: Trainer, validation, names: list[str]) -> tuple[dict, dict]:
    """Return (validation scores at the thresholds kept, the thresholds record) of a trained multi-label model."""
    # label_ids come with their predictions: the Trainer may return rows in another order than the split's (by length)
    output = trainer.predict(validation)
    probabilities = multilabel.sigmoid(output.predictions)
    truth = np.asarray(output.label_ids, dtype=float).reshape(-1, len(names))
    record = multilabel.choose_thresholds(truth, probabilities, names)
    limits = np.asarray([record["thresholds"][name] for name in names])
    return multilabel_metrics(truth, probabilities, names, limits), record


def run_fine_tuning(cfg: Config, splits: DatasetDict | None = None, report: LoadReport | None = None, *,
                    resume: bool = False) -> Path:
    """Run stages 01 to 03 headless (splits, tokens, Trainer fine-tuning, run files); return the model folder.

    splits and report: the data already read and split (the command line reads it once); None builds them from cfg.
    Threads are the caller's to set (models.set_threads). Ctrl-C leaves the last checkpoint and raises
    KeyboardInterrupt for the caller to report; a finished run removes its checkpoints unless cfg.keep_checkpoints.
    """
    from accelerate import PartialState
    from transformers import set_seed

    set_seed(cfg.seed)
    checkpoint = last_checkpoint(cfg.paths.checkpoints) if resume else None
    if resume and checkpoint is None:
        raise NotFoundError(f"Nothing to resume: {cfg.paths.checkpoints} has no checkpoint. "
                            "Train without resuming first.")
    # Under torchrun the main process builds and saves the splits and caches first; the others then read them.
    with PartialState(cpu=distributed_on_cpu()).main_process_first():
        if splits is None:
            splits, report = runs.build_and_save_splits(cfg)  # training is where the current split settings apply
        else:
            report = report or LoadReport(source=cfg.dataset, split_sizes={name: len(splits[name]) for name in splits})
            if is_main_process():
                runs.save_splits(splits, report, cfg)
        cfg.check_steps(total_training_steps(len(splits["train"]), cfg.batch_size, cfg.epochs))
        tokenizer = load_tokenizer(cfg.resolved_model)
        check_max_length(cfg, tokenizer.model_max_length)
        multi = task_of(splits) == MULTI_LABEL
        # Several labels: the loss reads the multi-hot `labels`; `label` (the ids as lists) would be collated over it.
        tokenized = splits.map(lambda batch: tokenize_batch(tokenizer, batch, cfg.max_length), batched=True,
                               desc="Tokenizing", remove_columns=["label"] if multi else None)
    if not resume:
        shutil.rmtree(cfg.paths.checkpoints, ignore_errors=True)  # a fresh run must not mix with an older one's
    names = label_names(splits)
    trainer = build_trainer(cfg, load_classifier(cfg.resolved_model, names, multi_label=multi), tokenized, tokenizer)
    trainer.train(resume_from_checkpoint=checkpoint)
    scores, thresholds = (tuned_thresholds(trainer, tokenized["validation"], names) if multi
                          else (best_validation_scores(trainer), None))
    if is_main_process():  # under torchrun every process trains, one writes
        trainer.save_model(str(cfg.paths.model))
        runs.write_run_files(cfg, trainer, report.split_sizes, scores, splits)
        if thresholds is not None:  # predict and evaluate apply them; metrics.json says how they were chosen
            thresholds["during_training"] = TRAINING_THRESHOLD  # what the logged epoch scores used
            runs.save_thresholds(cfg.paths.model, thresholds)
            runs.update_metrics(cfg.paths.metrics, "thresholds", thresholds)
        if not cfg.keep_checkpoints:  # hundreds of MB of optimizer state, needed only to resume an unfinished run
            shutil.rmtree(cfg.paths.checkpoints, ignore_errors=True)
    return cfg.paths.model


def baseline_scores(splits: DatasetDict, split: str = "validation", seed: int = 0) -> dict[str, dict]:
    """Return the scores on `split` of the majority class and TF-IDF + logistic regression trained on splits["train"]
    (chapter 03's quick baselines: the frozen-features one needs the encoder and is left to the notebook)."""
    from distilnb import baselines

    names, train, held_out = label_names(splits), splits["train"], splits[split]
    task = task_of(splits)
    if task == MULTI_LABEL:
        return {TFIDF_ONE_VS_REST: multilabel_baseline(splits, split, seed)}
    if task == PAIRS:
        return {"majority class": baselines.majority_baseline(train["label"], held_out["label"], names),
                "TF-IDF + logistic regression": pair_baseline(train, held_out, names, seed)}
    return {"majority class": baselines.majority_baseline(train["label"], held_out["label"], names),
            "TF-IDF + logistic regression": baselines.tfidf_baseline(train["text"], train["label"], held_out["text"],
                                                                     held_out["label"], names, seed=seed)}


def multilabel_baseline(splits: DatasetDict, split: str, seed: int = 0) -> dict:
    """Return TF-IDF + one-vs-rest logistic regression's multi-label scores on `split`, its one threshold tuned on the
    validation rows as the fine-tuned model's are (0.5 when the splits hold none)."""
    names, train = label_names(splits), splits["train"]
    matrix = np.asarray(train["labels"], dtype=float).reshape(-1, len(names))
    threshold = 0.5
    if "validation" in splits and len(splits["validation"]):
        truth = np.asarray(splits["validation"]["labels"], dtype=float).reshape(-1, len(names))
        found = multilabel.tfidf_one_vs_rest(train["text"], matrix, splits["validation"]["text"], seed)
        threshold = multilabel.tune_global_threshold(truth, found, average="macro")
    held_out = splits[split]
    probabilities = multilabel.tfidf_one_vs_rest(train["text"], matrix, held_out["text"], seed)
    truth = np.asarray(held_out["labels"], dtype=float).reshape(-1, len(names))
    return multilabel_metrics(truth, probabilities, names, threshold)


def pair_baseline(train, held_out, names: list[str], seed: int = 0) -> dict:
    """Return the scores of TF-IDF + logistic regression on pairs (each text's features and their overlap): P(class)
    for each class one against the rest, the likeliest kept."""
    from distilnb.metrics import classification_metrics
    from distilnb.pairs import tfidf_pair_probabilities

    labels = np.asarray(train["label"])
    classes = [c for c in range(len(names)) if (labels == c).any()]
    columns = [tfidf_pair_probabilities(train["text"], train["text_pair"], (labels == c).astype(int),
                                        held_out["text"], held_out["text_pair"], seed) for c in classes]
    predicted = np.asarray(classes)[np.argmax(np.stack(columns, axis=1), axis=1)]
    return classification_metrics(held_out["label"], predicted, names)


def model_for_evaluation(cfg: Config, published: str | None = None) -> str:
    """Return the model to evaluate: this run's folder; else, in the full profile, a published one; else train."""
    if (cfg.paths.model / "config.json").is_file():
        return str(cfg.paths.model)
    if published and cfg.profile == "full":
        return published
    return str(run_fine_tuning(cfg))

