"""The solutions in examples/solutions/ answer their exercises, on the sample data, offline."""

import importlib.util
import itertools

import numpy as np
import pytest
from conftest import ROOT

SOLUTIONS = ROOT / "examples" / "solutions"


def chapter(number: int):
    spec = importlib.util.spec_from_file_location(f"chapter{number:02d}", SOLUTIONS / f"chapter{number:02d}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def encoded():
    """The sample file as chapter 01 section 2 builds it: rows with a text and a label, labels as a ClassLabel."""
    from datasets import load_dataset

    raw = load_dataset("csv", data_files=str(ROOT / "data" / "support_tickets.csv"))["train"]
    labelled = raw.filter(lambda row: row["text"] is not None and row["label"] is not None)
    return labelled.class_encode_column("label")


def test_every_exercise_that_names_a_solution_file_points_at_a_function_that_exists():
    import json
    import re

    for path in sorted((ROOT / "notebooks").glob("0*.ipynb")):
        text = "".join(
            "".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "markdown"
        )
        exercises = text.split("## Exercises")[-1]
        assert re.findall(r"examples/solutions/chapter\d\d\.py`, `\w+`", exercises), f"{path.name}: no solution named"
        assert "distilnb.solutions" not in text, f"{path.name}: the answers left the package for examples/solutions/"
        for number, name in re.findall(r"examples/solutions/chapter(\d\d)\.py`, `(\w+)`", text):
            assert hasattr(chapter(int(number)), name), (
                f"{path.name} names chapter{number}.{name}, which does not exist"
            )


def test_01_stratified_splits_keep_the_smallest_class_share_random_ones_wander(encoded):
    table = chapter(1).share_spread(encoded, seeds=range(10))
    test_rows = round(0.1 * len(encoded))
    assert table.loc["stratified", "largest gap"] <= 1 / test_rows + 1e-9
    assert table.loc["random", "largest gap"] > table.loc["stratified", "largest gap"]
    counts = np.bincount(encoded["label"])
    assert table.attrs["class"] == encoded.features["label"].int2str(int(counts.argmin()))


def test_02_padding_to_max_length_computes_more_than_the_collator(encoded, tokenizer):
    small = encoded.select(range(200))
    tokens = chapter(2).computed_tokens(tokenizer, small, max_length=64, batch_size=16)
    real = sum(len(ids) for ids in tokenizer(list(small["text"]), truncation=True, max_length=64)["input_ids"])
    assert tokens["real tokens"] == real
    assert tokens["padded to max_length"] == 64 * len(small)
    assert real <= tokens["padded per batch (collator)"] < tokens["padded to max_length"]


def test_03_the_schedule_warms_up_to_the_peak_then_decays_to_zero():
    rates = chapter(3).learning_rate_schedule(total_steps=50, warmup_steps=5, peak=1e-4)
    assert len(rates) == 50 and rates[0] == 0.0
    assert max(rates) == pytest.approx(1e-4) and int(np.argmax(rates)) == 5
    assert all(a <= b for a, b in itertools.pairwise(rates[:6]))
    assert all(a >= b for a, b in itertools.pairwise(rates[5:]))


def test_04_most_confused_pair_is_the_largest_off_diagonal_cell():
    names = ["a", "b", "c"]
    y_true = [0, 0, 0, 1, 1, 2, 2, 2, 2]
    y_pred = [0, 1, 1, 1, 0, 2, 1, 1, 1]
    assert chapter(4).most_confused_pair(y_true, y_pred, names) == ("c", "b", 3)


def test_05_abstain_keeps_confident_labels_with_either_pipeline_output_shape():
    def every_score(texts):
        return [
            [{"label": "x", "score": 0.9}, {"label": "y", "score": 0.1}],
            [{"label": "y", "score": 0.5}, {"label": "x", "score": 0.5}],
        ][: len(texts)]

    def top_only(texts):
        return [scores[0] for scores in every_score(texts)]

    for classifier in (every_score, top_only):
        assert chapter(5).pipeline_or_abstain(classifier, ["sure", "torn"], threshold=0.7) == ["x", "unsure"]


@pytest.mark.slow
def test_05_abstain_with_a_real_pipeline(tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    from distilnb.local_models import tiny_model_dir

    folder = tiny_model_dir()
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=3, use_safetensors=True)
    classifier = pipeline(
        "text-classification", model=model, tokenizer=AutoTokenizer.from_pretrained(folder), top_k=None
    )
    texts = ["where is my parcel", "thanks a lot"]
    assert chapter(5).pipeline_or_abstain(classifier, texts, threshold=0.0) == [
        s[0]["label"] for s in classifier(texts)
    ]
    assert chapter(5).pipeline_or_abstain(classifier, texts, threshold=1.01) == ["unsure", "unsure"]


def test_02_random_batches_pad_more_as_they_grow_grouped_ones_stay_low(encoded, tokenizer):
    lengths = np.array([len(ids) for ids in tokenizer(list(encoded["text"]))["input_ids"]])
    table = chapter(2).padding_by_batch_size(lengths, (8, 32, 128))
    random = table.filter(like="random").iloc[:, 0]
    grouped = table.filter(like="grouped").iloc[:, 0]
    assert random.is_monotonic_increasing and (grouped < random).all()


def test_02_tokens_lost_counts_tokens_not_texts():
    assert chapter(2).truncated_token_share(np.array([10, 30]), 20) == pytest.approx(10 / 40)


def test_05_attribution_contrast_puts_both_targets_side_by_side(smoke_cfg):
    from distilnb.models import load_classifier, load_tokenizer
    from distilnb.predict import Predictor

    model = load_classifier(smoke_cfg.resolved_model, label_names=["refund", "delivery"])
    predictor = Predictor(model, load_tokenizer(smoke_cfg.resolved_model), 32)
    text = "where is my parcel refund"
    other = next(name for name in ("refund", "delivery") if name != predictor.predict_one(text)["label"])
    table = chapter(5).attribution_contrast(predictor, text, other, n_steps=8)
    assert list(table["word"]) == ["where", "is", "my", "parcel", "refund"]
    assert list(table.columns)[2] == f"toward {other!r} (true)"
    assert not np.allclose(table.iloc[:, 1], table.iloc[:, 2])


def test_06_a_swapped_pair_is_scored_in_both_orders(smoke_cfg):
    from distilnb.models import load_classifier, load_tokenizer
    from distilnb.predict import Predictor

    model = load_classifier(smoke_cfg.resolved_model, label_names=["different_team", "same_team"])
    predictor = Predictor(model, load_tokenizer(smoke_cfg.resolved_model), 32)
    first, second = ["my parcel is late", "I want a refund"], ["where is my order", "reset my password"]
    scores = chapter(6).swapped_pair_accuracy(predictor, first, second, [1, 0])
    assert set(scores) == {"accuracy", "accuracy swapped", "agreement"}
    in_order = predictor.logits(list(zip(first, second, strict=True))).argmax(-1)
    assert scores["accuracy"] == float((in_order == [1, 0]).mean())
    swapped = predictor.logits(list(zip(second, first, strict=True))).argmax(-1)
    assert scores["accuracy swapped"] == float((swapped == [1, 0]).mean())
    assert scores["agreement"] == float((in_order == swapped).mean())


def test_07_the_best_of_n_flatters_more_with_more_trials_and_less_with_more_rows():
    small = chapter(7).best_of_n_gain(0.8, rows=187, trials=(1, 3, 30), repeats=4000)
    large = chapter(7).best_of_n_gain(0.8, rows=1870, trials=(1, 3, 30), repeats=4000)
    assert abs(small[1]) < 0.003  # one trial: no choice, no flattery
    assert 0 < small[3] < small[30]
    assert 0 < large[30] < small[30] / 2  # ten times the rows, about a third of the gain


def test_07_the_interval_holds_the_accuracy_and_narrows_with_more_rows():
    low, high = chapter(7).accuracy_interval(150, 187)
    assert low < 150 / 187 < high and 0.1 < high - low < 0.13
    wide, narrow = chapter(7).accuracy_interval(8, 10), chapter(7).accuracy_interval(800, 1000)
    assert narrow[1] - narrow[0] < wide[1] - wide[0] and wide[0] >= 0 and wide[1] <= 1


@pytest.mark.parametrize("mine, finished, stop", [
    ([0.9, 0.5], [[0.6, 0.6], [0.7, 0.7]], True), ([0.65, 0.8], [[0.6, 0.7], [0.7, 0.9]], False),
    ([0.5], [[0.6], [0.7]], False), ([0.9, 0.5], [[0.6, 0.6]], False),
    ([0.5, 0.55], [[0.6], [0.7], [0.2, 0.3]], False), ([0.5, 0.1], [[0.6, 0.6], [0.7, 0.2], [0.2, 0.3]], True),
])
def test_07_should_prune_is_the_rule_of_distilnb_tune(mine, finished, stop):
    import optuna

    from distilnb import tune

    assert chapter(7).should_prune(mine, finished) is stop
    study = optuna.create_study(direction="maximize")
    for scores in finished:
        study.add_trial(optuna.trial.create_trial(value=scores[-1], intermediate_values=dict(enumerate(scores))))
    running = optuna.trial.create_trial(state=optuna.trial.TrialState.RUNNING,
                                        intermediate_values=dict(enumerate(mine)))
    assert tune.epoch_pruner().prune(study, running) is stop


def test_08_a_higher_temperature_flattens_the_teachers_probabilities():
    logits = np.random.default_rng(0).normal(scale=4.0, size=(50, 5))
    table = chapter(8).softened(logits, temperatures=(1, 2, 4, 10, 1000))
    assert table["top class"].is_monotonic_decreasing and table["entropy"].is_monotonic_increasing
    assert table.loc[1, "top class"] > 0.5 > table.loc[10, "top class"]
    assert table.loc[1000, "entropy"] == pytest.approx(table.attrs["uniform entropy"], abs=1e-3)  # nothing left


def test_08_t_squared_keeps_the_soft_gradients_in_scale():
    rng = np.random.default_rng(0)
    norms = chapter(8).soft_gradient_norms(rng.normal(size=(16, 5)), rng.normal(size=(16, 5)), temperatures=(4, 8, 16))
    assert norms.loc[8, "without T²"] < norms.loc[4, "without T²"] / 3  # about a quarter: 1 / T²
    assert norms.loc[16, "with T²"] == pytest.approx(norms.loc[8, "with T²"], rel=0.1)


def test_08_a_student_keeps_the_chosen_layers_of_its_teacher(smoke_cfg):
    import torch

    from distilnb import distill
    from distilnb.models import load_classifier

    teacher = load_classifier(smoke_cfg.resolved_model, ["a", "b", "c"])
    top = chapter(8).student_with_layers(teacher, [1])
    layer = "distilbert.transformer.layer.{}.ffn.lin1.weight"
    assert top.config.num_hidden_layers == 1
    assert torch.equal(top.state_dict()[layer.format(0)], teacher.state_dict()[layer.format(1)])
    assert torch.equal(top.state_dict()["classifier.weight"], teacher.state_dict()["classifier.weight"])
    bottom, _ = distill.student_from_teacher(teacher, 1)  # the package keeps layer 0 of 2
    ours = chapter(8).student_with_layers(teacher, [0]).state_dict()
    assert all(torch.equal(ours[name], weight) for name, weight in bottom.state_dict().items())
