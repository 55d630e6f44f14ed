import random
from pathlib import Path

import numpy as np
import pytest
import torch

from distilnb.config import PROFILES, Config, HubUnreachableError, from_hub, project_root, seed_everything


def test_profile_defaults_then_parameters_then_environment():
    cfg = Config.from_env(profile="smoke", environ={}, max_length=None, batch_size=8)
    assert cfg.model == "tiny" and cfg.max_length == PROFILES["smoke"]["max_length"] and cfg.batch_size == 8
    env = {"DISTILNB_PROFILE": "full", "DISTILNB_MODEL": "/models/mine", "DISTILNB_EPOCHS": "1.5",
           "DISTILNB_CLASS_WEIGHTS": "true", "DISTILNB_MAX_TRAIN_EXAMPLES": "none", "DISTILNB_SEED": "7"}
    cfg = Config.from_env(profile="smoke", environ=env, batch_size=8, max_train_examples=100)
    assert (cfg.profile, cfg.model, cfg.epochs, cfg.class_weights, cfg.seed) == ("full", "/models/mine", 1.5, True, 7)
    assert cfg.max_train_examples is None and cfg.batch_size == 8 and cfg.dataset == "dair-ai/emotion"


def test_bad_profile_parameter_and_environment_values_are_named():
    with pytest.raises(ValueError, match="Unknown profile 'tiny'"):
        Config.from_env(profile="tiny", environ={})
    with pytest.raises(TypeError, match="no parameter 'max_len'"):
        Config.from_env(environ={}, max_len=3)
    with pytest.raises(ValueError, match="boolean"):
        Config.from_env(environ={"DISTILNB_CLASS_WEIGHTS": "maybe"})


def test_paths_follow_the_run_layout(tmp_path):
    cfg = Config.from_env(profile="smoke", environ={}, output_root=str(tmp_path), run_name="exp1")
    paths = cfg.paths
    assert paths.root == tmp_path / "exp1"
    assert (paths.data, paths.model, paths.metrics) == (tmp_path / "exp1/data", tmp_path / "exp1/model", tmp_path / "exp1/metrics.json")
    assert Config.from_env(profile="smoke", environ={}, output_root=str(tmp_path)).paths.root == tmp_path / "smoke"


def test_project_root_is_found_from_a_subfolder(tmp_path):
    here = Path(__file__).resolve().parent
    assert project_root(here) == here.parent
    assert project_root(tmp_path) == tmp_path.resolve()


def test_seed_everything_repeats_python_numpy_and_torch():
    seed_everything(3)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_everything(3)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first
    seed_everything(4)
    assert random.random() != first[0]


def test_offline_errors_become_one_sentence_and_others_pass_through():
    def offline():
        raise OSError("We couldn't connect to 'https://huggingface.co' to load the files")

    with pytest.raises(HubUnreachableError) as caught:
        from_hub("the model 'x'", offline)
    message = str(caught.value)
    assert message.count(". ") == 0 and "DISTILNB_PROFILE=smoke" in message and caught.value.__suppress_context__
    with pytest.raises(ZeroDivisionError):
        from_hub("x", lambda: 1 / 0)


def test_saved_config_round_trips(tmp_path):
    cfg = Config.from_env(profile="smoke", environ={}, seed=5)
    import json

    assert Config(**json.loads(cfg.save(tmp_path / "c.json").read_text())) == cfg
