"""Stage 03, first half: the baselines a fine-tuned model must beat, for all three task shapes: the majority class,
TF-IDF + logistic regression (for a text, a pair, or one per label), and frozen features.

Chapter 03 writes each baseline in its cells; chapter 04, the whole run (run.train) and evaluate call these, which
build the same models (a test proves it). The TF-IDF and logistic-regression settings are written once, here.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sklearn.dummy import DummyClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from distilnb import multilabel
from distilnb.config import MULTI_LABEL, PAIRS
from distilnb.data import label_names, task_of
from distilnb.metrics import FROZEN, MAJORITY, TFIDF, TFIDF_ONE_VS_REST, classification_metrics, multilabel_metrics

if TYPE_CHECKING:
    from collections.abc import Sequence

    import torch
    from datasets import Dataset, DatasetDict
    from scipy.sparse import csr_matrix


def majority_baseline(train_labels: Sequence[int] | np.ndarray, eval_labels: Sequence[int] | np.ndarray,
                      label_names: list[str]) -> dict:
    """Return the metrics of always predicting the most frequent training class."""
    model = DummyClassifier(strategy="most_frequent").fit(np.zeros((len(train_labels), 1)), train_labels)
    return classification_metrics(eval_labels, model.predict(np.zeros((len(eval_labels), 1))), label_names)


def tfidf_vectorizer() -> TfidfVectorizer:
    """Return the course's unfitted TF-IDF: word 1-2 grams, sublinear term frequencies."""
    return TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)


def logistic_regression(seed: int = 0) -> LogisticRegression:
    """Return the course's unfitted logistic regression on TF-IDF features (weakly regularised: C=10)."""
    return LogisticRegression(max_iter=2000, C=10.0, random_state=seed)


def tfidf_model(seed: int = 0) -> Pipeline:
    """Return an unfitted TF-IDF (word 1-2 grams) + logistic regression pipeline, as chapter 03 writes it."""
    return Pipeline([("tfidf", tfidf_vectorizer()), ("classifier", logistic_regression(seed))])


def tfidf_baseline(train_texts: Sequence[str], train_labels: Sequence[int] | np.ndarray, eval_texts: Sequence[str],
                   eval_labels: Sequence[int] | np.ndarray, label_names: list[str], seed: int = 0) -> dict:
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


def frozen_baseline(model_name: str | Path, train_texts: Sequence[str], train_labels: Sequence[int] | np.ndarray,
                    eval_texts: Sequence[str], eval_labels: Sequence[int] | np.ndarray, label_names: list[str],
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
        MAJORITY: majority_baseline(train["label"], held_out["label"], label_names),
        TFIDF: tfidf_baseline(*args, seed=seed),
        FROZEN: frozen_baseline(model_name, *args, max_length=max_length, seed=seed),
    }


# ---------------------------------------------------------------- several labels a text, and pairs of texts


def tfidf_one_vs_rest(train_texts: Sequence[str], train_matrix: np.ndarray, eval_texts: Sequence[str],
                      seed: int = 0) -> np.ndarray:
    """Return eval-text probabilities from TF-IDF + one logistic regression per label (the bag-of-words baseline)."""
    from sklearn.multiclass import OneVsRestClassifier

    model = Pipeline([("tfidf", tfidf_vectorizer()), ("classifier", OneVsRestClassifier(logistic_regression(seed)))])
    model.fit(list(train_texts), np.asarray(train_matrix).astype(int))
    return model.predict_proba(list(eval_texts))


def tfidf_pair_probabilities(train_first: Sequence[str], train_second: Sequence[str], train_labels: Sequence[int],
                             first: Sequence[str], second: Sequence[str], seed: int = 0) -> np.ndarray:
    """Return P(label 1) from logistic regression on each text's TF-IDF and their overlap (element-wise product)."""
    from scipy.sparse import hstack

    vectorizer = tfidf_vectorizer().fit(list(train_first) + list(train_second))

    def features(a: Sequence[str], b: Sequence[str]) -> csr_matrix:
        left, right = vectorizer.transform(list(a)), vectorizer.transform(list(b))
        return hstack([left, right, left.multiply(right)]).tocsr()

    model = logistic_regression(seed).fit(features(train_first, train_second), list(train_labels))
    return model.predict_proba(features(first, second))[:, 1]


def multi_hot(table: Dataset, n_labels: int) -> np.ndarray:
    """Return a multi-label split's `labels` column as a (rows, labels) matrix of 0.0 and 1.0."""
    return np.asarray(table["labels"], dtype=float).reshape(-1, n_labels)


def multilabel_majority(splits: DatasetDict, split: str) -> dict:
    """Return the scores of answering every text of `split` with the training rows' commonest label set (often none)."""
    names = label_names(splits)
    train = multi_hot(splits["train"], len(names))
    commonest = np.asarray(Counter(map(tuple, train)).most_common(1)[0][0], dtype=float)
    truth = multi_hot(splits[split], len(names))
    return multilabel_metrics(truth, np.tile(commonest, (len(truth), 1)), names, 0.5)


def multilabel_baseline(splits: DatasetDict, split: str, seed: int = 0) -> dict:
    """Return TF-IDF + one-vs-rest logistic regression's multi-label scores on `split`, its one threshold tuned on the
    validation rows as the fine-tuned model's are (0.5 when the splits hold none)."""
    names, train = label_names(splits), splits["train"]
    matrix = multi_hot(train, len(names))
    threshold = 0.5
    if "validation" in splits and len(splits["validation"]):
        found = tfidf_one_vs_rest(train["text"], matrix, splits["validation"]["text"], seed)
        threshold = multilabel.tune_global_threshold(multi_hot(splits["validation"], len(names)), found,
                                                     average="macro")
    held_out = splits[split]
    probabilities = tfidf_one_vs_rest(train["text"], matrix, held_out["text"], seed)
    return multilabel_metrics(multi_hot(held_out, len(names)), probabilities, names, threshold)


def pair_baseline(train: Dataset, held_out: Dataset, names: list[str], seed: int = 0) -> dict:
    """Return the scores of TF-IDF + logistic regression on pairs (each text's features and their overlap): P(class)
    for each class one against the rest, the likeliest kept."""
    labels = np.asarray(train["label"])
    classes = [c for c in range(len(names)) if (labels == c).any()]
    columns = [tfidf_pair_probabilities(train["text"], train["text_pair"], (labels == c).astype(int),
                                        held_out["text"], held_out["text_pair"], seed) for c in classes]
    predicted = np.asarray(classes)[np.argmax(np.stack(columns, axis=1), axis=1)]
    return classification_metrics(held_out["label"], predicted, names)


def baseline_scores(splits: DatasetDict, split: str = "validation", seed: int = 0) -> dict[str, dict]:
    """Return {row name: scores on `split`} of the quick baselines trained on splits["train"], for the splits' task:
    the majority class (for several labels: the commonest label set) and TF-IDF (one-vs-rest for several labels).
    The frozen-features baseline needs the encoder and is the notebooks' (all_baselines)."""
    names, train, held_out = label_names(splits), splits["train"], splits[split]
    task = task_of(splits)
    if task == MULTI_LABEL:
        return {MAJORITY: multilabel_majority(splits, split),
                TFIDF_ONE_VS_REST: multilabel_baseline(splits, split, seed)}
    majority = majority_baseline(train["label"], held_out["label"], names)
    if task == PAIRS:
        return {MAJORITY: majority, TFIDF: pair_baseline(train, held_out, names, seed)}
    return {MAJORITY: majority, TFIDF: tfidf_baseline(train["text"], train["label"], held_out["text"],
                                                      held_out["label"], names, seed=seed)}
