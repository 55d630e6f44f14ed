"""distilnb distill: the student's layers, the loss, the teacher's logits computed once, and a smoke-sized run."""

from __future__ import annotations

import contextlib
import importlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from distilnb import cli, distill, runs
from distilnb.cli import distill as distill_cli
from distilnb.errors import ModelError, SettingError
from distilnb.folder import THRESHOLDS_FILE, fine_tuning_record
from distilnb.models import load_classifier, load_tokenizer
from distilnb.predict import Predictor

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str) -> tuple[int, str, str]:
    """Return (exit status, stdout, stderr) of `python -m distilnb ...` run in this process."""
    out, err = io.StringIO(), io.StringIO()
    threads = torch.get_num_threads()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(args))
    torch.set_num_threads(threads)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def teacher(trained) -> Path:
    """The smoke run's fine-tuned model folder (2 layers)."""
    return trained[1]


@pytest.fixture(scope="module")
def student_run(teacher) -> tuple[Path, str, str]:
    """`distilnb distill` on the smoke teacher, 1 epoch: (the student's model folder, stdout, stderr)."""
    code, out, err = run_cli("distill", "--teacher-dir", str(teacher), "--epochs", "1", "--threads", "1")
    assert code == 0, err[-3000:]
    return teacher.parent.parent / f"{teacher.parent.name}-student" / "model", out, err


# ---------------------------------------------------------------- the student's layers


@pytest.mark.parametrize(("total", "keep", "expected"), [(6, 3, [0, 2, 4]), (12, 6, [0, 2, 4, 6, 8, 10]),
                                                         (6, 2, [0, 3]), (2, 1, [0]), (6, 4, [0, 1, 3, 4])])
def test_the_student_keeps_layers_spread_from_the_first(total, keep, expected):
    assert distill.kept_layers(total, keep) == expected


@pytest.mark.parametrize("keep", [0, 2, 3])
def test_a_student_as_deep_as_the_teacher_or_empty_is_refused_naming_the_setting(keep):
    with pytest.raises(SettingError) as caught:
        distill.kept_layers(2, keep)
    assert caught.value.setting == "student_layers"


def test_the_student_is_the_teachers_own_weights_with_every_other_layer(teacher):
    model = load_classifier(teacher)
    before = {name: p.clone() for name, p in model.named_parameters()}
    student, kept = distill.student_from_teacher(model, 1)
    assert kept == [0] and student.config.num_hidden_layers == 1 and len(distill.layer_stack(student)[2]) == 1
    taught = dict(model.named_parameters())
    for name, value in student.named_parameters():  # layer 0 and everything outside the stack are the teacher's
        assert torch.equal(value, taught[name]), name
    assert all(torch.equal(p, before[name]) for name, p in model.named_parameters())  # the teacher is untouched
    assert model.config.num_hidden_layers == 2 and distill.parameter_count(student) < distill.parameter_count(model)


# ---------------------------------------------------------------- the loss


def test_a_teacher_whose_labels_differ_from_its_runs_data_is_refused_with_both_lists_cut_and_counted():
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

    names = [f"label{i:02d}" for i in range(14)]
    features = Features(text=Value("string"), label=ClassLabel(names=names))
    splits = DatasetDict(train=Dataset.from_dict({"text": ["a"], "label": [0]}, features=features))
    distill.check_same_labels(Path("teacher"), names, False, splits)  # the same labels: no error
    with pytest.raises(ModelError) as refused:
        distill.check_same_labels(Path("teacher"), names[::-1], False, splits)
    assert "label13, label12" in str(refused.value) and "… and 4 more" in str(refused.value)
    assert "label10" not in str(refused.value).split("but")[1]  # the data's list is cut after ten too
    with pytest.raises(ModelError, match=r"several labels a text\), but .*\(one label a text\)"):
        distill.check_same_labels(Path("teacher"), names, True, splits)


def test_the_soft_loss_is_t_squared_times_kl_of_the_softened_distributions():
    student, teacher = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]]), torch.tensor([[1.0, 1.0, -2.0],
                                                                                       [0.0, 2.0, 1.0]])
    t = 2.0
    p, q = torch.softmax(teacher / t, -1), torch.softmax(student / t, -1)
    expected = t**2 * (p * (p.log() - q.log())).sum(-1).mean()
    assert torch.isclose(distill.soft_loss(student, teacher, t), expected)
    assert distill.soft_loss(teacher, teacher, t).abs() < 1e-6  # a student equal to its teacher has nothing to learn


def test_several_labels_are_matched_to_the_teachers_sigmoids_by_binary_cross_entropy():
    student, teacher, t = torch.tensor([[2.0, -1.0]]), torch.tensor([[0.0, 3.0]]), 3.0
    target, predicted = torch.sigmoid(teacher / t), torch.sigmoid(student / t)
    bce = -(target * predicted.log() + (1 - target) * (1 - predicted).log()).mean()
    assert torch.isclose(distill.soft_loss(student, teacher, t, multi_label=True), t**2 * bce)


class Network(torch.nn.Module):
    """A linear classifier standing in for a transformer: forward(x, labels) -> loss and logits."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(3, 2)

    def forward(self, x, labels=None):
        from transformers.modeling_outputs import SequenceClassifierOutput

        logits = self.linear(x)
        loss = None if labels is None else torch.nn.functional.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_the_trainer_mixes_the_labels_loss_and_the_teachers_by_alpha(alpha, tmp_path):
    from transformers import TrainingArguments

    torch.manual_seed(0)
    model = Network()
    trainer = distill.DistillationTrainer(model=model, args=TrainingArguments(str(tmp_path), report_to="none",
                                                                              use_cpu=True),
                                          alpha=alpha, temperature=2.0)
    x, labels, teacher = torch.randn(4, 3), torch.tensor([0, 1, 1, 0]), torch.randn(4, 2)
    loss = trainer.compute_loss(model, {"x": x, "labels": labels, distill.TEACHER_COLUMN: teacher})
    hard = torch.nn.functional.cross_entropy(model(x).logits, labels)
    assert torch.isclose(loss, alpha * hard + (1 - alpha) * distill.soft_loss(model(x).logits, teacher, 2.0))
    # an evaluation batch has no teacher logits: the labels' loss alone, comparable with the teacher's eval_loss
    assert torch.isclose(trainer.compute_loss(model, {"x": x, "labels": labels}), hard)


def test_the_trainer_keeps_the_teacher_column_the_model_does_not_take(tmp_path):
    from transformers import TrainingArguments

    trainer = distill.DistillationTrainer(model=Network(), args=TrainingArguments(str(tmp_path), report_to="none",
                                                                                  use_cpu=True))
    trainer._set_signature_columns_if_needed()
    assert distill.TEACHER_COLUMN in trainer._signature_columns and "x" in trainer._signature_columns


def test_the_teachers_logits_are_the_teachers_outputs_in_row_order(teacher, tokenized):
    model, tokenizer = load_classifier(teacher), load_tokenizer(teacher)
    rows = tokenized["train"].select(range(20))
    logits = distill.teacher_logits(model, tokenizer, rows, batch_size=8)
    expected = Predictor(model, tokenizer, max_length=64).logits(list(rows["text"]))
    np.testing.assert_allclose(logits, expected, atol=1e-5)


# ---------------------------------------------------------------- the transfer set


def test_masked_copies_follow_the_rows_keep_their_labels_and_mask_about_a_fifth_of_the_words():
    from datasets import Dataset

    words = [f"w{i}" for i in range(40)]
    rows = Dataset.from_dict({"text": [" ".join(words)] * 10, "text_pair": ["a b c d"] * 10, "label": [0, 1] * 5})
    copied = distill.with_masked_copies(rows, 3, "[MASK]", seed=0)
    assert len(copied) == 40 and copied[:10] == rows[:10] and copied["label"] == [0, 1] * 20
    masked = [word == "[MASK]" for text in copied["text"][10:] for word in text.split()]
    assert len(masked) == 30 * 40 and 0.15 < sum(masked) / len(masked) < 0.25
    assert any("[MASK]" in text for text in copied["text_pair"][10:])  # both texts of a pair
    assert copied["text"] == distill.with_masked_copies(rows, 3, "[MASK]", seed=0)["text"]  # the seed repeats them
    assert distill.with_masked_copies(rows, 0, "[MASK]", seed=0) is rows


def test_masked_copies_need_a_mask_token_both_tokenizers_share():
    from types import SimpleNamespace

    from datasets import Dataset, DatasetDict

    from distilnb.errors import SettingError

    splits = DatasetDict({"train": Dataset.from_dict({"text": ["where is my parcel"] * 4, "label": [0, 1, 0, 1]})})
    bert, roberta = SimpleNamespace(mask_token="[MASK]"), SimpleNamespace(mask_token="<mask>")
    assert distill.transfer_set(splits, None, bert, bert, seed=0)[1] == 4
    assert distill.transfer_set(splits, None, bert, roberta, seed=0)[1] == 0  # the default steps aside
    with pytest.raises(SettingError, match="needs a mask token that the teacher's and the student's tokenizers share"):
        distill.transfer_set(splits, 2, bert, roberta, seed=0)


def test_only_a_small_training_split_gets_masked_copies_by_default():
    assert [distill.default_copies(n) for n in (300, 1_497, 4_999, 5_000, 16_000)] == [4, 4, 4, 0, 0]


# ---------------------------------------------------------------- the command, smoke-sized


def test_distill_saves_a_student_run_that_names_its_teacher_and_loss(student_run, teacher):
    folder, out, err = student_run
    assert out.startswith("Student saved to") and "teacher" in out and "student" in out
    assert "'loss'" not in out and "'eval_loss'" in err  # the Trainer's logs are progress: stderr
    assert "layers 0 (of 2)" in err
    card = (folder / "README.md").read_text()
    assert f"**Teacher:** `{teacher}`" in card and "KL(softmax(teacher / T) || softmax(student / T))" in card
    record = json.loads((folder / distill.DISTILLATION_FILE).read_text())
    assert record["alpha"] == 0.5 and record["temperature"] == 2.0
    # the sample's 1,497 training tickets are a small split: four masked copies of each, said on the card and console
    assert record["transfer_copies"] == 4 and "over 4 copies of each training text with words masked" in card
    assert "the teacher labelled 4 masked copies of each training text too" in err
    assert json.loads((folder / "config.json").read_text())["n_layers"] == 1
    assert runs.read_metrics(folder.parent / "metrics.json")["validation"]["fine-tuned"]["accuracy"] > 0


def test_the_student_trains_on_the_teachers_splits_and_serves_like_any_model(student_run, teacher, sample_splits):
    folder, _, _ = student_run
    student_splits, _ = runs.saved_splits(folder.parent / "data")  # rebuilt from the teacher's record: it saved none
    assert {s: list(student_splits[s]["text"]) for s in ("train", "test")} == \
        {s: list(sample_splits[s]["text"]) for s in ("train", "test")}
    texts = list(sample_splits["test"]["text"][:5])
    predictor = Predictor.from_folder(folder, on="cpu")
    assert predictor.label_names == Predictor.from_folder(teacher, on="cpu").label_names
    assert len(predictor.predict(texts)) == 5
    code, out, err = run_cli("evaluate", "--model-dir", str(folder), "--json", "--threads", "1")
    assert code == 0 and "accuracy" in out, err[-2000:]


@pytest.mark.parametrize(("flags", "said"), [
    (["--student", "tiny", "--student-layers", "1"], "--student-layers 1 goes with a student made from the teacher's"),
    (["--alpha", "1.5"], "--alpha 1.5 must lie between 0 and 1"),
    (["--temperature", "0"], "--temperature 0 must be more than 0"),
    (["--run-name", "smoke"], "--run-name smoke names the teacher's own run"),
    (["--transfer-copies", "-1"], "--transfer-copies -1 must lie between 0 (the training texts alone) and 20"),
])
def test_settings_a_distillation_cannot_run_with_are_refused_in_flag_words(teacher, flags, said):
    code, out, err = run_cli("distill", "--teacher-dir", str(teacher), "--output-root", str(teacher.parent.parent),
                             *flags)
    assert code == 1 and out == ""
    assert err.startswith(f"distilnb distill: {said}") and (teacher / "model.safetensors").is_file()


def test_the_parser_spells_the_librarys_defaults():
    names = ("DEFAULT_ALPHA", "DEFAULT_TEMPERATURE", "DEFAULT_COPIES", "MASK_PROBABILITY", "SMALL_TRAINING_SPLIT")
    assert [getattr(distill_cli, name) for name in names] == [getattr(distill, name) for name in names]


def test_the_benchmark_reports_teacher_student_and_int8_in_smoke_mode(monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    bench = importlib.import_module("distill")
    threads = torch.get_num_threads()
    assert bench.main(["--smoke", "--teacher-epochs", "1"]) == 0
    torch.set_num_threads(threads)
    report = capsys.readouterr().out
    assert "- CPU instruction sets for int8:" in report
    for method in ("pipeline on the teacher, one text at a time", "teacher Predictor int8", "student Predictor int8"):
        assert f"| {method} |" in report
    assert "student int8 / one-by-one pipeline >= 10.0" in report


@pytest.mark.parametrize("task", ["multi-label", "pairs"])
def test_several_labels_and_pairs_distil_as_single_texts_do(task, tmp_path):
    from distilnb.config import Config
    from distilnb.run import train

    data = {"multi-label": {"dataset": str(ROOT / "data" / "support_tickets_multilabel.csv"), "label_column": "labels",
                            "label_separator": ";"},
            "pairs": {"dataset": str(ROOT / "data" / "ticket_pairs.csv"), "text_column": "first",
                      "text_pair_column": "second"}}[task]
    cfg = Config.from_env(profile="smoke", environ={}, output_root=str(tmp_path), run_name="teacher", epochs=1.0,
                          max_train_examples=300, **data)
    teacher = train(cfg).model_dir
    result = distill.distill(distill.student_config(teacher, epochs=1.0), teacher)
    predictor = Predictor.from_folder(result.model_dir, on="cpu")
    splits, _ = runs.saved_splits(result.model_dir.parent / "data")
    if task == "multi-label":  # thresholds tuned on validation, saved beside the student as for any run
        assert result.thresholds is not None and (result.model_dir / THRESHOLDS_FILE).is_file()
        assert predictor.thresholds is not None and "labels" in predictor.predict(["where is my parcel"])[0]
        assert "binary cross-entropy against the teacher's sigmoids" in (result.model_dir / "README.md").read_text()
    else:
        rows = splits["test"].select(range(4))
        assert len(predictor.predict(list(zip(rows["text"], rows["text_pair"], strict=True)))) == 4
        assert fine_tuning_record(result.model_dir)["text_pair_column"] == "second"


def test_a_smaller_model_given_as_student_trains_with_a_new_head_and_its_own_tokenizer(teacher):
    code, out, err = run_cli("distill", "--teacher-dir", str(teacher), "--student", "tiny", "--epochs", "1",
                             "--run-name", "given-student", "--threads", "1")
    assert code == 0 and "given-student" in out, err[-3000:]
    folder = teacher.parent.parent / "given-student" / "model"
    assert "`tiny`, its head trained anew" in (folder / "README.md").read_text()
    assert fine_tuning_record(folder)["model"] == "tiny"
    assert Predictor.from_folder(folder, on="cpu").label_names == Predictor.from_folder(teacher, on="cpu").label_names
