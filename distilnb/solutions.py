"""Tested solutions to the notebooks' exercises, so instructors can check answers and learners can compare."""

from __future__ import annotations

import numpy as np
import pandas as pd

from distilnb import data, tokens
from distilnb.config import Config


def leakage_drops(cfg: Config) -> dict[str, int]:
    """Return the rows dropped per reason when the same data is loaded with drop_duplicates=True (01, exercise 3)."""
    _, report = data.load_splits(Config(**{**cfg.to_dict(), "drop_duplicates": True}))
    return report.dropped


def padding_by_batch_size(lengths: np.ndarray, batch_sizes: tuple[int, ...] = (8, 32, 128), seed: int = 0) -> pd.DataFrame:
    """Return the padding share of each strategy (columns) for each batch size (rows) (02, exercise 3)."""
    return pd.DataFrame({
        size: tokens.padding_table(lengths, size, seed)["padding share"] for size in batch_sizes
    }).T.rename_axis("batch size")


def truncated_token_share(lengths: np.ndarray, max_length: int) -> float:
    """Return the share of all tokens that truncation at max_length cuts off (02, exercise 4)."""
    lengths = np.asarray(lengths)
    return float(np.clip(lengths - max_length, 0, None).sum() / lengths.sum())
