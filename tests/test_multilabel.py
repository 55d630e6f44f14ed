"""Multi-label encoding, load report, splits, thresholds and scores; the project's multi-label and pair data files."""

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT

from distilnb import baselines, multilabel
from distilnb.errors import DataError

NAMES = ["account", "delivery", "refund"]


def test_separator_strings_become_float_multi_hot_rows_in_label_name_order():
    data = multilabel.encode(["a", "b", "c"], ["refund;delivery", "account", " delivery ; refund ;"], separator=";",
                             label_names=NAMES)
    assert data.matrix.dtype == np.float32  # BCEWithLogitsLoss wants float targets
    assert data.matrix.tolist() == [[0, 1, 1], [1, 0, 0], [0, 1, 1]]
    assert data.labels() == [["delivery", "refund"], ["account"], ["delivery", "refund"]]


def test_list_cells_encode_like_separator_strings_and_names_default_to_sorted():
    data = multilabel.encode(["a", "b"], [["refund", "delivery"], ["account"]])
    assert data.label_names == NAMES
    assert data.matrix.tolist() == [[0, 1, 1], [1, 0, 0]]


def test_dropped_rows_are_counted_by_reason_and_the_kept_texts_stay_with_their_rows():
    data = multilabel.encode(["keep", None, "  ", "no label", "empty", "twice"],
                             ["refund", "refund", "account", None, ";", "refund;refund"], separator=";")
    assert data.texts == ["keep", "twice"]
    assert data.matrix.tolist() == [[1], [1]]
    assert data.report == {"rows read": 6, "missing text": 2, "missing label": 1, "empty label set": 1,
                           "repeated label in a row": 1, "rows kept": 2}
    assert multilabel.report_lines(data.report)[:2] == ["6 rows read, 2 kept.", "Dropped, missing text: 2."]


def test_an_unknown_label_names_its_row_and_the_known_labels():
    with pytest.raises(DataError, match=r"Row 1 has the label 'refnd', which is not one of the 3 labels: account, "):
        multilabel.encode(["a", "b"], ["refund", "refnd;account"], separator=";", label_names=NAMES)


def test_a_separator_inside_a_label_name_is_refused():
    with pytest.raises(DataError, match="The label 'gift;card' contains the separator ';'"):
        multilabel.encode(["a"], ["refund"], separator=";", label_names=["refund", "gift;card"])
    with pytest.raises(DataError, match="contains the separator ','"):
        multilabel.encode(["a"], [["refund", "a,b"]], separator=",")


def test_a_column_mixing_single_label_text_with_lists_is_refused():
    with pytest.raises(DataError, match="mixes 1 rows holding one label as text with 2 rows holding a list"):
        multilabel.encode(["a", "b", "c"], [["refund"], "delivery", ["account", "refund"]])


def test_nothing_left_is_an_error_not_an_empty_matrix():
    with pytest.raises(DataError, match="None of the 2 rows"):
        multilabel.encode(["a", "b"], [None, ";"], separator=";")


def test_alignment_check_catches_shuffled_rows_and_a_reordered_label_list():
    texts = ["charged twice and late", "cannot log in", "late parcel"]
    expected = {texts[0]: ["refund", "delivery"], texts[1]: ["account"], texts[2]: ["delivery"]}
    matrix = multilabel.multi_hot([expected[text] for text in texts], NAMES)
    multilabel.check_alignment(texts, matrix, expected, NAMES)
    with pytest.raises(DataError, match="rows or the label order moved"):
        multilabel.check_alignment(texts, matrix[[1, 0, 2]], expected, NAMES)
    with pytest.raises(DataError, match="rows or the label order moved"):
        multilabel.check_alignment(texts, matrix, expected, ["delivery", "account", "refund"])


def test_iterative_split_keeps_every_label_in_every_split_and_the_check_names_a_missing_one():
    rng = np.random.default_rng(0)
    matrix = (rng.random((300, 6)) < [0.5, 0.4, 0.3, 0.2, 0.1, 0.02]).astype(np.float32)
    matrix[:, 5] = 0
    matrix[[3, 50, 120, 250], 5] = 1  # four rows of a rare label, three splits
    parts = multilabel.iterative_split(matrix, [0.7, 0.15, 0.15], seed=1)
    assert sorted(np.concatenate(parts).tolist()) == list(range(300))  # a partition: no row lost or repeated
    assert [len(part) for part in parts] == pytest.approx([210, 45, 45], abs=3)
    multilabel.check_every_label_in_every_split({str(i): matrix[part] for i, part in enumerate(parts)}, list("abcdef"))
    for label in range(5):  # each label's share is near its share of the whole data
        assert matrix[parts[1], label].mean() == pytest.approx(matrix[:, label].mean(), abs=0.05)
    with pytest.raises(DataError, match="The test split has no row with the label 'f'"):
        multilabel.check_every_label_in_every_split({"test": matrix[4:49]}, list("abcdef"))


def constructed_case(threshold: float, n: int = 400, seed: int = 0):
    """Scores where every positive scores just above `threshold` and every negative just below it."""
    rng = np.random.default_rng(seed)
    y_true = (rng.random((n, 2)) < 0.4).astype(int)
    probabilities = np.where(y_true == 1, threshold + rng.uniform(0.001, 0.04, y_true.shape),
                             threshold - rng.uniform(0.01, 0.2, y_true.shape))
    return y_true, probabilities


def test_the_global_tuner_picks_the_one_threshold_that_separates_the_classes():
    y_true, probabilities = constructed_case(0.3)
    assert multilabel.tune_global_threshold(y_true, probabilities) == 0.3
    tuned = multilabel.scores(y_true, multilabel.apply_thresholds(probabilities, 0.3))
    assert tuned["f1_micro"] == 1.0 and tuned["subset_accuracy"] == 1.0
    assert multilabel.scores(y_true, multilabel.apply_thresholds(probabilities, 0.5))["f1_micro"] == 0.0


def test_the_per_label_tuner_picks_each_labels_own_threshold():
    first, first_p = constructed_case(0.3, seed=1)
    second, second_p = constructed_case(0.75, seed=2)
    y_true, probabilities = np.c_[first[:, :1], second[:, :1]], np.c_[first_p[:, :1], second_p[:, :1]]
    assert multilabel.tune_label_thresholds(y_true, probabilities).tolist() == [0.3, 0.75]
    assert multilabel.apply_thresholds(probabilities, [0.3, 0.75]).tolist() == y_true.tolist()


def test_scores_on_a_hand_checked_case():
    y_true = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 0], [0, 0, 1]])
    y_pred = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 1], [0, 0, 1]])
    result = multilabel.scores(y_true, y_pred)
    assert result["subset_accuracy"] == 0.5  # rows 2 and 4 exactly right
    assert result["hamming_loss"] == pytest.approx(2 / 12)  # two wrong cells of twelve
    assert result["f1_micro"] == pytest.approx(2 * 4 / (2 * 4 + 1 + 1))  # 4 true positives, 1 missed, 1 extra
    report = multilabel.per_label_report(y_true, y_pred, NAMES)
    assert report.loc["delivery", "recall"] == 0.5 and report.loc["refund", "precision"] == 0.5
    assert {"micro avg", "macro avg", "samples avg"} <= set(report.index)
    assert list(multilabel.score_table({"m": result}).columns)[-1] == "hamming_loss"


def test_sigmoid_scores_are_independent_per_label_unlike_softmax():
    probabilities = multilabel.sigmoid(np.array([[4.0, 4.0, -4.0]]))
    assert probabilities[0, 0] == pytest.approx(0.982, abs=1e-3) and probabilities.sum() > 1.0


def test_multi_hot_columns_follow_the_label_names_and_an_unknown_label_is_refused_not_left_out():
    matrix = multilabel.multi_hot([["refund", "account"], []], ["refund", "delivery", "account"])
    assert matrix.dtype == np.float32 and matrix.tolist() == [[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
    with pytest.raises(DataError, match="Row 0 has the label 'spam', which is not one of the 1 labels: refund"):
        multilabel.multi_hot([["refund", "spam"]], ["refund"])


def test_cardinality_and_cooccurrence():
    matrix = multilabel.multi_hot([["refund", "delivery"], ["delivery"], ["account", "delivery", "refund"]], NAMES)
    assert multilabel.cardinality(matrix) == 2.0
    table = multilabel.cooccurrence(matrix, NAMES)
    assert table.loc["delivery", "delivery"] == 3 and table.loc["refund", "delivery"] == 2
    assert table.loc["account", "refund"] == table.loc["refund", "account"] == 1


def test_tfidf_one_vs_rest_returns_one_probability_column_per_label():
    texts = ["late parcel", "charged twice", "late parcel and charged twice", "cannot log in"] * 3
    matrix = multilabel.multi_hot([["delivery"], ["refund"], ["delivery", "refund"], ["account"]] * 3, NAMES)
    probabilities = baselines.tfidf_one_vs_rest(texts, matrix, ["charged twice, parcel late"])
    assert probabilities.shape == (1, 3)
    assert multilabel.apply_thresholds(probabilities, 0.5).tolist() == [[0, 1, 1]]


@pytest.fixture(scope="module")
def tickets():
    return pd.read_csv(ROOT / "data" / "support_tickets_multilabel.csv")


def test_the_multilabel_file_loads_clean_with_a_quarter_multi_label_rows(tickets):
    data = multilabel.encode(tickets["text"], tickets["labels"], separator=";",
                             label_names=["delivery", "refund", "account", "product", "praise"])
    assert 1500 <= data.report["rows kept"] == len(tickets) <= 2000
    assert (data.matrix.sum(axis=1) >= 2).mean() >= 0.25
    assert tickets["text"].is_unique


def test_the_data_files_are_what_the_seeded_script_writes(tmp_path, monkeypatch):
    import importlib.util
    import shutil

    for name in ("make_extra_sets.py", "support_tickets.csv"):
        shutil.copy(ROOT / "data" / name, tmp_path / name)
    spec = importlib.util.spec_from_file_location("make_extra_sets", tmp_path / "make_extra_sets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main()
    for name in ("support_tickets_multilabel.csv", "ticket_pairs.csv"):
        assert (tmp_path / name).read_bytes() == (ROOT / "data" / name).read_bytes(), name


def test_the_cooccurrence_heatmap_and_threshold_bars_draw_every_label():
    from distilnb import plots

    matrix = multilabel.multi_hot([["refund", "delivery"], ["delivery"], ["account"]], NAMES)
    heatmap = plots.label_cooccurrence(multilabel.cooccurrence(matrix, NAMES), multilabel.cardinality(matrix))
    assert [label.get_text() for label in heatmap.axes[0].get_xticklabels()] == NAMES
    assert "1.33 labels per text" in heatmap.axes[0].get_title()
    f1 = pd.DataFrame({"0.5": [0.5, 0.6, 0.7], "per label": [0.6, 0.7, 0.8]}, index=NAMES)
    bars = plots.per_label_f1_by_threshold(f1)
    assert len(bars.axes[0].patches) == 6


def chapter06_solutions():
    import importlib.util

    spec = importlib.util.spec_from_file_location("chapter06", ROOT / "examples" / "solutions" / "chapter06.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_solution_threshold_curve_peaks_where_the_constructed_case_separates():
    y_true, probabilities = constructed_case(0.3)
    curve = chapter06_solutions().threshold_curve(y_true, probabilities)
    assert list(curve.columns) == ["f1_micro", "f1_macro"] and len(curve) == 19
    assert curve["f1_micro"].idxmax() == 0.3 and curve.loc[0.3, "f1_macro"] == 1.0
    assert curve.loc[0.5, "f1_micro"] == 0.0


def test_solution_at_least_one_label_fills_only_the_empty_rows_with_their_top_label():
    probabilities = np.array([[0.9, 0.2, 0.1], [0.3, 0.45, 0.1], [0.6, 0.7, 0.1]])
    predicted = chapter06_solutions().at_least_one_label(probabilities, 0.5)
    assert predicted.tolist() == [[1, 0, 0], [0, 1, 0], [1, 1, 0]]
