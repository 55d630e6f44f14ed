"""The one text key: what counts as the same text for duplicates, leakage and rows a model has seen."""

from __future__ import annotations


def normalise_text(text: str) -> str:
    """Return a text case-folded with runs of white space made one space ("Straße" and "STRASSE" are one text)."""
    # casefold, not lower: lower() keeps "ß" apart from "ss", so a text would be one for pairs and two for single texts
    return " ".join(str(text).split()).casefold()


def pair_key(first: str, second: str) -> tuple[str, str]:
    """Return a key that is the same for (a, b) and (b, a): a pair trained on in either order counts as seen."""
    a, b = sorted((normalise_text(first), normalise_text(second)))
    return a, b


def row_key(text: str, pair: str | None = None) -> str:
    """Return a row's key: its normalised text, or for a pair both texts' keys in either order."""
    return normalise_text(text) if pair is None else "\x1f".join(pair_key(text, pair))
