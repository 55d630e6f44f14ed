"""Chapter 04, exercise 2: the most confused pair of classes, with scikit-learn."""

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
