"""Scoring on files the tests write: every row scored or counted by reason, a model refused data of another shape,
thresholds part of a multi-label model, a test file's own report; each through the command line where a user meets it.

The runs are built without the Trainer (a saved tiny model with its run files), so each test costs seconds.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
import torch

from distilnb import runs
from distilnb.cli.options import in_flag_words
from distilnb.config import Config
from distilnb.folder import THRESHOLDS_FILE
from distilnb.readers import ReadOptions
from tests.test_cli import run_cli

WORDS = {"delivery": ["parcel", "courier", "tracking", "package", "arrived", "shipping", "van", "doorstep"],
         "refund": ["refund", "money", "charged", "twice", "reimburse", "payment", "card", "back"],
         "login": ["password", "login", "account", "locked", "reset", "email", "code", "sign"]}


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models on a busy 2-core machine


def messages(n: int, seed: int, labels: int = 1) -> list[tuple[str, list[str]]]:
    """Return n distinct messages, each with `labels` labels (its words drawn from each)."""
    rng, rows, seen = random.Random(seed), [], set()
    while len(rows) < n:
        names = rng.sample(list(WORDS), labels)
        text = "my " + " ".join(w for name in names for w in rng.sample(WORDS[name], 3)) + f" {rng.randint(0, 9999)}"
        if text not in seen:
            seen.add(text)
            rows.append((text, names))
    return rows


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_run(root: Path, name: str, data_file: Path, *, multi: bool = False, options: ReadOptions | None = None,
             **settings) -> Path:
    """Return the model folder of a run built without the Trainer: splits saved (read with `options`, such as a test
    file given at train time), the tiny model with a head for the data's labels, its run files (and thresholds for
    several labels)."""
    from distilnb import data, models

    cfg = Config.from_env(profile="smoke", environ={}, output_root=str(root), run_name=name, dataset=str(data_file),
                          **settings)
    splits, report = data.load_splits(cfg, options)
    runs.save_splits(splits, report, cfg)
    names = data.label_names(splits)
    torch.manual_seed(0)
    model = models.load_classifier(cfg.resolved_model, names, multi_label=multi)
    model.save_pretrained(cfg.paths.model)
    models.load_tokenizer(cfg.resolved_model).save_pretrained(cfg.paths.model)
    runs.write_run_files(cfg, model, report.split_sizes, {}, splits, folder=cfg.paths.model)
    if multi:
        runs.save_thresholds(cfg.paths.model, {"rule": "global", "thresholds": dict.fromkeys(names, 0.5)})
    return cfg.paths.model


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("scoring")


@pytest.fixture(scope="module")
def single(root) -> Path:
    """A one-label model's folder, trained on 90 messages of 3 classes."""
    rows = [f"{text},{names[0]}" for text, names in messages(90, seed=1)]
    return make_run(root, "single", write_lines(root / "single.csv", ["text,label", *rows]))


@pytest.fixture(scope="module")
def multi(root) -> Path:
    """A multi-label model's folder, trained on messages with one or two labels joined by ';'."""
    rows = [f"{text},{';'.join(names)}" for text, names in messages(120, seed=2, labels=1)]
    rows += [f"{text},{';'.join(names)}" for text, names in messages(60, seed=3, labels=2)]
    return make_run(root, "multi", write_lines(root / "multi.csv", ["text,labels", *rows]), multi=True,
                    label_column="labels", label_separator=";")


@pytest.fixture(scope="module")
def pairs(root) -> Path:
    """A pair model's folder: (question, answer) rows labelled same topic or not."""
    rows = [f"{first},{second},{'same' if a == b else 'other'}"
            for (first, a), (second, b) in zip(messages(90, seed=4), messages(90, seed=5), strict=True)]
    return make_run(root, "pairs", write_lines(root / "pairs.csv", ["question,answer,label", *rows]),
                    text_column="question", text_pair_column="answer")


def evaluate(model: Path, *flags: str):
    return run_cli("evaluate", "--model-dir", str(model), *flags)


# ---------------------------------------------------------------- every row scored or counted


def test_a_test_file_with_blank_texts_and_labels_says_how_many_of_every_row_were_scored(single, tmp_path):
    good = [f"new {text},{names[0]}" for text, names in messages(50, seed=20)]
    file = write_lines(tmp_path / "official.csv", ["text,label", *good[:25], ",refund", "   ,login", ",delivery",
                                                   "my parcel,", "reset my code,  ", "where is it,", *good[25:]])
    done = evaluate(single, "--test-file", str(file))
    assert done.code == 0, done.err[-3000:]
    assert "scored 50 of the 56 rows" in done.err
    assert "3 with a blank text" in done.err and "3 with a blank label" in done.err
    report = json.loads((single / "eval_file_official.json").read_text())
    assert report["examples"] == 50
    assert report["rows"] == {"read": 56, "scored": 50, "left out": {"blank text": 3, "blank label": 3, "seen": 0}}


def test_blank_rows_and_seen_rows_are_counted_apart_with_skip_seen(single, tmp_path):
    splits = runs.saved_splits(single.parent / "data")[0]
    names = splits["train"].features["label"].names
    seen = [f"{splits['train'][i]['text']},{names[splits['train'][i]['label']]}" for i in range(4)]
    good = [f"new {text},{names_[0]}" for text, names_ in messages(10, seed=21)]
    file = write_lines(tmp_path / "mixed.csv", ["text,label", *seen, ",refund", "no label here,", *good])
    done = evaluate(single, "--test-file", str(file), "--skip-seen")
    assert done.code == 0, done.err[-3000:]
    assert "scored 10 of the 16 rows" in done.err
    assert "1 with a blank text, 1 with a blank label, 4 seen in fine-tuning" in done.err
    rows = json.loads((single / "eval_file_mixed.json").read_text())["rows"]
    assert rows["left out"] == {"blank text": 1, "blank label": 1, "seen": 4}


def test_a_test_file_given_at_train_time_gets_the_seen_row_rule_of_one_given_to_evaluate(root):
    train = [f"{text},{names[0]}" for text, names in messages(90, seed=30)]
    unseen = [f"new {text},{names[0]}" for text, names in messages(20, seed=31)]
    train_file = write_lines(root / "given_train.csv", ["text,label", *train])
    test_file = write_lines(root / "given_test.csv", ["text,label", *train[:4], *unseen])  # repeats 4 training rows
    model = make_run(root, "given", train_file, options=ReadOptions(split_files={"test": str(test_file)}))
    for flags in ((), ("--test-file", str(test_file))):  # the run's test split is that file; the file itself
        refused = evaluate(model, *flags)
        assert refused.code == 1, refused.err[-3000:]
        assert "4 of the 24 rows to score were seen in fine-tuning" in refused.err and "Set --skip-seen" in refused.err
        done = evaluate(model, *flags, "--skip-seen")
        assert done.code == 0, done.err[-3000:]
        assert "Skipped 4 of the 24 rows" in done.err and "scored 20 of the 24 rows" in done.err
    assert "train again with --drop-duplicates" in evaluate(model).err  # the run's own split: the fix at train time


def test_a_multi_label_test_file_scores_its_rows_without_a_label(multi, tmp_path):
    rows = [{"text": f"new {text}", "labels": names} for text, names in messages(20, seed=22)]
    rows += [{"text": f"nothing to see here {i}", "labels": []} for i in range(5)]
    file = tmp_path / "with_none.jsonl"
    file.write_text("".join(json.dumps(row) + "\n" for row in rows))
    done = evaluate(multi, "--test-file", str(file))
    assert done.code == 0, done.err[-3000:]
    assert json.loads((multi / "eval_file_with_none.json").read_text())["examples"] == 25
    assert "scored 25 of the 25 rows" in done.err and "5 rows of" in done.err and "'no label'" in done.err


def test_a_multi_label_csv_test_file_scores_its_rows_with_a_blank_label_cell_as_no_label(multi, tmp_path):
    rows = [f"new {text},{';'.join(names)}" for text, names in messages(20, seed=25)]
    rows += [f"nothing to see here {i}," for i in range(4)] + ["nothing at all,   "]
    done = evaluate(multi, "--test-file", str(write_lines(tmp_path / "blank_cells.csv", ["text,labels", *rows])))
    assert done.code == 0, done.err[-3000:]
    assert "scored 25 of the 25 rows" in done.err and "5 rows of" in done.err and "'no label'" in done.err
    report = json.loads((multi / "eval_file_blank_cells.json").read_text())
    assert report["examples"] == 25
    assert report["rows"] == {"read": 25, "scored": 25, "left out": {"blank text": 0, "blank label": 0, "seen": 0}}


def test_each_test_file_writes_its_own_report_and_leaves_the_runs_test_score(single, tmp_path):
    assert evaluate(single).code == 0
    own = (single / "eval_test.json").read_text()
    file = write_lines(tmp_path / "other.csv", ["text,label", *(f"new {t},{n[0]}" for t, n in messages(9, seed=23))])
    assert evaluate(single, "--test-file", str(file)).code == 0
    assert (single / "eval_test.json").read_text() == own
    metrics = json.loads((single.parent / "metrics.json").read_text())
    assert metrics["file_other"]["fine-tuned"]["examples"] == 9 and "test" in metrics


def test_evaluating_the_validation_split_says_those_rows_chose_the_checkpoint(single):
    done = evaluate(single, "--split", "validation")
    assert done.code == 0, done.err[-3000:]
    assert "validation rows chose the checkpoint" in done.err
    assert "chose the checkpoint" not in evaluate(single).err


def test_a_multi_label_evaluation_prints_the_majority_baseline_too(multi):
    done = evaluate(multi)
    assert done.code == 0, done.err[-3000:]
    assert "majority class" in done.out.split("Beside the baselines")[1]


# ---------------------------------------------------------------- thresholds are part of the model


def test_a_multi_label_model_without_its_thresholds_is_refused_unless_0_5_is_asked_for(multi, tmp_path):
    import shutil

    copy = tmp_path / "run" / "model"
    shutil.copytree(multi.parent, copy.parent)
    (copy / THRESHOLDS_FILE).unlink()
    refused = evaluate(copy)
    assert refused.code == 1 and "Traceback" not in refused.err and len(refused.err.splitlines()) == 1
    assert "thresholds.json is missing" in refused.err and "--default-thresholds" in refused.err
    assert run_cli("predict", "--model-dir", str(copy), "my parcel").code == 1
    assert evaluate(copy, "--default-thresholds").code == 0


@pytest.mark.parametrize(("content", "says"), [
    ('{"thresholds": {"delivery": 0.5, "login"', "cannot be read"),
    ('{"thresholds": {"delivery": 0.5}}', "no threshold for 2 of the model's 3 labels"),
    ('[0.5, 0.5, 0.5]', "holds no thresholds object"),
    ('{"thresholds": {"delivery": "high", "login": 0.5, "refund": 0.5}}', "'delivery': 'high'"),
    ('{"thresholds": {"delivery": 5, "login": -1, "refund": 0.5}}', "'delivery': 5, 'login': -1"),
])
def test_a_broken_thresholds_file_is_one_sentence(multi, tmp_path, content, says):
    import shutil

    copy = tmp_path / "run" / "model"
    shutil.copytree(multi.parent, copy.parent)
    (copy / THRESHOLDS_FILE).write_text(content)
    for done in (evaluate(copy), run_cli("predict", "--model-dir", str(copy), "my parcel")):
        assert done.code == 1 and "Traceback" not in done.err and len(done.err.splitlines()) == 1, done.err[-2000:]
        assert says in done.err


def test_top_k_keeps_the_same_labels_in_labels_and_scores(multi, tmp_path):
    import shutil

    copy = tmp_path / "run" / "model"
    shutil.copytree(multi.parent, copy.parent)
    (copy / THRESHOLDS_FILE).write_text(json.dumps({"thresholds": dict.fromkeys(WORDS, 0.0)}))  # every label on
    done = run_cli("predict", "--model-dir", str(copy), "my parcel", "--top-k", "1")
    assert done.code == 0, done.err[-3000:]
    row = json.loads(done.out.splitlines()[0])
    assert len(row["labels"]) == 1 and list(row["scores"]) == row["labels"]


# ---------------------------------------------------------------- a model scores only data of its own shape


@pytest.mark.parametrize("where", ["in its run", "copied out alone"])
def test_a_multi_label_model_refuses_a_file_of_one_label_a_row(multi, tmp_path, where):
    rows = [f"new {text},{names[0]}" for text, names in messages(12, seed=24)]
    file = write_lines(tmp_path / "single.csv", ["text,labels", *rows])
    # Alone, no run's data beside it says what the model was trained on: before issue 30 it was scored by argmax.
    model = multi if where == "in its run" else shutil.copytree(multi, tmp_path / "elsewhere" / "model")
    # as a model trained on label lists (no separator) meets it
    done = evaluate(model, "--test-file", str(file), "--label-separator", "none")
    assert done.code == 1 and "Traceback" not in done.err and len(done.err.splitlines()) == 1, done.err[-2000:]
    assert "--label-column labels holds one label a row" in done.err and "--label-separator" in done.err
    assert not (model / "eval_file_single.json").exists()


def test_a_one_label_model_refuses_a_file_of_label_lists(single, tmp_path):
    file = tmp_path / "lists.jsonl"
    file.write_text("".join(json.dumps({"text": f"new {t}", "label": n}) + "\n" for t, n in messages(6, seed=25)))
    done = evaluate(single, "--test-file", str(file))
    assert done.code == 1 and "holds lists of labels, but the model gives one label a text" in done.err


def test_a_pair_model_refuses_single_texts_and_a_single_text_model_refuses_pairs(single, pairs, tmp_path):
    texts = write_lines(tmp_path / "texts.csv", ["question,label", "where is my parcel,same"])
    done = evaluate(pairs, "--test-file", str(texts))
    assert done.code == 1 and "The second text column 'answer' is not in" in done.err
    table = write_lines(tmp_path / "pairs.csv", ["text,other", "where is my parcel,it left the depot"])
    refused = run_cli("predict", "--model-dir", str(single), "--file", str(table), "--text-pair-column", "other")
    assert refused.code == 1 and len(refused.err.splitlines()) == 1
    assert "--text-pair-column other names a second text, but the model was trained on single texts" in refused.err


def test_a_pair_column_equal_to_the_text_column_is_refused(pairs, tmp_path):
    table = write_lines(tmp_path / "p.csv", ["question,answer", "where is my parcel,it left the depot"])
    done = run_cli("predict", "--model-dir", str(pairs), "--file", str(table), "--text-pair-column", "question")
    assert done.code == 1 and "--text-pair-column question is the text column too" in done.err


def test_a_blank_second_text_is_named_as_such(pairs, tmp_path):
    table = write_lines(tmp_path / "p.csv", ["question,answer", "where is my parcel,", "where,it left"])
    done = run_cli("predict", "--model-dir", str(pairs), "--file", str(table))
    assert done.code == 0, done.err[-3000:]
    first = json.loads(done.out.splitlines()[0])
    assert first["error"] == "blank second text (--text-pair-column): nothing to classify"


# ---------------------------------------------------------------- unreadable inputs, one sentence each


def test_a_csv_given_as_the_model_folder_is_one_sentence(single, tmp_path):
    file = write_lines(tmp_path / "tickets.csv", ["text,label", "a,b"])
    for command, extra in (("evaluate", []), ("predict", ["hello"])):
        done = run_cli(command, "--model-dir", str(file), *extra)
        assert done.code == 1 and len(done.err.splitlines()) == 1, done.err[-2000:]
        assert "is a file, not a model folder" in done.err


def refuse_to_read(monkeypatch, name: str) -> None:
    """Make reading the file called `name` fail as a file without read permission does (root reads any file, so the
    refusal is the system's answer, played back)."""
    real = Path.read_bytes

    def refuse(path: Path) -> bytes:
        if path.name == name:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(Path, "read_bytes", refuse)


def test_a_file_without_read_permission_is_one_sentence(single, tmp_path, monkeypatch):
    file = write_lines(tmp_path / "secret.csv", ["text,label", "my parcel,delivery"])
    refuse_to_read(monkeypatch, "secret.csv")
    for done in (evaluate(single, "--test-file", str(file)),
                 run_cli("predict", "--model-dir", str(single), "--file", str(file))):
        assert done.code == 1 and "Traceback" not in done.err and len(done.err.splitlines()) == 1, done.err[-2000:]
        assert "no permission to read it" in done.err


def test_a_training_file_without_read_permission_is_one_sentence(tmp_path, monkeypatch):
    file = write_lines(tmp_path / "secret.csv", ["text,label", *(f"{t},{n[0]}" for t, n in messages(30, seed=24))])
    refuse_to_read(monkeypatch, "secret.csv")
    done = run_cli("train", "--profile", "smoke", "--output-root", str(tmp_path / "out"), "--dataset", str(file))
    assert done.code == 1 and "Traceback" not in done.err and len(done.err.splitlines()) == 1, done.err[-2000:]
    assert done.err.startswith(f"distilnb train: {file} cannot be read: this user has no permission to read it")
    assert "chmod +r secret.csv" in done.err


def test_predict_leaves_the_input_text_out_unless_echo_is_given(single):
    plain = json.loads(run_cli("predict", "--model-dir", str(single), "my parcel").out.splitlines()[0])
    echoed = json.loads(run_cli("predict", "--model-dir", str(single), "my parcel", "--echo").out.splitlines()[0])
    assert "text" not in plain and echoed["text"] == "my parcel" and plain["label"] == echoed["label"]


# ---------------------------------------------------------------- label lists checked when the data is read


def load(path: Path, **settings):
    from distilnb import data

    return data.load_splits(Config.from_env(profile="smoke", environ={}, dataset=str(path), **settings))


def test_two_known_labels_joined_by_a_comma_under_a_semicolon_separator_are_named_with_their_count(tmp_path):
    rows = [f"{text},{';'.join(names)}" for text, names in messages(90, seed=30) + messages(30, seed=35, labels=2)]
    rows += [f'{text},"delivery,refund"' for text, _ in messages(20, seed=31)]
    _, report = load(write_lines(tmp_path / "joined.csv", ["text,labels", *rows]), label_column="labels",
                     label_separator=";")
    assert any(warning.startswith("20 rows carry the label 'delivery,refund', which joins the known labels "
                                  "'delivery' and 'refund' with ','") and "'delivery;refund'" in warning
               for warning in report.warnings), report.warnings


def test_a_label_with_a_slash_joining_no_known_labels_is_named_as_a_label_of_its_own(tmp_path):
    from distilnb import data

    rows = [f"{text},{';'.join(names)}" for text, names in messages(90, seed=30) + messages(30, seed=35, labels=2)]
    rows += [f"{text},shipping/returns" for text, _ in messages(20, seed=36)]
    splits, report = load(write_lines(tmp_path / "slashed.csv", ["text,labels", *rows]), label_column="labels",
                          label_separator=";")
    assert ("20 rows carry the label 'shipping/returns', which contains '/' although labels are joined by ';': a "
            "label of its own. If it means several labels, write it as 'shipping;returns'.") in report.warnings
    assert not any("joins the known labels" in warning for warning in report.warnings), report.warnings
    assert data.label_names(splits) == ["delivery", "login", "refund", "shipping/returns"]


LABEL_LISTS = [(lambda names: ";".join(names), "set label_separator=';'"),
               (lambda names: json.dumps(names).replace('"', '""'), "look like lists stored as text")]


@pytest.mark.parametrize(("cell", "says"), LABEL_LISTS)
def test_label_lists_without_a_separator_name_the_separator_not_swapped_columns(tmp_path, cell, says):
    from distilnb.errors import DataError

    rows = [f"{text},{names[0]}" for text, names in messages(60, seed=32)]
    rows += [f'{text},"{cell(names)}"' for text, names in messages(6, seed=33, labels=2)]
    with pytest.raises(DataError) as error:
        load(write_lines(tmp_path / "lists.csv", ["text,label", *rows]))
    assert says in str(error.value) and "swapped" not in str(error.value)


@pytest.mark.parametrize(("cell", "says"), LABEL_LISTS)
def test_label_lists_in_a_one_label_column_that_trains_are_a_warning_naming_the_separator(tmp_path, cell, says):
    rows = [f'{text},"{cell(names)}"' for text, names in messages(60, seed=36) + messages(90, seed=37, labels=2)]
    splits, report = load(write_lines(tmp_path / "lists.csv", ["text,label", *rows]))
    assert len(splits["train"].features["label"].names) > 3  # each combination became a class of its own
    assert [says in line for line in report.console_lines()] == [True], report.console_lines()


def test_a_label_separator_no_row_holds_is_refused_in_one_sentence(tmp_path):
    from distilnb.errors import DataError

    rows = [f"{text},{names[0]}" for text, names in messages(60, seed=34)]
    with pytest.raises(DataError, match="No label holds the label separator ';': every row has one label") as error:
        load(write_lines(tmp_path / "one.csv", ["text,label", *rows]), label_separator=";")
    assert "Leave --label-separator out, or set it to the character" in in_flag_words(error.value)


# ---------------------------------------------------------------- a resume is the same run or refused


def test_a_resume_with_another_seed_schedule_or_changed_data_is_refused_naming_it(tmp_path):
    import dataclasses
    import os

    from distilnb.errors import DataError, SettingError

    file = write_lines(tmp_path / "t.csv", ["text,label", *(f"{t},{n[0]}" for t, n in messages(30, seed=40))])
    cfg = Config.from_env(profile="smoke", environ={}, output_root=str(tmp_path), dataset=str(file))
    runs.record_resume_settings(cfg, cfg.paths.checkpoints)
    runs.check_resume(cfg, cfg.paths.checkpoints)  # the same run: nothing to say
    for name, value in (("seed", 7), ("epochs", 6.0), ("max_length", 96), ("label_column", "tag")):
        with pytest.raises(SettingError) as error:
            runs.check_resume(dataclasses.replace(cfg, **{name: value}), cfg.paths.checkpoints)
        assert str(error.value).startswith(f"{name} = {value!r} differs from the interrupted run's")
    os.utime(file, ns=(1, 1))
    with pytest.raises(DataError, match="changed since the interrupted run"):
        runs.check_resume(cfg, cfg.paths.checkpoints)


def test_a_resume_without_a_record_compares_the_settings_its_splits_were_made_with(tmp_path):
    import dataclasses

    from distilnb.errors import SettingError

    file = write_lines(tmp_path / "t.csv", ["text,label", *(f"{t},{n[0]}" for t, n in messages(30, seed=41))])
    cfg = Config.from_env(profile="smoke", environ={}, output_root=str(tmp_path), dataset=str(file))
    runs.build_and_save_splits(cfg)
    with pytest.raises(SettingError, match="seed = 7 differs from the interrupted run's 42"):
        runs.check_resume(dataclasses.replace(cfg, seed=7), cfg.paths.checkpoints)
    runs.check_resume(dataclasses.replace(cfg, epochs=9.0), cfg.paths.checkpoints)  # the splits say nothing of it


def test_resuming_with_another_seed_on_the_command_line_is_one_sentence_naming_the_flag(tmp_path):
    file = write_lines(tmp_path / "t.csv", ["text,label", *(f"{t},{n[0]}" for t, n in messages(30, seed=42))])
    cfg = Config.from_env(profile="smoke", environ={}, output_root=str(tmp_path), dataset=str(file))
    runs.record_resume_settings(cfg, cfg.paths.checkpoints)
    (cfg.paths.checkpoints / "checkpoint-3").mkdir()  # what the interrupted run left
    done = run_cli("train", "--profile", "smoke", "--output-root", str(tmp_path), "--dataset", str(file), "--resume",
                   "--seed", "7")
    assert done.code == 1 and "Traceback" not in done.err and len(done.err.splitlines()) == 1, done.err[-2000:]
    assert done.err == (f"distilnb train: --seed 7 differs from the interrupted run's {cfg.seed}: resume with the same "
                        "value, or train afresh without resuming.\n")
    assert (cfg.paths.checkpoints / "checkpoint-3").is_dir() and not (cfg.paths.root / "model").exists()


# ---------------------------------------------------------------- chunking counts inputs


def test_chunked_progress_counts_inputs_and_gives_the_same_scores(single, capsys):
    from distilnb.predict import Predictor

    predictor = Predictor.from_folder(single, on="cpu")
    texts = [" ".join(f"my parcel never arrived {i}" for i in range(4000)), "refund me", "reset my password"] * 2
    quiet = predictor.probabilities(texts, chunk=True, progress=False)
    capsys.readouterr()
    counted = predictor.probabilities(texts, chunk=True, progress="lines")
    lines = capsys.readouterr().err.splitlines()
    assert lines and lines[-1].startswith("Scored 6 of 6 inputs (") and lines[-1].endswith(" windows)")
    assert all(line.startswith("Scored ") and " of 6 inputs" in line for line in lines)
    assert counted == pytest.approx(quiet, abs=1e-6)


def test_no_header_on_a_file_that_has_one_is_one_sentence_naming_the_line(single, tmp_path):
    file = write_lines(tmp_path / "headed.csv", ["text,label", *(f"new {t},{n[0]}" for t, n in messages(9, seed=50))])
    done = evaluate(single, "--test-file", str(file), "--no-header")
    assert done.code == 1 and len(done.err.splitlines()) == 1, done.err[-2000:]
    assert "headed.csv starts with a header line (text, label), but --no-header says it has none" in done.err
    assert evaluate(single, "--test-file", str(file)).code == 0


def test_mixed_separators_name_the_joined_label_when_a_split_lacks_it(tmp_path):
    from distilnb.errors import DataError

    rows = [f"{text},{';'.join(names)}" for text, names in messages(90, seed=51) + messages(30, seed=52, labels=2)]
    rows.append("my parcel and my money,\"delivery,refund\"")  # one row, so some split has none of it
    with pytest.raises(DataError, match="no row with the label 'delivery,refund'.* It contains ','") as error:
        load(write_lines(tmp_path / "mixed.csv", ["text,labels", *rows]), label_column="labels", label_separator=";")
    assert "the label separator's character (--label-separator) instead" in in_flag_words(error.value)
