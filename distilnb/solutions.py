"""Tested solutions to the notebooks' exercises, so instructors can check answers and learners can compare."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from distilnb import data, runs, tokens
from distilnb.config import Config
from distilnb.metrics import evaluate_split
from distilnb.predict import Predictor
from distilnb.train import run_fine_tuning


def leakage_drops(cfg: Config) -> dict[str, int]:
    """Return the rows dropped per reason when the same data is loaded with drop_duplicates=True (01, exercise 4)."""
    _, report = data.load_splits(replace(cfg, drop_duplicates=True))
    return report.dropped


def padding_by_batch_size(lengths: np.ndarray, batch_sizes: tuple[int, ...] = (8, 32, 128),
                          seed: int = 0) -> pd.DataFrame:
    """Return the padding share of each strategy (columns) for each batch size (rows) (02, exercise 4)."""
    return pd.DataFrame({
        size: tokens.padding_table(lengths, size, seed)["padding share"] for size in batch_sizes
    }).T.rename_axis("batch size")


def truncated_token_share(lengths: np.ndarray, max_length: int) -> float:
    """Return the share of all tokens that truncation at max_length cuts off (02, exercise 5)."""
    lengths = np.asarray(lengths)
    return float(np.clip(lengths - max_length, 0, None).sum() / lengths.sum())


def validation_scores(cfg: Config) -> dict:
    """Return the validation metrics of a model fine-tuned headless with cfg (its own run folder)."""
    folder = run_fine_tuning(cfg)
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


def should_stop(history_scores: list[float], patience: int) -> bool:
    """Return True when the last `patience` scores brought no improvement on the best before them (03, exercise 4)."""
    if len(history_scores) <= patience:
        return False
    return max(history_scores[-patience:]) <= max(history_scores[:-patience])


def coverage_at_confidence(probabilities: np.ndarray, labels, threshold: float = 0.9) -> dict[str, float]:
    """Return the share of predictions at or above a confidence threshold, and their accuracy (04, exercise 3)."""
    kept = probabilities.max(axis=-1) >= threshold
    correct = probabilities.argmax(axis=-1) == np.asarray(labels)
    return {"coverage": float(kept.mean()), "accuracy": float(correct[kept].mean()) if kept.any() else float("nan")}


def predict_or_abstain(predictor, texts: list[str], threshold: float = 0.7) -> list[str]:
    """Return each text's predicted label, or "unsure" where the top probability is below threshold (05, exercise 2)."""
    return [p["label"] if p["score"] >= threshold else "unsure" for p in predictor.predict(texts)]
