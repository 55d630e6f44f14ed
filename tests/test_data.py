import json

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, SHARED_DATA, write

from distilnb import data, readers
from distilnb.config import Config
from distilnb.errors import ColumnError, DataError, DataTypeError, HubUnreachableError


def cfg_for(source, **params) -> Config:
    return Config.from_env(profile="smoke", environ={}, dataset=str(source), **params)


def test_a_missing_column_is_named_with_the_columns_there_are(tmp_path):
    path = write(tmp_path / "a.csv", "sentence,label\nx,a\n")
    with pytest.raises(ColumnError, match=r"'text' is not in the data; its columns are sentence, label\. Name one"):
        data.load_splits(cfg_for(path))


def test_cleaning_counts_every_drop_and_conversion():
    frame = pd.DataFrame({"t": ["ok", "", "   ", None, 42, "fine", "no label"],
                          "l": ["a", "a", "b", "b", "a", 1.0, None]})
    report = data.LoadReport(source="x")
    cleaned = data.clean_frame(frame, "t", "l", report, split="train")
    assert cleaned.to_dict("list") == {"text": ["ok", "42", "fine"], "label": ["a", "a", "1"]}
    assert report.dropped == {"train: missing text": 1, "train: empty or whitespace-only text": 2,
                              "train: missing label": 1}
    assert report.converted == {"train: non-string text turned into a string": 1,
                                "train: label written as its name (1.0 as 1, ...)": 1}


def test_non_string_texts_that_cannot_be_text_are_refused():
    with pytest.raises(DataTypeError, match="Row 1 .* type list"):
        frame = pd.DataFrame({"text": ["a", ["b"]], "label": [0, 1]})
        data.clean_frame(frame, "text", "label", data.LoadReport("x"), split="train")


@pytest.mark.parametrize("value, expected", [(1, "1"), (1.0, "1"), ("1", "1"), ("1.0", "1"), (" joy ", "joy"),
                                             (2.5, "2.5"), (np.int64(3), "3"), (None, None), (float("nan"), None),
                                             ("", None)])
def test_labels_as_strings_integers_floats_or_a_mix_become_one_name(value, expected):
    assert data.canonical_label(value) == expected


def test_label_names_keep_the_source_order_or_sort_numbers_numerically():
    assert data.label_names_for(pd.Series(["10", "2", "1"])) == ["1", "2", "10"]
    assert data.label_names_for(pd.Series(["joy", "anger"]), ["sadness", "joy", "anger"]) == ["sadness", "joy", "anger"]
    assert data.label_names_for(pd.Series(["b", "a"])) == ["a", "b"]


def test_stratified_split_keeps_every_row_once_and_each_class_its_share():
    labels = np.array([0] * 50 + [1] * 30 + [2] * 3)
    parts = data.stratified_split(labels, {"validation": 0.1, "test": 0.1}, seed=0)
    together = np.concatenate(list(parts.values()))
    assert sorted(together) == list(range(len(labels)))
    for split in ("validation", "test"):
        counts = np.bincount(labels[parts[split]], minlength=3)
        assert abs(counts[0] - 5) <= 1 and abs(counts[1] - 3) <= 1 and counts.sum() == 8
    assert set(labels[parts["train"]]) == {0, 1, 2}
    again = data.stratified_split(labels, {"validation": 0.1, "test": 0.1}, seed=0)
    assert all((again[s] == parts[s]).all() for s in parts)


def test_split_refuses_tiny_classes_and_single_class_data():
    with pytest.raises(DataError, match=r"^1 class with fewer than 3 examples.*\(class: rows\): '1': 1\. Add"):
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


def test_a_multi_label_test_file_keeps_its_rows_without_labels_and_says_so(tmp_path):
    rows = [f"t{i},{['a', 'b', 'a;b'][i % 3]}" for i in range(30)]
    write(tmp_path / "train.csv", "text,label\n" + "\n".join(rows) + "\n")
    write(tmp_path / "validation.csv", "text,label\nv1,a\nv2,b\nv3,a;b\nv4,\n")
    write(tmp_path / "test.csv", "text,label\nx1,a;b\nx2,\nx3,b\nx4,\n")
    splits, report = data.load_splits(cfg_for(tmp_path, label_separator=";"))
    assert splits["test"]["text"] == ["x1", "x2", "x3", "x4"]
    assert list(splits["test"]["labels"]) == [[1.0, 1.0], [0.0, 0.0], [0.0, 1.0], [0.0, 0.0]]
    assert "2 rows of the test data have no label (an empty list or a blank cell): kept" in " ".join(report.notes)
    assert len(splits["validation"]) == 3 and report.dropped == {"validation: missing label": 1}


def test_labels_unseen_in_training_are_refused(tmp_path):
    write(tmp_path / "train.csv", "text,label\na,x\nb,y\nc,x\n")
    write(tmp_path / "validation.csv", "text,label\nd,x\n")
    write(tmp_path / "test.csv", "text,label\ne,z\nf,z\n")
    with pytest.raises(DataError, match=r"test split has 1 label that the training split never shows "
                                        r"\(label: rows\): 'z': 2\. The model"):
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
    assert report.dropped == {"train: duplicate text within the split": 1,
                              "validation: text already in an earlier split": 1,
                              "test: text already in an earlier split": 2}


def test_sample_dataset_is_large_imbalanced_and_split(sample_splits):
    counts = data.class_counts(sample_splits)
    assert counts.sum().sum() >= 600 and len(counts) >= 4
    assert counts["train"].max() >= 3 * counts["train"].min()
    assert (counts > 0).all().all()


def test_hub_dataset_offline_fails_with_one_plain_sentence():
    with pytest.raises(HubUnreachableError, match="Could not download the dataset 'dair-ai/emotion'"):
        readers.read_source("dair-ai/emotion")


@pytest.mark.skipif(not (SHARED_DATA / "emotion").is_dir(), reason="../shared/data is absent")
def test_real_emotion_files_load_with_their_splits_and_six_classes():
    splits, report = data.load_splits(cfg_for(SHARED_DATA / "emotion", label_column="label_name"))
    assert {s: len(splits[s]) for s in splits} == {"train": 16000, "validation": 2000, "test": 2000}
    assert data.class_counts(splits)["train"].to_dict() == {"anger": 2159, "fear": 1937, "joy": 5362, "love": 1304,
                                                            "sadness": 4666, "surprise": 572}
    assert report.dropped == {}


def test_missing_values_of_nullable_columns_are_dropped_and_counted():
    frame = pd.DataFrame({"text": pd.array(["x", pd.NA, "z"], dtype="string"),
                          "label": pd.array([1, 2, pd.NA], dtype="Int64")})
    report = data.LoadReport("x")
    cleaned = data.clean_frame(frame, "text", "label", report, split="train")
    assert cleaned.to_dict("list") == {"text": ["x"], "label": ["1"]}
    assert report.dropped == {"train: missing text": 1, "train: missing label": 1}


def test_max_train_examples_keeps_every_class(tmp_path):
    source = write(tmp_path / "d.csv", "text,label\n" + "".join(f"t{i},{'a' if i < 90 else 'b'}\n" for i in range(100)))
    splits, report = data.load_splits(cfg_for(source, max_train_examples=8))
    assert set(splits["train"]["label"]) == {0, 1} and len(splits["train"]) == 8
    assert "stratified" in report.notes[-1]


def test_splits_other_than_train_validation_test_are_left_out_with_a_note():
    rows = pd.DataFrame({"text": [f"t{i}" for i in range(12)], "label": ["a", "b"] * 6})
    report = data.LoadReport("x")
    frames = data.prepare_frames({"train": rows, "unsupervised": rows.assign(label=None)}, cfg_for("x"), report)
    assert set(frames) == {"train", "validation", "test"} and report.dropped == {}
    assert "left out splits ['unsupervised'] (12 rows)" in report.notes[0]


def test_label_variants_are_reported_counted_and_merged_only_when_asked(tmp_path):
    # Surrounding spaces are always stripped, and counted; case variants stay apart, named, unless merging is asked.
    labels = ["spam", "Spam ", " spam", "SPAM", "ham", "ham", "Ham"] * 6
    source = write(tmp_path / "d.csv", "text,label\n" + "".join(f"t{i},{label}\n" for i, label in enumerate(labels)))
    splits, report = data.load_splits(cfg_for(source))
    assert data.label_names(splits) == ["Ham", "SPAM", "Spam", "ham", "spam"]
    assert report.label_variants == {"ham": ["Ham", "ham"], "spam": ["SPAM", "Spam", "spam"]}
    assert "differ only by case" in report.warnings[0] and "'spam' (12)" in report.warnings[0]
    assert report.converted == {"all: label stripped of surrounding spaces": 12}
    assert report.stripped_labels == {"Spam": ["Spam "], "spam": [" spam"]}
    merged, report = data.load_splits(cfg_for(source, merge_label_variants=True))
    assert data.label_names(merged) == ["ham", "spam"] and sum(len(merged[s]) for s in merged) == len(labels)
    # 'spam' (12 rows, after stripping) absorbs 'Spam' and 'SPAM' (6 each); 'ham' (12) absorbs 'Ham' (6).
    assert report.converted["all: label merged into its most frequent spelling"] == 18


def test_prepare_splits_takes_what_load_dataset_returns(tmp_path):
    import datasets

    source = write(tmp_path / "d.csv", "text,label\n" + "".join(f"t{i},{'ab'[i % 2]}\n" for i in range(40)))
    loaded = datasets.load_dataset("csv", data_files=str(source))
    splits, report = data.prepare_splits(loaded, cfg_for(source))
    from_frames, _ = data.prepare_splits(readers.read_source(str(source)), cfg_for(source))
    assert {s: splits[s]["text"] for s in splits} == {s: from_frames[s]["text"] for s in from_frames}
    assert report.rows_read == {"train": 40} and data.label_names(splits) == ["a", "b"]


def test_a_class_label_dataset_keeps_its_names_and_their_order():
    import datasets

    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["z", "y"])})
    table = datasets.Dataset.from_dict({"text": [f"t{i}" for i in range(30)], "label": [i % 2 for i in range(30)]},
                                       features=features)
    splits, _ = data.prepare_splits(datasets.DatasetDict({"train": table}), cfg_for("x"))
    assert data.label_names(splits) == ["z", "y"]
    ids = {text: label for split in splits.values() for text, label in zip(split["text"], split["label"], strict=True)}
    assert ids == {f"t{i}": i % 2 for i in range(30)}  # each row keeps its own id: 'z' is 0, 'y' is 1


# ---------------------------------------------------------------- what the console says about the data


def write_jsonl(path, rows: list[dict]):
    """Write rows as JSON Lines and return the path."""
    return write(path, "".join(json.dumps(row) + "\n" for row in rows))


def test_every_dropped_row_and_changed_label_has_one_console_line(tmp_path):
    rows = [{"text": f"ticket number {i}", "label": "ab"[i % 2]} for i in range(40)]
    rows += [{"text": "no label field"}, {"text": "empty label", "label": ""}, {"text": "   ", "label": "a"},
             {"label": "b"}, {"text": "spaced label", "label": "a "}, {"text": "spaced again", "label": " b"},
             {"text": "Ticket  number 2", "label": "a"}, {"text": "upper", "label": "A"}]
    cfg = cfg_for(write_jsonl(tmp_path / "d.jsonl", rows), drop_duplicates=True, merge_label_variants=True)
    _, report = data.load_splits(cfg)
    assert report.console_lines() == [
        "dropped 1 row without a text",
        "dropped 1 row whose text is empty or only spaces",
        "dropped 2 rows without a label (empty or only spaces)",
        "dropped 1 row repeating a text of their split",
        "stripped the surrounding spaces of 2 labels: 'a ' as 'a', ' b' as 'b'",
        "merged 1 label into the commonest spelling: 'A' / 'a'",
    ]


def test_clean_data_gives_no_console_line(tmp_path):
    rows = [{"text": f"ticket number {i}", "label": "ab"[i % 2]} for i in range(40)]
    assert data.load_splits(cfg_for(write_jsonl(tmp_path / "d.jsonl", rows)))[1].console_lines() == []


def test_identical_texts_with_different_labels_are_a_warning_with_three_examples(tmp_path):
    rows = [(f"ticket number {i}", "ab"[i % 2]) for i in range(40)]
    rows += [(f"Ticket number {i}", "b") for i in range(0, 10, 2)]  # 5 texts already labelled 'a', now 'b' too
    source = write(tmp_path / "d.csv", "text,label\n" + "".join(f"{t},{lab}\n" for t, lab in rows))
    _, report = data.load_splits(cfg_for(source))
    assert report.console_lines() == [
        "warning: 5 texts carry different labels in different rows ('ticket number 0': 'a' / 'b', 'ticket number 2':"
        " 'a' / 'b', 'ticket number 4': 'a' / 'b' … and 2 more): a model cannot get both right; correct the labels or"
        " remove those rows"]


def test_identical_texts_with_different_label_sets_show_each_set_not_a_tuple(tmp_path):
    rows = [(f"ticket number {i}", "ab"[i % 2]) for i in range(40)]
    rows += [("ticket number 0", "a;b"), ("ticket number 1", "")]  # rows 0 and 1 again, with another set of labels
    source = write(tmp_path / "d.csv", "text,label\n" + "".join(f"{t},{lab}\n" for t, lab in rows))
    _, report = data.load_splits(cfg_for(source, label_separator=";"))
    warning = next(line for line in report.console_lines() if "carry different labels" in line)
    assert "'ticket number 0': {'a'} / {'a', 'b'}" in warning and "('a',)" not in warning


def test_identical_pairs_with_different_labels_are_named_in_order_and_reversed_pairs_are_not(tmp_path):
    rows = [(f"claim {i}", f"fact {i}", "ab"[i % 2]) for i in range(40)]
    rows += [("Claim 0", "fact  0", "b"), ("claim 2", "Fact 2", "b")]  # the same pairs as rows 0 and 2, now 'b' too
    rows += [(f"fact {i}", f"claim {i}", "a") for i in range(1, 10, 2)]  # reversed, so not the same input
    source = write(tmp_path / "d.csv", "premise,hypothesis,label\n" + "".join(f"{t},{p},{lab}\n" for t, p, lab in rows))
    _, report = data.load_splits(cfg_for(source, text_column="premise", text_pair_column="hypothesis"))
    assert report.console_lines() == [
        "warning: 2 texts carry different labels in different rows ('claim 0 | fact 0': 'a' / 'b', 'claim 2 | fact 2':"
        " 'a' / 'b'): a model cannot get both right; correct the labels or remove those rows"]
    assert all(sep not in report.console_lines()[0] for sep in ("\x1f", "\\x1f"))  # the old key's, raw or quoted


def test_a_text_column_of_numbers_is_a_warning(tmp_path):
    source = write(tmp_path / "d.csv", "text,label\n" + "".join(f"{i * 1.5},{'ab'[i % 2]}\n" for i in range(40)))
    _, report = data.load_splits(cfg_for(source))
    assert report.warnings == ["the text column 'text' holds numbers (100% of its values): are the text and label "
                               "columns swapped?"]
    words = write(tmp_path / "w.csv", "text,label\n" + "".join(f"{i} parcels,{'ab'[i % 2]}\n" for i in range(40)))
    assert data.load_splits(cfg_for(words))[1].warnings == []


def test_swapped_columns_get_a_short_error_that_suggests_swapping(tmp_path):
    rows = [(f"my parcel number {i} never arrived, what now? " * 20, ("delivery", "refund", "login")[i % 3])
            for i in range(500)]
    source = write(tmp_path / "d.csv", "label,text\n" + "".join(f'"{t}",{lab}\n' for t, lab in rows))
    with pytest.raises(DataError, match=r"^500 classes with fewer than 3 examples") as refused:
        data.load_splits(cfg_for(source))
    assert "… and 495 more" in str(refused.value) and len(str(refused.value)) < 800
    assert str(refused.value).endswith("With 500 classes for 500 rows, most labels are unique: are the text and "
                                       "label columns swapped?")
    few_rows = np.array(["a", "a", "b", "b", "c"] * 4 + ["d"])
    with pytest.raises(DataError) as small:  # a few classes short of rows: no talk of swapping
        data.stratified_split(few_rows, {"validation": 0.1, "test": 0.1}, seed=0)
    assert "swapped" not in str(small.value)


def test_labels_a_model_lacks_are_refused_by_name_with_what_it_knows():
    data.check_known_labels(["b", "a", "a"], ["a", "b", "c"])  # a model may know more labels than the data shows
    with pytest.raises(DataError, match=r"^test\.csv has 1 label the model was not trained on: 'c'; the model knows "
                                        r"'a', 'b'\. Score it with a model fine-tuned on these labels"):
        data.check_known_labels(["a", "c"], ["a", "b"], source="test.csv")


def test_the_sample_files_readme_quotes_the_loaders_console_lines(smoke_cfg):
    text = (ROOT / "data" / "README.md").read_text()
    quoted = text.split("the course's loader says so on the\nconsole, one line each:\n\n")[1].split("\n\n")[0]
    _, report = data.load_splits(smoke_cfg)
    assert [line.strip() for line in quoted.splitlines()] == report.console_lines()


def test_the_own_data_page_says_what_the_loader_does(tmp_path):
    section = (ROOT / "docs" / "data.md").read_text().split("## Files")[1].split("\n## ")[0]
    assert all(f"`{suffix}`" in section for _, suffix in readers.COMPRESSIONS.values())
    assert '(`"spam "` is `"spam"`' in section and "(`Spam`, `spam`) are kept apart" in section
    labels = ["spam ", " spam"] + ["spam"] * 6 + ["Spam"] * 4
    source = write(tmp_path / "d.csv", "text,label\n" + "".join(f"t{i},{lab}\n" for i, lab in enumerate(labels)))
    splits, report = data.load_splits(cfg_for(source, validation_size=0.2, test_size=0.2))
    assert data.label_names(splits) == ["Spam", "spam"] and report.console_lines()[0].startswith(
        "stripped the surrounding spaces of 2 labels")
    assert report.console_lines()[1].startswith("warning: labels that differ only by case are kept apart")
