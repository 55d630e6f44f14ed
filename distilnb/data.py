"""Stage 01: load a labelled dataset (Hub id, file or folder), clean it, encode labels, split, report leakage."""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from distilnb.config import Config, from_hub, project_root

# File stems that name a split when a folder of files is given (emotion ships train/val/test, SST-2 train/dev/test).
SPLIT_ALIASES = {"train": "train", "training": "train", "val": "validation", "valid": "validation",
                 "validation": "validation", "dev": "validation", "test": "test", "testing": "test"}
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".jsonl", ".json", ".parquet")


@dataclass
class LoadReport:
    """What loading and cleaning did: rows read, dropped and converted, per reason, and the split sizes."""

    source: str
    rows_read: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    converted: dict[str, int] = field(default_factory=dict)
    split_sizes: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    settings: dict = field(default_factory=dict)

    def count(self, table: dict[str, int], reason: str, n: int) -> None:
        """Add n to a reason's count (nothing when n is 0)."""
        if n:
            table[reason] = table.get(reason, 0) + int(n)

    def summary(self) -> str:
        """Return a few readable lines: rows read, each drop and conversion with its count, split sizes."""
        lines = [f"source: {self.source}", f"rows read: {self.rows_read}"]
        lines += [f"dropped {n} rows: {reason}" for reason, n in self.dropped.items()] or ["dropped: none"]
        lines += [f"converted {n} values: {reason}" for reason, n in self.converted.items()]
        lines += [f"split sizes: {self.split_sizes}"] + [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


# ---------------------------------------------------------------- reading files


def read_table(path: str | Path, encoding: str = "utf-8") -> pd.DataFrame:
    """Return a file's rows as a DataFrame of strings; CSV/TSV/TXT separators and quoting are detected."""
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise FileNotFoundError(f"No file at {path}: check the path (relative paths start at {Path.cwd()}).")
    if suffix not in TABLE_SUFFIXES:
        raise ValueError(f"Cannot read {path.name}: unknown file type {suffix!r}. Use one of {', '.join(TABLE_SUFFIXES)}.")
    if suffix == ".parquet":
        return pd.read_parquet(path)
    text = _decode(path, encoding)
    if suffix in (".jsonl", ".json"):
        return _read_json_text(text, path)
    return _read_delimited_text(text, path)


def _decode(path: Path, encoding: str) -> str:
    """Return a file's text, or raise a clear error naming the first undecodable byte."""
    data = path.read_bytes()
    try:
        return data.decode(encoding).lstrip("\ufeff")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{path.name} is not valid {encoding}: byte {data[error.start]:#04x} at position {error.start} cannot be read. "
            "Re-save the file as UTF-8, or pass encoding='latin-1' (or the file's real encoding)."
        ) from None


def _read_json_text(text: str, path: Path) -> pd.DataFrame:
    """Return rows of JSON Lines (or a JSON list of objects) as a DataFrame."""
    stripped = text.strip()
    if stripped.startswith("["):
        return pd.DataFrame(json.loads(stripped))
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ValueError(f"{path.name}, line {number}: not valid JSON ({error.msg}). Each line must be one JSON object.") from None
    return pd.DataFrame(rows)


def sniff_separator(text: str) -> str:
    """Return the most likely separator of a delimited text: the candidate splitting the header and first lines evenly."""
    lines = [line for line in text.splitlines()[:50] if line.strip()]
    if not lines:
        raise ValueError("The file is empty: it has no header line and no rows.")
    best, best_score = ",", -1.0
    for separator in ("\t", ";", ",", "|"):
        header_fields = lines[0].count(separator)
        if header_fields == 0:
            continue
        agreeing = sum(line.count(separator) == header_fields for line in lines)
        score = agreeing / len(lines) + header_fields * 1e-3
        if score > best_score:
            best, best_score = separator, score
    return best


def _read_delimited_text(text: str, path: Path) -> pd.DataFrame:
    """Return a CSV/TSV/TXT text as a DataFrame of strings, choosing quoting that keeps every line's row."""
    separator = "\t" if path.suffix.lower() == ".tsv" else sniff_separator(text)
    quoted = _read_with_quoting(text, separator, csv.QUOTE_MINIMAL)
    if not re.search(rf'(^|{re.escape(separator)})"', text, flags=re.MULTILINE):
        return quoted
    # A field starts with a quote: either real CSV quoting, or a text that happens to begin with one (the emotion
    # files do this, and quoting then swallows the following lines into one field). Take plain splitting only when
    # quoting merged lines and plain splitting gives every line a complete row.
    merged = quoted.apply(lambda column: column.str.contains("\n", na=False)).to_numpy().any()
    if not merged:
        return quoted
    try:
        plain = _read_with_quoting(text, separator, csv.QUOTE_NONE)
    except ValueError:
        return quoted
    return plain if not plain.isna().to_numpy().any() else quoted


def _read_with_quoting(text: str, separator: str, quoting: int) -> pd.DataFrame:
    """Return the text parsed with pandas under one quoting rule, with a clear error for ragged lines."""
    try:
        return pd.read_csv(io.StringIO(text), sep=separator, quoting=quoting, dtype=str, keep_default_na=False,
                           na_values=[""], engine="python" if len(separator) > 1 else "c")
    except pd.errors.ParserError as error:
        raise ValueError(
            f"Could not split the file on {separator!r}: {error}. Quote texts that contain the separator "
            '(wrap the field in double quotes, doubling any quote inside), or save as JSON Lines.'
        ) from None


def find_split_files(folder: Path) -> dict[str, Path]:
    """Return {split: file} for files in a folder whose names say train / val(idation) / dev / test."""
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        split = SPLIT_ALIASES.get(path.stem.lower().split(".")[0])
        if split and path.suffix.lower() in TABLE_SUFFIXES:
            if split in found:
                raise ValueError(f"Two files in {folder} look like the {split} split: {found[split].name} and {path.name}. Keep one.")
            found[split] = path
    if "train" not in found:
        raise ValueError(f"{folder} has no training file: name one train.csv (or .tsv/.txt/.jsonl/.parquet).")
    return found


def read_source(source: str, encoding: str = "utf-8") -> dict[str, pd.DataFrame]:
    """Return {split: DataFrame} from a file, a folder of split files, or a Hugging Face Hub dataset id."""
    path = Path(source).expanduser()
    if not path.is_absolute() and not path.exists() and (project_root() / path).exists():
        path = project_root() / path  # a notebook runs in notebooks/, but paths in the README start at the project root
    if path.is_dir():
        return {split: read_table(file, encoding) for split, file in find_split_files(path).items()}
    if path.is_file():
        return {"all": read_table(path, encoding)}
    if path.suffix.lower() in TABLE_SUFFIXES:
        raise FileNotFoundError(f"No file at {path.resolve()}: check the path, or give a Hub dataset id like 'dair-ai/emotion'.")
    return read_hub_dataset(source)


def read_hub_dataset(dataset_id: str) -> dict[str, pd.DataFrame]:
    """Return {split: DataFrame} of a Hub dataset, with ClassLabel names written out as strings."""
    import datasets

    loaded = from_hub(f"the dataset {dataset_id!r}", lambda: datasets.load_dataset(dataset_id))
    frames = {}
    for split, table in loaded.items():
        frame = table.to_pandas()
        for name, feature in table.features.items():
            if isinstance(feature, datasets.ClassLabel):
                frame[name] = [feature.names[i] if i is not None and i >= 0 else None for i in frame[name]]
                frame.attrs.setdefault("class_names", {})[name] = list(feature.names)
        frames[SPLIT_ALIASES.get(split, split)] = frame
    return frames


# ---------------------------------------------------------------- cleaning and labels


def check_columns(frame: pd.DataFrame, text_column: str, label_column: str, where: str) -> None:
    """Raise a clear error when the text or label column is missing, naming the columns there are."""
    for role, column in (("text", text_column), ("label", label_column)):
        if column not in frame.columns:
            raise KeyError(
                f"The {role} column {column!r} is not in {where}; its columns are {list(frame.columns)}. "
                f"Set {role.upper()}_COLUMN in the parameters cell (or DISTILNB_{role.upper()}_COLUMN) to one of them."
            )


def canonical_label(value: object) -> str | None:
    """Return a label as a string ('1.0' and 1 both become '1'); None for a missing label."""
    if value is None or pd.api.types.is_scalar(value) and pd.isna(value):
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


def clean_frame(frame: pd.DataFrame, text_column: str, label_column: str, report: LoadReport, split: str) -> pd.DataFrame:
    """Return rows with a non-empty text and a label, as columns text/label; every drop and conversion is counted."""
    check_columns(frame, text_column, label_column, f"the {split} data")
    texts, labels, non_strings = [], [], 0
    for row, (text, label) in enumerate(zip(frame[text_column], frame[label_column])):
        text = None if pd.api.types.is_scalar(text) and pd.isna(text) else text
        if isinstance(text, (int, float, np.integer, np.floating)) and not (isinstance(text, float) and np.isnan(text)):
            text, non_strings = str(text), non_strings + 1
        elif text is not None and not isinstance(text, str) and not (isinstance(text, float) and np.isnan(text)):
            raise TypeError(f"Row {row} of the {split} data has a text of type {type(text).__name__}: texts must be strings.")
        texts.append(text if isinstance(text, str) else None)
        labels.append(canonical_label(label))
    cleaned = pd.DataFrame({"text": texts, "label": labels})
    missing_text = cleaned["text"].isna()
    empty_text = ~missing_text & (cleaned["text"].fillna("").str.strip() == "")
    missing_label = ~missing_text & ~empty_text & cleaned["label"].isna()
    report.count(report.dropped, f"{split}: missing text", missing_text.sum())
    report.count(report.dropped, f"{split}: empty or whitespace-only text", empty_text.sum())
    report.count(report.dropped, f"{split}: missing label", missing_label.sum())
    report.count(report.converted, f"{split}: non-string text turned into a string", non_strings)
    return cleaned[~(missing_text | empty_text | missing_label)].reset_index(drop=True)


def label_names_for(labels: pd.Series, known_names: list[str] | None = None) -> list[str]:
    """Return the class names in id order: the source's own order when it covers every label, else numeric or alphabetical."""
    present = set(labels)
    if known_names and present <= set(known_names):
        return list(known_names)
    numeric = all(re.fullmatch(r"-?\d+", name) for name in present)
    return sorted(present, key=int) if numeric else sorted(present)


# ---------------------------------------------------------------- splitting


def stratified_split(labels: np.ndarray, held_out: dict[str, float], seed: int) -> dict[str, np.ndarray]:
    """Return {"train": rows, **{split: rows}}: each held-out split takes its share of every class, at least one row."""
    if any(not 0 < share < 1 for share in held_out.values()) or sum(held_out.values()) >= 1:
        raise ValueError(f"Held-out shares must each lie in (0, 1) and sum to less than 1, got {held_out}.")
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2:
        raise ValueError(f"The data has a single class ({classes[0] if len(classes) else 'none'}): a classifier needs at least two.")
    needed = 1 + len(held_out)
    too_small = {str(c): int(n) for c, n in zip(classes, counts) if n < needed}
    if too_small:
        raise ValueError(
            f"These classes have fewer than {needed} examples, too few for one in train and in each of "
            f"{', '.join(held_out)}: {too_small} (class: rows). Add examples, merge them into a related class, or remove their rows."
        )
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], **{split: [] for split in held_out}}
    for cls in classes:
        rows = rng.permutation(np.flatnonzero(labels == cls))
        sizes = [max(1, round(len(rows) * share)) for share in held_out.values()]
        if len(rows) - sum(sizes) < 1:
            sizes = [1] * len(held_out)
        start = 0
        for split, size in zip(held_out, sizes):
            parts[split].append(rows[start:start + size])
            start += size
        parts["train"].append(rows[start:])
    return {split: np.sort(np.concatenate(chunks)) for split, chunks in parts.items()}


# ---------------------------------------------------------------- duplicates and leakage


def normalise_text(text: str) -> str:
    """Return a text lower-cased with runs of white space folded, the key for duplicate detection."""
    return " ".join(text.lower().split())


def duplicate_report(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Return a table: per split, rows, duplicate texts within it, and texts it shares with each earlier split."""
    keys = {split: frames[split]["text"].map(normalise_text) for split in frames}
    rows = []
    for i, split in enumerate(frames):
        row = {"split": split, "rows": len(keys[split]), "duplicates within": int(keys[split].duplicated().sum())}
        for earlier in list(frames)[:i]:
            row[f"shared with {earlier}"] = int(keys[split].isin(set(keys[earlier])).sum())
        rows.append(row)
    return pd.DataFrame(rows).fillna(0).set_index("split").astype(int)


def drop_duplicates_and_leaks(frames: dict[str, pd.DataFrame], report: LoadReport) -> dict[str, pd.DataFrame]:
    """Return frames without repeated texts: later splits lose rows whose text is in an earlier split; counts go to the report."""
    seen: set[str] = set()
    result = {}
    for split, frame in frames.items():
        keys = frame["text"].map(normalise_text)
        within = keys.duplicated()
        leaked = ~within & keys.isin(seen)
        report.count(report.dropped, f"{split}: duplicate text within the split", within.sum())
        report.count(report.dropped, f"{split}: text already in an earlier split", leaked.sum())
        result[split] = frame[~(within | leaked)].reset_index(drop=True)
        seen |= set(keys)
    return result


# ---------------------------------------------------------------- the stage


def prepare_frames(source_frames: dict[str, pd.DataFrame], cfg: Config, report: LoadReport) -> dict[str, pd.DataFrame]:
    """Return clean {train, validation, test} frames: the source's splits kept, missing ones cut from train by stratified split."""
    report.rows_read = {split: len(frame) for split, frame in source_frames.items()}
    extra = [split for split in source_frames if split not in ("all", "train", "validation", "test")]
    if extra:  # e.g. IMDB's unlabelled "unsupervised" split: not part of a supervised course, but never dropped unsaid
        report.notes.append(f"left out splits {extra} ({sum(len(source_frames[s]) for s in extra)} rows): only train, validation and test are used")
    used = {split: frame for split, frame in source_frames.items() if split not in extra}
    cleaned = {split: clean_frame(frame, cfg.text_column, cfg.label_column, report, split) for split, frame in used.items()}
    train = cleaned.pop("all") if "all" in cleaned else cleaned.pop("train")
    shares = {"validation": cfg.validation_size, "test": cfg.test_size}
    held_out = {split: share for split, share in shares.items() if split not in cleaned}
    if held_out:
        rows = stratified_split(train["label"].to_numpy(), held_out, cfg.seed)
        report.notes.append(f"made {' and '.join(held_out)} by a stratified split of the training rows (seed {cfg.seed})")
        cleaned.update({split: train.iloc[rows[split]].reset_index(drop=True) for split in held_out})
        train = train.iloc[rows["train"]].reset_index(drop=True)
    frames = {"train": train, "validation": cleaned["validation"], "test": cleaned["test"]}
    return drop_duplicates_and_leaks(frames, report) if cfg.drop_duplicates else frames


def check_unseen_labels(frames: dict[str, pd.DataFrame]) -> None:
    """Raise a clear error when validation or test hold a label that training never shows."""
    train_labels = set(frames["train"]["label"])
    for split in ("validation", "test"):
        unseen = Counter(label for label in frames[split]["label"] if label not in train_labels)
        if unseen:
            raise ValueError(
                f"The {split} split has labels that the training split never shows: {dict(unseen)} (label: rows). "
                "The model cannot learn them: add training examples of these classes, or remove those rows."
            )


def subsample(frame: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    """Return about `size` rows of a frame, each class keeping its share and at least one row."""
    share, rng = size / len(frame), np.random.default_rng(seed)
    keep = [rng.choice(rows, max(1, round(len(rows) * share)), replace=False) for rows in frame.groupby("label").indices.values()]
    return frame.iloc[np.sort(np.concatenate(keep))].reset_index(drop=True)


def to_dataset_dict(frames: dict[str, pd.DataFrame], label_names: list[str]):
    """Return a datasets.DatasetDict with a string `text` and a ClassLabel `label` in every split."""
    import datasets

    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=label_names)})
    index = {name: i for i, name in enumerate(label_names)}
    return datasets.DatasetDict({
        split: datasets.Dataset.from_dict(
            {"text": frame["text"].tolist(), "label": [index[label] for label in frame["label"]]}, features=features)
        for split, frame in frames.items()
    })


SOURCE_SETTINGS = ("dataset", "text_column", "label_column")
SPLIT_SETTINGS = ("seed", "validation_size", "test_size", "drop_duplicates", "max_train_examples")


def source_fingerprint(source: str) -> str:
    """Return size and modification time of a local source (file or folder of files), '' for a Hub id."""
    path = Path(source).expanduser()
    files = sorted(path.iterdir()) if path.is_dir() else [path] if path.is_file() else []
    return ";".join(f"{f.name}:{f.stat().st_size}:{int(f.stat().st_mtime)}" for f in files if f.is_file())


def data_settings(cfg: Config) -> dict:
    """Return what decides the splits: the source, its fingerprint and the split settings."""
    settings = {name: getattr(cfg, name) for name in SOURCE_SETTINGS + SPLIT_SETTINGS}
    return {**settings, "fingerprint": source_fingerprint(cfg.dataset)}


def load_splits(cfg: Config, encoding: str = "utf-8"):
    """Return (DatasetDict with train/validation/test, LoadReport) for cfg.dataset, cleaned, encoded and split."""
    report = LoadReport(source=cfg.dataset, settings=data_settings(cfg))
    source_frames = read_source(cfg.dataset, encoding)
    frames = prepare_frames(source_frames, cfg, report)
    if cfg.max_train_examples and cfg.max_train_examples < len(frames["train"]):
        frames["train"] = subsample(frames["train"], cfg.max_train_examples, cfg.seed)
        report.notes.append(f"kept {len(frames['train'])} training rows, stratified (max_train_examples)")
    check_unseen_labels(frames)
    source_names = next(iter(source_frames.values())).attrs.get("class_names", {}).get(cfg.label_column)
    label_names = label_names_for(frames["train"]["label"], source_names)
    report.split_sizes = {split: len(frame) for split, frame in frames.items()}
    return to_dataset_dict(frames, label_names), report


def label_names(splits) -> list[str]:
    """Return the class names of a DatasetDict, in label-id order."""
    return list(splits["train"].features["label"].names)


def save_splits(splits, report: LoadReport, folder: Path) -> Path:
    """Write the splits (save_to_disk) and the load report as JSON to `folder`; return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    splits.save_to_disk(str(folder))
    (folder / "load_report.json").write_text(json.dumps(asdict(report), indent=2))
    return folder


def load_or_build_splits(cfg: Config):
    """Return (splits, report): the run's saved splits when they come from the same unchanged source, else new, saved ones.

    Saved splits win over differing split settings (seed, sizes, ...), with a printed note: later chapters must
    evaluate on the very splits the model was trained with. 01_data (or `distilnb train`) rebuilds them.
    """
    import datasets

    folder = cfg.paths.data
    if (folder / "dataset_dict.json").is_file() and (folder / "load_report.json").is_file():
        saved = LoadReport(**json.loads((folder / "load_report.json").read_text()))
        wanted = data_settings(cfg)
        same_source = all(saved.settings.get(k) == wanted[k] for k in (*SOURCE_SETTINGS, "fingerprint"))
        if same_source:
            differing = {k: saved.settings.get(k) for k in SPLIT_SETTINGS if saved.settings.get(k) != wanted[k]}
            if differing:
                print(f"Using the splits saved in {folder}, made with {differing}; rerun 01_data to rebuild them.")
            return datasets.load_from_disk(str(folder)), saved
    return build_and_save_splits(cfg)


def build_and_save_splits(cfg: Config):
    """Return (splits, report) built from the source now, after saving them to the run's data folder."""
    splits, report = load_splits(cfg)
    save_splits(splits, report, cfg.paths.data)
    return splits, report


def class_counts(splits) -> pd.DataFrame:
    """Return a table of examples per class (rows) and split (columns)."""
    names = label_names(splits)
    return pd.DataFrame({
        split: pd.Series(Counter(splits[split]["label"])).reindex(range(len(names)), fill_value=0).to_numpy()
        for split in splits
    }, index=pd.Index(names, name="label"))


def examples(splits, split: str = "train", n: int = 5, seed: int = 0) -> pd.DataFrame:
    """Return n random examples of a split with their label names."""
    table = splits[split].shuffle(seed=seed).select(range(min(n, len(splits[split]))))
    names = label_names(splits)
    return pd.DataFrame({"text": table["text"], "label": [names[i] for i in table["label"]]})
