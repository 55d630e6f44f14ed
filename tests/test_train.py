import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import fine_tune
from datasets import DatasetDict
from transformers import TrainerCallback

from distilnb import Config, baselines, data, metrics, predict, train
from distilnb.errors import SettingError


def test_learning_rate_scales_with_encoder_width():
    assert train.default_learning_rate(768) == pytest.approx(5e-5)
    assert train.default_learning_rate(384) == pytest.approx(1e-4)


def test_training_arguments_carry_the_course_defaults(smoke_cfg):
    args = train.training_arguments(smoke_cfg, 1e-3)
    assert (args.eval_strategy, args.save_strategy) == ("epoch", "epoch")
    assert args.load_best_model_at_end and args.metric_for_best_model == "f1_macro"
    assert args.save_total_limit == 2 and args.save_steps == smoke_cfg.save_steps  # the best and the last
    assert args.train_sampling_strategy == "group_by_length" and args.warmup_steps == 0.1
    assert args.report_to in ([], "none", ["none"]) and args.seed == smoke_cfg.seed
    assert not args.fp16 and not args.bf16  # the CPU gets fp32


def test_class_weights_are_balanced_inverse_frequency():
    weights = train.class_weights([0, 0, 0, 1], 2)
    assert weights.tolist() == pytest.approx([4 / 6, 2.0])
    assert train.class_weights([0, 1, 2], 3).tolist() == pytest.approx([1, 1, 1])


def test_the_weighted_loss_serves_a_plain_loop_and_fractional_epochs_count_like_the_trainer():
    # The plain loop's loss must weigh classes as the Trainer's does, and 1.2 epochs must not round up to 2.
    logits, labels = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]]), torch.tensor([0, 1, 1])
    weights = train.class_weights([0, 0, 0, 1], 2)
    weighted = train.weighted_loss(weights)({"logits": logits}, labels)
    expected = torch.nn.functional.cross_entropy(logits, labels, weight=weights)
    assert weighted.item() == pytest.approx(expected.item())
    assert weighted.item() != pytest.approx(torch.nn.functional.cross_entropy(logits, labels).item())
    assert train.total_training_steps(100, 10, 1.2) == 12 and train.total_training_steps(101, 10, 1.0) == 11


def test_class_weights_for_several_labels_weigh_each_labels_positives(smoke_cfg):
    import dataclasses

    from datasets import Dataset

    # label 0 is on 2 of 4 texts (weight sqrt(2/2) = 1), label 1 on 1 of 4 (weight sqrt(3/1))
    train_split = Dataset.from_dict({"labels": [[1.0, 0.0], [0.0, 0.0], [0.0, 0.0], [1.0, 1.0]]})
    assert train.label_weights(train_split["labels"]).tolist() == pytest.approx([1.0, 3 ** 0.5])
    weighted = dataclasses.replace(smoke_cfg, class_weights=True)
    loss = train.loss_for(weighted, train_split, 2, multi=True)
    logits, labels = torch.tensor([[0.3, -1.0], [2.0, 0.5]]), torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    expected = bce(logits, labels, pos_weight=torch.tensor([1.0, 3 ** 0.5]))
    assert loss({"logits": logits}, labels).item() == pytest.approx(expected.item())
    assert expected.item() != pytest.approx(bce(logits, labels).item())
    assert train.loss_for(dataclasses.replace(smoke_cfg, class_weights=False), train_split, 2, multi=True) is None


def test_class_weights_left_unset_turn_on_only_past_the_measured_skews(smoke_cfg):
    import dataclasses

    from datasets import Dataset

    def reason(counts, multi, rows=None):
        return train.class_weights_reason(np.asarray(counts), rows or sum(counts), multi)  # rows: one label a row

    assert "74%" in reason([740, 200, 60], multi=False)  # imbalanced emotion: weights measured to help
    assert reason([580, 420], multi=False) is None  # SST-2's and the pair sample's skew: left as it was
    assert reason([100, 100, 40], multi=False) is None  # a rare class alone: not measured for one label a text
    assert "0.5%" in reason([3_000, 50], multi=True, rows=10_000)  # a label as rare as GoEmotions' rarest
    assert reason([3_000, 726], multi=True, rows=43_410) is None  # Ekman's seven: fear on 726 texts, no weights
    assert "only 32 training texts" in reason([505, 32], multi=True, rows=1_210)  # the multi-label sample's praise
    assert reason([740, 260], multi=True, rows=1_000) is None  # a common label is no skew for several labels a text
    skewed = Dataset.from_dict({"label": [0] * 7 + [1] * 3})
    unset = dataclasses.replace(smoke_cfg, class_weights=None)
    assert train.loss_for(unset, skewed, 2, multi=False) is not None
    assert train.loss_for(unset, Dataset.from_dict({"label": [0] * 6 + [1] * 4}), 2, multi=False) is None
    assert train.loss_for(dataclasses.replace(smoke_cfg, class_weights=False), skewed, 2, multi=False) is None


def test_epochs_left_unset_show_the_rarest_class_enough_times_within_the_bounds(smoke_cfg):
    import dataclasses

    from datasets import Dataset

    assert train.epochs_for_rarest(150, 1_497, 16) == (2.0, False)  # the sample's praise: the usual two
    assert train.epochs_for_rarest(77, 43_410, 16) == (3.0, False)  # GoEmotions' grief: a third pass
    assert train.epochs_for_rarest(32, 1_210, 16) == (7.0, False)  # the multi-label sample's praise
    assert train.epochs_for_rarest(1, 200, 16) == (10.0, False)  # never past MAX_DECIDED_EPOCHS
    assert train.epochs_for_rarest(20, 100_000, 16) == (2.0, True)  # 6,250 steps an epoch: the step guard holds it
    assert train.epochs_for_rarest(20, 40_000, 16) == (4.0, True)  # 2,500 steps an epoch: four fit in 10,000
    unset = dataclasses.replace(smoke_cfg, epochs=None)
    rare = Dataset.from_dict({"label": [0] * 100 + [1] * 40})
    epochs, reason = train.decided_epochs(unset, rare, ["common", "rare"], multi=False)
    assert epochs == 5.0 and reason == "the rarest class, 'rare', has 40 training rows: 5 passes show it 200 times"
    several = Dataset.from_dict({"labels": [[1.0, 0.0]] * 90 + [[1.0, 1.0]] * 50})
    epochs, reason = train.decided_epochs(unset, several, ["often", "seldom"], multi=True)
    assert epochs == 4.0 and reason.startswith("the rarest label, 'seldom', is on 50 training texts")
    tiny = Dataset.from_dict({"label": [0] * 100 + [1] * 7})
    assert train.decided_epochs(unset, tiny, ["common", "rare"], multi=False)[1].endswith(
        "10 passes show it 70 times, the rule's most (10 epochs)")  # says why it stops short of 200
    assert train.decided_epochs(unset, Dataset.from_dict({"label": [0, 1] * 150}), ["a", "b"], False) == (2.0, None)
    assert train.decided_epochs(dataclasses.replace(smoke_cfg, epochs=1.5), rare, ["a", "b"], False) == (1.5, None)
    with pytest.raises(ValueError, match="decide it from the training rows first"):
        train.training_arguments(unset, 1e-4)


def test_history_frame_has_one_row_per_epoch():
    log = [{"loss": 1.0, "epoch": 1.0}, {"eval_loss": 0.9, "eval_f1_macro": 0.5, "eval_runtime": 3, "epoch": 1.0},
           {"loss": 0.5, "epoch": 2.0}, {"eval_loss": 0.8, "eval_f1_macro": 0.6, "epoch": 2.0},
           {"train_runtime": 9, "epoch": 2.0}]
    frame = train.history_frame(log)
    assert frame.columns.tolist() == ["epoch", "train_loss", "eval_loss", "eval_f1_macro"]
    assert frame["train_loss"].tolist() == [1.0, 0.5] and frame["eval_f1_macro"].tolist() == [0.5, 0.6]


def majority_accuracy(splits, split="test"):
    names = data.label_names(splits)
    return baselines.majority_baseline(splits["train"]["label"], splits[split]["label"], names)["accuracy"]


def test_trainer_beats_the_majority_class_on_held_out_data_by_a_wide_margin(trained, sample_splits):
    trainer, _ = trained
    logits = predict.Predictor(trainer.model, trainer.processing_class).logits(sample_splits["test"]["text"])
    names = data.label_names(sample_splits)
    accuracy = metrics.classification_metrics(sample_splits["test"]["label"], logits.argmax(-1), names)["accuracy"]
    assert accuracy >= majority_accuracy(sample_splits) + 0.3


def test_saved_folder_has_everything_and_predicts_the_same(trained, sample_splits, smoke_cfg):
    trainer, folder = trained
    names = {p.name for p in folder.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "README.md", "training_args.json"} <= names
    assert not names & {"pytorch_model.bin", "training_args.bin"}
    card = (folder / "README.md").read_text()
    assert "support_tickets.csv" in card and "f1_macro" in card and "learning_rate" in card and "transformers" in card
    texts = sample_splits["test"]["text"]
    reloaded_predictor = predict.Predictor.from_folder(folder)
    assert reloaded_predictor.max_length == smoke_cfg.max_length  # inference truncates as training did
    in_memory = predict.Predictor(trainer.model, trainer.processing_class, smoke_cfg.max_length).logits(texts)
    assert np.allclose(reloaded_predictor.logits(texts), in_memory, atol=1e-5)


class Interrupt(TrainerCallback):
    """Stops training abruptly right after the first checkpoint is written, as a crash would."""

    def on_save(self, args, state, control, **kwargs):
        raise KeyboardInterrupt


def test_same_seed_same_metrics_and_an_interrupt_mid_epoch_resumes_to_the_same_end(sample_splits, tokenized,
                                                                                   tokenizer, tmp_path):
    # Repeating and resuming do not depend on the data's size: a fifth of each split trains four times fast enough.
    sample_splits, tokenized = (DatasetDict({name: d.select(range(len(d) // 5)) for name, d in splits.items()})
                                for splits in (sample_splits, tokenized))
    steps_per_epoch = math.ceil(len(sample_splits["train"]) / 16)
    save_steps = steps_per_epoch // 2  # a checkpoint inside the first epoch, so an interrupt there loses little
    cfg = Config.from_env(profile="smoke", environ={}, epochs=2.0, save_steps=save_steps,
                          output_root=str(tmp_path), run_name="a")
    first = train.history_frame(fine_tune(cfg, sample_splits, tokenized, tokenizer).state.log_history)
    second = fine_tune(replace(cfg, run_name="b"), sample_splits, tokenized, tokenizer).state.log_history
    assert first.equals(train.history_frame(second))

    interrupted = replace(cfg, run_name="c")
    with pytest.raises(KeyboardInterrupt):
        fine_tune(interrupted, sample_splits, tokenized, tokenizer, callbacks=[Interrupt()])
    assert train.last_checkpoint(interrupted.paths.checkpoints).endswith(f"checkpoint-{save_steps}")
    resumed = fine_tune(interrupted, sample_splits, tokenized, tokenizer, resume=True).state.log_history
    eval_columns = [c for c in first.columns if c.startswith("eval_")]
    assert np.allclose(train.history_frame(resumed)[eval_columns].iloc[-1], first[eval_columns].iloc[-1], atol=1e-6)
    kept = sorted(p.name for p in interrupted.paths.checkpoints.iterdir())
    assert len(kept) <= 2  # save_total_limit: the best and the last




def test_a_max_length_beyond_the_models_is_refused_by_name():
    cfg = Config.from_env(profile="smoke", environ={}, max_length=256)
    train.check_max_length(cfg, 256)
    with pytest.raises(SettingError, match="max_length = 256 is longer than tiny takes \\(128 tokens\\)"):
        train.check_max_length(cfg, 128)
