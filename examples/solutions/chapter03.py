"""Chapter 03, exercises 2 (warm-up, seen), 3 (class weights), 4 (early stopping: a whole loop) and 5 (frozen or
fine-tuned?)."""

import copy
import math
from dataclasses import replace

import pandas as pd
import torch
from datasets import Dataset
from sklearn.metrics import f1_score
from torch.utils.data import DataLoader
from transformers import DataCollatorWithPadding, PreTrainedModel, get_linear_schedule_with_warmup

from distilnb import models, runs, tokens
from distilnb.config import Config
from distilnb.metrics import evaluate_split
from distilnb.predict import Predictor
from distilnb.run import train


def learning_rate_schedule(total_steps: int, warmup_steps: int, peak: float) -> list[float]:
    """Return the learning rate used at each optimizer step under the linear schedule with warm-up.

    The schedule only needs an optimizer to drive, so any model will do (here one linear layer). Before step k the
    optimizer uses `scheduler.get_last_lr()`: it climbs linearly from 0 to `peak` over `warmup_steps` steps (the first
    steps train a random head, and small steps keep its noise from wrecking the pretrained weights), then falls
    linearly to 0 at `total_steps`. The answer: the peak sits at step `warmup_steps`, and the rate after the last
    step is exactly 0 (the plain loop's check cell asserts the same).
    """
    optimizer = torch.optim.AdamW(torch.nn.Linear(1, 1).parameters(), lr=peak)
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup_steps, total_steps)
    rates = []
    for _ in range(total_steps):
        rates.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    return rates


def should_stop(history_scores: list[float], patience: int) -> bool:
    """Return True when the last `patience` scores brought no improvement on the best before them (03, exercise 4)."""
    if len(history_scores) <= patience:
        return False
    return max(history_scores[-patience:]) <= max(history_scores[:-patience])


def loop_with_early_stopping(model: PreTrainedModel, features: dict[str, Dataset], collator: DataCollatorWithPadding,
                             cfg: Config, learning_rate: float) -> list[float]:
    """Train `model` as section 7's loop does, over the whole schedule of `cfg.epochs` epochs, stopping when validation
    macro-F1 has not improved for `cfg.early_stopping_patience` epochs (03, exercise 4).

    The schedule stays the one for every epoch (early stopping cuts it short, it does not shrink it), and the model
    ends with the best epoch's weights, as the Trainer's `load_best_model_at_end` does. Returns macro-F1 per epoch run.
    """
    torch.manual_seed(cfg.seed)
    lengths = [len(ids) for ids in features["train"]["input_ids"]]
    steps_per_epoch = math.ceil(len(lengths) / cfg.batch_size)
    total_steps = steps_per_epoch * math.ceil(cfg.epochs)
    optimizer = torch.optim.AdamW(models.parameter_groups(model, cfg.weight_decay), lr=learning_rate)
    warmup_steps = math.ceil(cfg.warmup * total_steps) if cfg.warmup < 1 else int(cfg.warmup)  # a share, or steps
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup_steps, total_steps)
    f1_by_epoch: list[float] = []
    best_weights = copy.deepcopy(model.state_dict())
    for epoch in range(math.ceil(cfg.epochs)):
        model.train()
        batches = tokens.length_grouped_batches(lengths, cfg.batch_size, seed=cfg.seed + epoch)
        for batch in DataLoader(features["train"], batch_sampler=batches, collate_fn=collator):
            model(**batch).loss.backward()  # with `labels` in the batch the model returns the cross-entropy
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
        f1_by_epoch.append(validation_macro_f1(model, features["validation"], collator, cfg.batch_size))
        if f1_by_epoch[-1] == max(f1_by_epoch):
            best_weights = copy.deepcopy(model.state_dict())
        if should_stop(f1_by_epoch, cfg.early_stopping_patience):
            break
    model.load_state_dict(best_weights)
    return f1_by_epoch


def validation_macro_f1(model: PreTrainedModel, split: Dataset, collator: DataCollatorWithPadding,
                        batch_size: int) -> float:
    """Return macro-F1 on a tokenized split, with dropout off and no gradients kept."""
    model.eval()
    predicted = []
    with torch.no_grad():
        for batch in DataLoader(split, batch_size=2 * batch_size, collate_fn=collator):
            batch.pop("labels")
            predicted.append(model(**batch).logits.argmax(-1))
    return float(f1_score(split["label"], torch.cat(predicted).numpy(), average="macro"))


def validation_scores(cfg: Config) -> dict:
    """Return the validation metrics of a model fine-tuned headless with cfg (its own run folder)."""
    folder = train(cfg).model_dir
    splits, _ = runs.load_or_build_splits(cfg)
    return evaluate_split(Predictor.from_folder(folder, max_length=cfg.max_length), splits, "validation").scores


def class_weight_effect(cfg: Config) -> pd.DataFrame:
    """Return accuracy, macro-F1 and the smallest class's recall, without and with class weights (03, exercise 3)."""
    rows = {}
    for weighted in (False, True):
        run = replace(cfg, class_weights=weighted, run_name=f"{cfg.run}-class-weights-{weighted}")
        scores = validation_scores(run)
        smallest = min(scores["per_class"], key=lambda name: scores["per_class"][name]["support"])
        rows[f"class_weights={weighted}"] = {"accuracy": scores["accuracy"], "f1_macro": scores["f1_macro"],
                                             f"recall of {smallest}": scores["per_class"][smallest]["recall"]}
    return pd.DataFrame(rows).T


def learning_curve(cfg: Config, fractions: tuple[float, ...] = (0.1, 0.3, 1.0)) -> pd.DataFrame:
    """Return validation accuracy and macro-F1 after fine-tuning on growing shares of train (03, exercise 5)."""
    splits, _ = runs.load_or_build_splits(cfg)
    rows = {}
    for fraction in fractions:
        size = max(1, round(fraction * len(splits["train"])))
        run = replace(cfg, max_train_examples=size, run_name=f"{cfg.run}-train-{size}")
        scores = validation_scores(run)
        rows[size] = {"accuracy": scores["accuracy"], "f1_macro": scores["f1_macro"]}
    return pd.DataFrame(rows).T.rename_axis("training examples")
