"""Stage 02: the tokenizer, token lengths, a max_length suggestion, dynamic padding and length-grouped batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from distilnb.config import from_hub

TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "spiece.model", "vocab.json")
PADDING_STRATEGIES = ("pad to longest in dataset", "pad each random batch", "pad length-grouped batches")


def load_tokenizer(model: str):
    """Return the tokenizer of a Hub model id or a local model folder, with a clear error when the folder has none."""
    from transformers import AutoTokenizer

    folder = Path(model).expanduser()
    if folder.is_dir() and not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise FileNotFoundError(
            f"{folder} holds no tokenizer (none of {', '.join(TOKENIZER_FILES)}). Save it beside the model with "
            "tokenizer.save_pretrained(folder), or load the tokenizer of the model it was trained from."
        )
    return from_hub(f"the tokenizer of {model!r}", lambda: AutoTokenizer.from_pretrained(str(model)))


def tokenize_splits(splits, tokenizer, max_length: int):
    """Return the splits with input_ids and attention_mask added (truncated, not padded: the collator pads per batch)."""

    def encode(batch: dict) -> dict:
        return tokenizer(batch["text"], truncation=True, max_length=max_length)

    return splits.map(encode, batched=True, desc="Tokenizing")


def token_lengths(texts: list[str], tokenizer) -> np.ndarray:
    """Return each text's length in tokens, special tokens included, without truncation."""
    if not texts:
        return np.zeros(0, dtype=int)
    ids = tokenizer(list(texts), truncation=False, verbose=False)["input_ids"]
    return np.array([len(row) for row in ids])


def length_table(lengths_by_split: dict[str, np.ndarray]) -> pd.DataFrame:
    """Return token-length statistics per split: count, mean, median, 95th and 99th percentile, max."""
    return pd.DataFrame({
        split: {"texts": len(lengths), "mean": lengths.mean(), "median": np.median(lengths),
                "p95": np.percentile(lengths, 95), "p99": np.percentile(lengths, 99), "max": lengths.max()}
        for split, lengths in lengths_by_split.items()
    }).T.round(1)


def suggest_max_length(lengths: np.ndarray, percentile: float = 99.0, multiple_of: int = 8, model_max: int = 512) -> int:
    """Return a max_length covering `percentile`% of texts, rounded up to a multiple of 8 and capped at the model's limit."""
    covering = float(np.percentile(lengths, percentile))
    return int(min(model_max, multiple_of * np.ceil(covering / multiple_of)))


def truncated_count(lengths: np.ndarray, max_length: int) -> int:
    """Return how many texts are longer than max_length tokens, and so would be cut."""
    return int((np.asarray(lengths) > max_length).sum())


def data_collator(tokenizer):
    """Return a collator that pads each batch to its own longest sequence (to a multiple of 8 on a GPU, for tensor cores)."""
    from transformers import DataCollatorWithPadding

    return DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8 if torch.cuda.is_available() else None)


def length_grouped_order(lengths: np.ndarray, batch_size: int, seed: int) -> np.ndarray:
    """Return a training order of example indices in which batches hold texts of similar length (the Trainer's own sampler)."""
    from transformers.trainer_pt_utils import get_length_grouped_indices

    generator = torch.Generator().manual_seed(seed)
    return np.array(get_length_grouped_indices(list(map(int, lengths)), batch_size, generator=generator))


def batches_of(order: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Return the index order cut into consecutive batches."""
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


def padding_share(lengths: np.ndarray, batch_size: int, strategy: str, seed: int = 0) -> dict[str, float]:
    """Return real tokens, computed tokens and the share of computed tokens that are padding, for one padding strategy."""
    lengths = np.asarray(lengths)
    if strategy == PADDING_STRATEGIES[0]:
        computed = lengths.max() * len(lengths)
    else:
        order = (np.random.default_rng(seed).permutation(len(lengths)) if strategy == PADDING_STRATEGIES[1]
                 else length_grouped_order(lengths, batch_size, seed))
        computed = sum(lengths[batch].max() * len(batch) for batch in batches_of(order, batch_size))
    real = int(lengths.sum())
    return {"real tokens": real, "computed tokens": int(computed), "padding share": 1 - real / computed}


def padding_table(lengths: np.ndarray, batch_size: int, seed: int = 0) -> pd.DataFrame:
    """Return the padding share of each strategy in PADDING_STRATEGIES on the same lengths."""
    return pd.DataFrame({strategy: padding_share(lengths, batch_size, strategy, seed) for strategy in PADDING_STRATEGIES}).T


def show_tokens(text: str, tokenizer, max_length: int | None = None) -> pd.DataFrame:
    """Return one row per token of a text: the WordPiece token, its id and its attention mask value."""
    encoded = tokenizer(text, truncation=max_length is not None, max_length=max_length)
    return pd.DataFrame({"token": tokenizer.convert_ids_to_tokens(encoded["input_ids"]),
                         "id": encoded["input_ids"], "attention_mask": encoded["attention_mask"]})
