"""Stage 05: a predictor over a saved model folder: labels, confidences, every class's score, in the caller's order."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from distilnb.config import from_hub
from distilnb.tokens import load_tokenizer
from distilnb.train import device, refuse_unsafe_folder

PROGRESS_FROM = 1000  # show a progress bar from this many texts on


def check_texts(texts: Sequence[str]) -> list[str]:
    """Return the texts as a list, or raise a clear error for a bare string, a non-string or an empty text."""
    if isinstance(texts, str):
        raise TypeError("Pass a list of texts, not one string: predict([text]) (or predict_one(text)).")
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"Text {i} is a {type(text).__name__}, not a string: convert it with str() or remove it.")
    empty = [i for i, text in enumerate(texts) if not text.strip()]
    if empty:
        raise ValueError(f"Texts {empty[:10]}{'...' if len(empty) > 10 else ''} are empty or white space: there is nothing to classify. Remove them.")
    return texts


def softmax(logits: np.ndarray) -> np.ndarray:
    """Return row-wise softmax probabilities of logits."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


class Predictor:
    """A fine-tuned classifier ready for new texts: batches by length, returns results in the caller's order."""

    def __init__(self, model, tokenizer, max_length: int | None = None, batch_size: int = 64):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_length = max_length or min(tokenizer.model_max_length, model.config.max_position_embeddings)
        self.batch_size = batch_size

    @classmethod
    def from_folder(cls, model: str | Path, max_length: int | None = None, batch_size: int = 64, on: str | None = None) -> "Predictor":
        """Return a Predictor for a saved model folder or Hub id (weights from safetensors only), on the GPU when present."""
        from transformers import AutoModelForSequenceClassification

        model = str(model)
        refuse_unsafe_folder(model)
        tokenizer = load_tokenizer(model)
        network = from_hub(f"the model {model!r}", lambda: AutoModelForSequenceClassification.from_pretrained(model, use_safetensors=True))
        return cls(network.to(on or device()), tokenizer, max_length, batch_size)

    @property
    def label_names(self) -> list[str]:
        """Return the class names in the model's label-id order."""
        return [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]

    @torch.inference_mode()
    def _run(self, encoded: list[list[int]], progress: bool | None) -> np.ndarray:
        """Return logits for token-id lists, computed in batches of similar length and put back in input order."""
        order = np.argsort([len(ids) for ids in encoded], kind="stable")
        logits = np.zeros((len(encoded), self.model.config.num_labels), dtype=np.float32)
        target = next(self.model.parameters()).device
        starts = range(0, len(order), self.batch_size)
        show = len(encoded) >= PROGRESS_FROM if progress is None else progress
        for start in tqdm(starts, desc="Predicting", unit="batch", disable=not show):
            rows = order[start:start + self.batch_size]
            batch = self.tokenizer.pad({"input_ids": [encoded[i] for i in rows]}, return_tensors="pt")
            logits[rows] = self.model(**{k: v.to(target) for k, v in batch.items()}).logits.float().cpu().numpy()
        return logits

    def logits(self, texts: Sequence[str], progress: bool | None = None) -> np.ndarray:
        """Return one row of logits per text (truncated to max_length), in the order given."""
        texts = check_texts(texts)
        encoded = self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"] if texts else []
        return self._run(encoded, progress)

    def probabilities(self, texts: Sequence[str], chunk: bool = False, stride: int = 32, progress: bool | None = None) -> np.ndarray:
        """Return class probabilities per text; chunk=True scores long texts in overlapping windows and averages them."""
        if not chunk:
            return softmax(self.logits(texts, progress))
        texts = check_texts(texts)
        if not texts:
            return np.zeros((0, self.model.config.num_labels), dtype=np.float32)
        windows = self.tokenizer(texts, truncation=True, max_length=self.max_length, stride=stride,
                                 return_overflowing_tokens=True)
        window_probabilities = softmax(self._run(windows["input_ids"], progress))
        owner = np.asarray(windows["overflow_to_sample_mapping"])
        return np.stack([window_probabilities[owner == i].mean(axis=0) for i in range(len(texts))])

    def predict(self, texts: Sequence[str], top_k: int | None = None, chunk: bool = False,
                progress: bool | None = None) -> list[dict]:
        """Return, per text: label, score (its probability) and scores of every class; top_k keeps the k most likely."""
        probabilities = self.probabilities(texts, chunk=chunk, progress=progress)
        names = self.label_names
        results = []
        for row in probabilities:
            ranked = np.argsort(-row, kind="stable")[: top_k or len(names)]
            results.append({"label": names[ranked[0]], "score": float(row[ranked[0]]),
                            "scores": {names[i]: float(row[i]) for i in ranked}})
        return results

    def predict_one(self, text: str, top_k: int | None = None, chunk: bool = False) -> dict:
        """Return the prediction for a single text."""
        return self.predict([text], top_k=top_k, chunk=chunk)[0]
