"""Stage 03, first half: the baselines a fine-tuned model must beat (majority class, TF-IDF, frozen features).

Chapter 03 writes each baseline in its cells; chapter 04 and the command line call these copies, which build the
same models (a test proves it), to score them on the test split.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sklearn.dummy import DummyClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from distilnb.metrics import classification_metrics

if TYPE_CHECKING:
    import torch
    from datasets import DatasetDict


def majority_baseline(train_labels, eval_labels, label_names: list[str]) -> dict:
    """Return the metrics of always predicting the most frequent training class."""
    model = DummyClassifier(strategy="most_frequent").fit(np.zeros((len(train_labels), 1)), train_labels)
    return classification_metrics(eval_labels, model.predict(np.zeros((len(eval_labels), 1))), label_names)


def tfidf_model(seed: int = 0) -> Pipeline:
    """Return an unfitted TF-IDF (word 1-2 grams) + logistic regression pipeline, as chapter 03 writes it."""
    return Pipeline([("tfidf", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)),
                     ("classifier", LogisticRegression(max_iter=2000, C=10.0, random_state=seed))])


def tfidf_baseline(train_texts, train_labels, eval_texts, eval_labels, label_names: list[str], seed: int = 0) -> dict:
    """Return the metrics of TF-IDF + logistic regression trained on the training texts."""
    model = tfidf_model(seed).fit(list(train_texts), list(train_labels))
    return classification_metrics(eval_labels, model.predict(list(eval_texts)), label_names)


def pooling_of(model: str | Path) -> str:
    """Return how the model was trained to pool its token vectors into one: "mean" or "cls".

    Sentence-transformers models (all-MiniLM-L6-v2) say it in 1_Pooling/config.json: they were trained with the
    mean of the token vectors. A plain BERT/DistilBERT checkpoint has no such file; its [CLS] vector is the one
    pre-training fed to a classifier (BERT's next-sentence head), so [CLS] is its own choice.
    """
    config = Path(model).expanduser() / "1_Pooling" / "config.json"
    if config.is_file() and json.loads(config.read_text()).get("pooling_mode_mean_tokens"):
        return "mean"
    return "cls"


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Return one vector per text: the mean over its real tokens (padding left out), or the [CLS] vector."""
    if pooling == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)


def frozen_features(model_name: str | Path, texts: list[str], max_length: int = 128,
                    batch_size: int = 64) -> np.ndarray:
    """Return the frozen encoder's text vectors, pooled as the model was trained (see pooling_of)."""
    import torch
    from transformers import AutoModel

    from distilnb.models import device, load_tokenizer

    tokenizer = load_tokenizer(model_name)
    encoder = AutoModel.from_pretrained(str(model_name), use_safetensors=True).to(device()).eval()
    pooling = pooling_of(model_name)
    vectors = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            inputs = tokenizer(list(texts[start:start + batch_size]), truncation=True, max_length=max_length,
                               padding=True, return_tensors="pt").to(encoder.device)
            hidden = encoder(**inputs).last_hidden_state
            vectors.append(pool(hidden, inputs["attention_mask"], pooling).float().cpu().numpy())
    return np.concatenate(vectors) if vectors else np.zeros((0, encoder.config.hidden_size), dtype=np.float32)


def frozen_classifier(seed: int = 0) -> LogisticRegression:
    """Return the unfitted linear model chapter 03 fits on frozen features."""
    return LogisticRegression(max_iter=3000, random_state=seed)


def frozen_baseline(model_name: str | Path, train_texts, train_labels, eval_texts, eval_labels, label_names: list[str],
                    *, max_length: int = 128, seed: int = 0) -> dict:
    """Return the metrics of logistic regression on the frozen encoder's pooled features."""
    train_x = frozen_features(model_name, list(train_texts), max_length)
    eval_x = frozen_features(model_name, list(eval_texts), max_length)
    classifier = frozen_classifier(seed).fit(train_x, list(train_labels))
    return classification_metrics(eval_labels, classifier.predict(eval_x), label_names)


def all_baselines(model_name: str | Path, splits: DatasetDict, label_names: list[str], split: str = "validation",
                  max_length: int = 128, seed: int = 0) -> dict[str, dict]:
    """Return {baseline name: metrics on `split`} for the majority class, TF-IDF + LR and frozen features + LR."""
    train, held_out = splits["train"], splits[split]
    args = (train["text"], train["label"], held_out["text"], held_out["label"], label_names)
    return {
        "majority class": majority_baseline(train["label"], held_out["label"], label_names),
        "TF-IDF + logistic regression": tfidf_baseline(*args, seed=seed),
        "frozen features + logistic regression": frozen_baseline(model_name, *args, max_length=max_length, seed=seed),
    }
