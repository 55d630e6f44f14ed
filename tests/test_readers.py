"""Reading files as they come: header detection, files without extension, encodings, split files, empty files."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import re
import zipfile

import pandas as pd
import pytest
from conftest import write

from distilnb import readers
from distilnb.errors import DataError, NotFoundError, SettingError

ROWS = [("the parcel never came", "delivery"), ("refund my money please", "refund"), ("cannot log in again", "login"),
        ("where is my order", "delivery"), ("I want my money back", "refund"), ("password reset fails", "login")]


def csv_text(rows, separator: str = ",", header: str | None = "text,label") -> str:
    """Return rows as delimited text, with a header line when given."""
    lines = ([header.replace(",", separator)] if header else []) + [f"{t}{separator}{lab}" for t, lab in rows]
    return "\n".join(lines) + "\n"


def test_a_header_line_is_detected_and_a_file_without_one_gets_text_and_label_by_position(tmp_path):
    with_header = readers.read_table(write(tmp_path / "a.csv", csv_text(ROWS)))
    without = readers.read_table(write(tmp_path / "b.csv", csv_text(ROWS, header=None)))
    assert list(with_header.columns) == list(without.columns) == ["text", "label"]
    assert without.equals(with_header) and len(without) == len(ROWS)  # the first example is not taken for a header
    assert "no header line" in " ".join(without.attrs["notes"])


def test_header_can_be_forced_either_way(tmp_path):
    path = write(tmp_path / "a.csv", csv_text(ROWS, header=None))
    assert readers.read_table(path, header=False)["text"].tolist() == [t for t, _ in ROWS]
    assert list(readers.read_table(path, header=True).columns) == list(ROWS[0])  # told so: the first row names


def test_a_label_first_file_without_header_names_the_repeating_column_label(tmp_path):
    spam = [("ham", "see you at six"), ("spam", "WIN a prize now"), ("ham", "call mum"), ("spam", "free entry txt"),
            ("ham", "on my way"), ("ham", "lunch?")]
    frame = readers.read_table(write(tmp_path / "SMSSpamCollection", "".join(f"{a}\t{b}\n" for a, b in spam)))
    assert frame["label"].tolist() == [a for a, _ in spam] and frame["text"].tolist() == [b for _, b in spam]


@pytest.mark.parametrize("kind", ["csv", "tsv", "jsonl", "json", "parquet"])
def test_files_without_extension_are_sniffed_and_format_can_be_forced(tmp_path, kind):
    frame = pd.DataFrame(ROWS, columns=["text", "label"])
    path = tmp_path / "data"
    if kind == "parquet":
        frame.to_parquet(path)
    elif kind in ("jsonl", "json"):
        records = frame.to_dict("records")
        write(path, "".join(json.dumps(r) + "\n" for r in records) if kind == "jsonl" else json.dumps(records))
    else:
        write(path, csv_text(ROWS, "\t" if kind == "tsv" else ","))
    assert readers.read_table(path).equals(frame)
    assert readers.read_table(path, format=kind).equals(frame)


def test_a_latin1_file_is_refused_naming_the_byte_and_read_with_its_encoding(tmp_path):
    path = write(tmp_path / "a.csv", csv_text([("café au lait", "order"), *ROWS]).encode("latin-1"))
    said = r"byte 0xe9 at line 2, column 4 .*real encoding \(encoding=latin-1, .*encoding_errors=replace"
    with pytest.raises(DataError, match=said):
        readers.read_table(path)
    assert readers.read_table(path, encoding="latin-1")["text"][0] == "café au lait"


def test_replacing_undecodable_bytes_counts_them(tmp_path):
    path = write(tmp_path / "a.csv", csv_text([("caf\xe9 cr\xe8me", "order"), *ROWS]).encode("latin-1"))
    frame = readers.read_table(path, encoding_errors="replace")
    assert frame["text"][0] == "caf\ufffd cr\ufffdme" and frame.attrs["replaced_characters"] == 2
    assert "replaced 2 undecodable characters" in readers.source_notes({"all": frame})[0]


def test_a_header_only_file_and_an_empty_one_are_one_sentence_errors(tmp_path):
    with pytest.raises(DataError, match=r"^a.csv has only a header line \(text, label\): add one row"):
        readers.read_table(write(tmp_path / "a.csv", "text,label\n"))
    empty = write(tmp_path / "b.csv", "")
    with pytest.raises(DataError, match=rf"^{re.escape(str(empty))} is empty \(0 bytes\)"):
        readers.read_table(empty)
    with pytest.raises(DataError, match=r"^c.csv is empty"):
        readers.read_table(write(tmp_path / "c.csv", "\n \n"))
    with pytest.raises(NotFoundError, match="No file at"):
        readers.read_source(str(tmp_path / "missing.csv"))


def test_separate_split_files_are_read_as_their_splits(tmp_path):
    files = {split: write(tmp_path / f"{split}.part", csv_text(ROWS[i:i + 2], header=None))
             for i, split in zip((0, 2, 4), ("train", "validation", "test"), strict=True)}
    held_out = {split: str(files[split]) for split in ("validation", "test")}
    options = readers.ReadOptions(header=False, format="csv", split_files=held_out)
    frames = readers.read_source(str(files["train"]), options)
    assert {split: frame["text"].tolist() for split, frame in frames.items()} == {
        "train": [ROWS[0][0], ROWS[1][0]], "validation": [ROWS[2][0], ROWS[3][0]], "test": [ROWS[4][0], ROWS[5][0]]}


def test_bad_options_are_refused_with_the_option_named():
    with pytest.raises(SettingError, match="^encoding = 'klingon' is not an encoding Python knows") as unknown:
        readers.ReadOptions(encoding="klingon")
    assert (unknown.value.setting, unknown.value.value) == ("encoding", "klingon")  # the command line's --encoding
    with pytest.raises(SettingError, match="^format = 'xls' is not one of csv, tsv"):
        readers.ReadOptions(format="xls")


# ---------------------------------------------------------------- quoting, separators and formats


def test_csv_with_separators_and_quotes_inside_texts(tmp_path):
    path = write(tmp_path / "a.csv", 'text,label\n"Hello, world",a\n"She said ""hi"", then left",b\nplain,a\n')
    frame = readers.read_table(path)
    assert frame["text"].tolist() == ["Hello, world", 'She said "hi", then left', "plain"]


def test_semicolon_file_whose_texts_hold_unbalanced_quotes(tmp_path):
    # Like ../shared/data/emotion: no CSV quoting, and a text may begin with a quote.
    text = 'text;label_name\n"i feel odd;sadness\ni said "no" twice;anger\nfine day;joy\n'
    path = write(tmp_path / "train.txt", text)
    frame = readers.read_table(path)
    assert frame["text"].tolist() == ['"i feel odd', 'i said "no" twice', "fine day"]
    assert frame["label_name"].tolist() == ["sadness", "anger", "joy"]


def test_tsv_jsonl_and_parquet(tmp_path):
    tsv = write(tmp_path / "a.tsv", "sentence\tlabel\ngood film\t1\nbad, film\t0\n")
    assert readers.read_table(tsv)["sentence"].tolist() == ["good film", "bad, film"]
    jsonl = write(tmp_path / "a.jsonl", '{"text": "x", "label": 1}\n\n{"text": "y", "label": 0}\n')
    assert readers.read_table(jsonl)["label"].tolist() == [1, 0]
    pd.DataFrame({"text": ["p"], "label": ["q"]}).to_parquet(tmp_path / "a.parquet")
    assert readers.read_table(tmp_path / "a.parquet")["text"].tolist() == ["p"]


@pytest.mark.parametrize("name, content, message", [
    ("a.csv", b"text,label\ncaf\xe9,a\n", r"not valid utf-8: byte 0xe9 at line 2, column 4"),
    ("a.jsonl", '{"text": "x"}\n{oops}\n', "line 2: not valid JSON"),
    ("a.csv", "", "empty"),
])
def test_unreadable_files_get_errors_that_name_the_problem(tmp_path, name, content, message):
    with pytest.raises(ValueError, match=message):
        readers.read_table(write(tmp_path / name, content))




# ---------------------------------------------------------------- compressed files


def zipped(data: bytes, *names: str) -> bytes:
    """Return a zip archive holding `data` under each name."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, data)
    return buffer.getvalue()


COMPRESS = {"gz": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress, "zip": lambda data: zipped(data, "t.csv")}


@pytest.mark.parametrize("kind", COMPRESS)
def test_compressed_files_are_read_as_the_file_inside(tmp_path, kind):
    plain = readers.read_table(write(tmp_path / "plain.csv", csv_text(ROWS, ";")))
    packed = COMPRESS[kind](csv_text(ROWS, ";").encode("latin-1"))
    assert readers.read_table(write(tmp_path / f"x.csv.{kind}", packed), encoding="latin-1").equals(plain)
    assert readers.read_table(write(tmp_path / "no_extension", packed)).equals(plain)  # known by its first bytes


def test_compressed_split_files_in_a_folder_and_parquet_inside_gzip(tmp_path):
    write(tmp_path / "train.tsv.gz", gzip.compress(csv_text(ROWS, "\t").encode()))
    buffer = io.BytesIO()
    pd.DataFrame(ROWS[:2], columns=["text", "label"]).to_parquet(buffer)
    write(tmp_path / "test.parquet.gz", gzip.compress(buffer.getvalue()))
    frames = readers.read_source(str(tmp_path))
    assert set(frames) == {"train", "test"} and frames["train"]["text"].tolist() == [t for t, _ in ROWS]
    assert frames["test"]["label"].tolist() == [ROWS[0][1], ROWS[1][1]]


def test_a_zip_of_several_files_and_a_broken_gzip_are_named(tmp_path):
    with pytest.raises(DataError, match=r"^x.zip is a zip archive of 2 files \(a.csv, b.csv\)"):
        readers.read_table(write(tmp_path / "x.zip", zipped(b"text,label\n", "a.csv", "b.csv")))
    with pytest.raises(DataError, match=r"^y.csv.gz looks gzip-compressed but cannot be unpacked"):
        readers.read_table(write(tmp_path / "y.csv.gz", gzip.compress(b"text,label\nx,y\n")[:-9]))


def test_nested_json_is_flattened_into_dotted_columns_and_non_objects_are_refused(tmp_path):
    rows = [{"text": t, "meta": {"label": lab, "source": "web"}} for t, lab in ROWS]
    frame = readers.read_table(write(tmp_path / "a.jsonl", "".join(json.dumps(row) + "\n" for row in rows)))
    assert list(frame.columns) == ["text", "meta.label", "meta.source"]
    assert frame["meta.label"].tolist() == [lab for _, lab in ROWS]
    with pytest.raises(DataError, match=r"^b.json holds str values where JSON objects are expected, such as 'x'"):
        readers.read_table(write(tmp_path / "b.json", '["x", "y"]'))
