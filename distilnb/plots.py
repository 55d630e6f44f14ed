"""Every figure of the course: each function returns a matplotlib Figure, so notebooks show it and tests check it.

A notebook shows a returned Figure as an image once the inline backend is on (`%matplotlib inline`, which also
registers IPython's PNG format for Figures); importing this module changes nothing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.metrics import ConfusionMatrixDisplay


def _figure(width: float = 6.4, height: float = 4.0) -> tuple[Figure, Axes]:
    """Return a new figure and its single axes (not registered with pyplot, so nothing leaks between calls)."""
    figure = Figure(figsize=(width, height), layout="constrained")
    return figure, figure.add_subplot()


def class_balance(counts: pd.DataFrame) -> Figure:
    """Return a horizontal bar chart of examples per class, one bar group per split, classes top to bottom."""
    figure, axes = _figure()
    counts.plot.barh(ax=axes)
    axes.invert_yaxis()  # pandas draws the first class at the bottom; read top to bottom, as length_by_class does
    axes.set_xlabel("examples")
    axes.set_title("Examples per class")
    return figure


def length_by_class(texts: list[str], labels: list[str], order: list[str] | None = None) -> Figure:
    """Return box plots of text length (in words) for each class, top to bottom in `order` (default: sorted), so the
    classes line up with class_balance's given the same order."""
    frame = pd.DataFrame({"length": [len(text.split()) for text in texts], "label": labels})
    figure, axes = _figure()
    sns.boxplot(data=frame, x="length", y="label", order=order or sorted(set(labels)), ax=axes, color="#8fb3d9",
                fliersize=2)
    axes.set_xlabel("length (words)")
    axes.set_title("Text length by class")
    return figure


def token_length_histogram(lengths_by_split: dict[str, np.ndarray], max_length: int | None = None) -> Figure:
    """Return each split's token lengths as a density on shared bins (splits of any size compare), with max_length."""
    figure, axes = _figure()
    longest = max(int(np.max(lengths)) for lengths in lengths_by_split.values())
    edges = np.linspace(0, longest + 1, 41).tolist()
    for split, lengths in lengths_by_split.items():
        axes.hist(lengths, bins=edges, density=True, histtype="step", linewidth=1.8, label=f"{split} ({len(lengths)})")
    if max_length:
        axes.axvline(max_length, color="black", linestyle="--", label=f"max_length = {max_length}")
    axes.set_xlabel("tokens per text")
    axes.set_ylabel("density (each split's area is 1)")
    axes.legend()
    axes.set_title("Token lengths per split")
    return figure


def padding_comparison(table: pd.DataFrame) -> Figure:
    """Return a bar chart of real versus padding tokens computed by each padding strategy."""
    figure, axes = _figure()
    real = table["real tokens"]
    padding = table["computed tokens"] - real
    axes.barh(table.index, real, label="real tokens")
    axes.barh(table.index, padding, left=real, label="padding", color="#d9a38f")
    axes.set_xlabel("tokens computed in one epoch")
    axes.legend()
    axes.set_title("Where the compute goes")
    return figure


def training_curves(history: pd.DataFrame, metric: str = "f1_macro") -> Figure:
    """Return training and validation loss (left) and the validation metric (right) per step (else per epoch)."""
    figure, axes = _figure()
    x = "step" if "step" in history else "epoch"
    # A Trainer's log_history calls the running training loss "loss"; its last entry's "train_loss" is the run's mean.
    train_loss = "loss" if "loss" in history else "train_loss"
    for column, style, label in ((train_loss, ".-", "train loss"), ("eval_loss", "s-", "eval loss")):
        if column in history and history[column].notna().any():
            rows = history[history[column].notna()]
            axes.plot(rows[x], rows[column], style, label=label)
    axes.set_xlabel("optimizer step" if x == "step" else "epoch")
    axes.set_ylabel("loss")
    column = f"eval_{metric}"
    if column in history and history[column].notna().any():
        right = axes.twinx()
        rows = history[history[column].notna()]
        right.plot(rows[x], rows[column], "^-", color="tab:green", label=f"validation {metric}")
        right.set_ylabel(metric)
    # One legend for both axes, under the plot: inside, it would hide the first or last points.
    handles = [line for ax in figure.axes for line in ax.get_lines()]
    axes.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncols=len(handles), frameon=False)
    axes.set_title("Training curves")
    return figure


def confusion_matrix(matrix: np.ndarray, label_names: list[str], normalise: bool = True) -> Figure:
    """Return the confusion matrix in counts (rows: true class, columns: predicted), and beside it, with normalise,
    each row divided by its total (recall on the diagonal)."""
    counts = np.asarray(matrix)
    panels = [counts.astype(float)] + ([counts / np.clip(counts.sum(axis=1, keepdims=True), 1, None)] if normalise
                                       else [])
    figure = Figure(figsize=(len(panels) * (1.1 * len(label_names) + 2.2), 1.0 * len(label_names) + 2),
                    layout="constrained")
    grid = figure.subplots(1, len(panels), squeeze=False)[0]
    for axes, values, share in zip(grid, panels, (False, True)[:len(panels)], strict=True):
        ConfusionMatrixDisplay(values, display_labels=label_names).plot(
            ax=axes, cmap="Blues", values_format=".2f" if share else ".0f", xticks_rotation=30, colorbar=False,
            im_kw={"vmin": 0, "vmax": 1} if share else None)
        axes.set_title("each row divided by its texts" if share else "texts (counts)")
    figure.suptitle("Confusion matrix: rows are the true class")
    return figure


def _scaled_to(axes: Axes, values: np.ndarray, top_room: float = 0.0) -> None:
    """Start a score axis just under the lowest bar, so differences of a point or two show, and say so in its label."""
    low = max(0.0, np.floor((np.nanmin(values) - 0.05) * 20) / 20)
    axes.set_ylim(low, min(1.0, np.nanmax(values)) + 0.02 + top_room)
    if low > 0:
        axes.set_ylabel(f"{axes.get_ylabel()} (axis starts at {low:.2f})".strip())


def per_class_scores(report: pd.DataFrame) -> Figure:
    """Return grouped bars of precision, recall and F1 for each class, on an axis scaled to the scores."""
    figure, axes = _figure()
    report[["precision", "recall", "f1"]].plot.bar(ax=axes, rot=30)
    axes.set_ylabel("score")
    _scaled_to(axes, report[["precision", "recall", "f1"]].to_numpy(dtype=float))
    axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    axes.set_title("Per-class scores")
    return figure


def model_comparison(table: pd.DataFrame, metric: str = "accuracy") -> Figure:
    """Return a horizontal bar chart of one metric for each model (rows of the table), each bar labelled."""
    figure, axes = _figure()
    ordered = table[metric].sort_values()
    axes.barh(ordered.index, ordered.to_numpy(), color="#6a9fd4")
    for y, value in enumerate(ordered.to_numpy()):
        axes.text(value, y, f" {value:.3f}", va="center")
    axes.set_xlim(0, min(1.0, float(ordered.max())) * 1.15)  # room for the labels after the longest bar
    axes.set_xlabel(metric)
    axes.set_title(f"Models compared: {metric}")
    return figure


def reliability_diagram(bins: pd.DataFrame, ece: float | None = None, label: str = "model") -> Figure:
    """Return a reliability diagram (accuracy against confidence per bin, each point labelled with its count) above
    the number of predictions per bin, zoomed to the confidences the predictions reach."""
    figure = Figure(figsize=(5.6, 6), layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1.2))
    start = max(0.0, np.floor(float(bins["low"].min()) * 10) / 10)
    top.plot([start, 1], [start, 1], "--", color="gray", label="perfectly calibrated")
    title = label if ece is None else f"{label} (ECE {ece:.3f})"
    top.plot(bins["confidence"], bins["accuracy"], "o-", label=title)
    for _, row in bins.iterrows():
        top.annotate(f"{int(row['count'])}", (row["confidence"], row["accuracy"]), textcoords="offset points",
                     xytext=(0, -14), ha="center", fontsize=8, color="#4a6f96")
    top.set_ylabel("accuracy (numbers: predictions in the bin)")
    top.set_ylim(min(start, float(bins["accuracy"].min())) - 0.05, 1.03)
    top.legend(loc="best")  # wherever the points and their counts leave room
    top.set_title("Reliability diagram")
    bottom.bar(bins["low"], bins["count"], width=(bins["high"] - bins["low"]).clip(lower=0.005), align="edge",
               color="#8fb3d9", edgecolor="#4a6f96")
    bottom.set_ylabel("predictions")
    bottom.set_xlabel("confidence" + (f" (axis starts at {start:.1f})" if start > 0 else ""))
    bottom.set_xlim(start, 1)
    return figure


def feature_map(points: np.ndarray, labels: list[str], title: str = "Frozen features, in two dimensions") -> Figure:
    """Return a scatter plot of 2-D points (one per text), coloured by class."""
    figure, axes = _figure(6.4, 5)
    frame = pd.DataFrame({"x": points[:, 0], "y": points[:, 1], "class": labels})
    sns.scatterplot(data=frame, x="x", y="y", hue="class", s=12, alpha=0.7, ax=axes)
    axes.set_xticks([])
    axes.set_yticks([])
    axes.set_xlabel("")
    axes.set_ylabel("")
    axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, title="class")
    axes.set_title(title)
    return figure


def class_probabilities(texts: list[str], scores: list[dict[str, float]]) -> Figure:
    """Return one row of horizontal bars per text: the probability of every class."""
    figure = Figure(figsize=(6.4, 1.9 * len(texts) + 0.5), layout="constrained")
    for i, (text, row) in enumerate(zip(texts, scores, strict=True)):
        axes = figure.add_subplot(len(texts), 1, i + 1)
        axes.barh(list(row), list(row.values()), color="#6a9fd4")
        axes.set_xlim(0, 1)
        axes.set_title(text if len(text) <= 70 else text[:67] + "...", fontsize=9)
    axes.set_xlabel("probability")
    return figure


def save_figure(figure: Figure, folder: Path, name: str) -> Path:
    """Write a figure as PNG to folder/name.png and return the path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    figure.savefig(path, dpi=110)
    return path


def label_cooccurrence(table: pd.DataFrame, cardinality: float | None = None) -> Figure:
    """Return a heatmap of how many texts carry each pair of labels (the diagonal: texts with that label)."""
    figure, axes = _figure(5.6, 4.6)
    sns.heatmap(table, annot=True, fmt="d", cmap="Blues", cbar=False, square=True, ax=axes)
    title = "Label co-occurrence (texts)"
    axes.set_title(title if cardinality is None else f"{title}, {cardinality:.2f} labels per text")
    return figure


def per_label_f1_by_threshold(f1_by_rule: pd.DataFrame) -> Figure:
    """Return grouped bars of each label's F1 (rows) under each rule (columns: 0.5, global, per label), on an axis
    scaled to the scores."""
    figure, axes = _figure()
    f1_by_rule.plot.bar(ax=axes, rot=0)
    axes.set_ylabel("F1")
    _scaled_to(axes, f1_by_rule.to_numpy(dtype=float))
    axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, title="threshold")
    axes.set_title("Per-label F1 by threshold rule")
    return figure
