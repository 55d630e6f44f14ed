import numpy as np
import pandas as pd
import pytest
from conftest import SHARED_DATA, write

from distilnb import data
from distilnb.config import Config, HubUnreachableError


def cfg_for(source, **params) -> Config:
    return Config.from_env(profile="smoke", environ={}, dataset=str(source), **params)


def test_csv_with_separators_and_quotes_inside_texts(tmp_path):
    path = write(tmp_path / "a.csv", 'text,label\n"Hello, world",a\n"She said ""hi"", then left",b\nplain,a\n')
    frame = data.read_table(path)
    assert frame["text"].tolist() == ["Hello, world", 'She said "hi", then left', "plain"]


def test_semicolon_file_whose_texts_hold_unbalanced_quotes(tmp_path):
    # Like ../shared/data/emotion: no CSV quoting, and a text may begin with a quote.
    path = write(tmp_path / "train.txt", 'text;label_name\n"i feel odd;sadness\ni said "no" twice;anger\nfine day;joy\n')
    frame = data.read_table(path)
    assert frame["text"].tolist() == ['"i feel odd', 'i said "no" twice', "fine day"]
    assert frame["label_name"].tolist() == ["sadness", "anger", "joy"]


def test_tsv_jsonl_and_parquet(tmp_path):
    tsv = write(tmp_path / "a.tsv", "sentence\tlabel\ngood film\t1\nbad, film\t0\n")
    assert data.read_table(tsv)["sentence"].tolist() == ["good film", "bad, film"]
    jsonl = write(tmp_path / "a.jsonl", '{"text": "x", "label": 1}\n\n{"text": "y", "label": 0}\n')
    assert data.read_table(jsonl)["label"].tolist() == [1, 0]
    pd.DataFrame({"text": ["p"], "label": ["q"]}).to_parquet(tmp_path / "a.parquet")
    assert data.read_table(tmp_path / "a.parquet")["text"].tolist() == ["p"]


@pytest.mark.parametrize("name, content, message", [
    ("a.xlsx", "x", "unknown file type '.xlsx'"),
    ("a.csv", b"text,label\ncaf\xe9,a\n", r"not valid utf-8: byte 0xe9 at position 14"),
    ("a.jsonl", '{"text": "x"}\n{oops}\n', "line 2: not valid JSON"),
    ("a.csv", "", "empty"),
])
def test_unreadable_files_get_errors_that_name_the_problem(tmp_path, name, content, message):
    with pytest.raises(ValueError, match=message):
        data.read_table(write(tmp_path / name, content))


def test_missing_file_and_missing_column(tmp_path):
    with pytest.raises(FileNotFoundError, match="No file at"):
        data.read_source(str(tmp_path / "nope.csv"))
    path = write(tmp_path / "a.csv", "sentence,label\nx,a\n")
    with pytest.raises(KeyError, match=r"text column 'text' is not in .*\['sentence', 'label'\].*TEXT_COLUMN"):
        data.load_splits(cfg_for(path))


def test_cleaning_counts_every_drop_and_conversion():
    frame = pd.DataFrame({"t": ["ok", "", "   ", None, 42, "fine", "no label"], "l": ["a", "a", "b", "b", "a", 1.0, None]})
    report = data.LoadReport(source="x")
    cleaned = data.clean_frame(frame, "t", "l", report, "train")
    assert cleaned.to_dict("list") == {"text": ["ok", "42", "fine"], "label": ["a", "a", "1"]}
    assert report.dropped == {"train: missing text": 1, "train: empty or whitespace-only text": 2, "train: missing label": 1}
    assert report.converted == {"train: non-string text turned into a string": 1}


def test_non_string_texts_that_cannot_be_text_are_refused():
    with pytest.raises(TypeError, match="Row 1 .* type list"):
        data.clean_frame(pd.DataFrame({"text": ["a", ["b"]], "label": [0, 1]}), "text", "label", data.LoadReport("x"), "train")


@pytest.mark.parametrize("value, expected", [(1, "1"), (1.0, "1"), ("1", "1"), ("1.0", "1"), (" joy ", "joy"),
                                             (2.5, "2.5"), (np.int64(3), "3"), (None, None), (float("nan"), None), ("", None)])
def test_labels_as_strings_integers_floats_or_a_mix_become_one_name(value, expected):
    assert data.canonical_label(value) == expected


def test_label_names_keep_the_source_order_or_sort_numbers_numerically():
    assert data.label_names_for(pd.Series(["10", "2", "1"])) == ["1", "2", "10"]
    assert data.label_names_for(pd.Series(["joy", "anger"]), ["sadness", "joy", "anger"]) == ["sadness", "joy", "anger"]
    assert data.label_names_for(pd.Series(["b", "a"])) == ["a", "b"]


def test_stratified_split_keeps_every_row_once_and_every_class_everywhere():
    labels = np.array([0] * 50 + [1] * 30 + [2] * 3)
    parts = data.stratified_split(labels, {"validation": 0.1, "test": 0.1}, seed=0)
    together = np.concatenate(list(parts.values()))
    assert sorted(together) == list(range(len(labels)))
    for rows in parts.values():
        assert set(labels[rows]) == {0, 1, 2}
    assert (labels[parts["test"]] == 0).sum() == 5 and (labels[parts["validation"]] == 1).sum() == 3
    again = data.stratified_split(labels, {"validation": 0.1, "test": 0.1}, seed=0)
    assert all((again[s] == parts[s]).all() for s in parts)


def test_split_refuses_tiny_classes_and_single_class_data():
    with pytest.raises(ValueError, match=r"fewer than 3 examples.*\{'1': 1\}"):
        data.stratified_split(np.array([0, 0, 0, 0, 1]), {"validation": 0.2, "test": 0.2}, seed=0)
    with pytest.raises(ValueError, match="single class"):
        data.stratified_split(np.array([4] * 10), {"validation": 0.2, "test": 0.2}, seed=0)


def test_a_folder_of_split_files_keeps_its_splits(tmp_path):
    write(tmp_path / "train.txt", "text;label_name\n" + "".join(f"t{i};{'ab'[i % 2]}\n" for i in range(10)))
    write(tmp_path / "val.txt", "text;label_name\nv1;a\nv2;b\n")
    write(tmp_path / "test.txt", "text;label_name\nx1;b\n")
    splits, report = data.load_splits(cfg_for(tmp_path, label_column="label_name"))
    assert {s: len(splits[s]) for s in splits} == {"train": 10, "validation": 2, "test": 1}
    assert splits["test"]["text"] == ["x1"] and data.label_names(splits) == ["a", "b"]
    assert report.notes == []


def test_a_folder_without_validation_gets_one_cut_from_train(tmp_path):
    write(tmp_path / "train.csv", "text,label\n" + "".join(f"t{i},{'ab'[i % 2]}\n" for i in range(20)))
    write(tmp_path / "dev.csv", "text,label\nd,a\nd2,b\n")
    write(tmp_path / "test.csv", "text,label\nx,a\n")
    splits, _ = data.load_splits(cfg_for(tmp_path))
    assert {s: len(splits[s]) for s in splits} == {"train": 20, "validation": 2, "test": 1}
    (tmp_path / "dev.csv").unlink()
    splits, report = data.load_splits(cfg_for(tmp_path))
    assert len(splits["train"]) + len(splits["validation"]) == 20 and "validation" in report.notes[0]


def test_labels_unseen_in_training_are_refused(tmp_path):
    write(tmp_path / "train.csv", "text,label\na,x\nb,y\nc,x\n")
    write(tmp_path / "validation.csv", "text,label\nd,x\n")
    write(tmp_path / "test.csv", "text,label\ne,z\nf,z\n")
    with pytest.raises(ValueError, match=r"test split has labels that the training split never shows: \{'z': 2\}"):
        data.load_splits(cfg_for(tmp_path))


def test_duplicates_and_leaks_are_reported_and_optionally_dropped():
    frames = {"train": pd.DataFrame({"text": ["A b", "a  B", "c"], "label": ["x"] * 3}),
              "validation": pd.DataFrame({"text": ["c", "d"], "label": ["x"] * 2}),
              "test": pd.DataFrame({"text": ["d", "a b", "e"], "label": ["x"] * 3})}
    table = data.duplicate_report(frames)
    assert table.loc["train", "duplicates within"] == 1
    assert table.loc["validation", "shared with train"] == 1
    assert (table.loc["test", "shared with train"], table.loc["test", "shared with validation"]) == (1, 1)
    report = data.LoadReport("x")
    kept = data.drop_duplicates_and_leaks(frames, report)
    assert [kept[s]["text"].tolist() for s in kept] == [["A b", "c"], ["d"], ["e"]]
    assert report.dropped == {"train: duplicate text within the split": 1, "validation: text already in an earlier split": 1,
                              "test: text already in an earlier split": 2}


def test_sample_dataset_is_large_imbalanced_and_split(sample_splits):
    counts = data.class_counts(sample_splits)
    assert counts.sum().sum() >= 600 and len(counts) >= 4
    assert counts["train"].max() >= 3 * counts["train"].min()
    assert (counts > 0).all().all()


def test_saved_splits_are_reused_by_the_next_stage(smoke_cfg, sample_splits):
    _, report = data.load_splits(smoke_cfg)
    data.save_splits(sample_splits, report, smoke_cfg.paths.data)
    again, saved_report = data.load_or_build_splits(smoke_cfg)
    assert again["test"]["text"] == sample_splits["test"]["text"] and saved_report.split_sizes == report.split_sizes


def test_hub_dataset_offline_fails_with_one_plain_sentence():
    with pytest.raises(HubUnreachableError, match="Could not download the dataset 'dair-ai/emotion'"):
        data.read_source("dair-ai/emotion")


@pytest.mark.skipif(not (SHARED_DATA / "emotion").is_dir(), reason="../shared/data is absent")
def test_real_emotion_files_load_with_their_splits_and_six_classes():
    splits, report = data.load_splits(cfg_for(SHARED_DATA / "emotion", label_column="label_name"))
    assert {s: len(splits[s]) for s in splits} == {"train": 16000, "validation": 2000, "test": 2000}
    assert data.class_counts(splits)["train"].to_dict() == {"anger": 2159, "fear": 1937, "joy": 5362, "love": 1304,
                                                            "sadness": 4666, "surprise": 572}
    assert report.dropped == {}


def test_saved_splits_win_over_new_split_settings_but_not_over_a_changed_source(tmp_path, capsys):
    source = write(tmp_path / "d.csv", "text,label\n" + "".join(f"t{i},{'ab'[i % 2]}\n" for i in range(40)))
    cfg = cfg_for(source, output_root=str(tmp_path / "out"))
    first, _ = data.load_or_build_splits(cfg)
    reseeded, report = data.load_or_build_splits(Config(**{**cfg.to_dict(), "seed": 7}))
    assert reseeded["test"]["text"] == first["test"]["text"] and report.settings["seed"] == cfg.seed
    assert "made with {'seed': 42}" in capsys.readouterr().out
    rebuilt, _ = data.build_and_save_splits(Config(**{**cfg.to_dict(), "seed": 7}))
    assert rebuilt["test"]["text"] != first["test"]["text"]
    import os

    write(source, "text,label\n" + "".join(f"new {i},{'ab'[i % 2]}\n" for i in range(40)))
    os.utime(source, (1, 1))  # a new modification time, even within the same second
    changed, _ = data.load_or_build_splits(cfg)
    assert changed["train"]["text"][0].startswith("new")


def test_multi_line_quoted_fields_and_missing_values_of_nullable_columns(tmp_path):
    path = write(tmp_path / "m.csv", 'text,label\n"Line one\nLine two",a\n"He said ""hi""",b\n')
    assert data.read_table(path)["text"].tolist() == ["Line one\nLine two", 'He said "hi"']
    frame = pd.DataFrame({"text": pd.array(["x", pd.NA, "z"], dtype="string"), "label": pd.array([1, 2, pd.NA], dtype="Int64")})
    report = data.LoadReport("x")
    assert data.clean_frame(frame, "text", "label", report, "train").to_dict("list") == {"text": ["x"], "label": ["1"]}
    assert report.dropped == {"train: missing text": 1, "train: missing label": 1}


def test_max_train_examples_keeps_every_class(tmp_path):
    source = write(tmp_path / "d.csv", "text,label\n" + "".join(f"t{i},{'a' if i < 90 else 'b'}\n" for i in range(100)))
    splits, report = data.load_splits(cfg_for(source, max_train_examples=8))
    assert set(splits["train"]["label"]) == {0, 1} and 7 <= len(splits["train"]) <= 9 and "stratified" in report.notes[-1]


def test_splits_other_than_train_validation_test_are_left_out_with_a_note():
    rows = pd.DataFrame({"text": [f"t{i}" for i in range(12)], "label": ["a", "b"] * 6})
    report = data.LoadReport("x")
    frames = data.prepare_frames({"train": rows, "unsupervised": rows.assign(label=None)}, cfg_for("x"), report)
    assert set(frames) == {"train", "validation", "test"} and report.dropped == {}
    assert "left out splits ['unsupervised'] (12 rows)" in report.notes[0]
