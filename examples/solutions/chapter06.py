"""Chapter 06, exercises 1 to 3: the threshold curve, never an empty set of labels, and the order of a pair."""

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score


def threshold_curve(y_true, probabilities, thresholds=None) -> pd.DataFrame:
    """Return micro-F1 and macro-F1 at each global threshold (rows), to plot with `.plot()`.

    Micro-F1 pools every decision, so the frequent labels set its peak; macro-F1 averages the labels, so a rare label
    whose probabilities sit low pulls its peak to a lower threshold. Near the top the curve is usually flat over a few
    grid steps: on a small validation split the exact peak is partly noise, which is why a threshold is chosen on
    validation and the test split is scored once.
    """
    thresholds = np.round(np.arange(0.05, 0.951, 0.05), 2) if thresholds is None else np.asarray(thresholds)
    y_true, probabilities = np.asarray(y_true).astype(int), np.asarray(probabilities)
    rows = {}
    for threshold in thresholds:
        predicted = (probabilities >= threshold).astype(int)
        rows[float(threshold)] = {average: f1_score(y_true, predicted, average=average.split("_")[1], zero_division=0)
                                  for average in ("f1_micro", "f1_macro")}
    return pd.DataFrame(rows).T.rename_axis("threshold")


def at_least_one_label(probabilities, thresholds) -> np.ndarray:
    """Return 0/1 predictions by the thresholds, where a row with no label gets its single most probable label.

    Every support message asks about something, so an empty answer is always wrong. The rule only adds labels, so it
    can raise recall and samples-F1 (each text's set now overlaps its true set more often) and subset accuracy (a
    one-label text whose label was just under its threshold becomes exactly right); it costs precision when the top
    label is wrong.
    """
    probabilities = np.asarray(probabilities)
    predicted = (probabilities >= np.asarray(thresholds, dtype=float)).astype(int)
    empty = predicted.sum(axis=1) == 0
    predicted[np.flatnonzero(empty), probabilities[empty].argmax(axis=1)] = 1
    return predicted


def swapped_pair_accuracy(predictor, first, second, labels) -> dict[str, float]:
    """Return the pair model's accuracy on (first, second), on the swapped (second, first), and how often the two agree.

    "Same team" is symmetric, but the model was trained on each pair in one order: the first text's tokens carry
    segment id 0 and the second's 1 (`token_type_ids`, on BERT models), so a swap gives the model inputs it never saw in
    that arrangement. A model that learned the relation keeps most of its accuracy; the pairs whose answer flips show
    where it leaned on the position of a text (chapter 06, exercise 3).
    """
    labels = np.asarray(labels)
    in_order = predictor.logits(list(zip(first, second, strict=True))).argmax(-1)
    swapped = predictor.logits(list(zip(second, first, strict=True))).argmax(-1)
    return {"accuracy": float((in_order == labels).mean()), "accuracy swapped": float((swapped == labels).mean()),
            "agreement": float((in_order == swapped).mean())}
