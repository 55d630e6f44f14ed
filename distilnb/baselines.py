"""Stage 03, first half: the baselines a fine-tuned model must beat (majority class, TF-IDF, frozen features)."""

from __future__ import annotations

import numpy as np
from sklearn.dummy import DummyClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from distilnb.metrics import classification_metrics
from distilnb.models import batched_forward, cls_vector, device, load_classifier, load_tokenizer


def majority_baseline(train_labels, eval_labels, label_names: list[str]) -> dict:
    """Return the metrics of always predicting the most frequent training class."""
    model = DummyClassifier(strategy="most_frequent").fit(np.zeros((len(train_labels), 1)), train_labels)
    return classification_metrics(eval_labels, model.predict(np.zeros((len(eval_labels), 1))), label_names)


def tfidf_model(seed: int = 0):
    """Return an unfitted TF-IDF (word 1-2 grams) + logistic regression pipeline."""
    return make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True),
                         LogisticRegression(max_iter=2000, C=10.0, random_state=seed))


def tfidf_baseline(train_texts, train_labels, eval_texts, eval_labels, label_names: list[str], seed: int = 0) -> dict:
    """Return the metrics of TF-IDF + logistic regression trained on the training texts."""
    model = tfidf_model(seed).fit(list(train_texts), list(train_labels))
    return classification_metrics(eval_labels, model.predict(list(eval_texts)), label_names)


def frozen_features(model_name: str, texts: list[str], max_length: int = 128, batch_size: int = 64) -> np.ndarray:
    """Return the encoder's last hidden state at [CLS] for each text, with the encoder frozen (no fine-tuning)."""
    from transformers.utils import logging

    tokenizer = load_tokenizer(model_name)
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()  # the head's "newly initialized" report would mislead: only the encoder is used
    try:
        encoder = load_classifier(model_name).base_model.to(device()).eval()
    finally:
        logging.set_verbosity(verbosity)
    input_ids = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"] if texts else []
    return batched_forward(encoder, tokenizer, input_ids, batch_size, pick=cls_vector, progress=False)


def frozen_baseline(model_name: str, train_texts, train_labels, eval_texts, eval_labels, label_names: list[str],
                    max_length: int = 128, seed: int = 0) -> dict:
    """Return the metrics of logistic regression on frozen [CLS] features of the encoder."""
    train_x = frozen_features(model_name, list(train_texts), max_length)
    eval_x = frozen_features(model_name, list(eval_texts), max_length)
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, random_state=seed))
    classifier.fit(train_x, list(train_labels))
    return classification_metrics(eval_labels, classifier.predict(eval_x), label_names)


def all_baselines(model_name: str, splits, label_names: list[str], split: str = "validation", max_length: int = 128,
                  seed: int = 0) -> dict[str, dict]:
    """Return {baseline name: metrics on `split`} for the majority class, TF-IDF + LR and frozen features + LR."""
    train, held_out = splits["train"], splits[split]
    args = (train["text"], train["label"], held_out["text"], held_out["label"], label_names)
    return {
        "majority class": majority_baseline(train["label"], held_out["label"], label_names),
        "TF-IDF + logistic regression": tfidf_baseline(*args, seed=seed),
        "frozen [CLS] features + logistic regression": frozen_baseline(model_name, *args, max_length=max_length,
                                                                       seed=seed),
    }

