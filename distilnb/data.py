"""Stage 01: clean a labelled dataset, name its labels, split it stratified, report duplicates and leakage."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from distilnb import multilabel
from distilnb.config import MULTI_LABEL, PAIRS, SINGLE_LABEL, Config
from distilnb.errors import ColumnError, DataError, DataTypeError, parameter_words, plural, short_list, spell
from distilnb.keys import normalise_text, row_key
from distilnb.readers import ReadOptions, dataset_frames, read_source, source_notes

if TYPE_CHECKING:
    from datasets import DatasetDict

SPLITS = ("train", "validation", "test")


@dataclass
class LoadReport:
    """What loading and cleaning did: rows read, dropped and converted, per reason, and the split sizes."""

    source: str
    rows_read: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    converted: dict[str, int] = field(default_factory=dict)
    split_sizes: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    label_variants: dict[str, list[str]] = field(default_factory=dict)  # case-folded label: the spellings found
    stripped_labels: dict[str, list[str]] = field(default_factory=dict)  # label: its spellings with spaces around
    warnings: list[str] = field(default_factory=list)  # what looks wrong in the data although it loads
    settings: dict = field(default_factory=dict)
    pair_column: str | None = None  # the second text's column, which the lines about blank second texts name

    def count(self, table: dict[str, int], reason: str, n: int) -> None:
        """Add n to a reason's count (nothing when n is 0)."""
        if n:
            table[reason] = table.get(reason, 0) + int(n)

    def summary(self) -> str:
        """Return a few readable lines: rows read, each drop and conversion with its count, split sizes."""
        lines = [f"source: {self.source}", f"rows read: {self.rows_read}"]
        lines += [f"dropped {plural(n, 'row')}: {reason}" for reason, n in self.dropped.items()] or ["dropped: none"]
        lines += [f"converted {n} values: {reason}" for reason, n in self.converted.items()]
        lines += [f"split sizes: {self.split_sizes}"] + [f"note: {note}" for note in self.notes]
        return "\n".join(lines + [f"warning: {warning}" for warning in self.warnings])

    def console_lines(self, name_of: Callable[[str, str | None], str] = parameter_words) -> list[str]:
        """Return one short line per nonzero count of rows dropped or labels changed, then the warnings, the settings
        they name spelt by name_of (a notebook's parameters by default).

        A number written as its label name ('1.0' as '1') changes nothing a reader would miss, so it has no line.
        """
        lines = [f"dropped {plural(n, 'row')} {what.format(column=self.pair_column)}{by_split(self.dropped, reason)}"
                 for reason, what in DROP_LINES.items() if (n := total(self.dropped, reason))]
        stripped = total(self.converted, STRIPPED)
        if stripped:
            found = self.stripped_labels.items()
            spellings = short_list(f"{spelt!r} as {label!r}" for label, spellings in found for spelt in spellings)
            lines.append(f"stripped the surrounding spaces of {plural(stripped, 'label')}: {spellings}")
        merged = total(self.converted, MERGED)
        if merged:
            lines.append(f"merged {plural(merged, 'label')} into the commonest spelling: "
                         + short_list(" / ".join(map(repr, found)) for found in self.label_variants.values()))
        converted = total(self.converted, NON_STRING)
        if converted:
            lines.append(f"read {plural(converted, 'non-string text')} (numbers) as strings")
        return lines + [spell(f"warning: {warning}", name_of) for warning in self.warnings]


# The load report's reasons (after "<split>: ") and how console_lines says each.
MISSING_TEXT, EMPTY_TEXT, MISSING_LABEL = "missing text", "empty or whitespace-only text", "missing label"
MISSING_SECOND, EMPTY_SECOND = "missing second text", "empty or whitespace-only second text"
BLANK_TEXT_REASONS = (MISSING_TEXT, EMPTY_TEXT, MISSING_SECOND, EMPTY_SECOND)  # a row with nothing to classify
WITHIN, LEAKED = "duplicate text within the split", "text already in an earlier split"
EMPTY_SET = "empty label set"
STRIPPED, RENAMED = "label stripped of surrounding spaces", "label written as its name (1.0 as 1, ...)"
MERGED, NON_STRING = "label merged into its most frequent spelling", "non-string text turned into a string"
DROP_LINES = {MISSING_TEXT: "without a text", EMPTY_TEXT: "whose text is empty or only spaces",
              MISSING_SECOND: "without a second text (column {column!r})",
              EMPTY_SECOND: "whose second text (column {column!r}) is empty or only spaces",
              MISSING_LABEL: "without a label (empty or only spaces)", WITHIN: "repeating a text of their split",
              LEAKED: "whose text an earlier split already holds", EMPTY_SET: "whose label set is empty"}


def total(table: dict[str, int], reason: str) -> int:
    """Return a reason's count summed over the splits ("train: missing text", "test: missing text", ...)."""
    return sum(n for key, n in table.items() if key.split(": ", 1)[-1] == reason)


def by_split(table: dict[str, int], reason: str) -> str:
    """Return ' (train 3, test 1)' for a reason counted in more than one split, else ''."""
    parts = {key.split(": ", 1)[0]: n for key, n in table.items() if key.split(": ", 1)[-1] == reason}
    return f" ({', '.join(f'{split} {n:,}' for split, n in parts.items())})" if len(parts) > 1 else ""


# ---------------------------------------------------------------- cleaning and labels


def check_columns(frame: pd.DataFrame, text_column: str, label_column: str, where: str,
                  pair_column: str | None = None) -> None:
    """Raise ColumnError when the text, label (or second text) column is missing, naming the columns there are."""
    roles = (("text", text_column), ("label", label_column), *((("second text", pair_column),) if pair_column else ()))
    for role, column in roles:
        if column not in frame.columns:
            raise ColumnError(
                f"The {role} column {column!r} is not in {where}; its columns are {short_list(frame.columns, 10)}. "
                f"Name one of them as the {role} column."
            )


def canonical_label(value: object) -> str | None:
    """Return a label as a string ('1.0' and 1 both become '1', spaces stripped); None for a missing label."""
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return None
    if isinstance(value, (bool, np.bool_)):
        return str(value).lower()
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return str(int(value)) if float(value).is_integer() else str(float(value))
    text = str(value).strip()
    if re.fullmatch(r"-?\d+\.0+", text):
        return text.split(".")[0]
    return text or None


def text_values(column: pd.Series, split: str) -> tuple[list[str | None], int]:
    """Return a text column's values (None where missing, numbers as strings) and how many were not strings."""
    texts, non_strings = [], 0
    for row, text in enumerate(column):
        if pd.api.types.is_scalar(text) and pd.isna(text):
            text = None
        elif isinstance(text, (int, float, np.integer, np.floating)):
            text, non_strings = str(text), non_strings + 1
        elif not isinstance(text, str):
            raise DataTypeError(f"Row {row} of the {split} data has a text of type {type(text).__name__}: "
                                "texts must be strings.")
        texts.append(text)
    return texts, non_strings


def missing_or_empty(texts: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Return (missing, empty or white space only) masks of a text column."""
    missing = texts.isna()
    return missing, ~missing & (texts.fillna("").str.strip() == "")


def clean_frame(frame: pd.DataFrame, text_column: str, label_column: str, report: LoadReport, *,
                split: str, pair_column: str | None = None) -> pd.DataFrame:
    """Return rows with a non-empty text (and second text, for pairs) and a label, as columns text[/text_pair]/label;
    every drop and conversion is counted."""
    where = "the data" if split == "all" else f"the {split} data"
    check_columns(frame, text_column, label_column, where, pair_column)
    texts, non_strings = text_values(frame[text_column], split)
    seconds, more = text_values(frame[pair_column], split) if pair_column else (None, 0)
    non_strings += more
    labels = [canonical_label(label) for label in frame[label_column]]
    spaced = [(raw, label) for raw, label in zip(frame[label_column], labels, strict=True)
              if label is not None and isinstance(raw, str) and raw != raw.strip()]
    for raw, label in spaced:
        found = report.stripped_labels.setdefault(label, [])
        found += [raw] if raw not in found else []
    rewritten = sum(label is not None and not (isinstance(raw, str) and raw.strip() == label)
                    for raw, label in zip(frame[label_column], labels, strict=True))
    cleaned = pd.DataFrame({"text": texts, **({"text_pair": seconds} if pair_column else {}), "label": labels},
                           dtype=object)
    missing_text, empty_text = missing_or_empty(cleaned["text"])
    blank = {MISSING_TEXT: missing_text, EMPTY_TEXT: empty_text}
    if pair_column:  # a pair whose first text is there but not its second: counted apart, the column named
        report.pair_column = pair_column
        first = missing_text | empty_text
        missing_second, empty_second = missing_or_empty(cleaned["text_pair"])
        blank.update({MISSING_SECOND: ~first & missing_second, EMPTY_SECOND: ~first & empty_second})
    no_text = pd.concat(blank, axis=1).any(axis=1)
    missing_label = ~no_text & cleaned["label"].isna()
    for reason, rows in blank.items():
        report.count(report.dropped, f"{split}: {reason}", rows.sum())
    report.count(report.dropped, f"{split}: {MISSING_LABEL}", missing_label.sum())
    report.count(report.converted, f"{split}: {NON_STRING}", non_strings)
    report.count(report.converted, f"{split}: {STRIPPED}", len(spaced))
    report.count(report.converted, f"{split}: {RENAMED}", rewritten)
    return cleaned[~(no_text | missing_label)].reset_index(drop=True)


def holds_lists(frames: dict[str, pd.DataFrame], label_column: str) -> bool:
    """Return True when a label column holds lists (a JSON list, a Hub sequence feature): several labels a row."""
    return any(isinstance(value, (list, tuple, np.ndarray)) for frame in frames.values()
               if label_column in frame.columns for value in frame[label_column])


def is_multi_label(frames: dict[str, pd.DataFrame], cfg: Config) -> bool:
    """Return True when rows carry several labels: a label separator is set, or the label column holds lists."""
    multi = cfg.label_separator is not None or holds_lists(frames, cfg.label_column)
    if multi and cfg.text_pair_column:
        raise DataError("Several labels for a pair of texts is not supported: give pairs one label each, or leave out "
                        "the second text column.")
    return multi


def clean_multilabel_frame(frame: pd.DataFrame, cfg: Config, report: LoadReport, *, split: str) -> pd.DataFrame:
    """Return rows with a text and at least one label, as columns text/label (a tuple of label names, in order);
    every dropped row is counted (multilabel.encode's report) under the load report's reasons."""
    check_columns(frame, cfg.text_column, cfg.label_column, "the data" if split == "all" else f"the {split} data")
    texts, non_strings = text_values(frame[cfg.text_column], split)
    # A test file's row without labels is scored as "no label", a legitimate answer, as `evaluate --test-file` scores
    # it: the official test set is not made smaller. Training and validation rows without labels are dropped.
    keep_empty = split == "test"
    encoded = multilabel.encode(texts, frame[cfg.label_column].tolist(), separator=cfg.label_separator,
                                keep_empty=keep_empty)
    if encoded.report.get("no label"):
        report.notes.append(multilabel.no_label_note(encoded.report["no label"], "the test data"))
    for reason in (MISSING_TEXT, MISSING_LABEL, EMPTY_SET):  # multilabel.encode's names for the same reasons
        report.count(report.dropped, f"{split}: {reason}", encoded.report[reason])
    report.count(report.converted, f"{split}: label named twice in a row, kept once",
                 encoded.report["repeated label in a row"])
    report.count(report.converted, f"{split}: {NON_STRING}", non_strings)
    report.warnings += encoded.warnings
    if split in ("all", "train"):  # a small held-out file may hold one label a row; the training rows may not
        multilabel.check_separator_used(frame[cfg.label_column], cfg.label_separator)
    return pd.DataFrame({"text": encoded.texts, "label": [tuple(names) for names in encoded.labels()]}, dtype=object)


def clean_for(frame: pd.DataFrame, cfg: Config, report: LoadReport, *, split: str, multi: bool) -> pd.DataFrame:
    """Return a split cleaned for the task: a label per text or pair, or a tuple of labels per text."""
    if multi:
        return clean_multilabel_frame(frame, cfg, report, split=split)
    return clean_frame(frame, cfg.text_column, cfg.label_column, report, split=split,
                       pair_column=cfg.text_pair_column)


def label_items(labels: pd.Series) -> list[str]:
    """Return every label of a column, a multi-label row's tuple counting each of its labels."""
    return [name for value in labels for name in (value if isinstance(value, tuple) else (value,))]


def label_variants(labels: list[str]) -> dict[str, list[str]]:
    """Return {case-folded label: its spellings} for labels written in more than one way ('Spam', 'spam', 'SPAM')."""
    spellings: dict[str, set[str]] = {}
    for label in labels:
        spellings.setdefault(label.casefold(), set()).add(label)
    return {key: sorted(found) for key, found in sorted(spellings.items()) if len(found) > 1}


def merge_variants(frames: dict[str, pd.DataFrame], report: LoadReport, merge: bool) -> dict[str, pd.DataFrame]:
    """Return frames with label variants merged into their most frequent spelling when `merge`; report them always."""
    counts = Counter(label for frame in frames.values() for label in frame["label"])
    report.label_variants = label_variants(list(counts))
    if not report.label_variants:
        return frames
    described = "; ".join(" / ".join(f"{v!r} ({counts[v]})" for v in found) for found in report.label_variants.values())
    if not merge:
        report.warnings.append(f"labels that differ only by case are kept apart: {described}. Set "
                               "{merge_label_variants=True} to merge each into its commonest spelling")
        return frames
    target = {v: max(found, key=lambda s: (counts[s], s)) for found in report.label_variants.values() for v in found}
    report.notes.append(f"merged labels that differ only by case: {described}")
    merged = {}
    for split, frame in frames.items():
        renamed = frame["label"].map(lambda label: target.get(label, label))
        report.count(report.converted, f"{split}: {MERGED}",
                     (renamed != frame["label"]).sum())
        merged[split] = frame.assign(label=renamed)
    return merged


def conflicting_labels(frames: dict[str, pd.DataFrame], examples: int = 3) -> str | None:
    """Return a warning naming texts that occur with more than one label (count and a few examples), else None."""
    rows = pd.concat(list(frames.values()), ignore_index=True)
    keys = rows["text"].map(normalise_text)
    if "text_pair" in rows.columns:  # in order: (a, b) and (b, a) may rightly differ (a entails b, b not a)
        keys = keys + " | " + rows["text_pair"].map(normalise_text)
    labels = rows.groupby(keys)["label"].unique()
    clashing = labels[labels.map(len) > 1]
    if clashing.empty:
        return None
    shown = short_list((f"{clip(text)!r}: {' / '.join(quoted_label(label) for label in found)}"
                        for text, found in clashing.items()), examples, width=200)
    return (f"{len(clashing):,} texts carry different labels in different rows ({shown}): a model cannot get both "
            "right; correct the labels or remove those rows")


def numeric_texts(frames: dict[str, pd.DataFrame], text_column: str, share: float = 0.9) -> str | None:
    """Return a warning when more than `share` of the texts parse as numbers (swapped columns, or ids), else None."""
    texts = pd.concat([frame["text"] for frame in frames.values()], ignore_index=True)
    numbers = pd.to_numeric(texts.str.strip(), errors="coerce").notna().mean() if len(texts) else 0.0
    if numbers <= share:
        return None
    return (f"the text column {text_column!r} holds numbers ({numbers:.0%} of its values): are the text and label "
            "columns swapped?")


def quoted_label(label: object) -> str:
    """Return a label as a message quotes it: 'joy', or a row's set of labels as {'anger', 'joy'}."""
    if isinstance(label, tuple | list):
        return "{" + ", ".join(repr(clip(name)) for name in label) + "}"
    return repr(clip(label))


def clip(value: object, width: int = 40) -> str:
    """Return a value as a string of at most `width` characters, cut with '…' (a label or text quoted in a message)."""
    text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def swapped_hint(labels: np.ndarray) -> str:
    """Return a sentence suggesting swapped columns when there are far more classes than rows per class, else ''
    (labels that look like label lists get the label separator named instead)."""
    listed = multilabel.label_list_hint(list(labels))
    if listed:
        return f" {listed}"
    classes = len(set(labels))
    if classes < 10 or classes <= 10 * len(labels) / classes:
        return ""
    return (f" With {classes:,} classes for {len(labels):,} rows, most labels are unique: are the text and label "
            "columns swapped?")


def label_names_for(labels: pd.Series, known_names: list[str] | None = None) -> list[str]:
    """Return the class names in id order: the source's own order when it covers every label, else numeric or sorted."""
    present = set(labels)
    if known_names and present <= set(known_names):
        return list(known_names)
    numeric = all(re.fullmatch(r"-?\d+", name) for name in present)
    return sorted(present, key=int) if numeric else sorted(present)


# ---------------------------------------------------------------- splitting


def stratified_split(labels: np.ndarray, held_out: dict[str, float], seed: int) -> dict[str, np.ndarray]:
    """Return {"train": rows, **{split: rows}}: each held-out split takes its share of every class."""
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2:
        raise DataError(f"The data has a single class ({classes[0] if len(classes) else 'none'}): "
                        "a classifier needs at least two.")
    needed = 1 + len(held_out)
    too_small = [f"{clip(c)!r}: {n}" for c, n in zip(classes, counts, strict=True) if n < needed]
    if too_small:
        raise DataError(
            f"{plural(len(too_small), 'class', 'classes')} with fewer than {needed} examples, too few for one in "
            f"train and in each of {', '.join(held_out)} (class: rows): {short_list(too_small)}. Add examples, merge "
            f"them into a related class, or remove their rows.{swapped_hint(labels)}"
        )
    rows, parts = np.arange(len(labels)), {}
    for split, share in held_out.items():
        # At least one row per class, which stratification needs; shares of what remains keep the overall shares.
        size = max(len(classes), round(share * len(labels)))
        if len(rows) - size < len(classes):
            raise DataError(f"{len(labels)} rows are too few for {len(classes)} classes in train and in each of "
                            f"{', '.join(held_out)}: add examples or lower validation_size and test_size.")
        rows, parts[split] = train_test_split(rows, test_size=size, stratify=labels[rows], random_state=seed)
    return {"train": np.sort(rows), **{split: np.sort(part) for split, part in parts.items()}}


def multilabel_split(labels: pd.Series, held_out: dict[str, float], seed: int) -> dict[str, np.ndarray]:
    """Return {"train": rows, **{split: rows}} of tuple-labelled rows, every label reaching every split."""
    names = sorted(set(label_items(labels)))
    matrix = multilabel.multi_hot(list(labels), names)
    parts = multilabel.iterative_split(matrix, [1 - sum(held_out.values()), *held_out.values()], seed)
    rows = dict(zip(["train", *held_out], parts, strict=True))
    multilabel.check_every_label_in_every_split({split: matrix[part] for split, part in rows.items()}, names)
    return rows


def subsample(frame: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    """Return `size` rows of a frame (at least one per class), each class keeping its share."""
    if isinstance(frame["label"].iloc[0], tuple):  # several labels a row: each label keeps its share
        names = sorted(set(label_items(frame["label"])))
        matrix = multilabel.multi_hot(list(frame["label"]), names)
        kept = multilabel.iterative_split(matrix, [size, len(frame) - size], seed)[0]
        return frame.iloc[kept].reset_index(drop=True)
    size = max(size, frame["label"].nunique())
    kept, _ = train_test_split(np.arange(len(frame)), train_size=size, stratify=frame["label"], random_state=seed)
    return frame.iloc[np.sort(kept)].reset_index(drop=True)


# ---------------------------------------------------------------- duplicates and leakage


def row_keys(frame: pd.DataFrame) -> pd.Series:
    """Return each row's duplicate key: its normalised text; for a pair, the same key in either order."""
    if "text_pair" not in frame.columns:
        return frame["text"].map(normalise_text)
    keys = [row_key(first, second) for first, second in zip(frame["text"], frame["text_pair"], strict=True)]
    return pd.Series(keys, index=frame.index, dtype=object)


def duplicate_report(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Return a table: per split, rows, duplicate texts (or pairs) within it, and those shared with earlier splits."""
    keys = {split: row_keys(frames[split]) for split in frames}
    rows = []
    for i, split in enumerate(frames):
        row = {"split": split, "rows": len(keys[split]), "duplicates within": int(keys[split].duplicated().sum())}
        for earlier in list(frames)[:i]:
            row[f"shared with {earlier}"] = int(keys[split].isin(set(keys[earlier])).sum())
        rows.append(row)
    return pd.DataFrame(rows).fillna(0).set_index("split").astype(int)


def drop_duplicates_and_leaks(frames: dict[str, pd.DataFrame], report: LoadReport) -> dict[str, pd.DataFrame]:
    """Return frames without repeated texts: later splits lose rows whose text an earlier split has; counts reported."""
    seen: set[str] = set()
    result = {}
    for split, frame in frames.items():
        keys = row_keys(frame)
        within = keys.duplicated()
        leaked = ~within & keys.isin(seen)
        report.count(report.dropped, f"{split}: {WITHIN}", within.sum())
        report.count(report.dropped, f"{split}: {LEAKED}", leaked.sum())
        result[split] = frame[~(within | leaked)].reset_index(drop=True)
        seen |= set(keys)
    return result


# ---------------------------------------------------------------- the stage


def prepare_frames(source_frames: dict[str, pd.DataFrame], cfg: Config, report: LoadReport) -> dict[str, pd.DataFrame]:
    """Return clean {train, validation, test} frames: the source's splits kept, missing ones cut from train."""
    report.rows_read = {split: len(frame) for split, frame in source_frames.items()}
    extra = [split for split in source_frames if split not in ("all", *SPLITS)]
    if extra:  # e.g. IMDB's unlabelled "unsupervised" split: not part of a supervised course, but never dropped unsaid
        left_out = sum(len(source_frames[s]) for s in extra)
        report.notes.append(f"left out splits {extra} ({left_out} rows): only train, validation and test are used")
    multi = is_multi_label(source_frames, cfg)
    cleaned = {split: clean_for(frame, cfg, report, split=split, multi=multi)
               for split, frame in source_frames.items() if split not in extra}
    if not multi:  # several labels a row: multilabel.encode already refused what merging would hide
        cleaned = merge_variants(cleaned, report, cfg.merge_label_variants)
    # One label a row whose labels look like lists (x;y, or JSON stored as text) trains their combinations as classes.
    labels = [label for frame in cleaned.values() for label in frame["label"]]
    listed = None if multi else multilabel.label_list_hint(labels)
    warnings = (conflicting_labels(cleaned), numeric_texts(cleaned, cfg.text_column), listed)
    report.warnings += [warning for warning in warnings if warning]
    train = cleaned.pop("all") if "all" in cleaned else cleaned.pop("train")
    shares = {"validation": cfg.validation_size, "test": cfg.test_size}
    held_out = {split: share for split, share in shares.items() if split not in cleaned}
    if held_out:
        rows: dict[str, np.ndarray]
        if multi:
            rows = multilabel_split(train["label"], held_out, cfg.seed)
            how = "an iterative split keeping every label in every split"
        else:
            rows, how = stratified_split(train["label"].to_numpy(), held_out, cfg.seed), "a stratified split"
        report.notes.append(f"made {' and '.join(held_out)} by {how} of the training rows (seed {cfg.seed})")
        cleaned.update({split: train.iloc[rows[split]].reset_index(drop=True) for split in held_out})
        train = train.iloc[rows["train"]].reset_index(drop=True)
    frames = {"train": train, "validation": cleaned["validation"], "test": cleaned["test"]}
    return drop_duplicates_and_leaks(frames, report) if cfg.drop_duplicates else frames


def check_unseen_labels(frames: dict[str, pd.DataFrame]) -> None:
    """Raise DataError when validation or test hold a label that training never shows."""
    train_labels = set(label_items(frames["train"]["label"]))
    for split in ("validation", "test"):
        unseen = Counter(label for label in label_items(frames[split]["label"]) if label not in train_labels)
        if unseen:
            shown = short_list(f"{clip(label)!r}: {n}" for label, n in unseen.most_common())
            raise DataError(
                f"The {split} split has {plural(len(unseen), 'label')} that the training split never shows "
                f"(label: rows): "
                f"{shown}. The model cannot learn them: add training examples of these classes, or remove those "
                f"rows.{swapped_hint(np.asarray(label_items(frames['train']['label'])))}"
            )


def to_dataset_dict(frames: dict[str, pd.DataFrame], label_names: list[str]) -> DatasetDict:
    """Return a datasets.DatasetDict with a string `text` (and `text_pair` for pairs) and a ClassLabel `label` in every
    split; rows of several labels (tuples) get `label` as a list of ClassLabel ids and `labels`, their multi-hot float
    vector in label_names' order (what BCEWithLogitsLoss compares the logits with)."""
    import datasets

    multi = any(isinstance(value, tuple) for frame in frames.values() for value in frame["label"])
    pairs = any("text_pair" in frame.columns for frame in frames.values())
    texts = ["text", "text_pair"] if pairs else ["text"]
    fields = {column: datasets.Value("string") for column in texts}
    label = datasets.ClassLabel(names=label_names)  # encodes each label name as its id
    fields["label"] = datasets.List(label) if multi else label
    if multi:
        fields["labels"] = datasets.List(datasets.Value("float32"))

    def columns(frame: pd.DataFrame) -> dict[str, list]:
        found = {column: frame[column].tolist() for column in texts}
        if not multi:
            return {**found, "label": frame["label"].tolist()}
        rows = [list(value) for value in frame["label"]]
        return {**found, "label": rows, "labels": multilabel.multi_hot(rows, label_names).tolist()}

    return datasets.DatasetDict({split: datasets.Dataset.from_dict(columns(frame), features=datasets.Features(fields))
                                 for split, frame in frames.items()})


def check_known_labels(present: Iterable[str], model_label_names: list[str], source: str = "The data") -> None:
    """Refuse labels a model was not trained on, naming them and the ones it knows: the one check before scoring."""
    unknown = sorted(set(present) - set(model_label_names))
    if unknown:
        raise DataError(f"{source} has {plural(len(unknown), 'label')} the model was not trained on: "
                        f"{short_list(map(repr, unknown), 10)}; the model knows "
                        f"{short_list(map(repr, model_label_names), 10)}. Score it with a model fine-tuned on these "
                        "labels, or remove those rows.")


def prepare_splits(raw: DatasetDict | dict[str, pd.DataFrame], cfg: Config) -> tuple[DatasetDict, LoadReport]:
    """Return (DatasetDict of train/validation/test, LoadReport) from a DatasetDict or {split: DataFrame}."""
    frames_given = all(isinstance(frame, pd.DataFrame) for frame in raw.values())
    source_frames = raw if frames_given else dataset_frames(raw)
    report = LoadReport(source=cfg.dataset)
    frames = prepare_frames(source_frames, cfg, report)
    if cfg.max_train_examples and cfg.max_train_examples < len(frames["train"]):
        frames["train"] = subsample(frames["train"], cfg.max_train_examples, cfg.seed)
        report.notes.append(f"kept {len(frames['train'])} training rows, stratified (max_train_examples)")
    check_unseen_labels(frames)
    source_names = next(iter(source_frames.values())).attrs.get("class_names", {}).get(cfg.label_column)
    names = label_names_for(pd.Series(label_items(frames["train"]["label"])), source_names)
    report.split_sizes = {split: len(frame) for split, frame in frames.items()}
    return to_dataset_dict(frames, names), report


def load_splits(cfg: Config, options: ReadOptions | None = None, *,
                frames: dict[str, pd.DataFrame] | None = None) -> tuple[DatasetDict, LoadReport]:
    """Return (splits, LoadReport) for cfg.dataset (a file, folder or Hub id), read with `options`, cleaned, encoded
    and split; what reading detected or replaced is in the report. frames: the data already read ({split: frame},
    as readers.read_source returns it), for a format no reader knows."""
    frames = read_source(cfg.dataset, options, config=cfg.dataset_config) if frames is None else frames
    splits, report = prepare_splits(frames, cfg)
    for split, frame in frames.items():
        report.count(report.converted, f"{split}: undecodable characters replaced with U+FFFD",
                     frame.attrs.get("replaced_characters", 0))
    report.notes[:0] = [note for note in source_notes(frames) if note not in report.notes]
    return splits, report


def label_names(splits: DatasetDict) -> list[str]:
    """Return the class names of a DatasetDict, in label-id order (a multi-label split's too)."""
    feature = splits["train"].features["label"]
    return list(getattr(feature, "feature", feature).names)


def task_of(splits: DatasetDict) -> str:
    """Return the task the splits hold: MULTI_LABEL (a multi-hot `labels` column), PAIRS (`text_pair`), else
    SINGLE_LABEL."""
    columns = splits["train"].column_names
    return MULTI_LABEL if "labels" in columns else PAIRS if "text_pair" in columns else SINGLE_LABEL


def task_line(splits: DatasetDict, cfg: Config) -> str:
    """Return the task in words: 'multi-label (5 labels, separator ';')', 'pairs (columns a, b; 2 labels)'."""
    task, n = task_of(splits), plural(len(label_names(splits)), "label")
    if task == MULTI_LABEL:
        how = (f"separator {cfg.label_separator!r}" if cfg.label_separator
               else f"lists in the column {cfg.label_column!r}")
        return f"{task} ({n}, {how})"
    if task == PAIRS:
        return f"{task} (columns {cfg.text_column!r} and {cfg.text_pair_column!r}; {n})"
    return f"{task} ({n})"


def class_counts(splits: DatasetDict) -> pd.DataFrame:
    """Return a table of examples per class (rows) and split (columns); a multi-label row counts once per label."""
    names = label_names(splits)

    def counts(split: str) -> np.ndarray:
        if "labels" in splits[split].column_names:
            return np.asarray(splits[split]["labels"], dtype=float).reshape(-1, len(names)).sum(axis=0).astype(int)
        return np.bincount(splits[split]["label"], minlength=len(names))

    return pd.DataFrame({split: counts(split) for split in splits}, index=pd.Index(names, name="label"))


def examples(splits: DatasetDict, split: str = "train", n: int = 5, seed: int = 0) -> pd.DataFrame:
    """Return n random examples of a split with their label names."""
    table = splits[split].shuffle(seed=seed).select(range(min(n, len(splits[split]))))
    names = label_names(splits)
    labels = [", ".join(names[i] for i in ids) if isinstance(ids, list) else names[ids] for ids in table["label"]]
    return pd.DataFrame({"text": table["text"], "label": labels})
