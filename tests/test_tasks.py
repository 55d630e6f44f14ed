"""Several labels a text and pairs of texts through the one pipeline: train, evaluate and predict on files the tests
write (smoke profile, tiny model, 2 epochs), thresholds saved and applied, pairs encoded with their separator, and a
pair trained on in either order counted as seen."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from test_cli import WORDS, json_lines, run_cli

from distilnb import data, export, multilabel, pairs, runs
from distilnb.config import Config
from distilnb.errors import DataError, DataTypeError
from distilnb.folder import CONFIG_FILE, THRESHOLDS_FILE
from distilnb.predict import Predictor
from distilnb.serving import FolderTokenizer
from distilnb.train import tokenize_batch

TRAIN = ("--profile", "smoke", "--epochs", "2")


def multilabel_rows(n: int = 72, seed: int = 0) -> list[tuple[str, list[str]]]:
    """Return distinct texts, each with one or two labels (every third has two) and words of each label's vocabulary."""
    rng, rows = random.Random(seed), []
    for i in range(n):
        labels = sorted(rng.sample(list(WORDS), 2 if i % 3 == 0 else 1))
        words = [word for label in labels for word in rng.sample(WORDS[label], 3)]
        rows.append((f"ticket {i}: " + " ".join(words), labels))
    return rows


def pair_rows(n: int = 72, seed: int = 0) -> list[tuple[str, str, str]]:
    """Return (first, second, same/different) rows: same when both messages use one topic's words."""
    rng, rows = random.Random(seed), []
    for i in range(n):
        topic = list(WORDS)[i % 3]
        other = topic if i % 2 == 0 else rng.choice([t for t in WORDS if t != topic])
        rows.append((f"msg {i} " + " ".join(rng.sample(WORDS[topic], 3)),
                     f"reply {i} " + " ".join(rng.sample(WORDS[other], 3)), "same" if topic == other else "different"))
    return rows


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("tasks")


@pytest.fixture(scope="module")
def list_run(work):
    """A multi-label model trained from a JSONL file whose label column holds lists."""
    source = work / "tickets.jsonl"
    source.write_text("".join(json.dumps({"message": text, "tags": labels}) + "\n"
                              for text, labels in multilabel_rows()))
    done = run_cli("train", *TRAIN, "--dataset", str(source), "--text-column", "message", "--label-column", "tags",
                   "--output-root", str(work), "--run-name", "lists")
    assert done.code == 0, done.err
    return work / "lists", done


@pytest.fixture(scope="module")
def pair_run(work):
    """A pair model trained from a CSV file with two text columns."""
    source = work / "pairs.csv"
    source.write_text("first,second,label\n" + "".join(f"{a},{b},{label}\n" for a, b, label in pair_rows()))
    done = run_cli("train", *TRAIN, "--dataset", str(source), "--text-column", "first", "--text-pair-column",
                   "second", "--output-root", str(work), "--run-name", "pairs")
    assert done.code == 0, done.err
    return work / "pairs", done


def test_train_on_a_list_column_tunes_and_saves_thresholds(list_run):
    run, done = list_run
    assert "Task: multi-label (3 labels, lists in the column 'tags')" in done.err
    model = run / "model"
    assert json.loads((model / "config.json").read_text())["problem_type"] == "multi_label_classification"
    saved = json.loads((model / THRESHOLDS_FILE).read_text())
    assert set(saved["thresholds"]) == set(WORDS) and saved["rule"] in ("global", "per label")
    kept = saved["validation_f1_macro"][saved["rule"]]
    assert kept >= max(saved["validation_f1_macro"].values()) - 1e-12  # the better rule on validation is kept
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["thresholds"]["thresholds"] == saved["thresholds"]
    assert metrics["validation"]["fine-tuned"]["thresholds"] == saved["thresholds"]
    assert "f1_samples" in done.out and "TF-IDF + one-vs-rest" in done.out


def test_saved_multi_hot_rows_match_their_texts(list_run):
    run, _ = list_run
    import datasets

    splits = datasets.load_from_disk(str(run / "data"))
    expected = dict(multilabel_rows())
    for split in splits.values():  # each text's multi-hot row decodes to that text's labels, in the label order
        multilabel.check_alignment(split["text"], np.asarray(split["labels"]), expected, data.label_names(splits))
    assert all(np.asarray(split["labels"]).sum(axis=0).min() > 0 for split in splits.values())  # each label each split


def test_evaluate_a_multilabel_model_uses_its_saved_thresholds(list_run, tmp_path):
    run, _ = list_run
    done = run_cli("evaluate", "--model-dir", str(run / "model"))
    assert done.code == 0, done.err
    scores = json.loads((run / "model" / "eval_test.json").read_text())
    saved = json.loads((run / "model" / THRESHOLDS_FILE).read_text())["thresholds"]
    assert scores["thresholds"] == saved and "hamming_loss" in scores
    assert "threshold" in done.out.splitlines()[0] and (run / "figures" / "per_label_test.png").is_file()
    # the validation scores training recorded are the saved model's, row for row, at the saved thresholds
    again = run_cli("evaluate", "--model-dir", str(run / "model"), "--split", "validation", "--json")
    assert again.code == 0, again.err
    recorded = json.loads((run / "metrics.json").read_text())["validation"]["fine-tuned"]
    rescored = json.loads(again.out)
    for name in ("f1_micro", "f1_macro", "f1_samples", "hamming_loss"):
        assert rescored[name] == pytest.approx(recorded[name], abs=1e-6), name
    fresh = tmp_path / "new.jsonl"  # a labelled file of rows the model never saw, labels as lists
    fresh.write_text("".join(json.dumps({"message": f"new {text}", "tags": labels}) + "\n"
                             for text, labels in multilabel_rows(12, seed=5)))
    tested = run_cli("evaluate", "--model-dir", str(run / "model"), "--test-file", str(fresh), "--json")
    assert tested.code == 0, tested.err
    assert json.loads(tested.out)["examples"] == 12 and json.loads(tested.out)["thresholds"] == saved


def test_predict_returns_every_label_above_its_threshold(list_run, tmp_path):
    run, _ = list_run
    model = tmp_path / "model"
    import shutil

    shutil.copytree(run / "model", model)
    texts = ["my parcel never arrived and I was charged twice", "reset my password please"]
    scores = Predictor.from_folder(model).predict(texts)[0]["scores"]
    # one label's threshold just below its score, the others just above theirs: only that label is returned
    chosen = sorted(scores)[1]
    limits = {name: value - 1e-4 if name == chosen else value + 1e-4 for name, value in scores.items()}
    (model / THRESHOLDS_FILE).write_text(json.dumps({"thresholds": limits}))
    predictor = Predictor.from_folder(model)
    first, second = predictor.predict(texts)
    assert first["labels"] == [chosen] and set(first["scores"]) == set(WORDS)
    assert second["labels"] == [name for name in sorted(second["scores"], key=second["scores"].get, reverse=True)
                                if second["scores"][name] >= limits[name]]
    done = run_cli("predict", "--model-dir", str(model), *texts)
    assert done.code == 0, done.err
    assert [row["labels"] for row in json_lines(done.out)] == [first["labels"], second["labels"]]
    written = run_cli("predict", "--model-dir", str(model), *texts, "--output", str(tmp_path / "out.csv"))
    assert written.code == 0, written.err
    import pandas as pd

    table = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert table["labels"].tolist() == [";".join(first["labels"]), ";".join(second["labels"])]
    assert {f"score_{name}" for name in WORDS} <= set(table.columns)


def test_the_int8_copy_serves_a_multilabel_model(list_run):
    run, _ = list_run
    predictor = Predictor.from_folder(run / "model")
    texts = ["my parcel never arrived", "charged twice, money back please", "locked out of my account"]
    full, small = predictor.predict(texts), predictor.quantized().predict(texts)
    assert [set(row["scores"]) for row in small] == [set(WORDS)] * 3 and "labels" in small[0]
    for a, b in zip(full, small, strict=True):
        assert max(abs(a["scores"][name] - b["scores"][name]) for name in WORDS) < 0.05


def test_train_and_evaluate_with_a_label_separator(work):
    source = work / "tickets.csv"
    source.write_text("text,labels\n" + "".join(f"{text},{';'.join(labels)}\n" for text, labels in multilabel_rows()))
    done = run_cli("train", *TRAIN, "--dataset", str(source), "--label-column", "labels", "--label-separator", ";",
                   "--output-root", str(work), "--run-name", "separator")
    assert done.code == 0, done.err
    assert "Task: multi-label (3 labels, separator ';')" in done.err
    record = json.loads((work / "separator" / "model" / CONFIG_FILE).read_text())
    assert record["label_separator"] == ";"
    evaluated = run_cli("evaluate", "--model-dir", str(work / "separator" / "model"), "--json")
    assert evaluated.code == 0, evaluated.err
    assert set(json.loads(evaluated.out)["per_label"]) == set(WORDS)


def test_train_evaluate_and_predict_pairs(pair_run, tmp_path):
    run, done = pair_run
    assert "Task: pairs (columns 'first' and 'second'; 2 labels)" in done.err
    assert json.loads((run / "model" / CONFIG_FILE).read_text())["text_pair_column"] == "second"
    evaluated = run_cli("evaluate", "--model-dir", str(run / "model"))
    assert evaluated.code == 0, evaluated.err
    assert "TF-IDF + logistic regression" in evaluated.out and "majority class" in evaluated.out
    table = tmp_path / "new.csv"
    table.write_text("a,b\nmy parcel is late,the courier lost it\nrefund please,\n")
    predicted = run_cli("predict", "--model-dir", str(run / "model"), "--file", str(table), "--text-column", "a",
                        "--text-pair-column", "b", "--echo")
    assert predicted.code == 0, predicted.err
    rows = json_lines(predicted.out)
    assert rows[0]["text_pair"] == "the courier lost it" and rows[0]["label"] in ("same", "different")
    assert rows[1]["error"]  # a pair without its second text
    alone = run_cli("predict", "--model-dir", str(run / "model"), "one text")
    assert alone.code != 0 and "--text-pair-column second" in alone.err


def test_a_reversed_training_pair_counts_as_seen(pair_run, tmp_path):
    run, _ = pair_run
    import datasets

    trained = datasets.load_from_disk(str(run / "data"))["train"][0]
    first, second = trained["text"], trained["text_pair"]
    assert runs.seen_rows(run / "model", [first], pairs=[second]) == [True]
    assert runs.seen_rows(run / "model", [second], pairs=[first]) == [True]  # the same pair, reversed
    assert runs.seen_rows(run / "model", [first + " again"], pairs=[second]) == [False]
    swapped = tmp_path / "swapped.csv"
    label = data.label_names({"train": datasets.load_from_disk(str(run / "data"))["train"]})[trained["label"]]
    swapped.write_text(f"first,second,label\n{second},{first},{label}\n")
    done = run_cli("evaluate", "--model-dir", str(run / "model"), "--test-file", str(swapped))
    assert done.code != 0 and "seen in fine-tuning" in done.err


def test_a_reversed_pair_is_a_duplicate_across_splits():
    import pandas as pd

    frames = {"train": pd.DataFrame({"text": ["A b"], "text_pair": ["c"], "label": ["x"]}),
              "test": pd.DataFrame({"text": ["c", "a  B"], "text_pair": ["a b", "d"], "label": ["x", "x"]})}
    report = data.LoadReport(source="test")
    kept = data.drop_duplicates_and_leaks(frames, report)
    assert kept["test"]["text"].tolist() == ["a  B"] and report.dropped == {f"test: {data.LEAKED}": 1}


def test_a_blank_second_text_is_counted_apart_naming_its_column(tmp_path):
    rows = [f"{first},{second},{label}" for first, second, label in pair_rows(36)]
    rows += ["a premise with no hypothesis,,same", "another premise alone,,different", "a premise,   ,same",
             ",a hypothesis with no premise,same"]
    source = tmp_path / "p.csv"
    source.write_text("premise,hypothesis,label\n" + "\n".join(rows) + "\n")
    cfg = Config.from_env("smoke", environ={}, dataset=str(source), text_column="premise",
                          text_pair_column="hypothesis")
    splits, report = data.load_splits(cfg)
    assert report.console_lines() == [
        "dropped 1 row without a text",
        "dropped 2 rows without a second text (column 'hypothesis')",
        "dropped 1 row whose second text (column 'hypothesis') is empty or only spaces",
    ]
    assert sum(len(rows) for rows in splits.values()) == 36  # every whole pair kept


def test_pairs_are_encoded_with_their_separator(tokenizer):
    batch = {"text": ["where is my parcel", "refund please"], "text_pair": ["it is late", "charged twice"]}
    encoded = tokenize_batch(tokenizer, batch, 32)
    for ids in encoded["input_ids"]:
        pairs.check_pair_encoding(ids, tokenizer)
    joined = tokenize_batch(tokenizer, {"text": [f"{a} {b}" for a, b in zip(*batch.values(), strict=True)]}, 32)
    with pytest.raises(DataError, match="separator"):
        pairs.check_pair_encoding(joined["input_ids"][0], tokenizer)


def test_the_predictor_encodes_pairs_and_refuses_a_mix(pair_run):
    run, _ = pair_run
    predictor = Predictor.from_folder(run / "model")
    encoded = predictor.encode([("where is my parcel", "it is late")])
    pairs.check_pair_encoding(encoded["input_ids"][0], predictor.tokenizer)
    scored = predictor.predict([("a parcel", "the courier"), ("money", "refund"), ("the courier", "a parcel")])
    assert [row["label"] for row in scored[:2]] == [row["label"] for row in predictor.predict(
        [("a parcel", "the courier"), ("money", "refund")])]  # the caller's order, whatever the batching
    with pytest.raises(DataTypeError, match="mix texts and"):
        predictor.predict(["a text", ("a", "pair")])


def test_a_label_separator_needs_a_character():
    from distilnb.errors import SettingError

    with pytest.raises(SettingError, match="label_separator"):
        Config.from_env("smoke", label_separator=" ")
    assert Config.from_env("smoke", text_pair_column="b").task == "pairs"
    assert Config.from_env("smoke", label_separator=";").task == "multi-label"


def test_the_demo_names_every_label_above_its_threshold(list_run):
    from distilnb import demo

    predictor = Predictor.from_folder(list_run[0] / "model")
    predictor.thresholds = np.zeros(3)  # every label reaches it
    scores, words, message = demo.classify(predictor, "my parcel never arrived and I was charged twice", n_steps=4)
    assert set(scores) == set(WORDS) and words
    assert all(f"**{name}**" in message for name in WORDS) and "above its threshold" in message
    predictor.thresholds = np.ones(3) * 2  # none does
    assert "No label reaches its threshold" in demo.classify(predictor, "a parcel", n_steps=4)[2]


def test_the_demo_takes_a_pair(pair_run):
    from distilnb import demo

    predictor = Predictor.from_folder(pair_run[0] / "model")
    scores, words, message = demo.classify(predictor, "my parcel", second="the courier", pairs=True)
    assert set(scores) == {"same", "different"} and "confident" in message
    shaded = [piece for piece, score in words if score is not None]
    assert {"parcel", "courier"} <= set(shaded)  # the words of both texts are attributed
    assert demo.classify(predictor, "my parcel", second=" ", pairs=True)[2] == demo.EMPTY_MESSAGE


def test_attributions_for_one_chosen_label(list_run):
    from distilnb.explain import word_attributions

    predictor = Predictor.from_folder(list_run[0] / "model")
    text = "my parcel never arrived and I was charged twice"
    scores = predictor.predict([text])[0]["scores"]
    for label in ("refund", "login"):
        frame = word_attributions(predictor, text, target=label, n_steps=4)
        assert frame.attrs["target"] == label
        assert frame.attrs["probability"] == pytest.approx(scores[label], abs=1e-5)  # its sigmoid score


def test_a_hub_dataset_config_reaches_load_dataset(monkeypatch):
    import datasets

    asked = []

    def load_dataset(name, config=None):
        asked.append((name, config))
        return datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": ["a"], "label": ["x"]})})

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    from distilnb.readers import read_source

    frames = read_source("glue", config="rte")
    assert asked == [("glue", "rte")] and list(frames["train"]["text"]) == ["a"]


def test_class_weights_train_a_multilabel_model(work):
    source = work / "weights.csv"
    source.write_text("text,labels\n" + "".join(f"{text},{';'.join(labels)}\n" for text, labels in multilabel_rows()))
    done = run_cli("train", *TRAIN, "--dataset", str(source), "--label-column", "labels", "--label-separator", ";",
                   "--class-weights", "--output-root", str(work), "--run-name", "weights")
    assert done.code == 0, done.err
    record = json.loads((work / "weights" / "model" / "distilnb_config.json").read_text())
    assert record["class_weights"] is True and (work / "weights" / "model" / "thresholds.json").is_file()


def test_segment_ids_reach_a_bert_model_its_int8_copy_and_its_export(tokenizer, tmp_path):
    import copy

    import torch
    from scipy.special import softmax
    from transformers import BertConfig, BertForSequenceClassification

    from distilnb.models import batched_forward

    bert_tokenizer = copy.deepcopy(tokenizer)  # the tiny model's vocabulary, with BERT's segment ids
    bert_tokenizer.model_input_names = ["input_ids", "token_type_ids", "attention_mask"]
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, num_labels=2))
    with torch.no_grad():  # segments that move the scores, so losing them shows
        model.bert.embeddings.token_type_embeddings.weight.mul_(50)
        model.classifier.weight.mul_(100)
    model.eval()
    predictor = Predictor(model, bert_tokenizer, max_length=32)
    pairs_ = [("where is my parcel", "it is late"), ("refund", "charged twice please")]
    full = predictor.probabilities(pairs_)
    without = softmax(batched_forward(model, bert_tokenizer, predictor.encode(pairs_)["input_ids"]), axis=-1)
    with torch.inference_mode():
        reference = model(**bert_tokenizer([a for a, _ in pairs_], [b for _, b in pairs_], padding=True,
                                           return_tensors="pt")).logits.softmax(-1).numpy()
    assert np.abs(full - reference).max() < 1e-5 and np.abs(full - without).max() > 1e-3
    int8 = predictor.quantized()
    assert int8.model.segments and np.abs(int8.probabilities(pairs_) - full).max() < 0.05
    model.save_pretrained(tmp_path / "model")
    bert_tokenizer.save_pretrained(tmp_path / "model")
    exported = Predictor.from_folder(export.export(tmp_path / "model").folder)  # read without torch or transformers
    assert isinstance(exported.tokenizer, FolderTokenizer)
    assert np.abs(exported.probabilities(pairs_) - full).max() < 1e-5


def test_a_hub_list_of_class_labels_becomes_label_names():
    import datasets

    features = datasets.Features({"text": datasets.Value("string"),
                                  "labels": datasets.List(datasets.ClassLabel(names=["joy", "anger", "fear"]))})
    rows = multilabel_rows(36)
    ids = {"delivery": 0, "refund": 1, "login": 2}
    loaded = datasets.DatasetDict({"train": datasets.Dataset.from_dict(
        {"text": [text for text, _ in rows], "labels": [[ids[label] for label in labels] for _, labels in rows]},
        features=features)})
    cfg = Config.from_env("smoke", environ={}, label_column="labels")
    splits, _ = data.prepare_splits(loaded, cfg)
    assert data.task_of(splits) == "multi-label" and data.label_names(splits) == ["joy", "anger", "fear"]
    names = {0: "joy", 1: "anger", 2: "fear"}
    expected = {text: [names[ids[label]] for label in labels] for text, labels in rows}
    for split in splits.values():
        multilabel.check_alignment(split["text"], np.asarray(split["labels"]), expected, data.label_names(splits))


def test_thresholds_are_tuned_on_predictions_beside_their_own_labels():
    from types import SimpleNamespace

    from distilnb.train import tuned_thresholds

    truth = np.array([[1, 0, 0], [0, 1, 1], [0, 0, 1], [1, 1, 0], [0, 1, 0], [1, 0, 1]], dtype=float)
    logits = np.where(truth > 0, 3.0, -3.0)  # a perfect model
    order = np.array([3, 0, 5, 1, 4, 2])  # the Trainer returns rows grouped by length, not in the split's order

    class Trainer:
        def predict(self, dataset):
            return SimpleNamespace(predictions=logits[order], label_ids=truth[order])

    scores, record = tuned_thresholds(Trainer(), {"labels": truth.tolist()}, ["a", "b", "c"])
    assert scores["f1_macro"] == 1.0 and scores["subset_accuracy"] == 1.0
    assert record["validation_f1_macro"][record["rule"]] == 1.0


def test_max_train_examples_keeps_every_label_of_a_multilabel_file(tmp_path):
    source = tmp_path / "t.jsonl"
    source.write_text("".join(json.dumps({"text": text, "label": labels}) + "\n" for text, labels in multilabel_rows()))
    cfg = Config.from_env("smoke", environ={}, dataset=str(source), max_train_examples=20)
    splits, report = data.load_splits(cfg)
    assert len(splits["train"]) == 20 and np.asarray(splits["train"]["labels"]).sum(axis=0).min() > 0
    assert report.split_sizes["train"] == 20


def test_several_labels_for_a_pair_is_refused_in_one_sentence(tmp_path):
    source = tmp_path / "p.csv"
    source.write_text("a,b,label\n" + "".join(f"{a},{b},x;y\n" for a, b, _ in pair_rows(12)))
    cfg = Config.from_env("smoke", environ={}, dataset=str(source), text_column="a", text_pair_column="b",
                          label_separator=";")
    with pytest.raises(DataError, match="Several labels for a pair of texts is not supported"):
        data.load_splits(cfg)
