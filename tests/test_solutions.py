"""The exercises' solutions run and give answers that a wrong solution would not."""

import numpy as np
import pytest
from conftest import write

from distilnb import Config, solutions


@pytest.fixture
def short_cfg(tmp_path):
    return Config.from_env(profile="smoke", environ={}, epochs=6.0, output_root=str(tmp_path))


def test_leakage_drops_counts_what_drop_duplicates_removes(tmp_path):
    source = write(tmp_path / "d.csv", "text,label\n" + "".join(f"text {i % 40},{'ab'[i % 2]}\n" for i in range(60)))
    dropped = solutions.leakage_drops(Config.from_env(profile="smoke", environ={}, dataset=str(source)))
    assert sum(dropped.values()) > 0 and all(reason.split(":")[0] in ("train", "validation", "test") for reason in dropped)


def test_coverage_at_confidence():
    probabilities = np.array([[0.95, 0.05], [0.6, 0.4], [0.1, 0.9], [0.92, 0.08]])
    result = solutions.coverage_at_confidence(probabilities, [0, 1, 1, 1], 0.9)
    assert result == {"coverage": 0.75, "accuracy": pytest.approx(2 / 3)}


def test_class_weight_effect_trains_both_ways(short_cfg):
    table = solutions.class_weight_effect(short_cfg)
    assert table.index.tolist() == ["class_weights=False", "class_weights=True"]
    assert table.columns[-1] == "recall of praise"
    assert not table.iloc[0].equals(table.iloc[1])


def test_learning_curve_grows_the_training_set(short_cfg):
    table = solutions.learning_curve(short_cfg, fractions=(0.1, 1.0))
    assert table.index.tolist() == [55, 554]
    assert table.loc[554, "accuracy"] > table.loc[55, "accuracy"]


class FixedPredictor:
    """Stands in for a Predictor with known scores."""

    def predict(self, texts):
        return [{"label": "pos", "score": 0.9}, {"label": "neg", "score": 0.55}][: len(texts)]


def test_predict_or_abstain():
    assert solutions.predict_or_abstain(FixedPredictor(), ["a", "b"], 0.7) == ["pos", "unsure"]
    assert solutions.predict_or_abstain(FixedPredictor(), ["a", "b"], 0.5) == ["pos", "neg"]
