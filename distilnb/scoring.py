"""Scoring a saved model on rows it never saw, beside the baselines: the library call behind `distilnb evaluate`.

Every row of a test file is scored or reported: rows left out are counted by reason (blank text, blank label, seen in
fine-tuning) on the result and in the report written beside the model. A model scores only data of its own shape:
several labels a text, one, or pairs.

Imports only light modules at the top (the data stack inside the functions that score): `distilnb predict` checks and
loads its model through this module without pandas, scikit-learn or datasets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distilnb.config import MULTI_LABEL, PAIRS, SINGLE_LABEL, Config
from distilnb.errors import DataError, SettingError

if TYPE_CHECKING:
    import pandas as pd
    from datasets import DatasetDict
    from transformers import PretrainedConfig

    from distilnb.metrics import Evaluation
    from distilnb.predict import Predictor
    from distilnb.readers import ReadOptions

BLANK_TEXT, BLANK_LABEL, SEEN, UNKNOWN_LABEL = "blank text", "blank label", "seen", "unknown label"
DROP_REASONS = (BLANK_TEXT, BLANK_LABEL, SEEN)  # an unknown label is refused, never dropped: the model cannot say it
VALIDATION_NOTE = ("these validation rows chose the checkpoint (and a multi-label model's thresholds), so their score "
                   "flatters the model: the test split is the honest measure")


@dataclass(frozen=True)
class EvaluationRun:
    """One evaluation: the scores, the baselines beside them, every row read and why any was left out, the files."""

    split: str
    source: str  # where the rows came from, as the user named it
    task: str
    scores: dict
    baselines: dict[str, dict]
    rows_read: int
    dropped: dict[str, int]  # rows left out, by reason (DROP_REASONS); never more than these
    max_length: int
    chunk: bool
    notes: tuple[str, ...] = ()
    written: tuple[Path, ...] = ()
    evaluation: Evaluation | None = field(default=None, repr=False, compare=False)

    @property
    def scored(self) -> int:
        """Return how many rows were scored."""
        return self.rows_read - sum(self.dropped.values())

    def rows_line(self) -> str:
        """Return one line saying how many rows were scored, of how many, and why any were left out."""
        left = ", ".join(f"{n:,} {REASON_WORDS[reason]}" for reason, n in self.dropped.items() if n)
        return (f"{self.split}: scored {self.scored:,} of the {self.rows_read:,} rows of {self.source}"
                + (f"; left out {left}" if left else ""))


REASON_WORDS = {BLANK_TEXT: "with a blank text", BLANK_LABEL: "with a blank label", SEEN: "seen in fine-tuning"}


# ---------------------------------------------------------------- the model and its shape


def check_model_folder(model: str) -> None:
    """Refuse a model that is a file (a CSV given where a model folder is wanted) or a folder without config.json."""
    from distilnb.models import check_model_name

    check_model_name(model, "model_dir")


def model_task(model: str, cfg: Config) -> tuple[str, list[str]]:
    """Return (the task a model was trained for, its label names): multi-label from its config.json, pairs from its
    fine-tuning record (else cfg)."""
    from distilnb.export import is_onnx_folder, onnx_config
    from distilnb.folder import fine_tuning_record
    from distilnb.models import is_multi_label, label_names_of

    config = onnx_config(model) if is_onnx_folder(model) else transformers_config(model)
    recorded = fine_tuning_record(model)
    pairs = recorded.get("text_pair_column") if recorded else cfg.text_pair_column
    task = MULTI_LABEL if is_multi_label(config) else PAIRS if pairs else SINGLE_LABEL
    return task, label_names_of(config)


def transformers_config(model: str) -> PretrainedConfig:
    """Return a model folder's or Hub model's config, read by transformers."""
    from transformers import AutoConfig

    from distilnb.errors import from_hub

    return from_hub(f"the model {model!r}", lambda: AutoConfig.from_pretrained(model))


def check_columns_fit(cfg: Config, task: str) -> None:
    """Refuse a second text column for a single-text model (the Config refuses one equal to the text column)."""
    if cfg.text_pair_column is not None and task != PAIRS:
        raise SettingError(f"names a second text, but the model was trained on single texts ({task}): leave it out",
                           "text_pair_column", cfg.text_pair_column)


# ---------------------------------------------------------------- the rows of a test file


def file_rows(path: str, cfg: Config, task: str, names: list[str],
              options: ReadOptions | None = None) -> tuple[pd.DataFrame, dict[str, int], list[str]]:
    """Return (a labelled file's rows as text[/text_pair]/label, rows left out by reason, notes), read for the model's
    task; refuse a file of another shape or with labels the model does not know."""
    from distilnb import data
    from distilnb.readers import ReadOptions, read_table

    chosen = options or ReadOptions()
    table = read_table(path, encoding=chosen.encoding, encoding_errors=chosen.encoding_errors, header=chosen.header,
                       format=chosen.format)
    check_file_shape(table, cfg, task, path)
    if task == MULTI_LABEL:
        frame, dropped, notes = multilabel_rows(table, cfg, path)
    else:
        report = data.LoadReport(source=path)
        frame = data.clean_frame(table, cfg.text_column, cfg.label_column, report, split="test",
                                 pair_column=cfg.text_pair_column)
        dropped = {BLANK_TEXT: sum(data.total(report.dropped, reason) for reason in data.BLANK_TEXT_REASONS),
                   BLANK_LABEL: data.total(report.dropped, data.MISSING_LABEL)}
        notes = []
    data.check_known_labels(data.label_items(frame["label"]), names, source=path)
    return frame, dropped, notes


def check_file_shape(table: pd.DataFrame, cfg: Config, task: str, path: str) -> None:
    """Refuse a file whose labels are not of the model's shape: one label a row for a multi-label model, or lists
    (or a label separator) for a one-label model."""
    from distilnb.data import holds_lists

    lists = holds_lists({"test": table}, cfg.label_column)
    if task == MULTI_LABEL and not lists and cfg.label_separator is None:
        raise SettingError(f"holds one label a row in {path}, but the model gives several labels a text: write each "
                           "row's labels as a list, or set {label_separator} to the character joining them",
                           "label_column", cfg.label_column)
    if task != MULTI_LABEL and (lists or cfg.label_separator is not None):
        how = "lists of labels" if lists else f"labels joined by {cfg.label_separator!r}"
        raise DataError(f"{path} holds {how}, but the model gives one label a {'pair' if task == PAIRS else 'text'}: "
                        "score it with a multi-label model, or give one label a row.")


def multilabel_rows(table: pd.DataFrame, cfg: Config, path: str) -> tuple[pd.DataFrame, dict[str, int], list[str]]:
    """Return (rows as text/label tuples, rows left out by reason, notes); a row with no label is kept: "no label"
    is a legitimate answer to score."""
    import pandas as pd

    from distilnb import data, multilabel

    data.check_columns(table, cfg.text_column, cfg.label_column, path)
    texts, _ = data.text_values(table[cfg.text_column], "test")
    encoded = multilabel.encode(texts, table[cfg.label_column].tolist(), separator=cfg.label_separator,
                                keep_empty=True)
    notes = []
    if encoded.report["no label"]:
        notes.append(multilabel.no_label_note(encoded.report["no label"], path))
    frame = pd.DataFrame({"text": encoded.texts, "label": [tuple(names) for names in encoded.labels()]}, dtype=object)
    return frame, {BLANK_TEXT: encoded.report["missing text"], BLANK_LABEL: 0}, notes


def file_splits(frame: pd.DataFrame, split: str, names: list[str]) -> DatasetDict:
    """Return the rows as a DatasetDict holding `split` and an empty train, labels named as the model names them."""
    from distilnb import data

    multi = "label" in frame.columns and any(isinstance(value, tuple) for value in frame["label"])
    empty = frame.iloc[:0]
    if multi:  # to_dataset_dict knows several labels a row by a tuple: the empty train split needs one too
        empty = frame.iloc[:1].assign(label=[()]).iloc[:0]
    return data.to_dataset_dict({"train": empty, split: frame}, names)


# ---------------------------------------------------------------- baselines and figures


def baselines_on(splits: DatasetDict, model: str, split: str, seed: int) -> dict[str, dict]:
    """Return the majority class and TF-IDF scores on `split`, trained on the run's training rows ({} without any)."""
    from datasets import DatasetDict

    from distilnb.baselines import baseline_scores
    from distilnb.data import label_names, task_of
    from distilnb.runs import training_split

    source = splits if len(splits["train"]) else training_split(model)  # a test file comes without training rows
    if source is None or label_names(source) != label_names(splits) or task_of(source) != task_of(splits):
        return {}
    # the validation rows tune the multi-label baseline's threshold, as they tuned the model's
    tuning = {"validation": source["validation"]} if split != "validation" and "validation" in source else {}
    scored = DatasetDict({"train": source["train"], **tuning, split: splits[split]})
    return baseline_scores(scored, split, seed)


def save_figures(evaluation: Evaluation, folder: Path, name: str) -> list[Path]:
    """Write the confusion matrix and the per-class scores of an evaluation as PNGs; return their paths."""
    import pandas as pd

    from distilnb import metrics, plots

    if "per_label" in evaluation.scores:  # several labels a text: no confusion matrix, the per-label scores
        per_label = plots.per_class_scores(pd.DataFrame(evaluation.scores["per_label"]).T)
        return [plots.save_figure(per_label, folder, f"per_label_{name}")]
    matrix = metrics.confusion(evaluation.labels, evaluation.logits.argmax(axis=-1), len(evaluation.label_names))
    per_class = metrics.report_frame(evaluation.scores).iloc[:-2]
    figures = {f"confusion_matrix_{name}": plots.confusion_matrix(matrix, evaluation.label_names),
               f"per_class_{name}": plots.per_class_scores(per_class)}
    return [plots.save_figure(figure, folder, title) for title, figure in figures.items()]


# ---------------------------------------------------------------- the predictor


def load_predictor(model: str, cfg: Config, *, max_length: int | None = None, chunk: bool = False,
                   progress: bool | str | None = None,
                   default_thresholds: bool = False) -> tuple[Predictor, str | None]:
    """Return (a Predictor for the model, a warning or None): max_length the given one, else as trained; an untrained
    head refused; a multi-label model at its saved thresholds (refused without them unless default_thresholds)."""
    from distilnb.models import check_head_is_trained
    from distilnb.predict import Predictor

    check_model_folder(model)
    predictor = Predictor.from_folder(model, max_length=max_length, batch_size=cfg.batch_size,
                                      default_thresholds=default_thresholds)
    warning = check_head_is_trained(model, predictor.label_names)
    predictor.progress, predictor.chunk = progress, chunk
    return predictor, warning


# ---------------------------------------------------------------- the evaluation


def report_name(split: str, test_file: str | None) -> str:
    """Return the name an evaluation's files carry: the split's, or the test file's stem (its own report, so scoring
    another file never overwrites the run's test score)."""
    if not test_file:
        return split
    stem = Path(test_file).name.split(".")[0]
    return f"file_{''.join(c if c.isalnum() or c in '-_' else '_' for c in stem)}"


def evaluate_run(cfg: Config, model: str, *, split: str = "test", test_file: str | None = None,
                 skip_seen: bool = False, chunk: bool = False, read_options: ReadOptions | None = None,
                 max_length: int | None = None, default_thresholds: bool = False,
                 progress: bool | str | None = None) -> EvaluationRun:
    """Score a model on rows it never saw (the run's split, or every row of test_file) beside the baselines; write
    eval_<name>.json beside a local model, the scores into cfg's metrics.json and figures; return what was done.

    cfg: the settings as the model was trained (columns, data, seed), with any the caller changed. Rows of a test
    file without a text or label are counted by reason; seen rows are refused, or left out and counted with
    skip_seen; a model is refused data of another shape.
    """
    from distilnb import metrics, runs

    check_model_folder(model)
    task, names = model_task(model, cfg)
    check_columns_fit(cfg, task)
    notes: list[str] = []
    if test_file:
        frame, dropped, found = file_rows(test_file, cfg, task, names, read_options)
        splits, source, origin, notes = file_splits(frame, split, names), test_file, runs.OTHER_ROWS, found
        rows_read = len(frame) + sum(dropped.values())
    else:
        splits, source, origin = own_splits(cfg, model, split, read_options)
        rows_read, dropped = len(splits[split]), {BLANK_TEXT: 0, BLANK_LABEL: 0}
    if split == "validation":
        notes.append(VALIDATION_NOTE)
    keep, note = runs.rows_to_score(model, splits[split]["text"], split, origin=origin, skip_seen=skip_seen,
                                    pairs=runs.second_texts(splits[split]))
    notes += [note] if note else []
    dropped[SEEN] = len(splits[split]) - len(keep)
    if dropped[SEEN]:
        splits[split] = splits[split].select(keep)
    if not len(splits[split]):
        raise DataError(f"No rows left to score of the {rows_read} in {source}.")
    predictor, warning = load_predictor(model, cfg, max_length=max_length, chunk=chunk, progress=progress,
                                        default_thresholds=default_thresholds)
    notes += [warning] if warning else []
    evaluation = metrics.evaluate_split(predictor, splits, split)
    baselines = baselines_on(splits, model, split, cfg.seed)
    name = report_name(split, test_file)
    rows = {"read": rows_read, "scored": len(splits[split]), "left out": dropped}
    written = write_reports(cfg, model, name, evaluation.scores, baselines, source=source, rows=rows)
    figures = save_figures(evaluation, cfg.paths.figures, name)
    return EvaluationRun(split, source, task, evaluation.scores, baselines, rows_read, dropped, predictor.max_length,
                         chunk, tuple(notes), (*written, *figures), evaluation)


def own_splits(cfg: Config, model: str, split: str,
               read_options: ReadOptions | None) -> tuple[DatasetDict, str, str]:
    """Return (the run's splits, where they come from, where the split's rows come from: runs.CUT_SPLIT, GIVEN_SPLIT
    or OTHER_ROWS); refuse a missing split."""
    from distilnb import runs
    from distilnb.folder import recorded_reading
    from distilnb.readers import ReadOptions

    recorded = ReadOptions(**recorded_reading(model)) if read_options is None else read_options
    splits, source, origin = runs.evaluation_splits(cfg, model, split=split, options=recorded)
    if split not in splits:
        raise DataError(f"The data has no {split} split.")
    return splits, source, origin


def write_reports(cfg: Config, model: str, name: str, scores: dict, baselines: dict[str, dict], *, source: str,
                  rows: dict[str, Any]) -> list[Path]:
    """Write the scores (with the baselines) into metrics.json under `name` and, beside a local model,
    eval_<name>.json with the rows read, scored and left out; return the files written."""
    from distilnb import runs
    from distilnb.metrics import FINE_TUNED

    runs.update_metrics(cfg.paths.metrics, name, {**baselines, FINE_TUNED: scores})
    folder = Path(model)
    if not folder.is_dir():
        return [cfg.paths.metrics]
    target = folder / f"eval_{name}.json"
    target.write_text(json.dumps({**scores, "source": source, "rows": rows}, indent=2))
    return [target, cfg.paths.metrics]
