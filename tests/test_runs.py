import json
import os
from dataclasses import replace

import pytest
from conftest import write

from distilnb import Config, data, readers, runs, train
from distilnb.cli.options import in_flag_words
from distilnb.folder import run_of_model


def rows(n: int, prefix: str = "t") -> str:
    return "text,label\n" + "".join(f"{prefix}{i},{'ab'[i % 2]}\n" for i in range(n))


def test_saved_splits_are_reused_by_the_next_stage(smoke_cfg, sample_splits):
    splits, report = runs.build_and_save_splits(smoke_cfg)
    again, saved_report = runs.load_or_build_splits(smoke_cfg)
    assert again["test"]["text"] == splits["test"]["text"] == sample_splits["test"]["text"]
    assert saved_report.split_sizes == report.split_sizes and saved_report.settings["fingerprint"]


def test_splits_saved_as_01_saves_them_are_reused_not_rebuilt(smoke_cfg, monkeypatch):
    splits, report = data.prepare_splits(readers.read_source(smoke_cfg.dataset), smoke_cfg)  # 01_data's own steps
    runs.save_splits(splits, report, smoke_cfg)
    monkeypatch.setattr(runs, "build_and_save_splits", lambda cfg: pytest.fail("02 rebuilt the splits 01 saved"))
    again, _ = runs.load_or_build_splits(smoke_cfg)
    assert again["test"]["text"] == splits["test"]["text"]


def test_saved_splits_win_over_new_split_settings_but_not_over_a_changed_source(tmp_path, capsys):
    source = write(tmp_path / "d.csv", rows(40))
    cfg = Config.from_env(profile="smoke", environ={}, dataset=str(source), output_root=str(tmp_path / "out"))
    first, _ = runs.load_or_build_splits(cfg)
    reseeded, report = runs.load_or_build_splits(replace(cfg, seed=7))
    assert reseeded["test"]["text"] == first["test"]["text"] and report.settings["seed"] == cfg.seed
    assert "made with {'seed': 42}" in capsys.readouterr().out
    rebuilt, _ = runs.build_and_save_splits(replace(cfg, seed=7))
    assert rebuilt["test"]["text"] != first["test"]["text"]
    write(source, rows(40, prefix="new "))
    changed, _ = runs.load_or_build_splits(cfg)
    assert changed["train"]["text"][0].startswith("new")


def test_an_edited_file_given_by_a_path_relative_to_the_project_is_noticed_from_notebooks(tmp_path, monkeypatch):
    # From notebooks/, data/... must name the same file for the reader and the fingerprint, so an edit is noticed.
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "distilnb"\n')
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "data").mkdir()
    write(tmp_path / "data" / "d.csv", rows(100))
    monkeypatch.chdir(tmp_path / "notebooks")
    cfg = Config.from_env(profile="smoke", environ={}, dataset="data/d.csv", output_root=str(tmp_path / "out"))
    assert runs.source_fingerprint(cfg.dataset).startswith("d.csv:")
    before, _ = runs.load_or_build_splits(cfg)
    write(tmp_path / "data" / "d.csv", rows(60))
    _, report = runs.load_or_build_splits(cfg)
    assert sum(report.split_sizes.values()) == 60 < sum(len(before[s]) for s in before) == 100


def test_metrics_json_sections_merge(tmp_path):
    path = tmp_path / "m.json"
    runs.update_metrics(path, "validation", {"a": {"accuracy": 0.5}})
    content = runs.update_metrics(path, "validation", {"b": {"accuracy": 0.7}})
    assert content == runs.read_metrics(path) == {"validation": {"a": {"accuracy": 0.5}, "b": {"accuracy": 0.7}}}


@pytest.mark.parametrize("model, base", [("distilbert-base-uncased", "distilbert-base-uncased"), ("tiny", None),
                                         ("minilm", "sentence-transformers/all-MiniLM-L6-v2")])
def test_the_model_card_names_base_model_only_for_a_hub_id(model, base, tmp_path):
    # The Hub reads base_model as a repository id: a short name or a local path must not appear there; the offline
    # profile's MiniLM is named by the repository its weights copy.
    cfg = Config.from_env(profile="smoke", environ={}, model=model)
    card = runs.model_card(cfg, ["a", "b"], {"train": 8}, {"accuracy": 0.5}, params=runs.hyperparameters(cfg))
    header = card.split("---")[1]
    assert (f"base_model: {base}" in header) is (base is not None) and ("base_model:" in header) is (base is not None)
    assert f"**Base model:** `{base or model}`" in card
    local = Config.from_env(profile="smoke", environ={}, model=str(tmp_path))
    assert "base_model" not in runs.model_card(local, ["a"], {}, {}, params={}).split("---")[1]


def test_the_model_card_carries_the_validation_scores_as_hub_metadata():
    from huggingface_hub import ModelCard

    cfg = Config.from_env(profile="smoke", environ={})
    card = ModelCard(runs.model_card(cfg, ["a"], {}, {"accuracy": 0.625, "f1_macro": 0.5, "loss": 0.7}, params={}))
    found = {result.metric_type: result.metric_value for result in card.data.eval_results}
    assert found == {"accuracy": 0.625, "f1_macro": 0.5}  # the scores the Hub shows, not the loss
    assert {result.dataset_split for result in card.data.eval_results} == {"validation"}


def test_the_run_files_record_settings_rows_and_the_trainers_own_validation_scores(trained, sample_splits, smoke_cfg):
    trainer, folder = trained
    names = {p.name for p in folder.iterdir()}
    assert {"README.md", "training_args.json", "distilnb_config.json", "training_rows.json"} <= names
    recorded = Config(**json.loads((folder / "distilnb_config.json").read_text()))
    assert recorded == replace(smoke_cfg, output_root=None)  # where the run is: the folder the record sits in
    # One validation pass per epoch, no extra trainer.evaluate(); metrics.json holds the best epoch's scores.
    history = train.history_frame(trainer.state.log_history)
    evaluations = [entry for entry in trainer.state.log_history if "eval_loss" in entry]
    assert len(evaluations) == len(history)
    saved = runs.read_metrics(smoke_cfg.paths.metrics)["validation"]["fine-tuned"]
    assert saved["f1_macro"] == history["eval_f1_macro"].max() == trainer.state.best_metric
    best = next(entry for entry in evaluations if entry["eval_f1_macro"] == trainer.state.best_metric)
    assert saved["accuracy"] == best["eval_accuracy"] and saved["loss"] == best["eval_loss"]
    assert not any(key.endswith(("runtime", "per_second")) for key in saved)


def test_training_overlap_counts_the_rows_a_model_saw(trained, sample_splits):
    _, folder = trained
    seen = {split: {data.normalise_text(t) for t in sample_splits[split]["text"]} for split in ("train", "validation")}
    test_texts = list(sample_splits["test"]["text"])
    expected = {split: sum(data.normalise_text(t) in keys for t in test_texts) for split, keys in seen.items()}
    assert runs.training_overlap(folder, test_texts) == expected  # duplicates across splits, unless dropped
    mixed = sample_splits["train"][:5]["text"] + [t.upper() + "  " for t in sample_splits["validation"][:3]["text"]]
    overlap = runs.training_overlap(folder, mixed + test_texts)
    assert overlap["train"] >= 5 + expected["train"] and overlap["validation"] >= 3 + expected["validation"]
    assert runs.training_overlap(folder, ["a text nobody wrote"]) == {"train": 0, "validation": 0}
    assert runs.training_overlap(folder.parent, test_texts) == {}


def test_run_files_for_a_model_trained_by_a_plain_loop(tmp_path, sample_splits):
    from distilnb import models

    cfg = Config.from_env(profile="smoke", environ={}, output_root=str(tmp_path))
    model = models.load_classifier(cfg.resolved_model, data.label_names(sample_splits))
    scores = {"accuracy": 0.5, "f1_macro": 0.4}
    folder = runs.write_run_files(cfg, model, {"train": 3}, scores, sample_splits, row="fine-tuned (loop)")
    assert not (folder / "training_args.json").exists() and (folder / "training_rows.json").is_file()
    assert runs.read_metrics(cfg.paths.metrics)["validation"] == {"fine-tuned (loop)": scores}
    assert "| batch_size | 16 |" in (folder / "README.md").read_text()


def test_a_run_folder_lock_refuses_a_second_holder_naming_the_first(tmp_path):
    from filelock import FileLock

    with runs.run_lock(tmp_path / "run") as lock:
        assert lock.read_text() == str(os.getpid())
        with pytest.raises(runs.RunInUseError, match=f"in use by process {os.getpid()}"), \
                runs.run_lock(tmp_path / "run"):
            pass
    with FileLock(tmp_path / "run" / ".lock", timeout=0):  # released on leaving the block
        pass


def test_rows_to_score_refuses_skips_or_notes_the_seen_rows(trained, sample_splits):
    _, folder = trained
    train_texts = list(sample_splits["train"]["text"][:3])
    new = ["a text nobody wrote", "another one nobody wrote"]
    texts = train_texts + new
    for origin in (runs.OTHER_ROWS, runs.GIVEN_SPLIT):  # a file given now, or a test file given at train time
        with pytest.raises(runs.SeenRowsError, match="3 of the 5 rows .* skip_seen=True") as refused:
            runs.rows_to_score(folder, texts, "test", origin=origin, skip_seen=False)
        assert "Set --skip-seen to score" in in_flag_words(refused.value)  # the command line's words for the cause
        kept, note = runs.rows_to_score(folder, texts, "test", origin=origin, skip_seen=True)
        assert kept == [3, 4] and note.startswith("Skipped 3 of the 5 rows")
    kept, note = runs.rows_to_score(folder, texts, "test", origin=runs.CUT_SPLIT, skip_seen=False)
    assert kept == [0, 1, 2, 3, 4] and "the data repeats them" in note
    assert runs.rows_to_score(folder, new, "test", origin=runs.OTHER_ROWS, skip_seen=False) == ([0, 1], None)


def test_run_of_model_is_the_folder_holding_a_distilnb_model(trained, tmp_path):
    _, folder = trained
    assert run_of_model(folder) == folder.parent and run_of_model(tmp_path) is None
