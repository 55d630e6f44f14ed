import dataclasses
import json
from pathlib import Path

import pytest

from distilnb.config import PROFILES, Config, field_types, parse_value, project_root, resolve_path
from distilnb.errors import DistilnbError, HubUnreachableError, SettingError, from_hub, hub_errors, is_offline_error


def test_with_nothing_set_the_profile_is_offline_with_the_pretrained_minilm():
    cfg = Config.from_env(environ={})
    assert (cfg.profile, cfg.model, cfg.max_length, cfg.batch_size, cfg.epochs) == ("offline", "minilm", 64, 16, None)
    assert Path(cfg.resolved_model, "model.safetensors").is_file() and cfg.dataset.endswith("support_tickets.csv")


def test_a_typed_parameter_beats_its_variable_which_beats_the_profile():
    # One rule for notebook and command line: a typed value, then the DISTILNB_* variable, then the profile.
    env = {"DISTILNB_PROFILE": "full", "DISTILNB_MODEL": "/models/mine", "DISTILNB_EPOCHS": "1.5",
           "DISTILNB_CLASS_WEIGHTS": "true", "DISTILNB_MAX_TRAIN_EXAMPLES": "none", "DISTILNB_SEED": "7",
           "DISTILNB_BATCH_SIZE": "4"}
    cfg = Config.from_env(profile="smoke", environ=env, batch_size=8, max_train_examples=100, seed=None)
    assert (cfg.profile, cfg.batch_size, cfg.max_train_examples) == ("smoke", 8, 100)  # typed values win
    assert (cfg.model, cfg.epochs, cfg.class_weights, cfg.seed) == ("/models/mine", 1.5, True, 7)  # then variables
    assert cfg.max_length == PROFILES["smoke"]["max_length"]  # then the profile
    assert Config.from_env(environ=env).profile == "full"


def test_drop_duplicates_and_merge_label_variants_are_settings():
    cfg = Config.from_env(environ={"DISTILNB_DROP_DUPLICATES": "yes"}, merge_label_variants=True)
    assert cfg.drop_duplicates and cfg.merge_label_variants


@pytest.mark.parametrize("setting, value, message", [
    ("epochs", 0, "epochs = 0 must be more than 0"), ("epochs", -1.0, "epochs"),
    ("learning_rate", 0.0, "learning_rate"), ("batch_size", 0, "batch_size = 0 must be at least 1"),
    ("max_length", 4, "max_length = 4 must lie between 8 and 512"), ("max_length", 600, "max_length"),
    ("validation_size", 1.0, "validation_size"), ("test_size", 0.0, "test_size"), ("warmup", -0.1, "warmup"),
    ("seed", 1.5, "seed = 1.5 must be a int"), ("batch_size", True, "batch_size"),
    ("epochs", 1e9, r"^epochs = 1000000000.0 must be at most 1,000\.$"), ("epochs", 1000.5, "epochs"),
    ("batch_size", 100_000, "batch_size = 100000 must be at most 1,024"),
    ("learning_rate", 5.0, "learning_rate = 5.0 must be below 1"),
    ("warmup", 1.5, "warmup = 1.5 must be a share below 1 or a whole number of steps"),
    ("early_stopping_patience", 10**6, "early_stopping_patience = 1000000 must be at most 1,000"),
    ("seed", -1, "seed = -1 must lie between 0 and"),
])
def test_every_numeric_setting_is_checked_at_construction_naming_the_setting(setting, value, message):
    with pytest.raises(SettingError, match=message) as refused:
        Config.from_env(environ={}, **{setting: value})
    assert (refused.value.setting, refused.value.value) == (setting, value)  # what the command line names as a flag


@pytest.mark.parametrize("setting, value", [("epochs", 1000.0), ("batch_size", 1024), ("warmup", 0.99),
                                            ("warmup", 500.0), ("early_stopping_patience", 1000), ("seed", 0)])
def test_the_bounds_themselves_are_accepted(setting, value):
    assert getattr(Config.from_env(environ={}, **{setting: value}), setting) == value


def test_warmup_in_steps_must_end_before_the_run_does():
    cfg = Config.from_env(environ={}, warmup=500.0)
    cfg.check_steps(501)
    with pytest.raises(SettingError, match="warmup = 500.0 must be fewer steps than the run's 500 training steps") as e:
        cfg.check_steps(500)
    assert e.value.setting == "warmup"
    Config.from_env(environ={}, warmup=0.5).check_steps(1)  # a share always ends within the run


def test_sizes_that_leave_no_training_rows_are_refused():
    with pytest.raises(SettingError, match="^test_size = 0.5 leaves no training rows: it and validation_size must"):
        Config.from_env(environ={}, validation_size=0.5, test_size=0.5)


def test_variables_that_do_not_parse_are_named_with_their_value():
    with pytest.raises(SettingError, match="DISTILNB_EPOCHS='two' is not a number"):
        Config.from_env(environ={"DISTILNB_EPOCHS": "two"})
    with pytest.raises(SettingError, match="DISTILNB_BATCH_SIZE='8.5' is not a whole number"):
        Config.from_env(environ={"DISTILNB_BATCH_SIZE": "8.5"})
    with pytest.raises(SettingError, match="DISTILNB_CLASS_WEIGHTS='maybe' is not true or false"):
        Config.from_env(environ={"DISTILNB_CLASS_WEIGHTS": "maybe"})
    with pytest.raises(SettingError, match="DISTILNB_EPOCHS='-2': epochs = -2.0 must be more than 0"):
        Config.from_env(environ={"DISTILNB_EPOCHS": "-2"})


def test_bad_profile_and_unknown_parameter_are_named():
    with pytest.raises(SettingError, match="Unknown profile 'tiny'"):
        Config.from_env(profile="tiny", environ={})
    with pytest.raises(SettingError, match="no setting max_len"):
        Config.from_env(environ={}, max_len=3)
    assert issubclass(SettingError, DistilnbError) and issubclass(SettingError, ValueError)


def test_field_types_are_real_types_and_parse_value_follows_them():
    types = field_types()
    assert types["epochs"] == float | None and types["max_train_examples"] == int | None  # None: from the data
    assert types["class_weights"] == bool | None  # None: decided from the training labels
    assert parse_value("none", types["learning_rate"], "--learning-rate") is None
    assert parse_value("3", types["epochs"], "--epochs") == 3.0 and parse_value("none", types["epochs"], "x") is None
    assert parse_value("off", bool, "x") is False
    assert "extra" not in types


def test_replace_revalidates():
    cfg = Config.from_env(environ={})
    assert dataclasses.replace(cfg, seed=5).seed == 5
    with pytest.raises(SettingError):
        dataclasses.replace(cfg, batch_size=0)


def test_paths_follow_the_run_layout(tmp_path):
    cfg = Config.from_env(profile="smoke", environ={}, output_root=str(tmp_path), run_name="exp1")
    paths = cfg.paths
    assert paths.root == tmp_path / "exp1"
    assert (paths.data, paths.model, paths.metrics) == (tmp_path / "exp1/data", tmp_path / "exp1/model",
                                                        tmp_path / "exp1/metrics.json")
    assert Config.from_env(profile="smoke", environ={}, output_root=str(tmp_path)).paths.root == tmp_path / "smoke"


def test_a_path_in_the_run_is_shown_from_the_run_name_whatever_folder_holds_the_outputs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    outputs = tmp_path / "far" / "away"
    paths = Config.from_env(profile="smoke", environ={}, output_root=str(outputs), run_name="exp1").paths
    assert paths.shown(paths.model) == "exp1/model"
    assert str(tmp_path) not in paths.shown(paths.model)
    assert paths.shown(tmp_path / "mine" / "model") == "mine/model"


def test_project_root_is_found_from_a_subfolder_and_relative_paths_resolve_against_it(tmp_path, monkeypatch):
    here = Path(__file__).resolve().parent
    assert project_root(here) == here.parent
    assert project_root(tmp_path) == tmp_path.resolve()
    monkeypatch.chdir(here.parent / "notebooks")
    assert resolve_path("data/support_tickets.csv") == here.parent / "data" / "support_tickets.csv"


def test_saved_config_round_trips(tmp_path):
    cfg = Config.from_env(profile="smoke", environ={}, seed=5)
    assert Config(**json.loads(cfg.save(tmp_path / "c.json").read_text())) == cfg


def test_offline_errors_become_one_sentence_and_others_pass_through():
    from huggingface_hub.errors import LocalEntryNotFoundError

    def offline():
        raise OSError("could not load") from LocalEntryNotFoundError("not cached")

    with pytest.raises(HubUnreachableError) as caught:
        from_hub("the model 'x'", offline)
    message = str(caught.value)
    assert message.count(". ") == 0 and "DISTILNB_PROFILE=offline" in message and caught.value.__suppress_context__
    with pytest.raises(ZeroDivisionError), hub_errors("x"):
        _ = 1 / 0


def hub_client_errors() -> list[BaseException]:
    """Return the errors huggingface_hub and its HTTP client raise when the Hub cannot be reached."""
    from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled
    from huggingface_hub.utils import httpx

    request = httpx.Request("HEAD", "https://huggingface.co")
    return [LocalEntryNotFoundError("not cached"), OfflineModeIsEnabled("offline"),
            httpx.ConnectError("no route", request=request), httpx.ConnectTimeout("slow", request=request),
            httpx.ProxyError("the proxy refused", request=request),
            ConnectionError("Couldn't reach 'dair-ai/emotion' on the Hub (OfflineModeIsEnabled)")]  # datasets' own


def test_offline_errors_are_known_by_their_types_not_their_names():
    assert all(is_offline_error(error) for error in hub_client_errors())
    lookalike = type("LocalEntryNotFoundError", (Exception,), {})  # a name alone says nothing
    assert not is_offline_error(lookalike("not cached"))


def test_a_real_download_in_offline_mode_becomes_the_sentence(monkeypatch, tmp_path):
    from huggingface_hub import constants, hf_hub_download

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # what is_offline_mode() reads, as HF_HUB_OFFLINE=1 sets
    with pytest.raises(HubUnreachableError, match="Could not download the model 'nobody/nothing'"):
        from_hub("the model 'nobody/nothing'", lambda: hf_hub_download("nobody/nothing", "config.json",
                                                                        cache_dir=tmp_path))


def test_a_message_that_mentions_offline_is_not_taken_for_a_hub_outage():
    # An outage is known by the exception types in the chain, never by words such as "offline" in a message.
    local = KeyError("column 'offline_orders' is not in the data")
    assert not is_offline_error(local) and not is_offline_error(OSError("We couldn't connect to the local disk"))
    with pytest.raises(KeyError, match="offline_orders"), hub_errors("the model '/models/mine'"):
        raise local


@pytest.fixture
def hub_client(monkeypatch):
    """Install an HTTP client for huggingface_hub whose answers a test chooses: hub_client(handler); the requests it
    was sent are returned. The library's own client comes back afterwards."""
    import huggingface_hub
    from huggingface_hub import constants
    from huggingface_hub.utils import httpx
    from huggingface_hub.utils._http import default_client_factory

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # what is_offline_mode() reads
    sent: list = []

    def install(handler):
        def answer(request):
            sent.append(request)
            return handler(request)

        huggingface_hub.set_client_factory(lambda: httpx.Client(transport=httpx.MockTransport(answer)))
        return sent

    yield install
    huggingface_hub.set_client_factory(default_client_factory)


def test_the_hub_is_asked_through_its_own_client(hub_client):
    from huggingface_hub import constants
    from huggingface_hub.utils import httpx

    from distilnb import errors

    sent = hub_client(lambda request: httpx.Response(200))
    assert errors.hub_reachable()
    assert [str(request.url).rstrip("/") for request in sent] == [constants.ENDPOINT.rstrip("/")]
    hub_client(lambda request: httpx.Response(503))  # an answer, even an error, means the network is there
    assert errors.hub_reachable()


def test_a_block_that_needs_the_hub_fails_at_once_with_the_sentence_when_the_hub_does_not_answer(hub_client):
    from huggingface_hub.utils import httpx

    from distilnb import errors

    def refuse(request):
        raise httpx.ConnectError("Name or service not known", request=request)

    hub_client(refuse)
    ran = []
    with pytest.raises(HubUnreachableError, match="Could not download the dataset x"), \
            errors.hub_errors("the dataset x", needs_network=True):
        ran.append(True)
    assert ran == []  # the retrying download never starts
    with errors.hub_errors("the dataset x"):  # without the check, the block runs (a local folder needs no network)
        ran.append(True)
    assert ran == [True]


def test_offline_mode_needs_no_network_to_say_the_hub_is_unreachable(monkeypatch):
    from huggingface_hub import constants

    from distilnb import errors

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert not errors.hub_reachable()  # the session itself refuses (OfflineModeIsEnabled)
