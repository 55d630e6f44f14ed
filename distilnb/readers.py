"""Reading labelled data as it comes: CSV/TSV/TXT (separator, header and format sniffed), JSON Lines, JSON, Parquet,
folders of split files, separate split files, Hub ids; any encoding, with undecodable bytes refused or counted.

A wrong option is a SettingError naming it (the command line says it as its flag); other messages name options in
setting mentions ({encoding}) that each front end spells: `--encoding` on the command line, `encoding=` in a notebook.

pandas is imported by the functions that build a table: `distilnb predict` decodes plain lines without loading it.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import dataclasses
import gzip
import io
import json
import lzma
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distilnb.config import resolve_path
from distilnb.errors import DataError, NotFoundError, SettingError, from_hub, short_list

if TYPE_CHECKING:
    import pandas as pd
    from datasets import DatasetDict

# File stems that name a split when a folder of files is given (emotion ships train/val/test, SST-2 train/dev/test).
SPLIT_ALIASES = {"train": "train", "training": "train", "val": "validation", "valid": "validation",
                 "validation": "validation", "dev": "validation", "test": "test", "testing": "test"}
FORMATS = ("csv", "tsv", "jsonl", "json", "parquet")
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".jsonl", ".json", ".parquet")
SUFFIX_FORMATS = {".csv": "csv", ".txt": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "json",
                  ".parquet": "parquet"}
SEPARATORS = "\t;,|"  # the separators sniffed, in the order a tie is broken
# Compressed files, known by their first bytes (so a misnamed one is read too); the name's suffix is dropped to find
# the format inside (x.csv.gz is a CSV).
COMPRESSIONS = {b"\x1f\x8b": ("gzip", ".gz"), b"BZh": ("bz2", ".bz2"), b"\xfd7zXZ\x00": ("xz", ".xz"),
                b"PK\x03\x04": ("zip", ".zip")}
POSITIONAL_COLUMNS = ("text", "label")  # names given to the columns of a file without a header line, in order
REPLACEMENT = "\ufffd"


@dataclass(frozen=True)
class ReadOptions:
    """How to read files: encoding, what to do with undecodable bytes, header line, format, separate split files."""

    encoding: str = "utf-8"
    encoding_errors: str = "strict"  # or "replace": each undecodable byte becomes U+FFFD and is counted
    header: bool | None = None  # None: detected
    format: str | None = None  # None: from the extension, else sniffed from the content
    split_files: Mapping[str, str] = field(default_factory=dict)  # {"validation": path, "test": path} beside the source

    def __post_init__(self) -> None:
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise SettingError("is not an encoding Python knows: try utf-8, latin-1 or cp1252", "encoding",
                               self.encoding) from None
        if self.encoding_errors not in ("strict", "replace"):
            raise SettingError("must be strict or replace", "encoding_errors", self.encoding_errors)
        if self.format is not None and self.format not in FORMATS:
            raise SettingError(f"is not one of {', '.join(FORMATS)}", "format", self.format)


def chosen_options(options: ReadOptions | None, **changes: Any) -> ReadOptions:
    """Return `options` (default ReadOptions()) with the caller's explicit changes applied on top."""
    changes = {name: value for name, value in changes.items() if value is not None}
    return dataclasses.replace(options or ReadOptions(), **changes)


# ---------------------------------------------------------------- decoding


def decode(data: bytes, name: str, encoding: str = "utf-8", encoding_errors: str = "strict") -> tuple[str, int]:
    """Return (text, characters replaced) of bytes, or raise a DataError naming the first undecodable byte."""
    try:
        return data.decode(encoding).lstrip("\ufeff"), 0
    except UnicodeDecodeError as error:
        if encoding_errors == "replace":
            text = data.decode(encoding, errors="replace").lstrip("\ufeff")
            return text, text.count(REPLACEMENT) - data.decode(encoding, errors="ignore").count(REPLACEMENT)
        line = data[: error.start].count(b"\n") + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise DataError(
            f"{name} is not valid {encoding}: byte {data[error.start]:#04x} at line {line}, column {column} cannot be "
            f"read. Re-save it as UTF-8, give its real encoding ({{encoding=latin-1}}, cp1252, ...), or set "
            "{encoding_errors=replace}, which turns each undecodable byte into U+FFFD and counts them."
        ) from None


# ---------------------------------------------------------------- one file


def decompressed(data: bytes, path: Path) -> tuple[bytes, Path]:
    """Return (the bytes inside a gzip, bz2, xz or zip file, the name they have there), or (data, path) as they are.

    Decompressed here rather than by pandas (compression='infer'), because the reader decodes the bytes itself, to
    name an undecodable byte's line and column, and sniffs format and separator from them.
    """
    kind = next((found for magic, found in COMPRESSIONS.items() if data.startswith(magic)), None)
    if kind is None:
        return data, path
    name, suffix = kind
    inner = path.with_suffix("") if path.suffix.lower() == suffix else path
    try:
        if name != "zip":
            return {"gzip": gzip, "bz2": bz2, "xz": lzma}[name].decompress(data), inner
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [m for m in archive.namelist() if not m.endswith("/") and not m.startswith("__MACOSX")]
            if len(members) != 1:
                raise DataError(f"{path.name} is a zip archive of {len(members)} files ({short_list(members)}): "
                                "zip one data file, or unpack it and give the file or its folder.")
            return archive.read(members[0]), Path(members[0])
    except (OSError, EOFError, lzma.LZMAError, zipfile.BadZipFile) as error:
        raise DataError(f"{path.name} looks {name}-compressed but cannot be unpacked ({error}).") from None


def table_suffix(path: Path) -> str:
    """Return a file name's format suffix, under a compression suffix if any: '.csv' for x.csv.gz."""
    compressed = {suffix for _, suffix in COMPRESSIONS.values()}
    return (path.with_suffix("") if path.suffix.lower() in compressed else path).suffix.lower()


def file_format(path: Path, data: bytes, options: ReadOptions) -> str:
    """Return the format of a file: the option, else its extension, else sniffed from its first bytes."""
    if options.format:
        return options.format
    if path.suffix.lower() in SUFFIX_FORMATS:
        return SUFFIX_FORMATS[path.suffix.lower()]
    if data.startswith(b"PAR1"):
        return "parquet"
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    return "json" if head.startswith(b"[") else "jsonl" if head.startswith(b"{") else "csv"


def read_table(path: str | Path, options: ReadOptions | None = None, **changes: Any) -> pd.DataFrame:
    """Return a file's rows as a DataFrame of strings (Parquet and JSON keep their types); see ReadOptions.

    frame.attrs["replaced_characters"] counts bytes replaced under encoding_errors='replace'; frame.attrs["notes"]
    says what was detected (no header line, the format of a file without extension).
    """
    path, chosen = Path(path), chosen_options(options, **changes)
    if not path.is_file():
        raise NotFoundError(f"No file at {path}: check the path (relative paths start at {Path.cwd()}).")
    data = read_bytes(path)
    if not data:
        raise DataError(f"{path} is empty (0 bytes): it has no header line and no rows.")
    data, inner = decompressed(data, path)
    kind = file_format(inner, data, chosen)
    if kind == "parquet":
        import pandas as pd

        return _checked(pd.read_parquet(io.BytesIO(data)), path)
    text, replaced = decode(data, path.name, chosen.encoding, chosen.encoding_errors)
    if kind in ("jsonl", "json"):
        frame = _read_json_text(text, path)
    else:
        frame = read_delimited(text, path, "\t" if kind == "tsv" else None, chosen.header)
    if replaced:
        frame.attrs["replaced_characters"] = replaced
        plural = "s" * (replaced != 1)
        frame.attrs.setdefault("notes", []).append(
            f"{path.name}: replaced {replaced} undecodable character{plural} with U+FFFD ({chosen.encoding})")
    if inner.suffix.lower() not in SUFFIX_FORMATS and not chosen.format:
        frame.attrs.setdefault("notes", []).append(f"{path.name}: read as {kind} (sniffed: no known extension)")
    return _checked(frame, path)


def read_bytes(path: Path) -> bytes:
    """Return a file's bytes, or raise a DataError in one sentence when the system refuses to read it."""
    try:
        return path.read_bytes()
    except PermissionError:
        raise DataError(f"{path} cannot be read: this user has no permission to read it. Give read permission "
                        f"(chmod +r {path.name}) or copy it somewhere readable.") from None
    except IsADirectoryError:
        raise DataError(f"{path} is a folder, not a file.") from None


def _checked(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Return the frame, or raise a DataError for a file that holds no rows."""
    if len(frame) == 0:
        columns = ", ".join(map(str, frame.columns))
        has = f"only a header line ({columns})" if columns else "no rows"
        raise DataError(f"{path.name} has {has}: add one row per example below the header, then run again.")
    return frame


def _read_json_text(text: str, path: Path) -> pd.DataFrame:
    """Return rows of JSON Lines (or a JSON list of objects) as a DataFrame."""
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            return records_frame(json.loads(stripped), path)
        except json.JSONDecodeError as error:
            raise DataError(f"{path.name}: not valid JSON at line {error.lineno} ({error.msg}).") from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise DataError(f"{path.name}, line {number}: not valid JSON ({error.msg}). Each line must be one "
                                "JSON object.") from None
    return records_frame(rows, path)


def records_frame(records: list, path: Path) -> pd.DataFrame:
    """Return JSON objects as a DataFrame, nested objects flattened into dotted columns ({"meta": {"label": ..}} gives
    meta.label), or raise a DataError when a record is not an object."""
    odd = next((record for record in records if not isinstance(record, dict)), None)
    if odd is not None:
        raise DataError(f"{path.name} holds {type(odd).__name__} values where JSON objects are expected, such as "
                        f"{str(odd)[:60]!r}: give one object per example, like {{\"text\": ..., \"label\": ...}}.")
    import pandas as pd

    return pd.json_normalize(records)


def sniff_separator(text: str, name: str = "The file") -> str:
    """Return the separator of a delimited text, as csv.Sniffer finds it in the first lines, else our own guess."""
    lines = [line for line in text.splitlines()[:50] if line.strip()]
    if not lines:
        raise DataError(f"{name} is empty: it has no header line and no rows.")
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=SEPARATORS).delimiter
    except csv.Error:
        return most_even_separator(lines)


def most_even_separator(lines: list[str]) -> str:
    """Return the candidate separator splitting the lines most alike, else ','.

    csv.Sniffer gives up when no candidate splits every line the same way: a single text column, or texts that hold
    the separator unquoted in some lines. A file of one column then reads as one, and an uneven file as its most
    common layout, where the parser names the line that disagrees.
    """
    best, best_score = ",", -1.0
    for separator in SEPARATORS:
        first_fields = lines[0].count(separator)
        if first_fields == 0:
            continue
        agreeing = sum(line.count(separator) == first_fields for line in lines)
        score = agreeing / len(lines) + first_fields * 1e-3
        if score > best_score:
            best, best_score = separator, score
    return best


def read_delimited(text: str, path: Path, separator: str | None = None, header: bool | None = None) -> pd.DataFrame:
    """Return a CSV/TSV/TXT text as a DataFrame of strings, choosing quoting that keeps every line's row.

    Without a header line (header=False, or detected) the columns are named text, label by position: see
    name_positional_columns.
    """
    separator = separator or sniff_separator(text, path.name)
    rows = _parse_keeping_lines(text, separator)
    if rows.empty:
        return rows
    first = [str(value).strip() for value in rows.iloc[0]]
    if header is None:
        header = looks_like_header(rows)
    elif not header:
        refuse_header_line(rows, path)
    if header:
        body = rows.iloc[1:].reset_index(drop=True)
        body.columns = [name or f"column_{i + 1}" for i, name in enumerate(first)]
        return body
    frame = name_positional_columns(rows)
    frame.attrs.setdefault("notes", []).append(
        f"{path.name}: no header line, columns named {', '.join(frame.columns)} by position")
    return frame


def refuse_header_line(rows: pd.DataFrame, path: Path) -> None:
    """Raise a DataError when a file read without a header line starts with one (its names in no other row)."""
    if len(rows) > 2 and looks_like_header(rows) and all(
            re.fullmatch(r"[A-Za-z_][\w.-]{0,30}", str(value).strip() or "-") for value in rows.iloc[0]):
        first = ", ".join(str(value) for value in rows.iloc[0])
        raise DataError(f"{path.name} starts with a header line ({first}), but {{header=False}} says it has none: "
                        "leave that setting out (a header line is detected) or remove the line.")


def _parse_keeping_lines(text: str, separator: str) -> pd.DataFrame:
    """Return every row (header line included) as strings, under the quoting that keeps each line a row."""
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
    except DataError:
        return quoted
    return plain if not plain.isna().to_numpy().any() else quoted


def _read_with_quoting(text: str, separator: str, quoting: int) -> pd.DataFrame:
    """Return the text parsed with pandas under one quoting rule (no header: the caller decides), strings only."""
    import pandas as pd

    try:
        return pd.read_csv(io.StringIO(text), sep=separator, quoting=quoting, dtype=str, keep_default_na=False,
                           na_values=[""], header=None, engine="python" if len(separator) > 1 else "c")
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except pd.errors.ParserError as error:
        raise DataError(
            f"Could not split the file on {separator!r}: {error}. Quote texts that contain the separator "
            "(wrap the field in double quotes, doubling any quote inside), or save as JSON Lines."
        ) from None


def looks_like_header(rows: pd.DataFrame) -> bool:
    """Return True when the first row names columns rather than holding an example.

    A label column repeats its values (each class has several rows) while a header's name for it appears once, and
    a numeric column does not start with a word: so the first row is a header when, in some column whose other values
    repeat or are all numbers, its value is not among them. A file with no such column (texts only) is taken to have
    a header only when its first row is one name per column, like 'text'.

    Not csv.Sniffer.has_header: it votes per column by value type or fixed length, so a text column and a label
    column of words of varying length give it no vote, and it answers "no header" for the commonest labelled file.
    """
    if len(rows) < 2:
        return True  # one line: a header without rows is reported as such; one example alone cannot be trained on
    first, rest = rows.iloc[0], rows.iloc[1:]
    for column in rows.columns:
        values = rest[column].dropna().astype(str).str.strip()
        if values.empty:
            continue
        numeric = values.str.fullmatch(r"-?\d+(\.\d+)?").all()
        categorical = repeats(values)
        if (numeric or categorical) and str(first[column]).strip() not in set(values):
            return True
        if numeric or categorical:
            return False
    return all(re.fullmatch(r"[A-Za-z_][\w.-]{0,30}", str(value).strip() or "-") for value in first)


def repeats(values: pd.Series) -> bool:
    """Return True when a column repeats its values as a label column does (a text column rarely repeats one)."""
    distinct = values.nunique()
    return distinct <= 2 or (distinct < len(values) and distinct <= 0.8 * len(values))


def name_positional_columns(rows: pd.DataFrame) -> pd.DataFrame:
    """Return header-less rows with columns named text, label by position (label, text when only the first repeats)."""
    frame = rows.copy()
    names = list(POSITIONAL_COLUMNS) + [f"column_{i + 1}" for i in range(len(POSITIONAL_COLUMNS), frame.shape[1])]
    if frame.shape[1] == 2 and repeats(frame.iloc[:, 0]) and not repeats(frame.iloc[:, 1]):
        names = ["label", "text"]  # the SMS Spam Collection's layout: the column of few values first
    frame.columns = names[: frame.shape[1]] if frame.shape[1] > 1 else ["text"]
    return frame


# ---------------------------------------------------------------- sources


def find_split_files(folder: Path) -> dict[str, Path]:
    """Return {split: file} for files in a folder whose names say train / val(idation) / dev / test."""
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        split = SPLIT_ALIASES.get(path.name.lower().split(".")[0])
        if split and table_suffix(path) in TABLE_SUFFIXES:
            if split in found:
                raise DataError(f"Two files in {folder} look like the {split} split: {found[split].name} and "
                                f"{path.name}. Keep one.")
            found[split] = path
    if "train" not in found:
        raise DataError(f"{folder} has no training file: name one train.csv (or .tsv/.txt/.jsonl/.parquet).")
    return found


def read_source(source: str, options: ReadOptions | None = None, *, config: str | None = None,
                **changes: Any) -> dict[str, pd.DataFrame]:
    """Return {split: DataFrame} from a file, a folder of split files, or a Hugging Face Hub dataset id.

    A single file gives {"all": frame}; with split_files (validation and/or test files) it is the training split.
    config: a Hub dataset's config name (load_dataset("glue", "sst2")); files have none.
    """
    chosen = chosen_options(options, **changes)
    path = resolve_path(source)
    if path.is_dir():
        return {split: read_table(file, chosen) for split, file in find_split_files(path).items()}
    if path.is_file():
        frames = {"all": read_table(path, chosen)}
        if chosen.split_files:
            frames = {"train": frames["all"]}
            for split, file in chosen.split_files.items():
                frames[split] = read_table(resolve_path(file), chosen)
        return frames
    if table_suffix(path) in TABLE_SUFFIXES or str(source).startswith((".", "/", "~")):
        raise NotFoundError(f"No file at {path.resolve()}: check the path, or give a Hub dataset id like "
                            "'dair-ai/emotion'.")
    return read_hub_dataset(source, config)


def read_hub_dataset(dataset_id: str, config: str | None = None) -> dict[str, pd.DataFrame]:
    """Return {split: DataFrame} of a Hub dataset (with its config name, if any), ClassLabel names written out."""
    import datasets

    named = f"the dataset {dataset_id!r}" + (f" (config {config!r})" if config else "")
    return dataset_frames(from_hub(named, lambda: datasets.load_dataset(dataset_id, config)))


def dataset_frames(loaded: DatasetDict) -> dict[str, pd.DataFrame]:
    """Return {split: DataFrame} of a datasets.DatasetDict, ClassLabel ids written as names (kept in frame.attrs)."""
    import datasets

    frames = {}
    for split, table in loaded.items():
        frame = table.to_pandas()
        for name, feature in table.features.items():
            if isinstance(feature, datasets.ClassLabel):
                frame[name] = [feature.names[i] if i is not None and i >= 0 else None for i in frame[name]]
                frame.attrs.setdefault("class_names", {})[name] = list(feature.names)
            elif isinstance(feature, datasets.List) and isinstance(feature.feature, datasets.ClassLabel):
                # several labels a row (GoEmotions' `labels`): each list of ids written as its names
                frame[name] = [[feature.feature.names[i] for i in ids] for ids in frame[name]]
                frame.attrs.setdefault("class_names", {})[name] = list(feature.feature.names)
        frames[SPLIT_ALIASES.get(split, split)] = frame
    return frames


def source_notes(frames: Mapping[str, pd.DataFrame]) -> list[str]:
    """Return what reading detected or replaced in each frame (frame.attrs["notes"]), for a load report or console."""
    return [note for frame in frames.values() for note in frame.attrs.get("notes", [])]
