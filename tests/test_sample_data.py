"""The sample dataset (data/support_tickets.csv) carries the course's lessons: size, imbalance, dirt, and hard texts.

Every figure is computed from the file; sklearn only, a second or two.
"""

from __future__ import annotations

import csv

import pandas as pd
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split

from distilnb.config import SAMPLE_DATASET, resolve_path

LABELS = {"delivery", "refund", "account", "product", "praise"}


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    """Every row of the file as strings, empty cells as empty strings (nothing dropped)."""
    return pd.read_csv(resolve_path(SAMPLE_DATASET), dtype=str, keep_default_na=False, encoding="utf-8")


@pytest.fixture(scope="module")
def usable(raw) -> pd.DataFrame:
    """The rows with both a text and a label."""
    return raw[(raw["text"].str.strip() != "") & (raw["label"].str.strip() != "")].reset_index(drop=True)


def test_columns_encoding_and_quoting():
    with open(resolve_path(SAMPLE_DATASET), encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["text", "label"]
    assert all(len(row) == 2 for row in rows[1:]), "every row has exactly a text and a label cell"
    assert all("\n" not in row[0] for row in rows[1:]), "texts are one line each"


def test_size_and_classes(raw, usable):
    assert len(raw) >= 1500
    assert len(raw) <= 2000, "the offline profile must train in about a minute on a laptop CPU"
    assert set(usable["label"]) == LABELS


def test_class_imbalance_is_realistic(usable):
    shares = usable["label"].value_counts(normalize=True)
    assert 0.05 <= shares.min() <= 0.15
    assert shares.idxmin() == "praise"
    assert shares.max() <= 0.40


def test_dirt_left_on_purpose_for_the_load_report_and_the_leakage_lesson(raw, usable):
    assert (raw["label"].str.strip() == "").sum() >= 1, "at least one row without a label"
    assert (raw["text"].str.strip() == "").sum() >= 1, "at least one row with an empty text"
    keys = usable["text"].str.lower().str.split().str.join(" ")
    assert keys.duplicated().sum() >= 1, "at least one duplicate text"
    assert keys.duplicated().sum() <= 20, "duplicates are a lesson, not a large share of the data"


def test_lengths_have_a_tail_beyond_64_tokens(usable):
    words = usable["text"].str.split().str.len()
    assert words.min() <= 5
    assert (words > 80).sum() >= 3, "chapter 02's max_length lesson needs a few long texts"


def test_keywords_alone_are_clearly_not_enough(usable):
    train, test = train_test_split(usable, test_size=0.2, stratify=usable["label"], random_state=42)
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    model = LogisticRegression(C=10.0, max_iter=2000).fit(vectorizer.fit_transform(train["text"]), train["label"])
    accuracy = accuracy_score(test["label"], model.predict(vectorizer.transform(test["text"])))
    majority = test["label"].value_counts(normalize=True).max()
    assert accuracy < 0.95, f"TF-IDF reaches {accuracy:.3f}: the texts are too keyword-rich to teach fine-tuning"
    assert accuracy > majority + 0.3, f"TF-IDF at {accuracy:.3f} vs majority {majority:.3f}: the labels look like noise"
