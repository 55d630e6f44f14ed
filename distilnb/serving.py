"""Scoring without the training stack: an exported folder's graph in ONNX Runtime, its tokenizer.json in `tokenizers`,
its config.json read as JSON, and the length-sorted batches every forward pass in distilnb runs in.

Nothing here imports torch or transformers. `import torch` alone takes 1.5 to 2 s on a small CPU, and transformers
imports torch whenever it is installed; without them, `distilnb predict` through a model's export answers in well
under a second (benchmarks/RESULTS.md, section 39).
`Predictor.from_folder` uses these classes for an exported folder; a PyTorch folder keeps transformers' own.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from distilnb.errors import ModelError

if TYPE_CHECKING:
    from transformers import PretrainedConfig

PROGRESS_FROM = 1000  # show a progress bar from this many texts on
# On a CPU a batch of more padded tokens than this was no faster per text, often slower (its activations leave the
# cache). Measured on texts of 20 to 250 tokens, 1 and 2 threads, PyTorch and ONNX Runtime (benchmarks/RESULTS.md,
# section 41).
CPU_BATCH_TOKENS = 512
TOKENIZER_FILE, TOKENIZER_CONFIG = "tokenizer.json", "tokenizer_config.json"
Features = dict[str, list[list[int]]]  # a batch's token ids (and segment ids), one list per input, unpadded


# ---------------------------------------------------------------- batches of similar length


def length_sorted_batches(lengths: Sequence[int], batch_size: int, max_tokens: int | None = None) -> list[np.ndarray]:
    """Return the input positions in batches of similar length: at most batch_size inputs, and with max_tokens at most
    that many padded tokens a batch (one input alone may exceed it)."""
    order = np.argsort(lengths, kind="stable")  # similar lengths together: little padding
    batches: list[list[int]] = []
    for position in order:
        current = batches[-1] if batches else None
        # Sorted ascending, so this input is the batch's longest: the batch would pad to its length.
        if current is None or len(current) == batch_size or (
                max_tokens is not None and (len(current) + 1) * lengths[position] > max_tokens):
            batches.append([int(position)])
        else:
            current.append(int(position))
    return [np.array(batch) for batch in batches]


def batched_rows(input_ids: Sequence[Sequence[int]], batch_size: int, compute: Callable[[Features], np.ndarray],
                 width: int, *, progress: bool | str | None = None,
                 token_type_ids: Sequence[Sequence[int]] | None = None, max_tokens: int | None = None) -> np.ndarray:
    """Return compute(batch) for each token-id list, run in length_sorted_batches, rows in input order (max_tokens:
    CPU_BATCH_TOKENS on a CPU, None on a GPU, where larger batches are faster).

    progress: True a bar, False nothing, "lines" a plain line on stderr per tenth of the work (a log file holds
    those, not a bar's redraws), None a bar from PROGRESS_FROM inputs on.
    """
    batches = length_sorted_batches([len(ids) for ids in input_ids], batch_size, max_tokens)
    show = len(input_ids) >= PROGRESS_FROM if progress is None else progress is True
    lines = progress == "lines" and len(input_ids) >= PROGRESS_FROM
    every, scored = max(1, len(batches) // 10), 0
    rows_out = np.zeros((len(input_ids), width), dtype=np.float32)
    for done, rows in enumerate(tqdm(batches, desc="Predicting", unit="batch", disable=not show), start=1):
        features = {"input_ids": [list(input_ids[i]) for i in rows]}
        if token_type_ids is not None:  # a pair's segments (0 for the first text, 1 for the second)
            features["token_type_ids"] = [list(token_type_ids[i]) for i in rows]
        rows_out[rows] = compute(features)
        scored += len(rows)
        if lines and (done % every == 0 or done == len(batches)):
            print(f"Scored {scored:,} of {len(input_ids):,} inputs", file=sys.stderr, flush=True)
    return rows_out


def padded(features: Features, pad_id: int) -> dict[str, np.ndarray]:
    """Return a batch padded on the right to its longest input, with its attention mask, as int64 arrays."""
    widths = [len(ids) for ids in features["input_ids"]]
    longest = max(widths, default=0)
    mask = np.array([[1] * width + [0] * (longest - width) for width in widths], dtype=np.int64)
    batch = {"input_ids": np.full((len(widths), longest), pad_id, dtype=np.int64), "attention_mask": mask}
    if "token_type_ids" in features:
        batch["token_type_ids"] = np.zeros((len(widths), longest), dtype=np.int64)
    for name, rows in features.items():
        for i, ids in enumerate(rows):
            batch[name][i, :len(ids)] = ids
    return batch


# ---------------------------------------------------------------- an exported folder's parts


@dataclass(frozen=True)
class ClassifierConfig:
    """What scoring reads from a classifier's config.json: its label names, task and longest input."""

    id2label: dict[int, str]
    problem_type: str | None
    max_position_embeddings: int

    @property
    def num_labels(self) -> int:
        """Return the number of classes (labels)."""
        return len(self.id2label)

    @classmethod
    def from_folder(cls, folder: str | Path) -> ClassifierConfig:
        """Return the config saved in a folder, its labels as transformers reads them: a config.json without id2label
        (transformers leaves out two generic labels) has LABEL_0, LABEL_1, ... (num_labels of them, else two)."""
        saved = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
        names = saved.get("id2label") or {i: f"LABEL_{i}" for i in range(saved.get("num_labels") or 2)}
        return cls(id2label={int(i): str(name) for i, name in names.items()},
                   problem_type=saved.get("problem_type"),
                   max_position_embeddings=int(saved.get("max_position_embeddings") or 512))


class FolderTokenizer:
    """A folder's tokenizer.json run by `tokenizers`, called like transformers' fast tokenizer for what scoring needs:
    texts or pairs, truncation, and overlapping windows. Written here because transformers' own class would import
    torch (above); the ids are the same (tests/test_serving.py compares them)."""

    def __init__(self, folder: str | Path):
        from tokenizers import Tokenizer

        self.backend = Tokenizer.from_file(str(Path(folder) / TOKENIZER_FILE))
        self.backend.no_padding()  # the saved file may hold the last padding used: batches are padded by `padded`
        settings = json.loads((Path(folder) / TOKENIZER_CONFIG).read_text(encoding="utf-8"))
        self.model_max_length = int(settings.get("model_max_length") or sys.maxsize)
        pad_id = self.backend.token_to_id(str(settings.get("pad_token")))
        if pad_id is None:
            raise ModelError(f"{folder}'s tokenizer has no padding token: export the model again with `distilnb "
                             "export`.")
        self.pad_token_id: int = pad_id

    @staticmethod
    def fits(folder: str | Path) -> bool:
        """Return True for a folder this class can read: a tokenizer.json and its tokenizer_config.json."""
        return all((Path(folder) / name).is_file() for name in (TOKENIZER_FILE, TOKENIZER_CONFIG))

    def __call__(self, text: str | Sequence[str], text_pair: str | Sequence[str] | None = None, *,
                 truncation: bool = False, max_length: int | None = None, stride: int = 0,
                 return_overflowing_tokens: bool = False, verbose: bool = True) -> dict[str, Any]:
        """Return input_ids, token_type_ids and attention_mask (and overflow_to_sample_mapping for windows), as
        transformers' fast tokenizer does: one list per text, or unbatched for a single string. verbose is
        transformers' flag for its warning about texts longer than the model takes: this class has no warning."""
        single = isinstance(text, str)
        firsts = [text] if single else list(text)
        seconds = None if text_pair is None else [text_pair] if isinstance(text_pair, str) else list(text_pair)
        if truncation:
            self.backend.enable_truncation(max_length or self.model_max_length, stride=stride,
                                           strategy="longest_first", direction="right")
        else:
            self.backend.no_truncation()
        given = firsts if seconds is None else list(zip(firsts, seconds, strict=True))
        encodings = self.backend.encode_batch(given, add_special_tokens=True)
        owners = [i for i, encoding in enumerate(encodings) for _ in range(1 + len(encoding.overflowing))]
        if return_overflowing_tokens:
            encodings = [part for encoding in encodings for part in (encoding, *encoding.overflowing)]
        encoded: dict[str, Any] = {"input_ids": [e.ids for e in encodings],
                                   "token_type_ids": [e.type_ids for e in encodings],
                                   "attention_mask": [e.attention_mask for e in encodings]}
        if return_overflowing_tokens:
            encoded["overflow_to_sample_mapping"] = owners
        return {key: value[0] for key, value in encoded.items()} if single and not return_overflowing_tokens \
            else encoded


# ---------------------------------------------------------------- the graph


def cpu_threads() -> int:
    """Return the CPU threads a session may use: torch's setting once torch is loaded (models.set_threads), else
    OMP_NUM_THREADS, else 0 (ONNX Runtime's own default: one per physical core, as torch's)."""
    if "torch" in sys.modules:
        import torch

        return torch.get_num_threads()
    threads = os.environ.get("OMP_NUM_THREADS", "")
    return int(threads) if threads.isdigit() else 0


@dataclass(frozen=True)
class ClassifierOutput:
    """A batch's logits, one row per input, as a transformers classifier's output holds them."""

    logits: np.ndarray


class OnnxClassifier:
    """An ONNX Runtime session on the CPU, called like the classifier it was exported from (input ids, attention mask
    and segment ids, as numpy arrays or CPU tensors), with that classifier's config."""

    def __init__(self, onnx_file: Path, config: ClassifierConfig | PretrainedConfig):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = cpu_threads()  # the budget --threads gave, not every core
        # Spinning threads would hold the cores between batches, starving the tokenizer and anything else running.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        self.config = config
        self.segments = "token_type_ids" in {given.name for given in self.session.get_inputs()}

    def eval(self) -> OnnxClassifier:
        """Return self: a graph has no training mode (here so that it stands wherever a model does)."""
        return self

    def __call__(self, input_ids: Any, attention_mask: Any, token_type_ids: Any = None) -> ClassifierOutput:
        """Return the logits of one padded batch."""
        inputs = {"input_ids": np.asarray(input_ids, dtype=np.int64),
                  "attention_mask": np.asarray(attention_mask, dtype=np.int64)}
        # export.export_onnx gives the graph segment ids exactly when the model takes them (BERT does, DistilBERT
        # not); a single text's are all 0, as the model's default. A model without them reads pairs by [SEP] alone.
        if self.segments:
            segments = np.zeros_like(inputs["input_ids"]) if token_type_ids is None else token_type_ids
            inputs["token_type_ids"] = np.asarray(segments, dtype=np.int64)
        (logits,) = self.session.run(["logits"], inputs)
        return ClassifierOutput(logits=logits)
