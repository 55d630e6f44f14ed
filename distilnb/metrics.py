"""Stage 04: scikit-learn metrics, reports, error analysis, calibration (not evaluate.py, a Hugging Face name)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.special import softmax
from sklearn import metrics as skm

from distilnb import multilabel
from distilnb.data import check_known_labels, task_of
from distilnb.data import label_names as data_label_names
from distilnb.errors import DataError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from datasets import Dataset, DatasetDict
    from numpy.typing import ArrayLike
    from transformers import EvalPrediction

SUMMARY_METRICS = ("accuracy", "f1_macro", "f1_weighted")
EVALUATION_MODULES = Path(__file__).resolve().parent / "assets" / "metrics"  # loadable by evaluate.load(path)
MULTI_LABEL_METRICS = ("f1_micro", "f1_macro", "f1_samples", "subset_accuracy", "hamming_loss")
TRAINING_THRESHOLD = 0.5  # a multi-label model's decision rule while it trains; thresholds are tuned after


def classification_metrics(y_true: ArrayLike, y_pred: ArrayLike, label_names: list[str]) -> dict:
    """Return accuracy, macro and weighted precision/recall/F1, and per-class scores, as plain floats."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if len(y_true) != len(y_pred) or len(y_true) == 0:
        raise DataError(f"Need as many predictions as labels, and at least one: got {len(y_pred)} and {len(y_true)}.")
    ids = list(range(len(label_names)))
    result: dict = {"accuracy": float(skm.accuracy_score(y_true, y_pred)), "examples": len(y_true)}
    present = np.union1d(y_true, y_pred)  # a class absent from both would add a meaningless 0 to the macro average
    averages = skm.classification_report(y_true, y_pred, labels=present, output_dict=True, zero_division=0)
    for average in ("macro", "weighted"):
        scores = averages[f"{average} avg"]
        result.update({f"precision_{average}": float(scores["precision"]), f"recall_{average}": float(scores["recall"]),
                       f"f1_{average}": float(scores["f1-score"])})
    report = skm.classification_report(y_true, y_pred, labels=ids, output_dict=True, zero_division=0)
    rows = [report[str(i)] for i in ids]
    result["per_class"] = {name: {"precision": float(row["precision"]), "recall": float(row["recall"]),
                                  "f1": float(row["f1-score"]), "support": int(row["support"])}
                           for name, row in zip(label_names, rows, strict=True)}
    return result


def trainer_metrics(label_names: list[str], multi_label: bool = False) -> Callable[[EvalPrediction], dict]:
    """Return a compute_metrics function for the Trainer: it scores predictions against the label_ids they came with.

    multi_label: micro, macro and samples F1 of the sigmoid scores at TRAINING_THRESHOLD (0.5), since the tuned
    thresholds come from the finished model's validation scores.
    """

    def compute(eval_prediction: EvalPrediction) -> dict:
        # label_ids travel with their predictions, so this holds even when evaluation batches are length-grouped.
        logits, labels = eval_prediction.predictions, eval_prediction.label_ids
        if multi_label:
            predicted = multilabel.apply_thresholds(multilabel.sigmoid(logits), TRAINING_THRESHOLD)
            scores = multilabel.scores(labels, predicted)
            return {name: scores[name] for name in ("f1_micro", "f1_macro", "f1_samples")}
        scores = classification_metrics(labels, np.argmax(logits, axis=-1), label_names)
        return {name: scores[name] for name in SUMMARY_METRICS}

    return compute


def multilabel_metrics(y_true: np.ndarray, probabilities: np.ndarray, label_names: list[str],
                       thresholds: float | np.ndarray) -> dict:
    """Return multilabel.scores at the thresholds, with the row count, the thresholds and per-label scores."""
    predicted = multilabel.apply_thresholds(probabilities, thresholds)
    report = multilabel.per_label_report(y_true, predicted, label_names)
    per_label = {name: {"precision": float(row["precision"]), "recall": float(row["recall"]), "f1": float(row["f1"]),
                        "support": int(row["support"])} for name, row in report.loc[label_names].iterrows()}
    limits = np.broadcast_to(np.asarray(thresholds, dtype=float), (len(label_names),))
    return {**multilabel.scores(y_true, predicted), "examples": len(y_true),
            "thresholds": dict(zip(label_names, map(float, limits), strict=True)), "per_label": per_label}


def summary_row(scores: dict) -> dict:
    """Return the metrics shown in comparison tables: accuracy, macro-F1 and weighted F1 (for several labels a text:
    micro, macro and samples F1, subset accuracy and Hamming loss)."""
    return {name: scores[name] for name in (MULTI_LABEL_METRICS if "f1_samples" in scores else SUMMARY_METRICS)}


def comparison_table(results: dict[str, dict]) -> pd.DataFrame:
    """Return one row per model with accuracy, macro-F1 and weighted F1."""
    return pd.DataFrame({name: summary_row(scores) for name, scores in results.items()}).T.rename_axis("model")


def report_frame(scores: dict) -> pd.DataFrame:
    """Return the classification report as a table: a row per class, then macro and weighted averages."""
    rows = dict(scores["per_class"])
    for average in ("macro", "weighted"):
        rows[f"{average} average"] = {"precision": scores[f"precision_{average}"],
                                      "recall": scores[f"recall_{average}"],
                                      "f1": scores[f"f1_{average}"], "support": scores["examples"]}
    return pd.DataFrame(rows).T.astype({"support": int})


def labels_in_model_order(labels: Sequence[int] | np.ndarray, data_label_names: list[str],
                          model_label_names: list[str]) -> np.ndarray:
    """Return data label ids translated to the model's label ids, or raise a clear error for labels the model lacks."""
    index = {name: i for i, name in enumerate(model_label_names)}
    check_known_labels({data_label_names[i] for i in labels}, model_label_names)
    return np.array([index[data_label_names[i]] for i in labels], dtype=int)


def confusion(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> np.ndarray:
    """Return the confusion matrix: row = true class, column = predicted class, counts."""
    return skm.confusion_matrix(y_true, y_pred, labels=list(range(n_classes)))


def prediction_frame(texts: list[str], y_true: ArrayLike, logits: np.ndarray,
                     label_names: list[str]) -> pd.DataFrame:
    """Return one row per example: text, true and predicted label, confidence, and loss (-log p of the true class)."""
    y_true = np.asarray(y_true)
    if not len(texts) == len(y_true) == len(logits):
        raise DataError(f"texts, labels and logits must line up one to one: got {len(texts)}, {len(y_true)}, "
                        f"{len(logits)}.")
    probabilities = softmax(logits, axis=-1)
    predicted = probabilities.argmax(axis=-1)
    return pd.DataFrame({
        "text": list(texts),
        "true": [label_names[i] for i in y_true],
        "predicted": [label_names[i] for i in predicted],
        "confidence": probabilities.max(axis=-1),
        "loss": -np.log(np.clip(probabilities[np.arange(len(y_true)), y_true], 1e-12, None)),
    })


def top_losses(frame: pd.DataFrame, k: int = 10) -> pd.DataFrame:
    """Return the k examples the model got most wrong: highest loss first."""
    return frame.sort_values("loss", ascending=False).head(k)


def confused_pairs(frame: pd.DataFrame, k: int = 5) -> pd.DataFrame:
    """Return the k most frequent (true, predicted) pairs among the errors, with their counts."""
    errors = frame[frame["true"] != frame["predicted"]]
    counts = errors.groupby(["true", "predicted"]).size().rename("count").reset_index()
    ranked = counts.sort_values(["count", "true", "predicted"], ascending=[False, True, True])
    return ranked.head(k).reset_index(drop=True)


def evaluation_module(name: str) -> str:
    """Return the path of the course's offline copy of an `evaluate` module ("accuracy", "f1") for evaluate.load."""
    # evaluate.load("accuracy") fetches the module's code from the Hub; these load from disk, with no network or cache.
    path = EVALUATION_MODULES / name
    if not (path / f"{name}.py").is_file():
        known = sorted(p.name for p in EVALUATION_MODULES.iterdir() if p.is_dir())
        raise DataError(f"No offline evaluation module {name!r}: the course ships {known}.")
    return str(path)


def reliability_bins(probabilities: np.ndarray, labels: ArrayLike, n_bins: int = 10) -> pd.DataFrame:
    """Return, per confidence bin holding about 1/n_bins of the predictions: low, high, count, confidence, accuracy.

    The bins are quantiles of the confidence (scikit-learn's calibration_curve, strategy="quantile"): each point of
    a reliability diagram then rests on as many predictions as the others, where equal-width bins leave a few texts
    in the low-confidence bins, whose accuracy swings from one run to the next.
    """
    from sklearn.calibration import calibration_curve

    confidence = probabilities.max(axis=-1)
    correct = (probabilities.argmax(axis=-1) == np.asarray(labels)).astype(int)
    accuracy, mean_confidence = calibration_curve(correct, confidence, n_bins=n_bins, strategy="quantile")
    # calibration_curve returns no counts: bin the same way it does (quantile edges, searchsorted) and count.
    edges = np.percentile(confidence, np.linspace(0, 100, n_bins + 1))
    which = np.searchsorted(edges[1:-1], confidence)
    counts = np.bincount(which, minlength=len(edges) - 1)
    filled = np.flatnonzero(counts)
    low = [float(confidence[which == b].min()) for b in filled]
    high = [float(confidence[which == b].max()) for b in filled]
    return pd.DataFrame({"low": low, "high": high, "count": counts[filled], "confidence": mean_confidence,
                         "accuracy": accuracy})


def expected_calibration_error(probabilities: np.ndarray, labels: ArrayLike, n_bins: int = 10) -> float:
    """Return the ECE: the count-weighted mean gap between confidence and accuracy over the calibration bins."""
    bins = reliability_bins(probabilities, labels, n_bins)
    return float((bins["count"] * (bins["confidence"] - bins["accuracy"]).abs()).sum() / bins["count"].sum())


def fit_temperature(logits: np.ndarray, labels: ArrayLike) -> float:
    """Return the temperature T > 0 minimising the negative log-likelihood of softmax(logits / T) on held-out data."""
    import torch

    logits_t, labels_t = torch.as_tensor(logits, dtype=torch.float64), torch.as_tensor(np.asarray(labels))
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)  # optimise log T so T stays positive
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(logits_t / log_t.exp(), labels_t)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.exp().item())


@dataclass
class Evaluation:
    """A model's results on one split: metrics, per-example table, logits and labels, all in the split's order."""

    scores: dict
    examples: pd.DataFrame
    logits: np.ndarray
    labels: np.ndarray
    label_names: list[str]


def multilabel_in_model_order(matrix: ArrayLike, data_label_names: list[str],
                              model_label_names: list[str]) -> np.ndarray:
    """Return a multi-hot matrix with its columns in the model's label order; refuse labels the model lacks."""
    check_known_labels(data_label_names, model_label_names)
    matrix = np.asarray(matrix, dtype=float).reshape(-1, len(data_label_names))
    columns = [data_label_names.index(name) if name in data_label_names else None for name in model_label_names]
    return np.stack([matrix[:, j] if j is not None else np.zeros(len(matrix)) for j in columns], axis=1).astype(int)


def evaluate_multilabel(predictor: Any, splits: DatasetDict, split: str) -> Evaluation:
    """Return the Evaluation of a multi-label model: sigmoid scores at its thresholds (predictor.thresholds)."""
    names = predictor.label_names
    labels = multilabel_in_model_order(splits[split]["labels"], data_label_names(splits), names)
    inputs = model_inputs(splits[split])
    logits = predictor.logits(inputs)
    probabilities = multilabel.sigmoid(logits)
    thresholds = predictor.decision_thresholds() if hasattr(predictor, "decision_thresholds") else TRAINING_THRESHOLD
    scores = multilabel_metrics(labels, probabilities, names, thresholds)
    predicted = multilabel.apply_thresholds(probabilities, thresholds)
    examples = pd.DataFrame({"text": splits[split]["text"], "true": multilabel.decode(labels, names),
                             "predicted": multilabel.decode(predicted, names)})
    return Evaluation(scores, examples, logits, labels, names)


def model_inputs(table: Dataset) -> list:
    """Return a split's inputs as a Predictor takes them: texts, or (first, second) pairs."""
    if "text_pair" in table.column_names:
        return list(zip(table["text"], table["text_pair"], strict=True))
    return list(table["text"])


def evaluate_split(predictor: Any, splits: DatasetDict, split: str = "test") -> Evaluation:
    """Return the Evaluation on one split of any object with .logits(inputs) and .label_names, in the split's order;
    a multi-label split is scored at the predictor's thresholds."""
    if task_of(splits) == "multi-label":
        return evaluate_multilabel(predictor, splits, split)
    names = predictor.label_names
    labels = labels_in_model_order(splits[split]["label"], data_label_names(splits), names)
    texts = splits[split]["text"]
    logits = predictor.logits(model_inputs(splits[split]))
    scores = classification_metrics(labels, logits.argmax(axis=-1), names)
    return Evaluation(scores, prediction_frame(texts, labels, logits, names), logits, labels, names)


# ---------------------------------------------------------------- tables the command line prints (verdict: verdict.py)

# The model rows of metrics.json and of every table: one name each, under validation and test alike.
FINE_TUNED = "fine-tuned"
MAJORITY, TFIDF = "majority class", "TF-IDF + logistic regression"
TFIDF_ONE_VS_REST = "TF-IDF + one-vs-rest logistic regression"  # the bar for several labels a text
FROZEN = "frozen features + logistic regression"


def score_table(rows: dict[str, dict]) -> str:
    """Return accuracy, macro-F1 and weighted F1 of each model as an aligned table with three decimals."""
    return comparison_table(rows).rename_axis(None).to_string(float_format="{:.3f}".format)


def report_table(scores: dict) -> str:
    """Return the classification report with an accuracy row, every figure with three decimals (for several labels
    a text: a row per label with its threshold, then the multi-label scores)."""
    if "per_label" in scores:
        frame = pd.DataFrame(scores["per_label"]).T.assign(threshold=pd.Series(scores["thresholds"]))
        overall = pd.DataFrame({"f1": [scores[name] for name in MULTI_LABEL_METRICS]}, index=MULTI_LABEL_METRICS)
        table = pd.concat([frame.assign(support=frame["support"].astype(int).astype(str)), overall])
        return table.to_string(float_format="{:.3f}".format, na_rep="")
    frame = report_frame(scores)
    accuracy = pd.DataFrame({"f1": [scores["accuracy"]], "support": [scores["examples"]]}, index=["accuracy"])
    frame = pd.concat([frame.iloc[:-2], accuracy, frame.iloc[-2:]])
    frame["support"] = frame["support"].astype(int)
    return frame.to_string(float_format="{:.3f}".format, na_rep="")
