"""Stage 02: token lengths, a max_length suggestion, truncation counts, padding share and length-grouped batches.

pandas is imported inside the functions that return tables: `distilnb predict` counts cut texts without loading it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    from transformers import PreTrainedTokenizerBase

PADDING_STRATEGIES = ("pad to longest in dataset", "pad each random batch", "pad length-grouped batches")


def token_lengths(texts: list[str], tokenizer: PreTrainedTokenizerBase) -> np.ndarray:
    """Return each text's length in tokens, special tokens included, without truncation."""
    if not texts:
        return np.zeros(0, dtype=int)
    ids = tokenizer(list(texts), truncation=False, verbose=False)["input_ids"]
    return np.array([len(row) for row in ids])


def length_table(lengths_by_split: dict[str, np.ndarray]) -> pd.DataFrame:
    """Return token-length statistics per split: count, mean, median, 95th and 99th percentile, max."""
    import pandas as pd

    return pd.DataFrame({
        split: {"texts": len(lengths), "mean": lengths.mean(), "median": np.median(lengths),
                "p95": np.percentile(lengths, 95), "p99": np.percentile(lengths, 99), "max": lengths.max()}
        for split, lengths in lengths_by_split.items()
    }).T.round(1)


def suggest_max_length(lengths: np.ndarray, percentile: float = 99.0, multiple_of: int = 8,
                       model_max: int = 512) -> int:
    """Return a max_length covering `percentile`% of texts, rounded up to a multiple of 8, capped at the model's."""
    covering = float(np.percentile(lengths, percentile))
    return int(min(model_max, multiple_of * np.ceil(covering / multiple_of)))


def truncated_count(lengths: np.ndarray, max_length: int) -> int:
    """Return how many texts are longer than max_length tokens, and so would be cut."""
    return int((np.asarray(lengths) > max_length).sum())


@dataclass(frozen=True)
class TruncationReport:
    """How many texts a max_length cuts, the max_length chapter 02 would pick, and what that choice covers."""

    texts: int
    truncated: int
    max_length: int
    suggested: int
    covered: float = 1.0  # the share of texts the suggested max_length keeps whole
    p99: int = 0  # the 99th percentile of the lengths, in tokens, before any cap
    model_max: int = 512

    def summary(self) -> str:
        """Return one sentence: the count and share cut, the suggestion and its real coverage, and the model's cap."""
        share = self.truncated / self.texts if self.texts else 0.0
        line = (f"{self.truncated:,} of {self.texts:,} texts ({share:.1%}) are longer than max_length "
                f"{self.max_length} tokens")
        if self.suggested != self.max_length:
            line += f"; max_length {self.suggested} would cover {self.covered:.1%} of them"
        if self.p99 > self.model_max:
            line += f"; the 99th percentile is {self.p99:,} tokens, above the model's limit of {self.model_max}"
        return line + "."


def truncation_report(lengths: np.ndarray, max_length: int, model_max: int = 512) -> TruncationReport:
    """Return how many of these token lengths max_length cuts, with suggest_max_length's choice and its coverage."""
    lengths = np.asarray(lengths)
    if not len(lengths):
        return TruncationReport(0, 0, max_length, max_length, model_max=model_max)
    suggested = suggest_max_length(lengths, model_max=model_max)
    p99 = int(np.ceil(np.percentile(lengths, 99)))
    covered = float((lengths <= suggested).mean())
    return TruncationReport(len(lengths), truncated_count(lengths, max_length), max_length, suggested,
                            covered=covered, p99=p99, model_max=model_max)


def length_grouped_order(lengths: np.ndarray, batch_size: int, seed: int) -> np.ndarray:
    """Return a training order in which batches hold texts of similar length (the Trainer's own sampler)."""
    import torch  # here, not above: predict's truncation check (token_lengths) starts without torch
    from transformers.trainer_pt_utils import get_length_grouped_indices

    generator = torch.Generator().manual_seed(seed)
    return np.array(get_length_grouped_indices(list(map(int, lengths)), batch_size, generator=generator))


def batches_of(order: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Return the index order cut into consecutive batches."""
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


def length_grouped_batches(lengths: np.ndarray, batch_size: int, seed: int) -> list[list[int]]:
    """Return batches of example indices of similar length, in random order: a DataLoader's batch_sampler."""
    return [batch.tolist() for batch in batches_of(length_grouped_order(lengths, batch_size, seed), batch_size)]


def padding_share(lengths: np.ndarray, batch_size: int, strategy: str, seed: int = 0) -> dict[str, float]:
    """Return real tokens, computed tokens and the share of computed tokens that are padding, for one strategy."""
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
    import pandas as pd

    shares = {strategy: padding_share(lengths, batch_size, strategy, seed) for strategy in PADDING_STRATEGIES}
    return pd.DataFrame(shares).T


def show_tokens(text: str, tokenizer: PreTrainedTokenizerBase, max_length: int | None = None) -> pd.DataFrame:
    """Return one row per token of a text: the WordPiece token, its id and its attention mask value."""
    import pandas as pd

    encoded = tokenizer(text, truncation=max_length is not None, max_length=max_length)
    return pd.DataFrame({"token": tokenizer.convert_ids_to_tokens(encoded["input_ids"]),
                         "id": encoded["input_ids"], "attention_mask": encoded["attention_mask"]})
