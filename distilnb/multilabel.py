"""Several labels per text: multi-hot encoding with a load report, a split keeping every label, thresholds, scores."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.metrics import classification_report, f1_score, hamming_loss
from sklearn.preprocessing import MultiLabelBinarizer

from distilnb.errors import DataError, DataTypeError, plural, short_list

# The threshold grid: 0.05 to 0.95, rounded so 0.3 is 0.3 and not 0.30000000000000004.
THRESHOLDS = np.round(np.arange(0.05, 0.951, 0.05), 2)


@dataclass
class MultiLabelData:
    """Texts kept after loading, their multi-hot rows (one column per label name, in order) and the load report."""

    texts: list[str]
    matrix: np.ndarray
    label_names: list[str]
    report: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # label lists that load but look wrong (joined another way)

    def labels(self) -> list[list[str]]:
        """Return each row's label names, decoded from the matrix."""
        return decode(self.matrix, self.label_names)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _as_label_list(value: Any, separator: str | None) -> tuple[list[str] | None, bool]:
    """Return a cell's labels (stripped, kept once, in order; None for a missing cell) and whether one repeated."""
    if _is_missing(value):
        return None, False
    if isinstance(value, str):
        parts = value.split(separator) if separator else [value]
    elif isinstance(value, Sequence | np.ndarray):
        parts = list(value)
    else:
        raise DataTypeError(f"A label cell holds {type(value).__name__} {value!r}: write a label name, a list of "
                            "names, or names joined by a separator.")
    names = [name for name in (str(part).strip() for part in parts) if name]
    return list(dict.fromkeys(names)), len(set(names)) < len(names)


def _check_cells(cells: pd.Series, separator: str | None) -> None:
    """Refuse a column that mixes plain strings with lists, and list items that contain the separator."""
    present = cells[~cells.map(_is_missing)]
    strings = int(present.map(lambda value: isinstance(value, str)).sum())
    if strings and strings < len(present):
        lists = len(present) - strings
        raise DataError(f"The label column mixes {strings} rows holding one label as text with {lists} "
                        "rows holding a list of labels: write every row as a list (a one-label row as ['refund']).")
    if separator and not strings:
        inside = {str(name) for value in present for name in value if separator in str(name)}
        if inside:
            raise DataError(f"The label {sorted(inside)[0]!r} contains the separator {separator!r}: choose a separator "
                            "that no label name contains.")


def _check_names(label_names: list[str], separator: str | None) -> None:
    if separator and any(separator in name for name in label_names):
        clash = next(name for name in label_names if separator in name)
        raise DataError(f"The label {clash!r} contains the separator {separator!r}: choose a separator that no label "
                        "name contains.")


def encode(texts: Sequence[Any], cells: Sequence[Any], *, separator: str | None = None,
           label_names: list[str] | None = None, keep_empty: bool = False) -> MultiLabelData:
    """Return the multi-hot rows of a list-valued or separator-joined label column, with every dropped row counted.

    Rows without a text, without a label cell or with an empty label set are dropped and counted in the report; a label
    not in `label_names` (when given), a separator inside a label name, or a column mixing one-label text rows with list
    rows raises a one-sentence error. Without `label_names` the names are the sorted labels seen. keep_empty (scoring a
    test file): a row with a text and no label (an empty list or a blank cell) is kept as "no label", a legitimate
    answer, and counted under "no label".
    """
    cells = pd.Series(list(cells), dtype=object)
    if len(cells) != len(texts):
        raise DataError(f"There are {len(texts)} texts but {len(cells)} label cells: they must match one to one.")
    _check_cells(cells, separator)
    if label_names is not None:
        _check_names(label_names, separator)
    report = {"rows read": len(cells), "missing text": 0, "missing label": 0, "empty label set": 0,
              "repeated label in a row": 0, **({"no label": 0} if keep_empty else {})}
    kept_texts: list[str] = []
    kept_labels: list[list[str]] = []
    for row, (text, cell) in enumerate(zip(texts, cells, strict=True)):
        labels, repeated = _as_label_list(cell, separator)
        if _is_missing(text) or not str(text).strip():
            report["missing text"] += 1
        elif keep_empty and not labels:
            report["no label"] += 1
            kept_texts.append(str(text))
            kept_labels.append([])
        elif labels is None:
            report["missing label"] += 1
        elif not labels:
            report["empty label set"] += 1
        else:
            report["repeated label in a row"] += repeated
            _check_known(labels, label_names, row)
            kept_texts.append(str(text))
            kept_labels.append(labels)
    seen = sorted({name for labels in kept_labels for name in labels})
    names = list(label_names) if label_names is not None else seen
    if not kept_labels:
        raise DataError(f"None of the {len(cells)} rows has both a text and at least one label.")
    report["rows kept"] = len(kept_labels)
    return MultiLabelData(kept_texts, multi_hot(kept_labels, names), names, report,
                          joined_label_warnings(kept_labels, separator))


OTHER_SEPARATORS = ",;|/+&"  # characters that join labels when the label separator is another one


def no_label_note(rows: int, source: str) -> str:
    """Return the note for the rows of a scored file kept with an empty label set (encode's keep_empty)."""
    return (f"{plural(rows, 'row')} of {source} {'has' if rows == 1 else 'have'} no label (an empty list or a blank "
            "cell): kept, and scored as 'no label', a legitimate answer")


def joined_label_warnings(rows: Sequence[Sequence[str]], separator: str | None) -> list[str]:
    """Return a warning per label that holds another separator character than `separator` (x,y when ';' joins
    labels), with its row count, saying whether it joins known labels, and the fix."""
    counts: dict[str, int] = {}
    for labels in rows:
        for name in labels:
            counts[name] = counts.get(name, 0) + 1
    warnings = []
    for name, count in counts.items():
        found = next((c for c in OTHER_SEPARATORS if c != separator and c in name), None)
        if found is None:
            continue
        parts = [part.strip() for part in name.split(found)]
        known = all(part in counts and part != name for part in parts)
        what = (f"joins the known labels {' and '.join(map(repr, parts))} with {found!r}" if known
                else f"contains {found!r}")
        joined = repr(separator.join(parts)) if separator else "a list"
        warnings.append(f"{count:,} rows carry the label {name!r}, which {what} although labels are joined by "
                        f"{separator!r}: a label of its own. If it means several labels, write it as {joined}.")
    return warnings


def check_separator_used(cells: pd.Series, separator: str | None) -> None:
    """Refuse a label separator that no label cell holds: every row would have one label, a one-label task."""
    strings = [value for value in cells if isinstance(value, str)]
    if separator and strings and not any(separator in value for value in strings):
        raise DataError(f"No label holds the label separator {separator!r}: every row has one label, so this is a "
                        "one-label task. Leave {label_separator} out, or set it to the character that joins the "
                        f"labels (such as {short_list(map(repr, sorted(used_characters(strings))))}).")


def used_characters(labels: Sequence[str]) -> set[str]:
    """Return the separator-like characters (OTHER_SEPARATORS) found in label names."""
    return {c for value in labels for c in OTHER_SEPARATORS if c in value} or {";"}


def label_list_hint(labels: Sequence[Any]) -> str | None:
    """Return a sentence for one-label data whose labels look like label lists: JSON lists stored as text, or names
    joined by a character where the parts are labels too; None when they do not."""
    names = {str(value).strip() for value in labels if isinstance(value, str)}
    if not names:
        return None
    listed = [name for name in names if name.startswith("[") and name.endswith("]")]
    if listed and len(listed) >= len(names) / 2:
        return (f"The labels look like lists stored as text ({short_list(map(repr, sorted(listed)), 2)}): read each "
                "as a list (a JSON Lines file with real lists), or write the names joined by a character and set "
                "{label_separator} to it.")
    for character in OTHER_SEPARATORS:
        joined = [name for name in names if character in name]
        parts = {part.strip() for name in joined for part in name.split(character)}
        if joined and parts & names:
            return (f"{len(joined):,} labels join others with {character!r} ({short_list(map(repr, sorted(joined)), 2)}"
                    f"): for several labels a row, set {{label_separator={character!r}}}.")
    return None


def _check_known(labels: list[str], label_names: list[str] | None, row: int) -> None:
    if label_names is None:
        return
    unknown = [name for name in labels if name not in label_names]
    if unknown:
        raise DataError(f"Row {row} has the label {unknown[0]!r}, which is not one of the {len(label_names)} labels: "
                        f"{', '.join(label_names)}.")


def multi_hot(rows: Sequence[Sequence[str]], label_names: list[str]) -> np.ndarray:
    """Return a float32 matrix with a 1.0 in column j of row i when row i has label_names[j] (BCE wants floats)."""
    for row, labels in enumerate(rows):  # MultiLabelBinarizer would only warn, and leave such a label out
        _check_known(list(labels), label_names, row)
    return MultiLabelBinarizer(classes=label_names).fit_transform(rows).astype(np.float32)


def decode(matrix: np.ndarray, label_names: list[str]) -> list[list[str]]:
    """Return the label names of each multi-hot (or 0/1 prediction) row, in label-name order."""
    return [[label_names[j] for j in np.flatnonzero(row)] for row in np.asarray(matrix)]


def check_alignment(texts: Sequence[str], matrix: np.ndarray, expected: dict[str, Sequence[str]],
                    label_names: list[str]) -> None:
    """Raise if a text's multi-hot row does not decode to the labels expected for that text (rows or columns moved)."""
    if len(texts) != len(matrix):
        raise DataError(f"There are {len(texts)} texts but {len(matrix)} multi-hot rows.")
    for row, (text, labels) in enumerate(zip(texts, decode(matrix, label_names), strict=True)):
        if sorted(labels) != sorted(expected[text]):
            raise DataError(f"Row {row}'s multi-hot vector reads {labels} but its text {text[:40]!r} has the labels "
                            f"{sorted(expected[text])}: the rows or the label order moved.")


def report_lines(report: dict[str, int]) -> list[str]:
    """Return the load report as sentences, one per count that is not zero."""
    lines = [f"{report['rows read']} rows read, {report.get('rows kept', 0)} kept."]
    lines += [f"Dropped, {reason}: {count}." for reason in ("missing text", "missing label", "empty label set")
              if (count := report.get(reason, 0))]
    if report.get("repeated label in a row"):
        lines.append(f"Rows naming a label twice (kept once): {report['repeated label in a row']}.")
    return lines


def iterative_split(matrix: np.ndarray, fractions: Sequence[float], seed: int = 0) -> list[np.ndarray]:
    """Return row indices per split, sharing out each label's rows in proportion (Sechidis et al. 2011).

    The rarest label is placed first, each of its rows going to a split that has none of it yet, else to the split that
    still wants most of it, so a label with at least as many rows as there are splits reaches every split; rows without
    labels are shared last.
    """
    matrix = np.asarray(matrix) > 0
    rng = np.random.default_rng(seed)
    shares = np.asarray(fractions, dtype=float) / np.sum(fractions)
    wanted_rows = shares * len(matrix)
    wanted = np.outer(shares, matrix.sum(axis=0))
    assigned = np.full(len(matrix), -1)
    got = np.zeros_like(wanted)
    left = matrix.copy()
    while (left.sum(axis=0) > 0).any():
        counts = left.sum(axis=0).astype(float)
        label = int(np.argmin(np.where(counts > 0, counts, np.inf)))
        for row in rng.permutation(np.flatnonzero(left[:, label])):
            # a split still without this label goes first, so the label reaches every split when it has enough rows
            want = np.where(got[:, label] == 0, np.inf, wanted[:, label])
            best = np.flatnonzero(want == want.max())
            best = best[wanted_rows[best] == wanted_rows[best].max()]
            split = int(rng.choice(best))
            assigned[row] = split
            wanted[split] -= matrix[row]
            got[split] += matrix[row]
            wanted_rows[split] -= 1
            left[row] = False
    for row in rng.permutation(np.flatnonzero(assigned < 0)):
        split = int(np.argmax(wanted_rows))
        assigned[row] = split
        wanted_rows[split] -= 1
    return [np.sort(np.flatnonzero(assigned == split)) for split in range(len(shares))]


def check_every_label_in_every_split(matrices: dict[str, np.ndarray], label_names: list[str]) -> None:
    """Raise if a split has no row of some label (its F1 would be undefined and its threshold untunable)."""
    for split, matrix in matrices.items():
        missing = [name for name, count in zip(label_names, np.asarray(matrix).sum(axis=0), strict=True) if count == 0]
        if missing:
            joined = next((c for c in OTHER_SEPARATORS if c in missing[0]), None)
            hint = (f" It contains {joined!r}: if it joins several labels, join them with the label separator's "
                    "character ({label_separator}) instead." if joined else "")
            raise DataError(f"The {split} split has no row with the label {missing[0]!r}: add rows of that label or "
                            f"make the split larger.{hint}")


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Return each label's independent probability (a sigmoid per logit, not a softmax across labels)."""
    return expit(np.asarray(logits, dtype=np.float64))


def apply_thresholds(probabilities: np.ndarray, thresholds: float | Sequence[float] | np.ndarray) -> np.ndarray:
    """Return 0/1 predictions: a label is on when its probability reaches its threshold (one or one per label)."""
    return (np.asarray(probabilities) >= np.asarray(thresholds, dtype=float)).astype(int)


def tune_global_threshold(y_true: np.ndarray, probabilities: np.ndarray, grid: np.ndarray = THRESHOLDS,
                          average: str = "micro") -> float:
    """Return the one threshold on the grid that maximises F1 (micro by default) over all labels; ties: the lowest."""
    scores = [f1_score(y_true, apply_thresholds(probabilities, t), average=average, zero_division=0) for t in grid]
    return float(grid[int(np.argmax(scores))])


def tune_label_thresholds(y_true: np.ndarray, probabilities: np.ndarray, grid: np.ndarray = THRESHOLDS) -> np.ndarray:
    """Return one threshold per label, each the grid value that maximises that label's F1; ties: the lowest."""
    y_true, probabilities = np.asarray(y_true), np.asarray(probabilities)
    best = []
    for j in range(y_true.shape[1]):
        scores = [f1_score(y_true[:, j], probabilities[:, j] >= t, zero_division=0) for t in grid]
        best.append(grid[int(np.argmax(scores))])
    return np.asarray(best, dtype=float)


def scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Return micro, macro and samples F1, subset accuracy (all labels right), Hamming loss (share of wrong cells)."""
    y_true, y_pred = np.asarray(y_true).astype(int), np.asarray(y_pred).astype(int)
    return {
        "f1_micro": float(f1_score(y_true, y_pred, average="micro", zero_division=0)),
        "f1_macro": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "f1_samples": float(f1_score(y_true, y_pred, average="samples", zero_division=0)),
        "subset_accuracy": float((y_true == y_pred).all(axis=1).mean()),
        "hamming_loss": float(hamming_loss(y_true, y_pred)),
    }


def score_table(results: dict[str, dict[str, float]]) -> pd.DataFrame:
    """Return one row per method with the multi-label scores side by side."""
    return pd.DataFrame(results).T[["f1_micro", "f1_macro", "f1_samples", "subset_accuracy", "hamming_loss"]]


def per_label_report(y_true: np.ndarray, y_pred: np.ndarray, label_names: list[str]) -> pd.DataFrame:
    """Return precision, recall, F1 and support per label, then the micro, macro and samples averages."""
    report = classification_report(np.asarray(y_true).astype(int), np.asarray(y_pred).astype(int),
                                   target_names=label_names, output_dict=True, zero_division=0)
    return pd.DataFrame(report).T.rename(columns={"f1-score": "f1"})


def cardinality(matrix: np.ndarray) -> float:
    """Return the mean number of labels per row."""
    return float(np.asarray(matrix).sum(axis=1).mean())


def cooccurrence(matrix: np.ndarray, label_names: list[str]) -> pd.DataFrame:
    """Return how many rows carry each pair of labels together (the diagonal: rows with that label)."""
    matrix = (np.asarray(matrix) > 0).astype(int)
    return pd.DataFrame(matrix.T @ matrix, index=label_names, columns=label_names)


def choose_thresholds(y_true: np.ndarray, probabilities: np.ndarray, label_names: list[str]) -> dict[str, Any]:
    """Return the decision rule kept on validation: one global threshold or one per label, whichever gives the higher
    macro-F1 there (a tie keeps the global one, a single number fitted to more rows), with every candidate's score."""
    tuned: dict[str, Any] = {"global": tune_global_threshold(y_true, probabilities, average="macro"),
                             "per label": tune_label_thresholds(y_true, probabilities)}
    macro = {rule: float(f1_score(y_true, apply_thresholds(probabilities, limit), average="macro", zero_division=0))
             for rule, limit in {"0.5": 0.5, **tuned}.items()}
    rule = "per label" if macro["per label"] > macro["global"] else "global"
    limits = np.broadcast_to(np.asarray(tuned[rule], dtype=float), (len(label_names),))
    return {"rule": rule, "thresholds": dict(zip(label_names, map(float, limits), strict=True)),
            "global": tuned["global"], "per_label": dict(zip(label_names, map(float, tuned["per label"]), strict=True)),
            "validation_f1_macro": macro, "tuned_on": "validation"}
