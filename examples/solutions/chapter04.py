"""Chapter 04, exercises 2 (the most confused pair, with scikit-learn) and 3 (thresholds)."""

import numpy as np
from sklearn.metrics import confusion_matrix


def most_confused_pair(y_true, y_pred, label_names: list[str]) -> tuple[str, str, int]:
    """Return (true class, predicted class, count) of the most frequent mistake.

    Row i, column j of scikit-learn's confusion matrix counts texts of class i predicted as j; the diagonal holds the
    correct predictions, so after zeroing it the largest cell is the most frequent mistake. `labels=` fixes the rows and
    columns to every class, even one absent from this split. It matches the first row of `metrics.confused_pairs`
    (which counts the same pairs from the prediction table; ties may come in another order).
    """
    matrix = confusion_matrix(y_true, y_pred, labels=np.arange(len(label_names)))
    np.fill_diagonal(matrix, 0)
    true, predicted = np.unravel_index(matrix.argmax(), matrix.shape)
    return label_names[true], label_names[predicted], int(matrix[true, predicted])


def coverage_at_confidence(probabilities: np.ndarray, labels, threshold: float = 0.9) -> dict[str, float]:
    """Return the share of predictions at or above a confidence threshold, and their accuracy (04, exercise 3)."""
    kept = probabilities.max(axis=-1) >= threshold
    correct = probabilities.argmax(axis=-1) == np.asarray(labels)
    return {"coverage": float(kept.mean()), "accuracy": float(correct[kept].mean()) if kept.any() else float("nan")}
