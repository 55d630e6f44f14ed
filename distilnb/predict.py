"""Stage 05: a predictor over a saved model folder: labels, confidences, every class's score, in the caller's order.

A multi-label model returns every label whose sigmoid score reaches its threshold (saved beside it, tuned on
validation; 0.5 without); a pair model takes (first, second) tuples.

Predictor.quantized() gives an int8 copy for the CPU, run by ONNX Runtime.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from distilnb.errors import DataError, DataTypeError, ModelError, short_list
from distilnb.folder import CONFIG_FILE, THRESHOLDS_FILE, read_thresholds
from distilnb.models import is_multi_label, label_names_of
from distilnb.serving import CPU_BATCH_TOKENS, PROGRESS_FROM, FolderTokenizer, OnnxClassifier, batched_rows, padded

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

DEFAULT_THRESHOLD = 0.5  # a multi-label model's rule when no tuned thresholds were saved beside it


# In numpy rather than scipy.special: on an exported (ONNX) folder, which loads no transformers model class (those
# import scipy anyway), scipy.special was about 0.3 of the 3 CPU seconds `distilnb predict` takes to start.
def softmax(logits: np.ndarray) -> np.ndarray:
    """Return the softmax over the last axis (shifted by the row's largest logit, so no exp overflows)."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Return the logistic sigmoid of each logit, as exp(-log(1 + exp(-x))): no overflow for a large negative one."""
    return np.exp(-np.logaddexp(0.0, -logits))


def check_texts(texts: Sequence[str]) -> list[str]:
    """Return the texts as a list, or raise a clear error for a bare string, a non-string or an empty text."""
    if isinstance(texts, str):
        raise DataTypeError("Pass a list of texts, not one string: predict([text]) (or predict_one(text)).")
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise DataTypeError(f"Text {i} is a {type(text).__name__}, not a string: convert it with str() or "
                                "remove it.")
    empty = [i for i, text in enumerate(texts) if not text.strip()]
    if empty:
        raise DataError(f"Texts [{short_list(empty, 10)}] are empty or white space: there is nothing to classify. "
                        "Remove them.")
    return texts


def is_pair(item: object) -> bool:
    """Return True for a (first, second) pair of texts given as a tuple or list of two."""
    return isinstance(item, (tuple, list)) and len(item) == 2


def check_inputs(inputs: Sequence) -> tuple[list[str], list[str] | None]:
    """Return (texts, None) for texts, or (first texts, second texts) for (first, second) pairs; raise for a mix."""
    if isinstance(inputs, str):
        return check_texts(inputs), None
    inputs = list(inputs)
    paired = [is_pair(item) for item in inputs]
    if not any(paired):
        return check_texts(inputs), None
    if not all(paired):
        raise DataTypeError(f"The inputs mix texts and (first, second) pairs (input {paired.index(not paired[0])} "
                            "differs from input 0): pass only texts or only pairs.")
    return check_texts([a for a, _ in inputs]), check_texts([b for _, b in inputs])


class MissingThresholdsError(ModelError):
    """A multi-label distilnb model folder has no thresholds.json: scoring it at 0.5 would change its decisions."""

    def __init__(self, folder: Path):
        self.folder = folder
        super().__init__(f"{folder} is a multi-label model trained with thresholds tuned on validation, but its "
                         f"{THRESHOLDS_FILE} is missing: restore it from the run, or set {{default_thresholds=True}} "
                         f"to score every label at {DEFAULT_THRESHOLD}.")


def folder_thresholds(model: str | Path, label_names: list[str], default_thresholds: bool) -> np.ndarray | None:
    """Return a multi-label model folder's saved thresholds (validated), or None (0.5) for a model without a
    distilnb record or when default_thresholds allows it; refuse a distilnb model whose thresholds.json is gone."""
    folder = Path(model)
    if (folder / THRESHOLDS_FILE).is_file():
        return np.asarray(read_thresholds(folder / THRESHOLDS_FILE, label_names))
    if (folder / CONFIG_FILE).is_file() and not default_thresholds:
        raise MissingThresholdsError(folder)
    return None


def trained_max_length(model: str) -> int | None:
    """Return the max_length a distilnb model folder was trained with (its distilnb_config.json), else None."""
    saved = Path(model) / CONFIG_FILE
    return json.loads(saved.read_text()).get("max_length") if saved.is_file() else None


class Predictor:
    """A fine-tuned classifier ready for new texts: batches by length, returns results in the caller's order."""

    def __init__(self, model: PreTrainedModel | OnnxClassifier, tokenizer: PreTrainedTokenizerBase | FolderTokenizer,
                 max_length: int | None = None, batch_size: int = 64):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_length = max_length or min(tokenizer.model_max_length, model.config.max_position_embeddings)
        self.batch_size = batch_size
        self.max_tokens: int | None = CPU_BATCH_TOKENS  # padded tokens a batch at most, on a CPU (None: no cap)
        # Defaults of every call that does not say: a progress display (see models.batched_forward), and whether long
        # texts are scored whole in windows (so metrics.evaluate_split, which calls logits(texts), can chunk too).
        self.progress: bool | str | None = None
        self.chunk = False
        self.multi_label = is_multi_label(model)
        self.thresholds: np.ndarray | None = None  # per label, in label order; None: DEFAULT_THRESHOLD

    @classmethod
    def from_folder(cls, model: str | Path, max_length: int | None = None, batch_size: int = 64,
                    on: str | None = None, default_thresholds: bool = False) -> Predictor:
        """Return a Predictor for a saved model folder or Hub id (weights from safetensors only), on the GPU if any;
        for a folder `distilnb export` wrote, its ONNX graph run by ONNX Runtime on the CPU, which loads neither torch
        nor transformers (see serving).

        A multi-label distilnb model needs its thresholds.json (every label, numbers in [0, 1]); without one it is
        refused, unless default_thresholds=True scores every label at 0.5 (as a model from elsewhere is).
        """
        from distilnb.export import ONNX_FILE, is_onnx_folder, onnx_config

        onnx = is_onnx_folder(model)
        if onnx:
            network: PreTrainedModel | OnnxClassifier = OnnxClassifier(Path(model) / ONNX_FILE, onnx_config(model))
        else:
            from distilnb.models import device, load_classifier

            network = load_classifier(model).to(on or device())
        if onnx and FolderTokenizer.fits(model):
            tokenizer: PreTrainedTokenizerBase | FolderTokenizer = FolderTokenizer(model)
        else:  # a PyTorch folder, or an export without a tokenizer.json: transformers reads it
            from distilnb.models import load_tokenizer

            tokenizer = load_tokenizer(model)
        predictor = cls(network, tokenizer, max_length or trained_max_length(str(model)), batch_size)
        if predictor.multi_label:
            predictor.thresholds = folder_thresholds(model, predictor.label_names, default_thresholds)
        return predictor

    def decision_thresholds(self) -> np.ndarray:
        """Return each label's threshold (a multi-label model's decision rule), in label order."""
        if self.thresholds is not None:
            return self.thresholds
        return np.full(len(self.label_names), DEFAULT_THRESHOLD)

    def activation(self, logits: np.ndarray) -> np.ndarray:
        """Return scores from logits: a sigmoid per label for a multi-label model, else a softmax over the classes."""
        return sigmoid(logits).astype(np.float32) if self.multi_label else softmax(logits)

    def encode(self, inputs: Sequence, **options: Any) -> dict:
        """Return the tokenizer's encoding of texts, or of pairs as tokenizer(first, second) (separator between)."""
        texts, seconds = check_inputs(inputs)
        if not texts:
            return {"input_ids": []}
        return self.tokenizer(texts, seconds, truncation=True, max_length=self.max_length, **options)

    @property
    def label_names(self) -> list[str]:
        """Return the class names in the model's label-id order."""
        return label_names_of(self.model)

    def _run(self, encoded: list[list[int]], progress: bool | str | None,
             token_type_ids: list[list[int]] | None = None) -> np.ndarray:
        """Return logits for token-id lists, computed in batches of similar length and put back in input order."""
        progress = self.progress if progress is None else progress
        if isinstance(self.model, OnnxClassifier):
            network, pad_id = self.model, self.tokenizer.pad_token_id
            return batched_rows(encoded, self.batch_size, lambda batch: network(**padded(batch, pad_id)).logits,
                                network.config.num_labels, progress=progress, token_type_ids=token_type_ids,
                                max_tokens=self.max_tokens)
        from distilnb.models import batched_forward

        return batched_forward(self.model, self.tokenizer, encoded, self.batch_size, progress=progress,
                               token_type_ids=token_type_ids, max_tokens=self.max_tokens)

    def logits(self, texts: Sequence, progress: bool | str | None = None) -> np.ndarray:
        """Return one row of logits per text or (first, second) pair (truncated to max_length; with self.chunk, the
        logits whose softmax, or sigmoid, is the windows' mean probabilities), in the order given."""
        if self.chunk:
            mean = np.clip(self.probabilities(texts, chunk=True, progress=progress), 1e-12, 1 - 1e-7)
            return np.log(mean / (1 - mean)) if self.multi_label else np.log(mean)
        encoded = self.encode(texts)
        # Segment ids matter only for pairs: a single text's are all 0, the models' default.
        segments = encoded.get("token_type_ids") if check_inputs(texts)[1] is not None else None
        return self._run(encoded["input_ids"], progress, segments)

    def probabilities(self, texts: Sequence[str], chunk: bool | None = None, stride: int = 32,
                      progress: bool | str | None = None) -> np.ndarray:
        """Return class probabilities per text; chunk=True averages overlapping windows of long texts (None: as
        self.chunk says)."""
        if not (self.chunk if chunk is None else chunk):
            return self.activation(self.logits(texts, progress))
        if check_inputs(texts)[1] is not None:
            raise DataError("Pairs are scored truncated to max_length: chunking windows one text, not a pair. Leave "
                            "chunk off.")
        texts = check_texts(texts)
        if not texts:
            return np.zeros((0, self.model.config.num_labels), dtype=np.float32)
        stride = min(stride, self.max_length // 2)  # the tokenizer needs room for new tokens in every window
        windows = self.tokenizer(texts, truncation=True, max_length=self.max_length, stride=stride,
                                 return_overflowing_tokens=True)
        owner = np.asarray(windows["overflow_to_sample_mapping"])
        window_probabilities = self.activation(self._windows_run(windows["input_ids"], owner, len(texts), progress))
        sums = np.zeros((len(texts), window_probabilities.shape[1]))
        np.add.at(sums, owner, window_probabilities)  # one pass, not one scan of every window per text
        return (sums / np.bincount(owner, minlength=len(texts))[:, None]).astype(np.float32)

    def _windows_run(self, windows: list[list[int]], owner: np.ndarray, texts: int,
                     progress: bool | str | None) -> np.ndarray:
        """Return the logits of every window; progress as "lines" counts inputs (texts), not windows, in tenths."""
        progress = self.progress if progress is None else progress
        if progress != "lines" or len(windows) < PROGRESS_FROM:
            return self._run(windows, progress)
        # whole texts per part (a text's windows are consecutive), about a tenth of the windows each
        cuts = np.unique(np.searchsorted(owner, np.linspace(0, texts, 11)[1:-1].round().astype(int)))
        cuts = cuts[cuts > 0]
        parts = []
        for start, end in zip([0, *cuts], [*cuts, len(windows)], strict=True):
            parts.append(self._run(windows[start:end], False))
            done = int(owner[end - 1]) + 1 if end else 0
            print(f"Scored {done:,} of {texts:,} inputs ({end:,} of {len(windows):,} windows)", file=sys.stderr,
                  flush=True)
        return np.concatenate(parts)

    def predict(self, texts: Sequence, top_k: int | None = None, chunk: bool | None = None,
                progress: bool | str | None = None) -> list[dict]:
        """Return, per text (or (first, second) pair): label, score (its probability) and scores of every class;
        top_k keeps the k most likely in scores. A multi-label model returns `labels`, every label whose sigmoid
        score reaches its threshold (most likely first; maybe none; with top_k, among the k most likely), and
        `scores` of every label (with top_k, of the same k)."""
        if top_k is not None and top_k < 1:
            raise DataError(f"top_k must be at least 1 (or None for every class), got {top_k}.")
        probabilities = self.probabilities(texts, chunk=chunk, progress=progress)
        names, limits = self.label_names, self.decision_thresholds()
        results: list[dict[str, Any]] = []
        for row in probabilities:
            ranked = np.argsort(-row, kind="stable")[: top_k or len(names)]
            scores: dict[str, float] = {names[i]: float(row[i]) for i in ranked}
            if self.multi_label:
                results.append({"labels": [names[i] for i in ranked if row[i] >= limits[i]], "scores": scores})
            else:
                results.append({"label": names[ranked[0]], "score": float(row[ranked[0]]), "scores": scores})
        return results

    def predict_one(self, text: str | tuple[str, str], top_k: int | None = None, chunk: bool | None = None) -> dict:
        """Return the prediction for a single text (or pair)."""
        return self.predict([text], top_k=top_k, chunk=chunk)[0]

    def quantized(self) -> Predictor:
        """Return an int8 copy run by ONNX Runtime on the CPU, with the same interface, order and chunking."""
        from distilnb.export import onnx_graph

        if isinstance(self.model, OnnxClassifier):
            return self
        with tempfile.TemporaryDirectory(prefix="distilnb-int8-") as folder:
            # The session keeps the model in memory once built, so the exported file need not outlive this block.
            network = OnnxClassifier(onnx_graph(self.model, Path(folder), int8=True), self.model.config)
        copy_ = Predictor(network, self.tokenizer, self.max_length, self.batch_size)
        copy_.progress, copy_.chunk, copy_.thresholds = self.progress, self.chunk, self.thresholds
        copy_.max_tokens = self.max_tokens
        return copy_


def interactive(predictor: Predictor, top_k: int = 3) -> object:
    """Return an input box and button showing the typed text's top-k classes; a plain hint without ipywidgets."""
    try:
        import ipywidgets as widgets
    except ImportError:
        return ("ipywidgets is not installed: call predictor.predict_one('your text') instead, or pip install "
                "ipywidgets.")
    text = widgets.Text(placeholder="Type a sentence", layout=widgets.Layout(width="70%"))
    button = widgets.Button(description="Classify")
    shown = widgets.Output()

    def classify(_: object = None) -> None:
        shown.clear_output()
        with shown:
            if text.value.strip():
                for label, score in predictor.predict_one(text.value, top_k=top_k)["scores"].items():
                    print(f"{label:>20}  {score:6.1%}")
            else:
                print("Type some text first.")

    button.on_click(classify)
    return widgets.VBox([widgets.HBox([text, button]), shown])
