"""Chapter 02, exercises 2 (pad to max_length or per batch?), 4 (batch size) and 5 (tokens lost)."""

import numpy as np
import pandas as pd
from torch.utils.data import DataLoader
from transformers import DataCollatorWithPadding

from distilnb import tokens


def computed_tokens(tokenizer, dataset, max_length: int, batch_size: int) -> dict[str, int]:
    """Return the tokens one epoch computes: real ones, padded to max_length, and padded per batch by the collator.

    Padding to `max_length` (`padding="max_length"` in the tokenize function) makes every row `max_length` long, so
    an epoch computes rows x max_length tokens whatever the texts. The collator pads each batch only to its longest row,
    so short texts in a batch of short texts cost little. The answer: with short texts and a generous `max_length`,
    padding to `max_length` computes several times the real tokens, the collator a fraction more than them
    (and length-grouped batches, chapter 02 section 5, less again).
    """

    def pad_to_max(batch):
        return tokenizer(batch["text"], padding="max_length", truncation=True, max_length=max_length)

    def tokenize(batch):
        return tokenizer(batch["text"], truncation=True, max_length=max_length)

    padded = dataset.map(pad_to_max, batched=True)
    plain = dataset.map(tokenize, batched=True).select_columns(["input_ids", "attention_mask"])
    loader = DataLoader(plain, batch_size=batch_size, collate_fn=DataCollatorWithPadding(tokenizer))
    return {
        "real tokens": sum(len(ids) for ids in plain["input_ids"]),
        "padded to max_length": sum(len(ids) for ids in padded["input_ids"]),
        "padded per batch (collator)": sum(batch["input_ids"].numel() for batch in loader),
    }


def padding_by_batch_size(lengths: np.ndarray, batch_sizes: tuple[int, ...] = (8, 32, 128),
                          seed: int = 0) -> pd.DataFrame:
    """Return the padding share of each strategy (columns) for each batch size (rows) (02, exercise 4)."""
    return pd.DataFrame({
        size: tokens.padding_table(lengths, size, seed)["padding share"] for size in batch_sizes
    }).T.rename_axis("batch size")


def truncated_token_share(lengths: np.ndarray, max_length: int) -> float:
    """Return the share of all tokens that truncation at max_length cuts off (02, exercise 5)."""
    lengths = np.asarray(lengths)
    return float(np.clip(lengths - max_length, 0, None).sum() / lengths.sum())
