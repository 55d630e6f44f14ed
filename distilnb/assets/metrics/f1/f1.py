"""F1 as an evaluate module: the harmonic mean of precision and recall, averaged as asked, computed by scikit-learn."""

import datasets
import evaluate
import numpy as np
from sklearn.metrics import f1_score


class F1(evaluate.Metric):
    """The same inputs and output as the Hub's "f1" module, loadable from this folder without network."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description="Harmonic mean of precision and recall; average= 'binary', 'macro', 'weighted' or 'micro'.",
            citation="",
            inputs_description="predictions and references: class ids (int); average: how to combine classes.",
            features=datasets.Features({"predictions": datasets.Value("int32"),
                                        "references": datasets.Value("int32")}),
        )

    def _compute(self, predictions: list[int], references: list[int], labels: list[int] | None = None,
                 pos_label: int = 1, average: str | None = "binary",
                 sample_weight: list[float] | None = None) -> dict:
        score = f1_score(references, predictions, labels=labels, pos_label=pos_label, average=average,
                         sample_weight=sample_weight, zero_division=0)
        return {"f1": float(score) if np.ndim(score) == 0 else np.asarray(score)}
