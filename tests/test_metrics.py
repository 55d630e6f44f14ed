import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax

from distilnb import data, metrics, predict, runs
from distilnb.errors import DataError


def test_metrics_on_a_hand_made_prediction_set():
    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [0, 0, 1, 1, 2, 2]
    scores = metrics.classification_metrics(y_true, y_pred, ["a", "b", "c"])
    assert scores["accuracy"] == pytest.approx(4 / 6)
    assert scores["per_class"]["a"] == {"precision": 1.0, "recall": pytest.approx(2 / 3), "f1": pytest.approx(0.8),
                                        "support": 3}
    assert scores["per_class"]["c"]["precision"] == 0.5 and scores["per_class"]["c"]["recall"] == 1.0
    assert scores["f1_macro"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert scores["f1_weighted"] == pytest.approx((0.8 * 3 + 0.5 * 2 + 2 / 3) / 6)
    report = metrics.report_frame(scores)
    assert report.index.tolist() == ["a", "b", "c", "macro average", "weighted average"]


def test_metrics_refuse_misaligned_or_empty_inputs():
    with pytest.raises(DataError, match="as many predictions as labels"):
        metrics.classification_metrics([0, 1], [0], ["a", "b"])
    with pytest.raises(DataError, match="at least one"):
        metrics.classification_metrics([], [], ["a"])


def test_confusion_matrix_counts_true_by_predicted():
    matrix = metrics.confusion([0, 0, 1, 2, 2], [0, 1, 1, 2, 0], 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]


def test_error_analysis_ranks_by_loss_and_counts_confused_pairs():
    logits = np.log(np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.99, 0.01]]))
    frame = metrics.prediction_frame(["w", "x", "y", "z"], [0, 0, 1, 1], logits, ["neg", "pos"])
    assert frame["predicted"].tolist() == ["neg", "pos", "neg", "neg"]
    assert frame["confidence"].round(2).tolist() == [0.9, 0.8, 0.6, 0.99]
    assert metrics.top_losses(frame, 2)["text"].tolist() == ["z", "x"]
    pairs = metrics.confused_pairs(frame)
    assert pairs.to_dict("records") == [{"true": "pos", "predicted": "neg", "count": 2},
                                        {"true": "neg", "predicted": "pos", "count": 1}]
    with pytest.raises(DataError, match="line up"):
        metrics.prediction_frame(["a"], [0, 1], logits[:2], ["neg", "pos"])


def test_ece_on_known_probabilities():
    # Four predictions at confidence 0.8 of which 3 are right (gap 0.05), four at 0.6 with 2 right (gap 0.1).
    probabilities = np.array([[0.8, 0.2]] * 4 + [[0.6, 0.4]] * 4)
    labels = np.array([0, 0, 0, 1, 0, 0, 1, 1])
    expected = (4 * 0.05 + 4 * 0.1) / 8
    assert metrics.expected_calibration_error(probabilities, labels, n_bins=10) == pytest.approx(expected)
    bins = metrics.reliability_bins(probabilities, labels, n_bins=10)
    assert bins["count"].sum() == 8 and bins.loc[bins["count"] > 0, "accuracy"].tolist() == [0.5, 0.75]
    perfect = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert metrics.expected_calibration_error(perfect, [0, 1]) == 0


def test_temperature_scaling_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    true_logits = rng.normal(size=(4000, 3)) * 2
    labels = np.array([rng.choice(3, p=p) for p in softmax(true_logits, axis=-1)])
    temperature = metrics.fit_temperature(true_logits * 3, labels)  # over-confident by a factor of 3
    assert temperature == pytest.approx(3, rel=0.1)
    before = metrics.expected_calibration_error(softmax(true_logits * 3, axis=-1), labels)
    after = metrics.expected_calibration_error(softmax(true_logits * 3 / temperature, axis=-1), labels)
    assert after < before / 2


def test_labels_the_model_does_not_know_are_named():
    assert metrics.labels_in_model_order([0, 1], ["b", "a"], ["a", "b"]).tolist() == [1, 0]
    with pytest.raises(DataError, match=r"1 label the model was not trained on: 'z'; the model knows 'a', 'b'\. "):
        metrics.labels_in_model_order([0, 1], ["a", "z"], ["a", "b"])
    known, data_names = [f"k{i:02}" for i in range(14)], [f"u{i:02}" for i in range(12)]
    with pytest.raises(DataError) as error:  # long lists are cut, and say how many more there are
        metrics.labels_in_model_order(list(range(12)), data_names, known)
    assert "'u09' … and 2 more; the model knows 'k00'" in str(error.value) and "'k09' … and 4 more." in str(error.value)


def test_predictions_texts_and_labels_stay_aligned_where_trainer_predict_reorders(trained, sample_splits, tokenized):
    trainer, folder = trained
    test_inputs = tokenized["test"]
    grouped = trainer.predict(test_inputs)
    dataset_labels = np.array(sample_splits["test"]["label"])
    # With length grouping on, the Trainer walks the test set in grouped order: label_ids are no longer dataset order.
    assert not (grouped.label_ids == dataset_labels).all()
    naive = (grouped.predictions.argmax(-1) == dataset_labels).mean()
    honest = (grouped.predictions.argmax(-1) == grouped.label_ids).mean()

    evaluation = metrics.evaluate_split(predict.Predictor.from_folder(folder), sample_splits, "test")
    assert evaluation.scores["accuracy"] == pytest.approx(honest, abs=1e-9)
    assert evaluation.scores["accuracy"] > naive + 0.2
    names = data.label_names(sample_splits)
    assert evaluation.examples["text"].tolist() == sample_splits["test"]["text"]
    assert evaluation.examples["true"].tolist() == [names[i] for i in dataset_labels]
    one_by_one = predict.Predictor.from_folder(folder)
    for i in (0, 17, len(dataset_labels) - 1):
        assert evaluation.examples["predicted"][i] == one_by_one.predict_one(sample_splits["test"]["text"][i])["label"]


def test_evaluation_is_saved_beside_the_model_and_in_the_run(trained, smoke_cfg):
    _, folder = trained
    path = runs.save_evaluation(smoke_cfg.paths.metrics, str(folder), "test", {"accuracy": 0.5})
    assert path == folder / "eval_test.json" and pd.read_json(path, typ="series")["accuracy"] == 0.5
    assert runs.read_metrics(smoke_cfg.paths.metrics)["test"]["fine-tuned"] == {"accuracy": 0.5}


class Scores:
    """Any object with .logits(texts) and .label_names can be evaluated: here, a keyword rule."""

    label_names = ("no", "yes")

    def logits(self, texts):
        return np.array([[0.0, 1.0] if "yes" in text else [1.0, 0.0] for text in texts])


def test_evaluate_split_takes_any_predictor_and_scores_in_dataset_order():
    import datasets

    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["yes", "no"])})
    table = datasets.Dataset.from_dict({"text": ["yes a", "no b", "yes c", "no d"], "label": [0, 1, 1, 1]},
                                       features=features)
    evaluation = metrics.evaluate_split(Scores(), datasets.DatasetDict({"train": table, "test": table}), "test")
    assert evaluation.labels.tolist() == [1, 0, 0, 0]  # the data's ids put in the model's label order
    assert evaluation.scores["accuracy"] == 0.75
    assert evaluation.examples["predicted"].tolist() == ["yes", "no", "yes", "no"]
