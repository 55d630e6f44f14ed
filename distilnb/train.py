"""Stage 03: the course's training arguments, class weights, the Trainer the CLI builds, and its headless run."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from sklearn.utils.class_weight import compute_class_weight

from distilnb import multilabel
from distilnb.config import (
    DEFAULT_EPOCHS,
    MAX_DECIDED_EPOCHS,
    MAX_DECIDED_STEPS,
    RARE_CLASS_SIGHTINGS,
    RARE_LABEL_SHARE,
    SKEWED_CLASS_SHARE,
    Config,
)
from distilnb.errors import SettingError
from distilnb.metrics import classification_metrics, multilabel_metrics, trainer_metrics
from distilnb.models import (
    distributed_on_cpu,
    is_multi_label,
    label_names_of,
    mixed_precision,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from datasets import Dataset, DatasetDict
    from numpy.typing import ArrayLike
    from transformers import (
        PreTrainedModel,
        PreTrainedTokenizerBase,
        Trainer,
        TrainerCallback,
        TrainerControl,
        TrainerState,
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


def class_weights(labels: ArrayLike, n_classes: int) -> torch.Tensor:
    """Return scikit-learn's "balanced" class weights (n / (classes * count)) as a tensor for the loss."""
    weights = compute_class_weight("balanced", classes=np.arange(n_classes), y=np.asarray(labels))
    return torch.tensor(weights, dtype=torch.float32)


def weighted_loss(weights: torch.Tensor) -> Callable[..., torch.Tensor]:
    """Return a loss function (outputs, labels) for the Trainer or a plain loop: cross-entropy with class weights."""

    def loss(outputs: Mapping[str, torch.Tensor], labels: torch.Tensor,
             num_items_in_batch: int | torch.Tensor | None = None) -> torch.Tensor:
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

    def loss(outputs: Mapping[str, torch.Tensor], labels: torch.Tensor,
             num_items_in_batch: int | torch.Tensor | None = None) -> torch.Tensor:
        logits = outputs["logits"]
        return torch.nn.functional.binary_cross_entropy_with_logits(
            logits, labels.to(logits.dtype), pos_weight=pos_weight.to(logits.device))

    return loss


def label_counts(train_split: Dataset, n_labels: int, multi: bool) -> np.ndarray:
    """Return how many training rows each class holds (several labels: how many texts each label is on)."""
    if multi:
        return np.asarray(train_split["labels"], dtype=int).reshape(-1, n_labels).sum(axis=0)
    return np.bincount(train_split["label"], minlength=n_labels)


def class_weights_reason(counts: np.ndarray, rows: int, multi: bool) -> str | None:
    """Return why class_weights left unset turns on for classes of these training counts, or None when it stays off:
    one class over SKEWED_CLASS_SHARE of the rows, or (several labels) a label on under RARE_LABEL_SHARE of the texts
    or on fewer than RARE_CLASS_SIGHTINGS of them, where they were measured to help."""
    shares = counts / max(rows, 1)
    if multi and shares.min() < RARE_LABEL_SHARE:
        return f"a label is on {shares.min():.1%} of the training texts (under {RARE_LABEL_SHARE:.0%})"
    if multi and counts.min() < RARE_CLASS_SIGHTINGS:
        return f"a label is on only {counts.min():,} training texts (under {RARE_CLASS_SIGHTINGS})"
    if not multi and shares.max() > SKEWED_CLASS_SHARE:
        return f"one class holds {shares.max():.0%} of the training rows (over {SKEWED_CLASS_SHARE:.0%})"
    return None


def decided_class_weights(cfg: Config, train_split: Dataset, n_labels: int, multi: bool) -> tuple[bool, str | None]:
    """Return whether the loss weighs the classes (cfg.class_weights, or, left unset, whether the training labels are
    skewed enough to want it) and why it turned on when left unset (None otherwise)."""
    if cfg.class_weights is not None:
        return cfg.class_weights, None
    reason = class_weights_reason(label_counts(train_split, n_labels, multi), len(train_split), multi)
    return reason is not None, reason


def loss_for(cfg: Config, train_split: Dataset, n_labels: int, multi: bool) -> Callable[..., torch.Tensor] | None:
    """Return the Trainer's loss when class weights are used (per class, or per label for several labels), else None
    (the model's own loss)."""
    if not decided_class_weights(cfg, train_split, n_labels, multi)[0]:
        return None
    if multi:
        return weighted_multilabel_loss(label_weights(np.asarray(train_split["labels"]).reshape(-1, n_labels)))
    return weighted_loss(class_weights(train_split["label"], n_labels))


def epochs_for_rarest(rarest: int, rows: int, batch_size: int) -> tuple[float, bool]:
    """Return the epochs that show the rarest class RARE_CLASS_SIGHTINGS times (DEFAULT_EPOCHS to MAX_DECIDED_EPOCHS)
    and whether MAX_DECIDED_STEPS cut them short."""
    wanted = min(max(math.ceil(RARE_CLASS_SIGHTINGS / max(rarest, 1)), DEFAULT_EPOCHS), MAX_DECIDED_EPOCHS)
    affordable = max(DEFAULT_EPOCHS, MAX_DECIDED_STEPS // math.ceil(rows / batch_size))
    return float(min(wanted, affordable)), affordable < wanted


def decided_epochs(cfg: Config, train_split: Dataset, names: list[str], multi: bool) -> tuple[float, str | None]:
    """Return the epochs to train (cfg.epochs, or, left unset, enough passes to show the rarest class about
    RARE_CLASS_SIGHTINGS times) and why they are more than DEFAULT_EPOCHS when left unset (None otherwise)."""
    if cfg.epochs is not None:
        return cfg.epochs, None
    counts = label_counts(train_split, len(names), multi)
    rarest = int(counts.min())
    epochs, capped = epochs_for_rarest(rarest, len(train_split), cfg.batch_size)
    if epochs == DEFAULT_EPOCHS:
        return epochs, None
    holds = f"the rarest label, {names[int(counts.argmin())]!r}, is on {rarest:,} training texts" if multi else \
        f"the rarest class, {names[int(counts.argmin())]!r}, has {rarest:,} training rows"
    short = rarest * epochs < RARE_CLASS_SIGHTINGS  # a class this rare is shown fewer times than the rule asks
    limit = f", the most that fit in {MAX_DECIDED_STEPS:,} steps" if capped else \
        f", the rule's most ({MAX_DECIDED_EPOCHS} epochs)" if short else ""
    return epochs, f"{holds}: {epochs:g} passes show it {rarest * epochs:,.0f} times{limit}"


def epochs_of(cfg: Config) -> float:
    """Return the epochs of a Config whose epochs are decided (run.decide_epochs); refuse one left unset."""
    if cfg.epochs is None:
        raise ValueError("epochs is unset: decide it from the training rows first (run.decide_epochs)")
    return cfg.epochs


def total_training_steps(examples: int, batch_size: int, epochs: float) -> int:
    """Return the optimizer steps of a run as the Trainer counts them: a fractional epoch is a fraction of the steps."""
    return math.ceil(epochs * math.ceil(examples / batch_size))


def training_arguments(cfg: Config, learning_rate: float) -> TrainingArguments:
    """Return TrainingArguments with the course's defaults (see 03_finetune for why each is chosen)."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(cfg.paths.checkpoints),
        learning_rate=learning_rate,
        num_train_epochs=epochs_of(cfg),
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
    # Written by hand: save_strategy="steps" would need evaluations on the same steps (load_best_model_at_end), and
    # the course evaluates, logs and stops early once an epoch; this adds saves between them and changes nothing else.
    from transformers import TrainerCallback

    class CheckpointEvery(TrainerCallback):
        def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                        **kwargs: Any) -> TrainerControl:
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


def validation_scores(trainer: Trainer, validation: Dataset, names: list[str]) -> dict:
    """Return the kept model's validation report, per class, as the baselines' (one more pass over validation)."""
    # The Trainer's logs hold only compute_metrics' summary; one schema for every row of metrics.json wants it all.
    output = trainer.predict(validation)
    scores = classification_metrics(output.label_ids, np.argmax(output.predictions, axis=-1), names)
    return {**scores, "loss": float(output.metrics["test_loss"])}


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


def tuned_thresholds(trainer: Trainer, validation: Dataset, names: list[str]) -> tuple[dict, dict]:
    """Return (validation scores at the thresholds kept, the thresholds record) of a trained multi-label model."""
    # label_ids come with their predictions: the Trainer may return rows in another order than the split's (by length)
    output = trainer.predict(validation)
    probabilities = multilabel.sigmoid(output.predictions)
    truth = np.asarray(output.label_ids, dtype=float).reshape(-1, len(names))
    record = multilabel.choose_thresholds(truth, probabilities, names)
    limits = np.asarray([record["thresholds"][name] for name in names])
    return multilabel_metrics(truth, probabilities, names, limits), record
