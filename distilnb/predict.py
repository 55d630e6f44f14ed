"""Stage 05: a predictor over a saved model folder: labels, confidences, every class's score, in the caller's order.

Predictor.quantized() gives an int8 copy for the CPU, run by ONNX Runtime.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from scipy.special import softmax

from distilnb.errors import DataError, DataTypeError
from distilnb.models import batched_forward, device, label_names_of, load_classifier, load_tokenizer
from distilnb.runs import CONFIG_FILE


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
        more = "..." if len(empty) > 10 else ""
        raise DataError(f"Texts {empty[:10]}{more} are empty or white space: there is nothing to classify. "
                        "Remove them.")
    return texts


def trained_max_length(model: str) -> int | None:
    """Return the max_length a distilnb model folder was trained with (its distilnb_config.json), else None."""
    saved = Path(model) / CONFIG_FILE
    return json.loads(saved.read_text()).get("max_length") if saved.is_file() else None


class Predictor:
    """A fine-tuned classifier ready for new texts: batches by length, returns results in the caller's order."""

    def __init__(self, model, tokenizer, max_length: int | None = None, batch_size: int = 64):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_length = max_length or min(tokenizer.model_max_length, model.config.max_position_embeddings)
        self.batch_size = batch_size
        # Defaults of every call that does not say: a progress display (see models.batched_forward), and whether long
        # texts are scored whole in windows (so metrics.evaluate_split, which calls logits(texts), can chunk too).
        self.progress: bool | str | None = None
        self.chunk = False

    @classmethod
    def from_folder(cls, model: str | Path, max_length: int | None = None, batch_size: int = 64,
                    on: str | None = None) -> Predictor:
        """Return a Predictor for a saved model folder or Hub id (weights from safetensors only), on the GPU if any."""
        network = load_classifier(model)
        return cls(network.to(on or device()), load_tokenizer(model), max_length or trained_max_length(str(model)),
                   batch_size)

    @property
    def label_names(self) -> list[str]:
        """Return the class names in the model's label-id order."""
        return label_names_of(self.model)

    def _run(self, encoded: list[list[int]], progress: bool | str | None) -> np.ndarray:
        """Return logits for token-id lists, computed in batches of similar length and put back in input order."""
        progress = self.progress if progress is None else progress
        return batched_forward(self.model, self.tokenizer, encoded, self.batch_size, progress=progress)

    def logits(self, texts: Sequence[str], progress: bool | str | None = None) -> np.ndarray:
        """Return one row of logits per text (truncated to max_length; with self.chunk, the log of the windows' mean
        probabilities, whose softmax is that mean), in the order given."""
        if self.chunk:
            return np.log(np.clip(self.probabilities(texts, chunk=True, progress=progress), 1e-12, None))
        texts = check_texts(texts)
        encoded = self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"] if texts else []
        return self._run(encoded, progress)

    def probabilities(self, texts: Sequence[str], chunk: bool | None = None, stride: int = 32,
                      progress: bool | str | None = None) -> np.ndarray:
        """Return class probabilities per text; chunk=True averages overlapping windows of long texts (None: as
        self.chunk says)."""
        if not (self.chunk if chunk is None else chunk):
            return softmax(self.logits(texts, progress), axis=-1)
        texts = check_texts(texts)
        if not texts:
            return np.zeros((0, self.model.config.num_labels), dtype=np.float32)
        stride = min(stride, self.max_length // 2)  # the tokenizer needs room for new tokens in every window
        windows = self.tokenizer(texts, truncation=True, max_length=self.max_length, stride=stride,
                                 return_overflowing_tokens=True)
        window_probabilities = softmax(self._run(windows["input_ids"], progress), axis=-1)
        owner = np.asarray(windows["overflow_to_sample_mapping"])
        sums = np.zeros((len(texts), window_probabilities.shape[1]))
        np.add.at(sums, owner, window_probabilities)  # one pass, not one scan of every window per text
        return (sums / np.bincount(owner, minlength=len(texts))[:, None]).astype(np.float32)

    def predict(self, texts: Sequence[str], top_k: int | None = None, chunk: bool | None = None,
                progress: bool | str | None = None) -> list[dict]:
        """Return, per text: label, score (its probability) and scores of every class; top_k keeps the k most likely."""
        if top_k is not None and top_k < 1:
            raise DataError(f"top_k must be at least 1 (or None for every class), got {top_k}.")
        probabilities = self.probabilities(texts, chunk=chunk, progress=progress)
        names = self.label_names
        results = []
        for row in probabilities:
            ranked = np.argsort(-row, kind="stable")[: top_k or len(names)]
            results.append({"label": names[ranked[0]], "score": float(row[ranked[0]]),
                            "scores": {names[i]: float(row[i]) for i in ranked}})
        return results

    def predict_one(self, text: str, top_k: int | None = None, chunk: bool | None = None) -> dict:
        """Return the prediction for a single text."""
        return self.predict([text], top_k=top_k, chunk=chunk)[0]

    def quantized(self) -> Predictor:
        """Return an int8 copy run by ONNX Runtime on the CPU, with the same interface, order and chunking."""
        if isinstance(self.model, OnnxClassifier):
            return self
        with tempfile.TemporaryDirectory(prefix="distilnb-int8-") as folder, exporter_notices_hidden():
            # The session keeps the model in memory once built, so the exported files need not outlive this block.
            fp32 = export_onnx(self.model, Path(folder) / "model.onnx")
            network = OnnxClassifier(quantize_onnx(fp32, Path(folder) / "model.int8.onnx"), self.model.config)
        copy_ = Predictor(network, self.tokenizer, self.max_length, self.batch_size)
        copy_.progress, copy_.chunk = self.progress, self.chunk
        return copy_


# ---------------------------------------------------------------- int8 on the CPU, through ONNX Runtime

# What the exporters say on every export of a text classifier, none of it about the learner's model: torch.onnx lists
# torchvision's operators it skips and the axis names it merges, torch's pytree warns of its own deprecation, and
# ONNX Runtime's quantizer, on the root logger, suggests a pre-processing step meant for image models.
EXPORTER_WARNINGS = (r"# The axis name: .* will not be used", r".*LeafSpec.* is deprecated")
QUANTIZER_NOTICE = "Please consider to run pre-processing before quantization"


@contextlib.contextmanager
def exporter_notices_hidden() -> Iterator[None]:
    """Hide the exporters' routine notices inside the block: torch.onnx's below ERROR, the others by their text."""
    exporter, root = logging.getLogger("torch.onnx"), logging.getLogger()
    level = exporter.level

    def not_the_quantizer_notice(record: logging.LogRecord) -> bool:
        return QUANTIZER_NOTICE not in record.getMessage()

    with warnings.catch_warnings():
        for message in EXPORTER_WARNINGS:
            warnings.filterwarnings("ignore", message=message)
        exporter.setLevel(logging.ERROR)
        root.addFilter(not_the_quantizer_notice)  # the root logger's own records only: others' warnings still show
        try:
            yield
        finally:
            exporter.setLevel(level)
            root.removeFilter(not_the_quantizer_notice)


def export_onnx(model, path: Path) -> Path:
    """Write a sequence classifier to path as ONNX, batch size and length left dynamic; return the path."""
    model = model if model.device.type == "cpu" else copy.deepcopy(model).cpu()
    # Two distinct tensors, some padding: an input passed twice or a mask of ones could be traced as a special case.
    example = {"input_ids": torch.full((2, 8), 1000), "attention_mask": torch.tensor([[1] * 8, [1] * 4 + [0] * 4])}
    batch, length = torch.export.Dim("batch"), torch.export.Dim("length", max=model.config.max_position_embeddings)
    program = torch.onnx.export(model.eval(), (), kwargs=example, dynamo=True, verbose=False, external_data=False,
                                input_names=list(example), output_names=["logits"],
                                dynamic_shapes={name: {0: batch, 1: length} for name in example})
    program.save(str(path))
    return path


def quantize_onnx(source: Path, target: Path) -> Path:
    """Write an int8 copy of an ONNX model (weights per output channel, activations on the fly); return target."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(source, target, weight_type=QuantType.QInt8, per_channel=True)
    return target


class OnnxClassifier(torch.nn.Module):
    """An ONNX Runtime session on the CPU, called like the transformers classifier it was exported from."""

    device = torch.device("cpu")

    def __init__(self, onnx_file: Path, config):
        import onnxruntime

        super().__init__()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()  # the budget torch.set_num_threads gave, not every core
        # Spinning threads would hold the cores between batches, starving the tokenizer and anything else running.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        self.config = config

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        """Return a SequenceClassifierOutput holding the logits of one padded batch."""
        from transformers.modeling_outputs import SequenceClassifierOutput

        inputs = {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()}
        (logits,) = self.session.run(["logits"], inputs)
        return SequenceClassifierOutput(logits=torch.from_numpy(logits))


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

    def classify(_=None) -> None:
        shown.clear_output()
        with shown:
            if text.value.strip():
                for label, score in predictor.predict_one(text.value, top_k=top_k)["scores"].items():
                    print(f"{label:>20}  {score:6.1%}")
            else:
                print("Type some text first.")

    button.on_click(classify)
    return widgets.VBox([widgets.HBox([text, button]), shown])
