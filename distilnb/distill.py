"""Knowledge distillation: a smaller student trained to match a fine-tuned teacher's outputs as well as the labels.

The loss is the one *NLP with Transformers* (ch. 8) teaches, after Hinton et al. (2015):
    alpha * CE(student, labels) + (1 - alpha) * T**2 * KL(softmax(teacher / T) || softmax(student / T)).
A temperature T above 1 softens both distributions, so the student also learns how the teacher ranks the wrong
classes; T**2 keeps the soft term's gradients the size of the hard term's. For several labels a text, each label is its
own yes/no question: binary cross-entropy against the teacher's softened sigmoids.
"""

from __future__ import annotations

import copy
import functools
import json
import random
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from transformers import Trainer

from distilnb import runs
from distilnb.config import MULTI_LABEL, Config
from distilnb.data import label_names, task_of
from distilnb.errors import ModelError, SettingError, short_list
from distilnb.folder import fine_tuning_record
from distilnb.local_models import resolve_model
from distilnb.models import batched_forward, is_multi_label, label_names_of, load_classifier, load_tokenizer

if TYPE_CHECKING:
    from datasets import Dataset, DatasetDict
    from transformers import PreTrainedModel, PreTrainedTokenizerBase
    from transformers.utils import ModelOutput

# Equal weight to the labels and the teacher, softened enough (T 2) that the teacher's second choices count. On the
# sample tickets (benchmarks/RESULTS.md, section 17b) alpha 0.2 with T 4 did no better on test and worse on validation;
# two settings, not a search.
DEFAULT_ALPHA, DEFAULT_TEMPERATURE = 0.5, 2.0
# More texts on a small training split: masked copies of each training text, every word replaced by the mask token
# with MASK_PROBABILITY (the masking rule of Tang et al. 2019, "Distilling task-specific knowledge from BERT into simple
# neural networks"), each with its text's label and the teacher's probabilities. On the sample's 1,497 tickets four
# copies closed the student's gap to its teacher over eight seeds, and the same copies with their labels alone (alpha
# 1) did as well: the extra texts help, not measurably the teacher's view of them (benchmarks/RESULTS.md, section 40).
# At emotion's 16,000 texts the student was level without (section 23), so splits of SMALL_TRAINING_SPLIT texts or more
# get none: a student trained five times as long for nothing.
DEFAULT_COPIES, MASK_PROBABILITY, SMALL_TRAINING_SPLIT = 4, 0.2, 5_000
TEACHER_COLUMN = "teacher_logits"  # the teacher's logits of each training row, computed once before training
DISTILLATION_FILE = "distillation.json"  # beside the student: its teacher, the loss and the layers it kept


@dataclass(frozen=True)
class DistillResult:
    """What a distillation run made: the student's folder and scores, and how it was made."""

    model_dir: Path
    teacher_dir: str
    student: str  # "every other layer of the teacher (layers 0, 2, 4)" or the model given
    alpha: float
    temperature: float
    transfer_copies: int  # masked copies of each training text the teacher labelled too
    teacher_parameters: int
    student_parameters: int
    validation: dict
    thresholds: dict | None


# ---------------------------------------------------------------- the loss


def soft_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float, *,
              multi_label: bool = False) -> torch.Tensor:
    """Return T**2 times the distance from the student's softened outputs to the teacher's: KL between softmaxes for
    one label a text, binary cross-entropy against the teacher's sigmoids for several."""
    student, teacher = student_logits / temperature, teacher_logits.to(student_logits.dtype) / temperature
    if multi_label:
        distance = torch.nn.functional.binary_cross_entropy_with_logits(student, torch.sigmoid(teacher))
    else:
        # kl_div takes the student's log-probabilities and the teacher's probabilities; batchmean is KL's definition
        distance = torch.nn.functional.kl_div(torch.log_softmax(student, dim=-1), torch.softmax(teacher, dim=-1),
                                              reduction="batchmean")
    return temperature**2 * distance


class DistillationTrainer(Trainer):
    """A Trainer whose loss mixes the labels' loss (alpha) with the distance to the teacher's logits (1 - alpha)."""

    loss_is_scaled_for_ga = False  # a per-batch mean: the Trainer divides it over gradient accumulation steps

    def __init__(self, *args: Any, alpha: float = DEFAULT_ALPHA, temperature: float = DEFAULT_TEMPERATURE,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.alpha, self.temperature = alpha, temperature

    def _set_signature_columns_if_needed(self) -> None:
        """Keep the teacher's logits among the columns the Trainer passes on (it drops what forward() does not take)."""
        super()._set_signature_columns_if_needed()
        if TEACHER_COLUMN not in self._signature_columns:
            self._signature_columns.append(TEACHER_COLUMN)

    def compute_loss(self, model: PreTrainedModel, inputs: dict[str, torch.Tensor], return_outputs: bool = False,
                     num_items_in_batch: int | torch.Tensor | None = None
                     ) -> torch.Tensor | tuple[torch.Tensor, ModelOutput]:
        """Return alpha * the labels' loss + (1 - alpha) * soft_loss; evaluation batches, with no teacher logits,
        get the labels' loss alone (so eval_loss stays comparable with the teacher's)."""
        teacher = inputs.pop(TEACHER_COLUMN, None)
        # The parent computes the labels' loss as any run would (the model's own, or class weights when asked).
        hard, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        loss = hard
        if teacher is not None:
            soft = soft_loss(outputs.logits, teacher, self.temperature, multi_label=is_multi_label(model))
            loss = self.alpha * hard + (1 - self.alpha) * soft
        return (loss, outputs) if return_outputs else loss


# ---------------------------------------------------------------- the student


def kept_layers(total: int, keep: int) -> list[int]:
    """Return the teacher's layers a student of `keep` layers starts from, spread evenly from the first: 6 -> 3
    keeps 0, 2, 4 (every other layer, as DistilBERT was initialised from BERT)."""
    if not 1 <= keep < total:
        raise SettingError(f"must lie between 1 and {total - 1} (the teacher has {total} layers)", "student_layers",
                           keep)
    return [i * total // keep for i in range(keep)]


def layer_stack(model: PreTrainedModel) -> tuple[torch.nn.Module, str, torch.nn.ModuleList]:
    """Return (parent module, attribute name, the encoder's list of layers) of a transformer classifier."""
    count = model.config.num_hidden_layers
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == count and name.endswith("layer"):
            parent, _, attribute = name.rpartition(".")
            return model.get_submodule(parent), attribute, module
    raise ModelError(f"{type(model).__name__} has no list of {count} encoder layers to take a student's from: give "
                     "a smaller model to train instead (student).")


def student_from_teacher(teacher: PreTrainedModel, layers: int) -> tuple[PreTrainedModel, list[int]]:
    """Return (a copy of the teacher keeping `layers` of its encoder layers, their indices in the teacher); the
    embeddings and classification head are the teacher's own."""
    student = copy.deepcopy(teacher)
    parent, attribute, stack = layer_stack(student)
    kept = kept_layers(len(stack), layers)
    setattr(parent, attribute, torch.nn.ModuleList([stack[i] for i in kept]))
    for position, layer in enumerate(getattr(parent, attribute)):
        for module in layer.modules():  # attention layers index a cache by their position
            if hasattr(module, "layer_idx"):
                module.layer_idx = position
    student.config.num_hidden_layers = layers  # DistilBERT's n_layers through the config's attribute map
    return student, kept


def parameter_count(model: torch.nn.Module) -> int:
    """Return the number of parameters of a model."""
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------- the teacher's outputs, once


def teacher_logits(teacher: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, rows: Dataset,
                   batch_size: int) -> np.ndarray:
    """Return the teacher's logits of every tokenized row (pairs with their segment ids), in the rows' order."""
    segments = rows["token_type_ids"] if "token_type_ids" in rows.column_names else None
    return batched_forward(teacher.eval(), tokenizer, rows["input_ids"], batch_size, token_type_ids=segments,
                           progress=False)


def with_teacher_logits(tokenized: DatasetDict, logits: np.ndarray) -> DatasetDict:
    """Return the tokenized splits with the teacher's logits as a column of the training split."""
    from datasets import DatasetDict

    return DatasetDict({**tokenized, "train": tokenized["train"].add_column(TEACHER_COLUMN, logits.tolist())})


def default_copies(training_texts: int) -> int:
    """Return the masked copies of each training text a distillation adds unless told: DEFAULT_COPIES on a small
    training split, none from SMALL_TRAINING_SPLIT texts on."""
    return DEFAULT_COPIES if training_texts < SMALL_TRAINING_SPLIT else 0


def with_masked_copies(rows: Dataset, copies: int, mask_token: str, seed: int) -> Dataset:
    """Return the rows followed by `copies` copies of them, each word of their texts (both texts of a pair) replaced
    by mask_token with MASK_PROBABILITY; labels as the originals'. Built in memory: a .map over the teacher's saved
    splits would write its cache into the teacher's run folder."""
    from datasets import Dataset, concatenate_datasets

    if not copies:
        return rows
    rng = random.Random(seed)
    copied = {name: values * copies for name, values in rows.to_dict().items()}
    for column in ("text", "text_pair"):
        if column in copied:
            copied[column] = [" ".join(mask_token if rng.random() < MASK_PROBABILITY else word for word in text.split())
                              for text in copied[column]]
    return concatenate_datasets([rows, Dataset.from_dict(copied, features=rows.features)])


def transfer_set(splits: DatasetDict, transfer_copies: int | None, teacher_tokenizer: PreTrainedTokenizerBase,
                 tokenizer: PreTrainedTokenizerBase, seed: int) -> tuple[DatasetDict, int]:
    """Return (the splits with masked copies after the training rows, copies per text): transfer_copies, else
    default_copies; none without a mask token that both tokenizers read as one (refused when asked for)."""
    from datasets import DatasetDict

    copies = default_copies(len(splits["train"])) if transfer_copies is None else transfer_copies
    mask = teacher_tokenizer.mask_token
    if copies and (mask is None or mask != tokenizer.mask_token):  # the student would read the mask as letters
        if transfer_copies:
            raise SettingError("needs a mask token that the teacher's and the student's tokenizers share: leave it "
                               "out, or give 0", "transfer_copies", transfer_copies)
        copies = 0
    return DatasetDict({**splits, "train": with_masked_copies(splits["train"], copies, str(mask), seed)}), copies


# ---------------------------------------------------------------- the run


def tokenize_splits(splits: DatasetDict, tokenizer: PreTrainedTokenizerBase, max_length: int,
                    multi: bool) -> DatasetDict:
    """Return the splits tokenized as any run's (several labels: the multi-hot `labels` only, as train does)."""
    from distilnb.train import tokenize_batch

    return splits.map(lambda batch: tokenize_batch(tokenizer, batch, max_length), batched=True, desc="Tokenizing",
                      remove_columns=["label"] if multi else None)


def teacher_splits(teacher_dir: str | Path, cfg: Config) -> tuple[DatasetDict, runs.LoadReport]:
    """Return (splits, report) the teacher was trained on: its run's saved splits, else rebuilt as cfg says."""
    saved = runs.saved_splits(Path(teacher_dir).parent / "data")
    return saved if saved is not None else runs.load_or_build_splits(cfg)


def card_section(teacher_dir: str, student: str, alpha: float, temperature: float, multi: bool,
                 sizes: tuple[int, int], copies: int) -> str:
    """Return the model card's Markdown section naming the teacher and the loss."""
    soft = ("binary cross-entropy against the teacher's sigmoids of logits / T" if multi
            else "KL(softmax(teacher / T) || softmax(student / T))")
    hard = "binary cross-entropy" if multi else "cross-entropy"
    return f"""
## Distillation

- **Teacher:** `{teacher_dir}` ({sizes[0]:,} parameters)
- **Student:** {student} ({sizes[1]:,} parameters)
- **Loss:** {alpha:g} x {hard} on the labels + {1 - alpha:g} x T^2 x {soft}, T = {temperature:g}
- The teacher's logits were computed once over the training split, before training{
    f", and over {copies} copies of each training text with words masked (probability {MASK_PROBABILITY:g})"
    if copies else ""}.
"""


def student_model(teacher: PreTrainedModel, student: str | None,
                  student_layers: int | None) -> tuple[PreTrainedModel, str]:
    """Return (the student to train, how the model card describes it): the model named by `student` with a new head
    sized for the teacher's labels, else the teacher with student_layers of its layers (default half)."""
    if student:
        names, multi = label_names_of(teacher), is_multi_label(teacher)
        return load_classifier(resolve_model(student), names, multi_label=multi), f"`{student}`, its head trained anew"
    model, kept = student_from_teacher(teacher, student_layers or teacher.config.num_hidden_layers // 2)
    return model, f"the teacher's layers {', '.join(map(str, kept))} (of {teacher.config.num_hidden_layers})"


def save_student(cfg: Config, trainer: Trainer, splits: DatasetDict, report: runs.LoadReport, scores: dict,
                 thresholds: dict | None, record: dict, card: str) -> Path:
    """Save the student as any run's model folder (card, records, metrics, thresholds), plus the distillation record
    and its section of the card; remove the checkpoints unless kept; return the folder."""
    folder = cfg.paths.model
    trainer.save_model(str(folder))
    runs.write_run_files(cfg, trainer, report.split_sizes, scores, splits)
    with (folder / "README.md").open("a") as readme:
        readme.write(card)
    (folder / DISTILLATION_FILE).write_text(json.dumps(record, indent=2))
    runs.update_metrics(cfg.paths.metrics, "distillation", record)
    if thresholds is not None:  # predict and evaluate apply them, as for any multi-label run
        runs.save_thresholds(folder, thresholds)
        runs.update_metrics(cfg.paths.metrics, "thresholds", thresholds)
    if not cfg.keep_checkpoints:
        shutil.rmtree(cfg.paths.checkpoints, ignore_errors=True)
    return folder


def check_settings(cfg: Config, teacher_dir: str | Path, *, student: str | None, student_layers: int | None,
                   alpha: float, temperature: float, transfer_copies: int | None = None) -> None:
    """Raise SettingError for settings a distillation cannot run with, before anything is loaded."""
    if transfer_copies is not None and not 0 <= transfer_copies <= 20:
        raise SettingError("must lie between 0 (the training texts alone) and 20", "transfer_copies", transfer_copies)
    if not 0 <= alpha <= 1:
        raise SettingError("must lie between 0 and 1", "alpha", alpha)
    if temperature <= 0:
        raise SettingError("must be more than 0", "temperature", temperature)
    if student and student_layers:
        raise SettingError("goes with a student made from the teacher's layers, not with a model given as student",
                           "student_layers", student_layers)
    if cfg.paths.model.resolve() == Path(teacher_dir).resolve():
        raise SettingError("names the teacher's own run: the student would overwrite its teacher", "run_name",
                           cfg.run)


def check_same_labels(teacher_dir: str | Path, names: list[str], multi: bool, splits: DatasetDict) -> None:
    """Refuse a teacher whose labels (or whether a text has several) differ from its run's data, in one sentence."""
    data_names, data_multi = label_names(splits), task_of(splits) == MULTI_LABEL
    if names != data_names or multi != data_multi:
        shape = {True: "several labels a text", False: "one label a text"}
        raise ModelError(f"{teacher_dir} predicts {short_list(names, 10)} ({shape[multi]}), but its run's data has "
                         f"{short_list(data_names, 10)} ({shape[data_multi]}): give the run folder the teacher was "
                         "trained in, unchanged since.")


def distill(cfg: Config, teacher_dir: str | Path, *, student_layers: int | None = None, student: str | None = None,
            alpha: float = DEFAULT_ALPHA, temperature: float = DEFAULT_TEMPERATURE,
            transfer_copies: int | None = None) -> DistillResult:
    """Train a student on the teacher's splits to match the teacher; save it in cfg's run folder like any run.

    The student is the teacher with every other layer (student_layers, default half of them), or the model named by
    `student` with a fresh head. transfer_copies masked copies of each training text are labelled by the teacher too
    (None: default_copies, 4 below 5,000 training texts, else none). cfg gives the student's training settings and
    run folder; its data settings should be the teacher's (the CLI reads them from its record). Threads are the
    caller's to set.
    """
    from transformers import set_seed

    from distilnb.train import build_trainer, decided_epochs, tuned_thresholds, validation_scores

    check_settings(cfg, teacher_dir, student=student, student_layers=student_layers, alpha=alpha,
                   temperature=temperature, transfer_copies=transfer_copies)
    set_seed(cfg.seed)
    splits, report = teacher_splits(teacher_dir, cfg)
    teacher = load_classifier(teacher_dir)
    names, multi = label_names_of(teacher), is_multi_label(teacher)
    check_same_labels(teacher_dir, names, multi, splits)
    # Left unset, the epochs follow the rule of a run on these training rows (the masked copies are not counted).
    cfg = replace(cfg, epochs=decided_epochs(cfg, splits["train"], names, multi)[0])
    runs.save_splits(splits, report, cfg)  # the student's run evaluates on the teacher's very splits
    source = resolve_model(student) if student else str(teacher_dir)
    tokenizer = load_tokenizer(source)  # a student given by name reads its own vocabulary; the teacher reads its own
    teacher_tokenizer = load_tokenizer(teacher_dir)
    transfer, copies = transfer_set(splits, transfer_copies, teacher_tokenizer, tokenizer, cfg.seed)
    tokenized = tokenize_splits(transfer, tokenizer, cfg.max_length, multi)
    teacher_rows = tokenize_splits(transfer, teacher_tokenizer, cfg.max_length, multi)["train"] if student \
        else tokenized["train"]
    logits = teacher_logits(teacher, teacher_tokenizer, teacher_rows, 2 * cfg.batch_size)
    tokenized = with_teacher_logits(tokenized, logits)  # the same rows in the same order: map keeps it
    model, described = student_model(teacher, student, student_layers)
    trainer = build_trainer(cfg, model, tokenized, tokenizer,
                            trainer_class=functools.partial(DistillationTrainer, alpha=alpha, temperature=temperature))
    trainer.train()
    scores, thresholds = (tuned_thresholds(trainer, tokenized["validation"], names) if multi
                          else (validation_scores(trainer, tokenized["validation"], names), None))
    sizes = (parameter_count(teacher), parameter_count(trainer.model))
    record = {"teacher": str(teacher_dir), "student": described, "alpha": alpha, "temperature": temperature,
              "transfer_copies": copies, "mask_probability": MASK_PROBABILITY, "teacher_parameters": sizes[0],
              "student_parameters": sizes[1]}
    folder = save_student(cfg, trainer, splits, report, scores, thresholds, record,
                          card_section(str(teacher_dir), described, alpha, temperature, multi, sizes, copies))
    return DistillResult(model_dir=folder, teacher_dir=str(teacher_dir), student=described, alpha=alpha,
                         temperature=temperature, transfer_copies=copies, teacher_parameters=sizes[0],
                         student_parameters=sizes[1], validation=scores, thresholds=thresholds)


def student_config(teacher_dir: str | Path, **settings: Any) -> Config:
    """Return the student's Config: the teacher's recorded data settings and max_length, the run named
    '<teacher's run>-student' beside it unless `settings` say otherwise, and any other settings given."""
    recorded = fine_tuning_record(teacher_dir)
    kept = {name: recorded[name] for name in ("profile", *runs.SOURCE_SETTINGS, *runs.SPLIT_SETTINGS, "max_length")
            if name in recorded}
    run = Path(teacher_dir).parent
    where = {"output_root": str(run.parent), "run_name": f"{run.name}-student"}
    given = {name: value for name, value in settings.items() if value is not None}
    return Config.from_env(**{**kept, **where, "model": str(teacher_dir), **given})
