import json
import logging
import logging.handlers
import os
import subprocess
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from distilnb import Config, tune
from distilnb.cli import build_parser, options
from distilnb.errors import SettingError

ROOT = Path(__file__).resolve().parent.parent
SMALL = {"max_train_examples": 200, "epochs": 1.0}  # the tiny model, 200 rows, trials of 1 to 3 epochs


@pytest.fixture(scope="module")
def ten_trials(tmp_path_factory):
    cfg = Config.from_env(profile="smoke", environ={}, output_root=str(tmp_path_factory.mktemp("tune")), **SMALL)
    return cfg, tune.search(cfg, tune.Budget(trials=10), say=lambda line: None)


def test_a_ten_trial_search_on_the_smoke_profile_writes_its_trials_best_config_figures_and_one_test_score(ten_trials):
    cfg, result = ten_trials
    assert len(result.trials) == 10 and set(result.trials["state"]) <= {"complete", "pruned"}
    assert result.plan.kind == "holdout" and result.trials["seconds"].notna().all()
    best = json.loads(result.config_path.read_text())
    assert best["profile"] == "smoke" and "output_root" not in best and "dataset" not in best  # the profile's file
    assert best["learning_rate"] == result.best["learning_rate"] and best["epochs"] == result.best["epochs"]
    assert {path.name for path in result.figures} == {"tune_history.png", "tune_importance.png"}
    assert all(path.stat().st_size > 1000 for path in result.figures)
    assert (result.model_dir / "model.safetensors").is_file() and "f1_macro" in result.test_scores
    assert json.loads(cfg.paths.metrics.read_text())["test"]["fine-tuned"]["f1_macro"] == result.test_scores["f1_macro"]


def test_memory_stays_flat_across_trials(ten_trials):
    # Each trial loads a fresh model, builds its optimizer and frees both; a trial that kept its model and optimizer
    # (tens of MB for the tiny model) would add them up over the last six trials.
    memory = list(ten_trials[1].trials["rss_mb"])
    assert max(memory[4:]) - memory[4] < 20, memory  # measured: +1 MB; a leaked tiny model per trial: +8 MB each


def test_train_config_reproduces_the_best_settings_and_a_flag_still_beats_it(ten_trials, monkeypatch):
    cfg, result = ten_trials
    for name in list(os.environ):
        if name.startswith("DISTILNB_"):
            monkeypatch.delenv(name)
    args = build_parser().parse_args(["train", "--config", str(result.config_path)])
    chosen = replace(options.build_config(args), output_root=cfg.output_root)
    assert chosen == tune.with_settings(cfg, {**result.best, "epochs": float(result.best["epochs"])})
    args = build_parser().parse_args(["train", "--epochs", "7", "--config", str(result.config_path)])
    assert options.build_config(args).epochs == 7.0


def test_a_search_over_a_study_with_trials_is_refused_unless_resumed(ten_trials):
    cfg, _ = ten_trials
    with pytest.raises(SettingError, match="already holds a search of 10 trials: continue it with resume"):
        tune.search(cfg, tune.Budget(trials=11), say=lambda line: None, final=False)
    said, notices = [], logging.getLogger("transformers.trainer_callback")
    seen = logging.handlers.BufferingHandler(capacity=1000)
    notices.addHandler(seen)
    notices.setLevel(logging.WARNING)  # whatever verbosity another test left: the Trainer's warnings reach `seen`
    try:
        resumed = tune.search(cfg, tune.Budget(trials=11), resume=True, say=said.append, final=False)
    finally:
        notices.removeHandler(seen)
        notices.setLevel(logging.NOTSET)
    assert len(resumed.trials) == 11 and any("holds 10 finished trials; 1 to go" in line for line in said)
    # A trial loads no best model by design: the Trainer's notice that early stopping will not would only mislead.
    assert not [record for record in seen.buffer if "load_best_model_at_end" in record.getMessage()]


def test_a_trial_trains_from_the_seed_as_the_run_that_retrains_its_settings_does(tmp_path):
    # The retrained run seeds after loading its model (Trainer.__init__); a trial seeded only before model_init
    # trained with other dropout draws: measured on 600 sample rows, trial 0.553 against its retrained run's 0.427.
    import torch
    from transformers import set_seed

    from distilnb import data
    from distilnb.models import load_tokenizer

    cfg = Config.from_env(profile="smoke", environ={}, output_root=str(tmp_path), **SMALL)
    splits, _ = data.load_splits(cfg)
    tokenizer = load_tokenizer(cfg.resolved_model)
    trainer = tune.search_trainer(cfg, tune.tokenize(cfg, splits, tokenizer, False), tokenizer,
                                  data.label_names(splits), False, tune.BestSoFar(), 1e-3)
    set_seed(cfg.seed)
    trainer.model_init()  # as Trainer.train calls it, after its own set_seed
    state = torch.random.get_rng_state()
    set_seed(cfg.seed)
    assert torch.equal(state, torch.random.get_rng_state())


def frozen(values: list[float]):
    return create_trial(state=TrialState.COMPLETE, value=max(values), params={"x": 0.5},
                        distributions={"x": FloatDistribution(0, 1)},
                        intermediate_values=dict(zip((10, 20, 30), values, strict=False)))


def test_the_search_figures_are_drawn_without_optunas_experimental_notices(tmp_path):
    study = optuna.create_study(direction="maximize")
    for x, values in ((0.2, [0.5, 0.6]), (0.7, [0.6, 0.8]), (0.4, [0.4, 0.7])):
        study.add_trial(create_trial(state=TrialState.COMPLETE, value=max(values), params={"x": x},
                                     distributions={"x": FloatDistribution(0, 1)}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        saved = tune.save_figures(study, tmp_path)
    assert [path.name for path in saved] == ["tune_history.png", "tune_importance.png"]
    assert not [w for w in caught if issubclass(w.category, optuna.exceptions.ExperimentalWarning)]


def test_the_pruner_stops_a_trial_below_the_median_at_the_same_epoch_whatever_its_steps_never_after_one_epoch():
    study = optuna.create_study(direction="maximize")
    for values in ([0.5, 0.6, 0.7], [0.6, 0.7, 0.8], [0.4, 0.5, 0.6]):
        study.add_trial(frozen(values))
    pruner = tune.epoch_pruner()
    behind_at_first = create_trial(state=TrialState.RUNNING, value=None, intermediate_values={7: 0.1})
    assert not pruner.prune(study, behind_at_first)  # far below epoch 1's median (0.5), but epoch 1 is not judged
    behind = create_trial(state=TrialState.RUNNING, value=None, intermediate_values={7: 0.1, 14: 0.5})
    level = create_trial(state=TrialState.RUNNING, value=None, intermediate_values={7: 0.1, 14: 0.6})
    assert pruner.prune(study, behind) and not pruner.prune(study, level)  # epoch 2's median is 0.6
    ahead = create_trial(state=TrialState.RUNNING, value=None, intermediate_values={7: 0.9, 14: 0.9, 21: 0.75})
    behind_later = create_trial(state=TrialState.RUNNING, value=None, intermediate_values={7: 0.9, 14: 0.9, 21: 0.65})
    assert not pruner.prune(study, ahead) and pruner.prune(study, behind_later)  # epoch 3's median is 0.7
    fresh = optuna.create_study(direction="maximize")
    fresh.add_trial(frozen([0.9, 0.9]))
    assert not pruner.prune(fresh, behind)  # fewer than two finished trials: too early to judge


def test_budgets_and_durations():
    assert tune.parse_duration("30m") == 1800 and tune.parse_duration("90") == 90 and tune.parse_duration("2h") == 7200
    with pytest.raises(SettingError, match="is not a duration"):
        tune.parse_duration("soon")
    with pytest.raises(SettingError, match="a number of trials, or a wall time"):
        tune.Budget()
    assert tune.Budget(seconds=60).trials is None


def test_trials_draw_up_to_three_times_the_epochs_a_default_run_would_train():
    cfg = Config.from_env(profile="offline", environ={})
    assert cfg.epochs is None and tune.top_epochs(cfg) == 6  # search() decides them first; unset means the usual two
    assert tune.top_epochs(replace(cfg, epochs=7.0)) == 21  # a rare class's seven passes: trials up to 21
    assert tune.top_epochs(replace(cfg, epochs=0.5)) == 2


def test_a_small_validation_split_is_chosen_on_by_k_fold_and_the_plan_says_why(tmp_path):
    cfg = Config.from_env(profile="smoke", environ={}, output_root=str(tmp_path), validation_size=0.03,
                          max_train_examples=120, epochs=1.0)
    said = []
    result = tune.search(cfg, tune.Budget(trials=2), say=said.append, final=False)
    assert result.plan.kind == "k-fold" and result.plan.folds == 5
    assert any(line.startswith("Choosing by k-fold: the validation split (") and "too small" in line for line in said)
    assert len(result.trials) == 2 and result.trials["seconds"].notna().any()


def test_a_k_fold_trial_behind_the_others_is_pruned_between_folds(tmp_path, monkeypatch):
    class PruneAllButTheFirst(optuna.pruners.BasePruner):
        def prune(self, study, trial):
            return trial.number > 0

    monkeypatch.setattr(tune, "epoch_pruner", PruneAllButTheFirst)
    cfg = Config.from_env(profile="smoke", environ={}, output_root=str(tmp_path), validation_size=0.03,
                          max_train_examples=120, epochs=1.0)
    result = tune.search(cfg, tune.Budget(trials=2), say=lambda line: None, final=False)
    assert result.plan.kind == "k-fold" and list(result.trials["state"]) == ["complete", "pruned"]
    assert result.trials.loc[1, "epochs run"] == 1  # stopped after its first fold, not its fifth


def test_two_workers_share_one_sqlite_study_without_repeating_a_trial(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    command = [sys.executable, "-m", "distilnb", "tune", "--profile", "smoke", "--max-train-examples", "60",
               "--epochs", "1", "--trials", "4", "--storage", url, "--no-final", "--threads", "1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    workers = [subprocess.Popen([*command, "--output-root", str(tmp_path / f"worker{i}")], env=env, cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outputs = [worker.communicate(timeout=600) for worker in workers]
    assert all(worker.returncode == 0 for worker in workers), [err[-2000:] for _, err in outputs]
    study = optuna.load_study(study_name=tune.STUDY_NAME, storage=url)
    ran = [trial for trial in study.trials if tune.OVER_BUDGET not in trial.user_attrs]
    assert len(ran) == 4 and tune.finished(study) == 4  # the budget is the study's, not each worker's
    assert len({trial.number for trial in study.trials}) == len(study.trials)
    settings = [tuple(sorted(trial.params.items())) for trial in ran]
    assert len(settings) == len(set(settings))  # each worker samples its own settings
    assert all("Trials (holdout)" in out for out, _ in outputs)
