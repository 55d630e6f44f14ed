import os
import subprocess
import sys

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from distilnb import metrics, plots


def bar_widths(figure: Figure) -> list[float]:
    return [patch.get_width() for patch in figure.axes[0].patches]


def test_class_balance_draws_one_bar_per_class_and_split():
    counts = pd.DataFrame({"train": [5, 3], "test": [1, 2]}, index=["a", "b"])
    figure = plots.class_balance(counts)
    assert isinstance(figure, Figure) and sorted(bar_widths(figure)) == [1, 2, 3, 5]


def test_length_by_class_draws_each_class_box_from_its_own_word_counts():
    texts, labels = ["a b c", "a", "x y", "a b c d e"], ["p", "q", "p", "q"]
    axes = plots.length_by_class(texts, labels).axes[0]
    label_at = {round(tick.get_position()[1]): tick.get_text() for tick in axes.get_yticklabels()}
    boxes = {}
    for patch in axes.patches:  # a box spans the first to the third quartile, centred on its class's row
        extent = patch.get_path().get_extents()
        boxes[label_at[round((extent.y0 + extent.y1) / 2)]] = (extent.x0, extent.x1)
    lengths = {label: [len(t.split()) for t, lab in zip(texts, labels, strict=True) if lab == label] for label in "pq"}
    assert boxes == {label: tuple(np.percentile(n, [25, 75])) for label, n in lengths.items()}  # p: 2.25-2.75, q: 2-4


def test_class_balance_and_length_by_class_list_the_classes_top_to_bottom_in_one_order():
    def top_to_bottom(figure: Figure) -> list[str]:
        axes = figure.axes[0]
        ticks = sorted(axes.get_yticklabels(), key=lambda tick: tick.get_position()[1])
        listed = [tick.get_text() for tick in ticks]  # bottom to top in data coordinates
        return listed if axes.yaxis_inverted() else listed[::-1]

    order = ["sadness", "joy", "anger"]  # a dataset's own id order, not sorted
    counts = pd.DataFrame({"train": [4, 6, 2]}, index=order)
    texts, labels = ["a b", "a", "x y z", "b", "c d"], ["joy", "anger", "sadness", "joy", "sadness"]
    assert top_to_bottom(plots.class_balance(counts)) == order
    assert top_to_bottom(plots.length_by_class(texts, labels, order=order)) == order
    assert top_to_bottom(plots.length_by_class(texts, labels)) == sorted(order)


def test_token_histogram_marks_max_length():
    figure = plots.token_length_histogram({"train": np.array([3, 5, 9])}, max_length=8)
    assert any(list(line.get_xdata()) == [8, 8] for line in figure.axes[0].lines)


def test_token_histogram_draws_each_split_as_a_density_so_a_small_split_is_as_tall_as_a_large_one():
    rng = np.random.default_rng(0)
    lengths = {"train": rng.integers(5, 40, 1500), "test": rng.integers(5, 40, 150)}
    figure = plots.token_length_histogram(lengths)
    heights = [max(patch.get_path().vertices[:, 1]) for patch in figure.axes[0].patches]
    assert len(heights) == 2 and 0.5 < heights[1] / heights[0] < 2  # counts would differ tenfold


def test_padding_comparison_stacks_real_and_padding():
    table = pd.DataFrame({"real tokens": [10, 10], "computed tokens": [40, 12]}, index=["fixed", "grouped"])
    assert bar_widths(plots.padding_comparison(table)) == [10, 10, 30, 2]


def test_training_curves_plot_losses_and_metric():
    history = pd.DataFrame({"epoch": [1, 2], "train_loss": [1.0, 0.5], "eval_loss": [0.9, 0.7],
                            "eval_f1_macro": [0.4, 0.6]})
    figure = plots.training_curves(history)
    assert len(figure.axes) == 2
    assert list(figure.axes[1].lines[0].get_ydata()) == [0.4, 0.6]
    legend = figure.axes[0].get_legend()  # one legend naming all three lines, outside the plotting area
    assert [t.get_text() for t in legend.get_texts()] == ["train loss", "eval loss", "validation f1_macro"]
    assert figure.axes[1].get_legend() is None


def test_confusion_matrix_shows_counts_and_beside_them_each_row_normalised():
    figure = plots.confusion_matrix(np.array([[3, 1], [0, 2]]), ["a", "b"])
    assert [t.get_text() for t in figure.axes[0].texts] == ["3", "1", "0", "2"]
    assert [t.get_text() for t in figure.axes[1].texts] == ["0.75", "0.25", "0.00", "1.00"]
    assert len(plots.confusion_matrix(np.array([[3, 1], [0, 2]]), ["a", "b"], normalise=False).axes) == 1


def test_score_bars_are_scaled_to_their_data_so_a_difference_of_a_point_shows():
    f1 = pd.DataFrame({"0.5": [0.91, 0.93], "per label": [0.92, 0.95]}, index=["a", "b"])
    low, high = plots.per_label_f1_by_threshold(f1).axes[0].get_ylim()
    assert 0.8 <= low < 0.91 and 0.95 < high <= 1.0
    report = pd.DataFrame({"precision": [0.2, 1], "recall": [1, 0.5], "f1": [0.33, 0.67]}, index=["a", "b"])
    assert round(plots.per_class_scores(report).axes[0].get_ylim()[0], 2) == 0.15


def test_per_class_and_model_comparison_and_probabilities():
    report = pd.DataFrame({"precision": [0.5, 1], "recall": [1, 0.5], "f1": [0.67, 0.67]}, index=["a", "b"])
    assert len(plots.per_class_scores(report).axes[0].patches) == 6
    table = pd.DataFrame({"accuracy": [0.3, 0.9]}, index=["majority", "model"])
    figure = plots.model_comparison(table)
    assert [t.get_text().strip() for t in figure.axes[0].texts] == ["0.300", "0.900"]
    figure = plots.class_probabilities(["one", "two"], [{"a": 0.9, "b": 0.1}, {"a": 0.2, "b": 0.8}])
    assert len(figure.axes) == 2 and bar_widths(figure) == [0.9, 0.1]
    assert figure.axes[-1].get_xlabel() == "probability"


def test_reliability_bins_hold_about_equal_counts_so_no_point_rests_on_a_handful(tmp_path):
    rng = np.random.default_rng(1)
    # Most predictions confident, few not: equal-width bins would leave the low bins nearly empty.
    confidence = np.concatenate([rng.uniform(0.9, 1.0, 180), rng.uniform(0.4, 0.9, 20)])
    probabilities = np.stack([confidence, 1 - confidence], axis=1)
    bins = metrics.reliability_bins(probabilities, np.zeros(200, dtype=int), n_bins=10)
    assert bins["count"].sum() == 200 and bins["count"].min() >= 15
    assert plots.save_figure(plots.reliability_diagram(bins, 0.1), tmp_path, "r").stat().st_size > 1000


def test_importing_plots_changes_no_display_setting_and_the_inline_backend_shows_figures_as_png():
    # A fresh interpreter, as a kernel is: importing plots registers nothing; matplotlib-inline's format setting (what
    # `%matplotlib inline` in the chapters' import cells applies) makes IPython show a returned Figure as PNG.
    code = ("from IPython.core.interactiveshell import InteractiveShell\nshell = InteractiveShell.instance()\n"
            "import pandas as pd\nfrom distilnb import plots\n"
            "figure = plots.class_balance(pd.DataFrame({'train': [2, 1]}, index=['a', 'b']))\n"
            "print(sorted(shell.display_formatter.format(figure)[0]))\n"
            "from matplotlib_inline.backend_inline import set_matplotlib_formats\nset_matplotlib_formats('png')\n"
            "print(sorted(shell.display_formatter.format(figure)[0]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "MPLBACKEND": "Agg"})
    assert done.returncode == 0, done.stderr[-2000:]
    before, after = done.stdout.strip().splitlines()[-2:]
    assert "'image/png'" not in before and "'image/png'" in after


def test_reliability_diagram_shows_how_many_predictions_each_bin_holds():
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet([1, 1, 1], size=200)
    labels = rng.integers(0, 3, size=200)
    bins = metrics.reliability_bins(probabilities, labels, n_bins=10)
    figure = plots.reliability_diagram(bins, 0.1, "model")
    top, bottom = figure.axes
    assert [round(bar.get_height()) for bar in bottom.patches] == bins["count"].tolist()
    assert len(top.get_lines()[1].get_xdata()) == len(bins)
    assert [t.get_text() for t in top.texts] == [str(n) for n in bins["count"]]  # each point says what it rests on


def test_reliability_diagram_zooms_to_the_confidences_the_predictions_reach():
    bins = pd.DataFrame({"low": [0.6, 0.8, 0.9], "high": [0.8, 0.9, 1.0], "count": [5, 20, 150],
                         "confidence": [0.7, 0.85, 0.97], "accuracy": [0.6, 0.8, 0.99]})
    assert plots.reliability_diagram(bins, 0.02).axes[1].get_xlim() == (0.6, 1.0)


def test_training_curves_use_the_step_when_logged_every_few_steps():
    history = pd.DataFrame({"step": range(10, 110, 10), "epoch": np.linspace(0.1, 1, 10),
                            "train_loss": np.linspace(1, 0.2, 10), "eval_loss": np.linspace(1.1, 0.4, 10),
                            "eval_f1_macro": np.linspace(0.3, 0.9, 10)})
    figure = plots.training_curves(history)
    assert figure.axes[0].get_xlabel() == "optimizer step"
    assert all(len(line.get_xdata()) == 10 for ax in figure.axes for line in ax.get_lines())


def test_training_curves_read_a_trainers_log_history_as_it_is():
    # The running training loss is logged as "loss"; the last entry's "train_loss" is the whole run's mean, not a point.
    history = pd.DataFrame([{"loss": 1.2 - 0.1 * i, "step": 5 * i + 5} for i in range(10)]
                           + [{"eval_loss": 1.0 - 0.05 * i, "eval_f1_macro": 0.5 + 0.04 * i, "step": 5 * i + 5}
                              for i in range(10)]
                           + [{"train_loss": 0.777, "step": 50}])
    figure = plots.training_curves(history)
    train, evaluation = figure.axes[0].get_lines()
    assert len(train.get_xdata()) == 10 and 0.777 not in list(train.get_ydata())
    assert len(evaluation.get_xdata()) == len(figure.axes[1].get_lines()[0].get_xdata()) == 10
