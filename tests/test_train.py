import json

import numpy as np
import pytest
import torch
from transformers import TrainerCallback

from distilnb import Config, baselines, data, metrics, predict, tokens, train


def test_learning_rate_scales_with_encoder_width():
    assert train.default_learning_rate(768) == pytest.approx(5e-5)
    assert train.default_learning_rate(384) == pytest.approx(1e-4)


def test_training_arguments_carry_the_course_defaults(smoke_cfg):
    args = train.training_arguments(smoke_cfg, 1e-3)
    assert (args.eval_strategy, args.save_strategy) == ("epoch", "epoch")
    assert args.load_best_model_at_end and args.metric_for_best_model == "f1_macro"
    assert args.train_sampling_strategy == "group_by_length" and args.warmup_steps == 0.1
    assert args.report_to in ([], "none", ["none"]) and args.seed == smoke_cfg.seed
    assert not args.fp16 and not args.bf16  # the CPU gets fp32


def test_class_weights_are_inverse_frequency():
    weights = train.class_weights([0, 0, 0, 1], 2)
    assert weights.tolist() == pytest.approx([4 / 6, 2.0])
    assert train.class_weights([0, 1, 2], 3).tolist() == pytest.approx([1, 1, 1])


def test_history_frame_has_one_row_per_epoch():
    log = [{"loss": 1.0, "epoch": 1.0}, {"eval_loss": 0.9, "eval_f1_macro": 0.5, "eval_runtime": 3, "epoch": 1.0},
           {"loss": 0.5, "epoch": 2.0}, {"eval_loss": 0.8, "eval_f1_macro": 0.6, "epoch": 2.0}, {"train_runtime": 9, "epoch": 2.0}]
    frame = train.history_frame(log)
    assert frame.columns.tolist() == ["epoch", "train_loss", "eval_loss", "eval_f1_macro"]
    assert frame["train_loss"].tolist() == [1.0, 0.5] and frame["eval_f1_macro"].tolist() == [0.5, 0.6]


def test_pickle_only_folder_is_refused(tmp_path):
    torch.save({"w": torch.zeros(1)}, tmp_path / "pytorch_model.bin")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ValueError, match=r"only pickle files \(pytorch_model.bin\).*safetensors"):
        train.load_model(str(tmp_path), ["a", "b"])
    with pytest.raises(ValueError, match="safetensors"):
        predict.Predictor.from_folder(tmp_path)


def test_model_for_other_labels_is_refused(trained):
    _, folder = trained
    with pytest.raises(ValueError, match=r"classifier for 5 labels .* but the data has 2"):
        train.load_model(str(folder), ["yes", "no"])


def test_hub_model_offline_fails_with_one_plain_sentence():
    from distilnb import HubUnreachableError

    with pytest.raises(HubUnreachableError, match="Could not download the model 'distilbert-base-uncased'"):
        train.load_model("distilbert-base-uncased", ["a", "b"])


def majority_accuracy(splits, split="test"):
    names = data.label_names(splits)
    return baselines.majority_baseline(splits["train"]["label"], splits[split]["label"], names)["accuracy"]


def test_trainer_beats_the_majority_class_on_held_out_data_by_a_wide_margin(trained, sample_splits):
    trainer, _ = trained
    logits = predict.Predictor(trainer.model, trainer.processing_class).logits(sample_splits["test"]["text"])
    accuracy = metrics.classification_metrics(sample_splits["test"]["label"], logits.argmax(-1), data.label_names(sample_splits))["accuracy"]
    assert accuracy >= majority_accuracy(sample_splits) + 0.3


def test_plain_loop_beats_the_majority_class_and_reports_like_the_trainer(smoke_cfg, sample_splits, tokenized, tokenizer, trained):
    from distilnb.config import seed_everything

    seed_everything(smoke_cfg.seed)
    model = train.load_model(smoke_cfg.resolved_model, data.label_names(sample_splits))
    history = train.train_loop(smoke_cfg, model, tokenized, tokenizer, progress=False)
    trainer_history = train.history_frame(trained[0].state.log_history)
    assert set(history.columns) == set(trainer_history.columns)
    logits = predict.Predictor(model, tokenizer).logits(sample_splits["test"]["text"])
    accuracy = (logits.argmax(-1) == np.array(sample_splits["test"]["label"])).mean()
    assert accuracy >= majority_accuracy(sample_splits) + 0.3
    assert history["eval_f1_macro"].max() == pytest.approx(
        metrics.classification_metrics(sample_splits["validation"]["label"],
                                       predict.Predictor(model, tokenizer).logits(sample_splits["validation"]["text"]).argmax(-1),
                                       data.label_names(sample_splits))["f1_macro"])


def test_saved_folder_has_everything_and_predicts_the_same(trained, sample_splits, smoke_cfg):
    trainer, folder = trained
    names = {p.name for p in folder.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "README.md", "training_args.json"} <= names
    assert not names & {"pytorch_model.bin", "training_args.bin"}
    config = json.loads((folder / "config.json").read_text())
    assert config["id2label"] == {str(i): n for i, n in enumerate(data.label_names(sample_splits))}
    card = (folder / "README.md").read_text()
    assert "support_tickets.csv" in card and "f1_macro" in card and "learning_rate" in card and "transformers" in card
    texts = sample_splits["test"]["text"]
    reloaded_predictor = predict.Predictor.from_folder(folder)
    assert reloaded_predictor.max_length == smoke_cfg.max_length  # inference truncates as training did
    reloaded = reloaded_predictor.logits(texts)
    in_memory = predict.Predictor(trainer.model, trainer.processing_class, smoke_cfg.max_length).logits(texts)
    assert np.allclose(reloaded, in_memory, atol=1e-5)
    assert "fine-tuned (Trainer)" in metrics.read_metrics(smoke_cfg.paths.metrics)["validation"]


class Interrupt(TrainerCallback):
    """Stops training abruptly right after the first checkpoint is written, as a crash would."""

    def on_save(self, args, state, control, **kwargs):
        raise KeyboardInterrupt


def short_run(cfg, splits, tokenized, tokenizer, resume=False, callbacks=None):
    from distilnb.config import seed_everything

    seed_everything(cfg.seed)
    model = train.load_model(cfg.resolved_model, data.label_names(splits))
    trainer = train.fine_tune(cfg, model, tokenized, tokenizer, resume=resume, callbacks=callbacks)
    return train.history_frame(trainer.state.log_history)


def test_same_seed_same_metrics_and_an_interrupted_run_resumes_to_the_same_end(sample_splits, tokenized, tokenizer, tmp_path):
    cfg = Config.from_env(profile="smoke", environ={}, epochs=3.0, output_root=str(tmp_path), run_name="a")
    first = short_run(cfg, sample_splits, tokenized, tokenizer)
    second = short_run(Config(**{**cfg.to_dict(), "run_name": "b"}), sample_splits, tokenized, tokenizer)
    assert first.equals(second)

    interrupted = Config(**{**cfg.to_dict(), "run_name": "c"})
    with pytest.raises(KeyboardInterrupt):
        short_run(interrupted, sample_splits, tokenized, tokenizer, callbacks=[Interrupt()])
    assert train.last_checkpoint(interrupted.paths.checkpoints).endswith("checkpoint-35")
    resumed = short_run(interrupted, sample_splits, tokenized, tokenizer, resume=True)
    eval_columns = [c for c in first.columns if c.startswith("eval_")]
    assert np.allclose(resumed[eval_columns].iloc[-1], first[eval_columns].iloc[-1], atol=1e-6)


def test_resume_without_a_checkpoint_says_so(sample_splits, tokenized, tokenizer, tmp_path):
    cfg = Config.from_env(profile="smoke", environ={}, output_root=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="Nothing to resume"):
        short_run(cfg, sample_splits, tokenized, tokenizer, resume=True)
