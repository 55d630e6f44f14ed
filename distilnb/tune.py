"""Settings that fit the data: a search with Trainer.hyperparameter_search (Optuna), within a budget, resumable.

Each trial starts from the same pretrained weights (model_init) and trains through train.build_trainer, the course's
code path; its score is the validation macro-F1 of its best epoch (at tuned thresholds for several labels), which a
pruner compares epoch by epoch. Where the validation split is too small to choose on, each trial is scored by k-fold
cross-validation over the training rows instead. The test split is scored once, by the best settings' final model.
The study lives in the run folder (SQLite), so a search can be resumed, or shared by several workers (--storage).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distilnb.config import DEFAULT_EPOCHS, MULTI_LABEL, Config
from distilnb.errors import SettingError
from distilnb.verdict import MIN_VALIDATION_CLASS, MIN_VALIDATION_ROWS

if TYPE_CHECKING:
    import optuna
    import pandas as pd
    from datasets import DatasetDict
    from transformers import (
        EvalPrediction,
        PreTrainedModel,
        PreTrainedTokenizerBase,
        Trainer,
        TrainerControl,
        TrainerState,
        TrainingArguments,
    )

    from distilnb.readers import ReadOptions

STUDY_NAME = "distilnb-tune"
# Config setting -> the TrainingArguments field it sets; class_weights is the loss's, set in model_init.
TRAINING_ARGUMENT = {"learning_rate": "learning_rate", "epochs": "num_train_epochs",
                     "batch_size": "per_device_train_batch_size", "warmup": "warmup_steps",
                     "weight_decay": "weight_decay"}
SEARCHED = (*TRAINING_ARGUMENT, "class_weights")
BATCH_SIZES = (8, 16, 32)
FOLDS = 5
OVER_BUDGET = "over_budget"  # a trial a worker began after the study's budget was taken: ended unrun
NO_SAVES = 10**9  # save_steps for a trial: trials keep no checkpoints, only their scores


@dataclass(frozen=True)
class Budget:
    """How much searching: a number of trials, a wall time in seconds, or both (whichever ends first)."""

    trials: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if self.trials is None and self.seconds is None:
            raise SettingError("Give the search a budget: a number of trials, or a wall time, or both.")
        if self.trials is not None and self.trials < 1:
            raise SettingError("must be at least 1", "trials", self.trials)
        if self.seconds is not None and self.seconds <= 0:
            raise SettingError("must be more than 0 seconds", "budget", self.seconds)


@dataclass(frozen=True)
class Plan:
    """How trials are scored: on the validation split ("holdout"), or by k-fold cross-validation, and why."""

    kind: str
    folds: int
    reason: str


@dataclass
class TuneResult:
    """A finished search: the study's trials, the best settings, the final model and its one test score."""

    plan: Plan
    trials: Any  # pandas.DataFrame, a row per trial
    best: dict[str, Any]
    best_value: float
    config_path: Path
    model_dir: Path
    test_scores: dict
    figures: list[Path] = field(default_factory=list)


def parse_duration(text: str) -> float:
    """Return seconds from '90', '90s', '30m' or '2h'."""
    units = {"s": 1, "m": 60, "h": 3600}
    raw = text.strip().lower()
    number, unit = (raw[:-1], units[raw[-1]]) if raw and raw[-1] in units else (raw, 1)
    try:
        return float(number) * unit
    except ValueError:
        raise SettingError("is not a duration: write 90s, 30m or 2h", "budget", text) from None


def choose_plan(splits: DatasetDict) -> Plan:
    """Return the holdout plan when the validation split can choose (100 rows or more, 5 of each class), else k-fold
    over the training rows, saying why."""
    from distilnb import data

    rows = len(splits["validation"])
    smallest = int(data.class_counts(splits)["validation"].min())
    if rows >= MIN_VALIDATION_ROWS and smallest >= MIN_VALIDATION_CLASS:
        return Plan("holdout", 1, f"the validation split ({rows} rows, at least {smallest} of each class) chooses")
    return Plan("k-fold", FOLDS, f"the validation split ({rows} rows, {smallest} of its rarest class) is too small "
                                 f"to choose on: each trial is scored by {FOLDS}-fold cross-validation over the "
                                 "training and validation rows together")


def top_epochs(cfg: Config) -> int:
    """Return the most epochs a trial may draw: three times the run's (search() decides them from the data first)."""
    return max(2, round(3 * (cfg.epochs or DEFAULT_EPOCHS)))


def suggest(trial: optuna.Trial, cfg: Config, default_lr: float) -> dict[str, Any]:
    """Return one trial's settings (Config names): learning rate on a log scale around the default, epochs, batch size,
    warm-up share, weight decay and class weights; asking twice in one trial gives the same values."""
    return {
        "learning_rate": trial.suggest_float("learning_rate", default_lr / 10, default_lr * 3, log=True),
        "epochs": float(trial.suggest_int("epochs", 1, top_epochs(cfg))),
        "batch_size": trial.suggest_categorical("batch_size", BATCH_SIZES),
        "warmup": trial.suggest_float("warmup", 0.0, 0.2),
        "weight_decay": trial.suggest_float("weight_decay", 0.0, 0.1),
        "class_weights": trial.suggest_categorical("class_weights", (False, True)),
    }


# A first epoch holds the warm-up and the new head's first fit, and says little of a trial's end: on RTE (2,241
# pairs) every trial but one stood at 0.33-0.41 validation macro-F1 after it, the one that went on ended at 0.615,
# and pruning after epoch 1 stopped 5 of 8 trials there (benchmarks/RESULTS.md, section 26).
FIRST_JUDGED_EPOCH = 2


def epoch_pruner(min_epochs: int = FIRST_JUDGED_EPOCH, startup_trials: int = 2) -> optuna.pruners.BasePruner:
    """Return a pruner that stops a trial whose best score after its k-th epoch (k >= min_epochs) is below the median
    of the finished trials' at their k-th epoch; epochs, not optimizer steps, since the batch size (and the steps)
    differ."""
    import optuna

    class EpochMedianPruner(optuna.pruners.BasePruner):
        def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
            mine = by_epoch(trial)
            done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if len(mine) < min_epochs or len(done) < startup_trials:
                return False
            others = [values[len(mine) - 1] for values in map(by_epoch, done) if len(values) >= len(mine)]
            return bool(others) and mine[-1] < statistics.median(others)

    return EpochMedianPruner()


def by_epoch(trial: optuna.trial.FrozenTrial) -> list[float]:
    """Return a trial's reported scores in order: one an epoch, whatever step each was reported at."""
    return [trial.intermediate_values[step] for step in sorted(trial.intermediate_values)]


class BestSoFar:
    """The Trainer's compute_objective: a trial's best validation macro-F1 so far, as load_best_model_at_end keeps
    the best epoch's model; reset at each trial's start."""

    def __init__(self) -> None:
        self.best = -math.inf

    def reset(self) -> None:
        """Forget the last trial's scores."""
        self.best = -math.inf

    def __call__(self, metrics: dict[str, float]) -> float:
        self.best = max(self.best, metrics["eval_f1_macro"])
        return self.best


def tuned_threshold_metrics(names: list[str]) -> Callable[[Any], dict]:
    """Return a compute_metrics for several labels: micro, macro and samples F1 at thresholds tuned on these rows,
    as the finished model is scored (the 0.5 used while training would rank trials by another rule)."""
    import numpy as np

    from distilnb import multilabel

    def compute(eval_prediction: EvalPrediction) -> dict:
        probabilities = multilabel.sigmoid(eval_prediction.predictions)
        truth = np.asarray(eval_prediction.label_ids, dtype=float).reshape(-1, len(names))
        record = multilabel.choose_thresholds(truth, probabilities, names)
        limits = np.asarray([record["thresholds"][name] for name in names])
        scores = multilabel.scores(truth, multilabel.apply_thresholds(probabilities, limits))
        return {name: scores[name] for name in ("f1_micro", "f1_macro", "f1_samples")}

    return compute


def resident_mb() -> float:
    """Return this process's resident memory now, in MB (Linux /proc; elsewhere the peak so far)."""
    statm = Path("/proc/self/statm")
    if statm.is_file():
        return int(statm.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def search_config(cfg: Config) -> Config:
    """Return the Config a trial trains under: no checkpoints (a trial keeps only its score) and warm-up as a share."""
    warmup = cfg.warmup if cfg.warmup < 1 else 0.1
    return dataclasses.replace(cfg, save_steps=NO_SAVES, warmup=float(warmup), keep_checkpoints=False)


def with_settings(cfg: Config, settings: dict[str, Any]) -> Config:
    """Return cfg with a trial's settings (Config names) applied."""
    return dataclasses.replace(cfg, **{name: settings[name] for name in SEARCHED if name in settings})


def search_trainer(cfg: Config, tokenized: DatasetDict, tokenizer: PreTrainedTokenizerBase, names: list[str],
                   multi: bool, objective: BestSoFar, default_lr: float, limit: int | None = None) -> Trainer:
    """Return the course's Trainer (train.build_trainer) set up for hyperparameter_search: a model_init that loads
    the same pretrained weights for every trial and sets its loss, no checkpoints, and the best epoch's score."""
    from transformers import TrainerCallback, set_seed

    from distilnb import train
    from distilnb.models import load_classifier

    cfg = search_config(cfg)
    trainer = trial_trainer(cfg, tokenized, tokenizer, names, multi)

    def model_init(trial: optuna.Trial | None = None) -> PreTrainedModel:
        objective.reset()
        if trial is not None:  # called before hp_space: the trial's class_weights set the loss here
            refuse_over_budget(trial, limit)
            chosen = suggest(trial, cfg, default_lr)["class_weights"]
            weighted = dataclasses.replace(cfg, class_weights=chosen)
            trainer.compute_loss_func = train.loss_for(weighted, tokenized["train"], len(names), multi)
            mark_start(trial)
        model = load_classifier(cfg.resolved_model, names, multi_label=multi)
        # The whole run that retrains the best settings seeds again after loading its model (Trainer.__init__); the
        # Trainer seeds a trial only before model_init. Seeding here too gives a trial the run's dropout draws, so the
        # final model is the best trial's, not another draw from its settings.
        set_seed(cfg.seed)
        return model

    class TrialClock(TrainerCallback):
        def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                         **kwargs: Any) -> None:  # also when pruned: the Trainer calls it first
            trial = trainer._trial
            if trial is not None and hasattr(trial, "set_user_attr"):
                trial.set_user_attr("seconds", round(time.time() - trial.user_attrs["started"], 1))

    trainer.model_init = model_init
    trainer.add_callback(TrialClock())
    return trainer


def not_the_best_model_notice(record: logging.LogRecord) -> bool:
    """Drop the Trainer's notice that early stopping will not load the best model: a trial loads none by design (its
    score is its best epoch's), so every trial would print a warning that says nothing about the search."""
    return "without load_best_model_at_end" not in record.getMessage()


def trial_trainer(cfg: Config, tokenized: DatasetDict, tokenizer: PreTrainedTokenizerBase, names: list[str],
                  multi: bool) -> Trainer:
    """Return train.build_trainer's Trainer for one trial: it saves no checkpoint (a trial keeps only its scores) and,
    for several labels, scores each epoch at tuned thresholds."""
    from distilnb import train
    from distilnb.models import load_classifier

    model = load_classifier(cfg.resolved_model, names, multi_label=multi)
    trainer = train.build_trainer(search_config(cfg), model, tokenized, tokenizer)
    trainer.args = dataclasses.replace(trainer.args, save_strategy="no", load_best_model_at_end=False)
    logging.getLogger("transformers.trainer_callback").addFilter(not_the_best_model_notice)  # once: filters are a set
    trainer.create_accelerator_and_postprocess()  # new arguments reset accelerate's state: rebuild it on them
    if multi:
        trainer.compute_metrics = tuned_threshold_metrics(names)
    return trainer


def mark_start(trial: optuna.Trial) -> None:
    """Record when a trial started and the memory held then (flat from trial to trial when trials free theirs)."""
    trial.set_user_attr("rss_mb_at_start", round(resident_mb(), 1))
    trial.set_user_attr("started", time.time())


def study_storage(url: str) -> Any:
    """Return Optuna's RDB storage for a URL; SQLite waits for a lock held by another worker instead of failing."""
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    for attempt in range(4):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine)
        except SQLAlchemyError:  # workers started together race to create the tables: the loser finds them made
            time.sleep(1 + attempt)
    return optuna.storages.RDBStorage(url, engine_kwargs=engine)


def local_storage_url(cfg: Config) -> str:
    """Return the SQLite URL of the study kept in the run folder (tune/study.db)."""
    path = cfg.paths.root / "tune" / "study.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path.resolve()}"


def finished(study: optuna.Study) -> int:
    """Return the study's trials that ran to the end or were pruned (not those refused as over the budget)."""
    import optuna

    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return sum(1 for t in study.get_trials(deepcopy=False, states=states) if OVER_BUDGET not in t.user_attrs)


def refuse_over_budget(trial: optuna.Trial, limit: int | None) -> None:
    """Stop this worker and end the trial unrun when the study's trials, with those started before it, reach the
    limit: workers sharing a study each started with the trials left then, so the first to see the total stops."""
    import optuna

    if limit is None:
        return
    running = trial.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    earlier = sum(1 for t in running if t.number < trial.number and OVER_BUDGET not in t.user_attrs)
    if finished(trial.study) + earlier >= limit:
        trial.set_user_attr(OVER_BUDGET, True)
        trial.study.stop()
        raise optuna.TrialPruned("the study's trials are all taken")


def open_study(cfg: Config, storage: Any, resume: bool, shared: bool) -> optuna.Study:
    """Return the study: a new one in the run folder, the one there with resume, or the one at a storage shared by
    the workers pointed at it; refuse to start over a study that has trials unless resuming."""
    import optuna

    # One seed for one worker makes a search repeatable; workers sharing a study need their own, or each would
    # propose the same settings as the others.
    sampler = optuna.samplers.TPESampler(seed=None if shared else cfg.seed, n_startup_trials=4)
    study = optuna.create_study(study_name=STUDY_NAME, storage=storage, direction="maximize",
                                sampler=sampler, pruner=epoch_pruner(), load_if_exists=True)
    if study.trials and not (resume or shared):
        raise SettingError(f"already holds a search of {len(study.trials)} trials: continue it with {{resume}}, or "
                           "choose another", "run_name", cfg.run)
    return study


def estimate_trial_seconds(cfg: Config, tokenized: DatasetDict, names: list[str], multi: bool,
                           tokenizer: PreTrainedTokenizerBase) -> float:
    """Return an estimate of one trial's seconds: two timed training steps, scaled to the training rows over the
    search's middle epoch count, plus the validation passes (a forward pass, about a third of a step's cost)."""
    import torch
    from transformers import DataCollatorWithPadding

    from distilnb.models import load_classifier

    model = load_classifier(cfg.resolved_model, names, multi_label=multi)
    columns = [c for c in ("input_ids", "attention_mask", "token_type_ids", "label", "labels")
               if c in tokenized["train"].column_names]
    rows = tokenized["train"].select_columns(columns)
    collate = DataCollatorWithPadding(tokenizer)
    size = min(cfg.batch_size, len(rows))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    started = time.perf_counter()
    for start in (0, size):
        batch = collate([rows[i] for i in range(start, min(start + size, len(rows)))] or [rows[0]])
        if "label" in batch:
            batch["labels"] = batch.pop("label")
        if multi:
            batch["labels"] = batch["labels"].float()
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    per_row = (time.perf_counter() - started) / (2 * size)
    epochs = (1 + top_epochs(cfg)) / 2
    return per_row * epochs * (len(tokenized["train"]) + len(tokenized["validation"]) / 3)


def folds_of(splits: DatasetDict, k: int, seed: int) -> list[DatasetDict]:
    """Return k (train, validation) splits of the training and validation rows together, stratified for one label."""
    import numpy as np
    from datasets import DatasetDict, concatenate_datasets
    from sklearn.model_selection import KFold, StratifiedKFold

    rows = concatenate_datasets([splits["train"], splits["validation"]])
    if "label" in rows.column_names and not isinstance(rows[0]["label"], list):
        smallest = int(np.bincount(rows["label"]).min())
        if smallest >= k:
            cuts = StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(rows)), rows["label"])
        else:
            cuts = KFold(k, shuffle=True, random_state=seed).split(np.zeros(len(rows)))
    else:
        cuts = KFold(k, shuffle=True, random_state=seed).split(np.zeros(len(rows)))
    return [DatasetDict({"train": rows.select(fit), "validation": rows.select(held)}) for fit, held in cuts]


def search(cfg: Config, budget: Budget, *, resume: bool = False, storage_url: str | None = None,
           read_options: ReadOptions | None = None, say: Callable[[str], None] = print,
           final: bool = True) -> TuneResult:
    """Search the settings within the budget, train the best settings' model as a whole run, score its test split
    once; return the trials, the best settings (also written as tune/best.json) and the test scores.

    read_options: how to read the data files; say: where progress lines go (the command line's stderr, its settings
    still to be spelt); final=False stops after the search (no final model).
    """
    import optuna

    from distilnb import data, runs, train
    from distilnb.errors import mention
    from distilnb.run import decide_epochs
    from distilnb.run import train as whole_run

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    splits, report = data.load_splits(cfg, read_options)
    for line in [*report.console_lines(mention), *report.notes]:
        say(f"Data: {line}")
    runs.save_splits(splits, report, cfg)
    plan = choose_plan(splits)
    say(f"Choosing by {plan.kind}: {plan.reason}.")
    storage = study_storage(storage_url or local_storage_url(cfg))
    study = open_study(cfg, storage, resume, shared=storage_url is not None)
    done = finished(study)
    remaining = None if budget.trials is None else max(budget.trials - done, 0)
    if done:
        say(f"The study holds {done} finished trials; {remaining if remaining is not None else 'more'} to go.")
    tokenizer, names, multi = prepare(cfg, splits)
    cfg, passes = decide_epochs(cfg, splits)  # the trials' range of epochs centres on the run's own
    if passes:
        say(f"Epochs: {cfg.epochs:g} for a default run, because {passes}; trials draw 1 to {top_epochs(cfg)}.")
    default_lr = cfg.learning_rate or train.default_learning_rate(model_width(cfg))
    tokenized = tokenize(cfg, splits, tokenizer, multi)
    estimate = estimate_trial_seconds(cfg, tokenized, names, multi, tokenizer) * plan.folds
    say(f"A trial will take about {estimate:.0f} s (two timed steps, {len(splits['train'])} training rows, "
        f"{plan.folds} fold{'s' if plan.folds > 1 else ''}); pruned trials take less.")
    if remaining != 0:
        run_trials(cfg, study, storage, plan, budget, remaining, splits, tokenized, tokenizer, names, multi,
                   default_lr)
    table = trials_table(study)
    best = study.best_trial
    best_value = best.value if best.value is not None else float("nan")  # a finished trial always has one
    best_cfg = with_settings(cfg, {**best.params, "epochs": float(best.params["epochs"])})
    config_path = write_best_config(best_cfg, cfg.paths.root / "tune" / "best.json")
    figures = save_figures(study, cfg.paths.figures)
    if not final:
        return TuneResult(plan, table, best.params, best_value, config_path, cfg.paths.model, {}, figures)
    say(f"Best trial {best.number}: validation macro-F1 {best.value:.3f}; training the final model with its settings.")
    model_dir = whole_run(best_cfg, read_options=read_options).model_dir  # the same splits: same data settings
    test_scores = score_test_once(best_cfg, model_dir, splits)
    return TuneResult(plan, table, best.params, best_value, config_path, model_dir, test_scores, figures)


def prepare(cfg: Config, splits: DatasetDict) -> tuple[Any, list[str], bool]:
    """Return (tokenizer, label names, several labels?) of the run."""
    from distilnb import data
    from distilnb.models import load_tokenizer

    return load_tokenizer(cfg.resolved_model), data.label_names(splits), data.task_of(splits) == MULTI_LABEL


def model_width(cfg: Config) -> int:
    """Return the encoder's hidden size, from its config alone."""
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(cfg.resolved_model).hidden_size


def tokenize(cfg: Config, splits: DatasetDict, tokenizer: PreTrainedTokenizerBase, multi: bool) -> DatasetDict:
    """Return the splits tokenized, truncated at max_length, as a whole run tokenizes them."""
    from distilnb.train import tokenize_batch

    return splits.map(lambda batch: tokenize_batch(tokenizer, batch, cfg.max_length), batched=True,
                      desc="Tokenizing", remove_columns=["label"] if multi else None)


def run_trials(cfg: Config, study: optuna.Study, storage: Any, plan: Plan, budget: Budget, remaining: int | None,
               splits: DatasetDict, tokenized: DatasetDict, tokenizer: PreTrainedTokenizerBase, names: list[str],
               multi: bool,
               default_lr: float) -> None:
    """Run the trials: through trainer.hyperparameter_search on the validation split, or fold by fold for k-fold."""
    import optuna

    limit = budget.trials
    if plan.kind == "holdout":
        objective = BestSoFar()
        trainer = search_trainer(cfg, tokenized, tokenizer, names, multi, objective, default_lr, limit)
        trainer.hyperparameter_search(
            hp_space=hp_space_for(cfg, default_lr), compute_objective=objective, n_trials=remaining,
            direction="maximize", backend="optuna", study_name=STUDY_NAME, storage=storage,
            sampler=study.sampler, pruner=study.pruner, load_if_exists=True, timeout=budget.seconds,
            gc_after_trial=True)
        return
    folds = [tokenize(cfg, fold, tokenizer, multi) for fold in folds_of(splits, plan.folds, cfg.seed)]

    def cross_validated(trial: optuna.Trial) -> float:
        refuse_over_budget(trial, limit)
        mark_start(trial)
        trial_cfg = with_settings(cfg, suggest(trial, cfg, default_lr))
        scores = []
        for index, fold in enumerate(folds):
            trainer = trial_trainer(trial_cfg, fold, tokenizer, names, multi)
            trainer.train()
            scores.append(max(e["eval_f1_macro"] for e in trainer.state.log_history if "eval_f1_macro" in e))
            del trainer
            trial.report(statistics.mean(scores), index)  # the mean over the folds so far: the pruner's k-th score
            if trial.should_prune():
                raise optuna.TrialPruned()
        trial.set_user_attr("seconds", round(time.time() - trial.user_attrs["started"], 1))
        return statistics.mean(scores)

    study.optimize(cross_validated, n_trials=remaining, timeout=budget.seconds, gc_after_trial=True)


def hp_space_for(cfg: Config, default_lr: float) -> Callable[[Any], dict[str, Any]]:
    """Return hyperparameter_search's hp_space: the trial's settings as TrainingArguments fields."""

    def hp_space(trial: optuna.Trial) -> dict[str, Any]:
        settings = suggest(trial, cfg, default_lr)
        return {TRAINING_ARGUMENT[name]: value for name, value in settings.items() if name in TRAINING_ARGUMENT}

    return hp_space


def trials_table(study: optuna.Study) -> pd.DataFrame:
    """Return a row per trial: its settings, validation score, seconds, state (pruned or not) and memory at start."""
    import pandas as pd

    rows = []
    for trial in study.trials:
        state = "over budget" if OVER_BUDGET in trial.user_attrs else trial.state.name.lower()
        rows.append({"trial": trial.number, "state": state, "score": trial.value,
                     "epochs run": len(trial.intermediate_values), **trial.params,
                     "seconds": trial.user_attrs.get("seconds"), "rss_mb": trial.user_attrs.get("rss_mb_at_start")})
    return pd.DataFrame(rows).set_index("trial") if rows else pd.DataFrame()


def write_best_config(cfg: Config, path: Path) -> Path:
    """Write the best settings as a config file that `distilnb train --config` reads: the profile and every setting
    that differs from it (so the profile's own sample file is not written as this machine's path); no output_root."""
    profile = Config.from_env(profile=cfg.profile, environ={}).to_dict()
    settings = {name: value for name, value in cfg.to_dict().items()
                if name == "profile" or (name != "output_root" and value != profile[name])}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=2) + "\n")
    return path


def save_figures(study: optuna.Study, folder: Path) -> list[Path]:
    """Save Optuna's optimisation history and parameter importances (matplotlib) as PNGs; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as plots

    folder.mkdir(parents=True, exist_ok=True)
    saved = []
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    drawings: dict[str, Callable[[optuna.Study], Any]] = {"tune_history.png": plots.plot_optimization_history}
    if len(complete) >= 2:  # importances need finished trials that differ
        drawings["tune_importance.png"] = plots.plot_param_importances
    for name, draw in drawings.items():
        with warnings.catch_warnings():  # Optuna marks its matplotlib plots experimental on every call: not the user's
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            axes = draw(study)
        figure = axes.get_figure(root=True)
        figure.savefig(folder / name, dpi=100, bbox_inches="tight")
        plt.close(figure)
        saved.append(folder / name)
    return saved


def score_test_once(cfg: Config, model_dir: Path, splits: DatasetDict) -> dict:
    """Return the final model's test scores, the one time the test split is used; recorded in the run's metrics."""
    from distilnb import metrics, runs
    from distilnb.predict import Predictor

    predictor = Predictor.from_folder(model_dir, max_length=cfg.max_length)
    scores = metrics.evaluate_split(predictor, splits, "test").scores
    runs.save_evaluation(cfg.paths.metrics, str(model_dir), "test", scores)
    return scores
