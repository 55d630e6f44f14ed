"""Pairs of texts: an order-free key for the leakage check, a check of the pair encoding, a TF-IDF pair baseline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from distilnb.errors import DataError, plural
from distilnb.keys import pair_key

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def seen_pairs(train_first: Sequence[str], train_second: Sequence[str], first: Sequence[str],
               second: Sequence[str]) -> list[int]:
    """Return the positions of evaluation pairs whose two texts were trained on together, in either order."""
    trained = {pair_key(a, b) for a, b in zip(train_first, train_second, strict=True)}
    return [index for index, (a, b) in enumerate(zip(first, second, strict=True)) if pair_key(a, b) in trained]


def expected_separators(tokenizer: PreTrainedTokenizerBase) -> int:
    """Return how many separator tokens the tokenizer puts in a pair encoding (2 for BERT, 3 for RoBERTa)."""
    return tokenizer("a", "b")["input_ids"].count(tokenizer.sep_token_id)


def check_pair_encoding(input_ids: Sequence[int], tokenizer: PreTrainedTokenizerBase,
                        token_type_ids: Sequence[int] | None = None) -> None:
    """Raise unless an encoded pair has the tokenizer's separators and, where given, segment ids 0 then 1.

    Joining the two texts into one string before tokenizing loses the separator between them; a text that itself
    contains the separator's spelling (say "[SEP]") adds one. Either way the model cannot tell the segments apart.
    """
    ids = [token for token in input_ids if token != tokenizer.pad_token_id]
    found, wanted = ids.count(tokenizer.sep_token_id), expected_separators(tokenizer)
    if found != wanted:
        raise DataError(f"The pair encoding holds {plural(found, 'separator token')} ({tokenizer.sep_token}) where a "
                        f"pair has {wanted}: tokenize the two texts as tokenizer(first, second), not joined into one "
                        "string.")
    if token_type_ids is None:
        return
    types = list(token_type_ids)[:len(ids)]
    boundary = ids.index(tokenizer.sep_token_id) + 1
    if set(types[:boundary]) != {0} or set(types[boundary:]) - {1} or not types[boundary:]:
        raise DataError("The segment ids (token_type_ids) should be 0 up to the first separator and 1 after it, "
                        f"but read {types}.")
