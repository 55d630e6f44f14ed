"""The exercises' solutions (examples/solutions/) run and give answers that a wrong solution would not."""

import json

import numpy as np
import pytest
from conftest import write
from test_exercise_solutions import chapter

from distilnb import Config, data, runs

KEYWORDS = {"refund": "money back refund please", "parcel": "parcel late delivery where",
            "login": "password login account locked"}
SIZES = {"refund": 90, "parcel": 60, "login": 30}


@pytest.fixture
def short_cfg(tmp_path):
    """Three keyword classes, imbalanced: the tiny model learns them in 4 short epochs."""
    rows = "".join(f"{KEYWORDS[label]} {i},{label}\n" for label, n in SIZES.items() for i in range(n))
    source = write(tmp_path / "s.csv", "text,label\n" + rows)
    return Config.from_env(profile="smoke", environ={}, dataset=str(source), epochs=4.0, learning_rate=3e-3,
                           batch_size=8, output_root=str(tmp_path / "out"))


def test_leakage_drops_counts_what_drop_duplicates_removes(tmp_path):
    source = write(tmp_path / "d.csv", "text,label\n" + "".join(f"text {i % 40},{'ab'[i % 2]}\n" for i in range(60)))
    dropped = chapter(1).leakage_drops(Config.from_env(profile="smoke", environ={}, dataset=str(source)))
    assert sum(dropped.values()) > 0
    assert all(reason.split(":")[0] in ("train", "validation", "test") for reason in dropped)


def test_coverage_at_confidence():
    probabilities = np.array([[0.95, 0.05], [0.6, 0.4], [0.1, 0.9], [0.92, 0.08]])
    result = chapter(4).coverage_at_confidence(probabilities, [0, 1, 1, 1], 0.9)
    assert result == {"coverage": 0.75, "accuracy": pytest.approx(2 / 3)}


def test_class_weight_effect_trains_both_ways(short_cfg):
    table = chapter(3).class_weight_effect(short_cfg)
    assert table.index.tolist() == ["class_weights=False", "class_weights=True"]
    splits, _ = runs.load_or_build_splits(short_cfg)
    counts = data.class_counts(splits)["validation"]
    assert table.columns[-1] == f"recall of {counts.idxmin()}"
    for weighted in (False, True):
        run = f"smoke-class-weights-{weighted}"
        saved = Config.from_env(environ={}, output_root=short_cfg.output_root, run_name=run)
        assert json.loads((saved.paths.model / "distilnb_config.json").read_text())["class_weights"] is weighted


def test_learning_curve_grows_the_training_set(short_cfg):
    table = chapter(3).learning_curve(short_cfg, fractions=(0.1, 1.0))
    splits, _ = runs.load_or_build_splits(short_cfg)
    full = len(splits["train"])
    assert table.index.tolist() == [round(0.1 * full), full]
    assert table.loc[full, "accuracy"] > table.loc[round(0.1 * full), "accuracy"]


@pytest.mark.parametrize("scores, patience, stop", [
    ([0.5, 0.6, 0.7], 2, False), ([0.5, 0.7, 0.6, 0.65], 2, True), ([0.5, 0.7, 0.6, 0.71], 2, False),
    ([0.5], 1, False), ([0.7, 0.7], 1, True),
])
def test_should_stop_after_patience_epochs_without_improvement(scores, patience, stop):
    assert chapter(3).should_stop(scores, patience) is stop


def test_the_loop_with_early_stopping_stops_when_told_and_ends_on_its_best_epoch(smoke_cfg, tokenized, tokenizer,
                                                                                  one_thread):
    from dataclasses import replace

    from transformers import DataCollatorWithPadding, set_seed

    from distilnb.models import load_classifier

    solution = chapter(3)
    cfg = replace(smoke_cfg, epochs=8.0, early_stopping_patience=1)
    features = {"train": tokenized["train"].remove_columns("text").select(range(300)),
                "validation": tokenized["validation"].remove_columns("text")}
    collator = DataCollatorWithPadding(tokenizer)
    set_seed(cfg.seed)
    model = load_classifier(cfg.resolved_model, data.label_names(tokenized))
    f1_by_epoch = solution.loop_with_early_stopping(model, features, collator, cfg, learning_rate=3e-3)
    stopped_at = next((epoch for epoch in range(1, 9) if solution.should_stop(f1_by_epoch[:epoch], 1)), 8)
    assert len(f1_by_epoch) == stopped_at < 8 and f1_by_epoch[-1] < max(f1_by_epoch)  # stopped after a worse epoch
    assert solution.validation_macro_f1(model, features["validation"], collator, 16) == max(f1_by_epoch)
    assert max(f1_by_epoch) > 1 / len(data.label_names(tokenized))  # it learned something


class FixedPredictor:
    """Stands in for a Predictor with known scores."""

    def predict(self, texts):
        return [{"label": "pos", "score": 0.9}, {"label": "neg", "score": 0.55}][: len(texts)]


def test_predict_or_abstain():
    assert chapter(5).predict_or_abstain(FixedPredictor(), ["a", "b"], 0.7) == ["pos", "unsure"]
    assert chapter(5).predict_or_abstain(FixedPredictor(), ["a", "b"], 0.5) == ["pos", "neg"]


def test_teacher_ablation_distils_a_student_per_alpha(trained, one_thread):
    table = chapter(8).teacher_ablation(trained[1], alphas=(1.0, 0.5), epochs=1.0)
    assert table.index.tolist() == ["alpha=1 (labels only)", "alpha=0.5"]
    assert table.columns.tolist() == ["accuracy", "f1_macro"]
    for alpha in ("1", "0.5"):
        student = trained[1].parent.parent / f"{trained[1].parent.name}-alpha-{alpha}" / "model"
        assert json.loads((student / "distillation.json").read_text())["alpha"] == float(alpha)
