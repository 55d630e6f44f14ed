"""Property-based tests of the data functions: what holds for every input, not just the ones we thought of."""

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from distilnb import data
from distilnb.errors import DataError

label_values = st.one_of(st.integers(-5, 50), st.floats(-5, 50).map(lambda x: float(round(x))),
                         st.sampled_from(["joy", "anger", " joy ", "1", "2.0"]))


@settings(deadline=None)
@given(st.lists(label_values, min_size=1, max_size=60))
def test_label_encoding_round_trips(values):
    names_in = [data.canonical_label(v) for v in values]
    frame = pd.DataFrame({"text": [f"t{i}" for i in range(len(values))], "label": names_in})
    names = data.label_names_for(frame["label"])
    splits = data.to_dataset_dict({"train": frame}, names)
    decoded = [names[i] for i in splits["train"]["label"]]
    assert decoded == names_in
    assert len(set(names)) == len(names) == len(set(names_in))


@given(st.integers(1, 1000).map(str))
def test_numbers_written_as_int_float_or_string_are_one_label(number):
    as_int, as_float = data.canonical_label(int(number)), data.canonical_label(float(number))
    assert as_int == as_float == data.canonical_label(number + ".0")


class_counts = st.lists(st.integers(3, 80), min_size=2, max_size=6)


@settings(max_examples=60, deadline=None)
@given(class_counts, st.floats(0.05, 0.3), st.floats(0.05, 0.3), st.integers(0, 10_000))
def test_split_loses_nothing_duplicates_nothing_and_stratifies(counts, validation, test, seed):
    labels = np.concatenate([np.full(n, c) for c, n in enumerate(counts)])
    try:
        parts = data.stratified_split(labels, {"validation": validation, "test": test}, seed)
    except DataError as error:  # too few rows for every class in each split: refused, never split badly
        assert "too few" in str(error)
        return
    together = np.concatenate(list(parts.values()))
    assert len(together) == len(labels) and len(np.unique(together)) == len(labels)
    assert set(labels[parts["train"]]) == set(range(len(counts)))
    for split, share in (("validation", validation), ("test", test)):
        size = len(parts[split])
        assert size == max(len(counts), round(share * len(labels)))
        for c, n in enumerate(counts):
            # each class takes its share of the split, give or take rounding and the rows an earlier split took
            assert abs((labels[parts[split]] == c).sum() - n * size / len(labels)) <= 2


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a b", "A  b", "c", "d", "e f"]), st.sampled_from(["x", "y"])),
                min_size=1, max_size=30))
def test_dropping_duplicates_leaves_every_text_once(rows):
    frame = pd.DataFrame(rows, columns=["text", "label"])
    thirds = {"train": frame.iloc[::3], "validation": frame.iloc[1::3], "test": frame.iloc[2::3]}
    report = data.LoadReport("x")
    kept = data.drop_duplicates_and_leaks({k: v.reset_index(drop=True) for k, v in thirds.items()}, report)
    keys = pd.concat([kept[s]["text"] for s in kept]).map(data.normalise_text)
    assert not keys.duplicated().any()
    assert set(keys) == set(frame["text"].map(data.normalise_text))
    assert sum(len(v) for v in kept.values()) + sum(report.dropped.values()) == len(frame)
