"""The command line on files the tests write: train -> evaluate -> predict on the smoke profile's tiny model (1 epoch),
no scoring of seen rows, files as they come, one-sentence errors in the command line's words, and reports."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from distilnb import cli, data, runs
from distilnb.cli import options
from distilnb.cli.options import flag_words
from distilnb.errors import DistilnbError

COMMANDS = ("train", "evaluate", "predict", "download", "demo")
HEAVY = ("torch", "transformers", "datasets", "pandas", "sklearn", "matplotlib", "gradio")
DATA_STACK = ("datasets", "pandas", "sklearn")  # what reading and scoring data needs, and classifying texts does not
WORDS = {"delivery": ["parcel", "courier", "tracking", "package", "arrived", "shipping", "van", "doorstep"],
         "refund": ["refund", "money", "charged", "twice", "reimburse", "payment", "card", "back"],
         "login": ["password", "login", "account", "locked", "reset", "email", "code", "sign"]}


@dataclass
class Done:
    """A finished command: exit status and what it printed."""

    code: int
    out: str
    err: str


def run_cli(*args: str, log: Path | None = None, **environ: str) -> Done:
    """Return the outcome of `python -m distilnb ...` run in this process, its output captured (stderr into the file
    `log` when given, as a redirected log file would be; Done.err is then its text).

    In process, to import torch once for the whole file; the settings a command changes for its process (threads,
    progress bars, a logger level) are put back afterwards.
    """
    import datasets
    import transformers

    out, err = io.StringIO(), (log.open("w") if log else io.StringIO())
    threads, level = torch.get_num_threads(), logging.getLogger("transformers.training_args").level
    bars = datasets.is_progress_bar_enabled(), transformers.utils.logging.is_progress_bar_enabled()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        for name in [k for k in os.environ if k.startswith("DISTILNB_")]:
            patch.delenv(name)  # the caller's DISTILNB_* variables must not change what a test runs
        for name, value in environ.items():
            patch.setenv(name, value)
        try:
            code = cli.main(list(args))
        except SystemExit as exit_:  # argparse: --help and usage errors
            code = exit_.code
        finally:
            torch.set_num_threads(threads)
            logging.getLogger("transformers.training_args").setLevel(level)
            if bars[0]:
                datasets.enable_progress_bars()
            if bars[1]:
                transformers.utils.logging.enable_progress_bar()
    if log:
        err.close()
    return Done(code, out.getvalue(), log.read_text() if log else err.getvalue())


def json_lines(text: str) -> list[dict]:
    """Return the JSON objects of a JSON Lines text."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{\"index\"")]


def ticket_rows(n_per_class: int = 40, seed: int = 0) -> list[tuple[str, str]]:
    """Return distinct labelled support messages, a few words of each class's vocabulary per text."""
    rng, rows, seen = random.Random(seed), [], set()
    while len(rows) < n_per_class * len(WORDS):
        label = list(WORDS)[len(rows) % len(WORDS)]
        text = "my " + " ".join(rng.sample(WORDS[label], 4)) + f" please {rng.randint(0, 999)}"
        if text not in seen:
            seen.add(text)
            rows.append((text, label))
    return rows


def write_csv(path: Path, rows, header: bool = True, encoding: str = "utf-8") -> Path:
    """Write rows as a CSV file (with a text,label header line unless told not to) and return the path."""
    lines = (["text,label"] if header else []) + [f"{text},{label}" for text, label in rows]
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def folder_digest(folder: Path) -> str:
    """Return a hash of every file's name and bytes under a folder."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> Path:
    """The training file: 120 distinct messages, 3 classes."""
    return write_csv(tmp_path_factory.mktemp("data") / "tickets.csv", ticket_rows())


@pytest.fixture(scope="module")
def run_args(tmp_path_factory) -> list[str]:
    """Flags naming one smoke run in a fresh output folder."""
    return ["--profile", "smoke", "--output-root", str(tmp_path_factory.mktemp("cli-outputs"))]


THREADS_SEEN: list[int] = []  # torch.get_num_threads() at each training step of the `trained` run
TRAIN_THREADS = 2 if torch.get_num_threads() == 1 else 1  # --threads of the `trained` run: not the process's count


@pytest.fixture(scope="module")
def trained(run_args, data_file) -> tuple[Path, Done]:
    """The run folder and output of `distilnb train` on the test's file (1 epoch, --max-length auto, --threads other
    than the count this process runs on and OMP_NUM_THREADS says), torch's threads read by a Trainer callback at every
    step."""
    from transformers import TrainerCallback

    from distilnb import train

    class Threads(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            THREADS_SEEN.append(torch.get_num_threads())

    build = train.build_trainer
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train, "build_trainer", lambda *a, **k: build(*a, **k, callbacks=[Threads()]))
        done = run_cli("train", *run_args, "--dataset", str(data_file), "--epochs", "1", "--max-length", "auto",
                       "--threads", str(TRAIN_THREADS), OMP_NUM_THREADS=str(torch.get_num_threads()))
    assert done.code == 0, done.err[-3000:]
    return Path(run_args[-1]) / "smoke", done


# ---------------------------------------------------------------- parsing


USES = {  # flags each command must list, and flags it must not (they would do nothing there)
    "train": (["--epochs", "--warmup", "--model", "--threads", "--resume", "--keep-checkpoints", "--dataset"], []),
    "evaluate": (["--model-dir", "--skip-seen", "--chunk", "--test-file", "--max-length", "--threads"],
                 ["--epochs", "--warmup", "--learning-rate", "--save-steps", "--model ", "--class-weights"]),
    "predict": (["--model-dir", "--chunk", "--output", "--text-column", "--threads"],
                ["--epochs", "--warmup", "--dataset", "--seed", "--model ", "--label-column"]),
    "download": (["--model", "--dataset", "--published"], ["--epochs", "--warmup", "--threads", "--max-length"]),
    "demo": (["--model-dir", "--host", "--port", "--run-name"], ["--epochs", "--model ", "--dataset"]),
}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_lists_the_flags_it_uses_and_no_other(command):
    done = run_cli(command, "--help")
    assert done.code == 0 and f"usage: distilnb {command}" in done.out
    listed, absent = USES[command]
    text = " ".join(done.out.split()) + " "
    assert [flag for flag in listed if flag not in text] == []
    assert [flag for flag in absent if flag in text] == []


def test_train_help_states_each_settings_default_as_the_config_applies_it():
    from distilnb.config import PROFILES, Config

    parser = next(action for action in cli.build_parser()._actions if action.dest == "command").choices["train"]
    helps = {action.dest: " ".join((action.help or "").split()) for action in parser._actions}
    built = {profile: Config.from_env(profile=profile, environ={}) for profile in PROFILES}
    for name in options.CONFIG_FIELDS:
        set_by = [profile for profile in PROFILES if name in PROFILES[profile]] or ["default"]
        said = [f"{profile}: {getattr(built.get(profile, built['offline']), name)}" for profile in set_by]
        if name in options.UNSET_HELP:  # left unset (None), the run decides: the help says how
            said = [" ".join(options.UNSET_HELP[name].replace("%", "%%").split())]  # as argparse stores it
        assert [words for words in said if words not in helps[name]] == [], name
    assert "OMP_NUM_THREADS" in helps["threads"]  # torch's default, which the threads tests check is kept


def test_train_help_says_a_warmup_below_1_is_a_share_and_from_1_a_number_of_steps():
    parser = next(action for action in cli.build_parser()._actions if action.dest == "command").choices["train"]
    said = next(" ".join(action.help.split()) for action in parser._actions if action.dest == "warmup")
    assert said.startswith("the learning rate's warm-up: below 1 a share of the training steps (0.1), from 1 a number "
                           "of steps (200);"), said


def test_the_parser_imports_nothing_heavy_and_argument_errors_come_before_heavy_imports():
    check = ("import sys\nfrom distilnb import cli\ncli.build_parser()\n"
             "for argv in (['train', '--epohcs', '1'], ['train', '--threads', '0']):\n"
             "    try:\n        cli.main(argv)\n    except SystemExit as exit_:\n        assert exit_.code == 2\n"
             "assert cli.main(['train', '--epochs', '0']) == 1\n"
             f"print(sorted(set({HEAVY!r}) & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if not k.startswith("DISTILNB_")})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
    assert "--threads: '0' is not a number of threads: give 1 or more" in done.stderr
    assert "distilnb train: --epochs 0 must be more than 0." in done.stderr


def test_importing_distilnb_changes_no_environment_variable():
    check = "import os\nbefore = dict(os.environ)\nimport distilnb\nprint(dict(os.environ) == before)"
    env = {k: v for k, v in os.environ.items() if k != "TOKENIZERS_PARALLELISM"}
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=60, env=env)
    assert done.stdout.strip() == "True", done.stderr[-2000:]


def test_the_parser_spells_the_readers_formats():
    from distilnb.readers import FORMATS

    assert options.FORMATS == FORMATS


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_evaluate_and_predict_help_give_the_trained_length_not_a_profile_default(command):
    text = " ".join(run_cli(command, "--help").out.split())
    max_length_help = text.split("--max-length MAX_LENGTH")[-1].split("--")[0]
    assert "as the model was trained" in max_length_help and "smoke: 64" not in max_length_help


def test_max_length_auto_is_offered_by_exactly_the_commands_that_accept_it():
    commands = next(action for action in cli.build_parser()._actions if action.dest == "command").choices
    offered, accepted = set(), set()
    for name, parser in commands.items():
        flag = next((action for action in parser._actions if action.dest == "max_length"), None)
        if flag is None:
            continue
        if "'auto'" in (flag.help or ""):
            offered.add(name)
        try:
            flag.type("auto")
            accepted.add(name)
        except ValueError:
            pass
    assert offered == accepted == {"train"}


def test_flags_beat_environment_variables_which_beat_the_profile():
    args = cli.build_parser().parse_args(["train", "--profile", "smoke", "--epochs", "2", "--no-class-weights",
                                          "--max-train-examples", "none"])
    environ = {"DISTILNB_PROFILE": "full", "DISTILNB_EPOCHS": "9", "DISTILNB_CLASS_WEIGHTS": "true",
               "DISTILNB_MAX_TRAIN_EXAMPLES": "50", "DISTILNB_SEED": "7"}
    cfg = options.build_config(args, environ)
    chosen = (cfg.profile, cfg.epochs, cfg.class_weights, cfg.max_train_examples, cfg.seed)
    assert chosen == ("smoke", 2.0, False, None, 7)  # a flag's "none" is None; unflagged variables still apply


def test_a_bad_flag_value_is_a_usage_error():
    done = run_cli("train", "--epochs", "many")
    assert done.code == 2 and "argument --epochs: invalid float value: 'many'" in done.err


@pytest.mark.parametrize(("args", "environ", "message"), [
    (["--epochs", "0"], {}, "distilnb train: --epochs 0 must be more than 0."),
    (["--batch-size", "0"], {}, "distilnb train: --batch-size 0 must be at least 1."),
    ([], {"DISTILNB_EPOCHS": "two"}, "distilnb train: DISTILNB_EPOCHS='two' is not a number."),
    ([], {"DISTILNB_TEST_SIZE": "1.5"}, "distilnb train: DISTILNB_TEST_SIZE=1.5 must lie strictly between 0 and 1."),
    (["--validation-size", "0.5", "--test-size", "0.5"], {},
     "distilnb train: --test-size 0.5 leaves no training rows: it and --validation-size must sum to less than 1."),
])
def test_a_setting_that_cannot_work_is_refused_naming_the_flag_or_variable(tmp_path, args, environ, message):
    done = run_cli("train", "--profile", "smoke", "--output-root", str(tmp_path), *args, **environ)
    assert (done.code, done.err.strip()) == (1, message)
    assert not (tmp_path / "smoke").exists()  # refused before anything was written


def test_the_notebook_reads_the_same_setting_error_in_its_own_words():
    from distilnb.config import Config
    from distilnb.errors import SettingError

    with pytest.raises(SettingError) as error:
        Config.from_env(profile="smoke", environ={}, epochs=0)
    assert str(error.value) == "epochs = 0 must be more than 0."
    assert options.in_flag_words(error.value) == "--epochs 0 must be more than 0."


def test_epochs_beyond_the_upper_bound_are_refused_naming_the_flag(tmp_path):
    done = run_cli("train", "--profile", "smoke", "--output-root", str(tmp_path), "--epochs", "1e9")
    assert done.code == 1 and done.err.startswith("distilnb train: --epochs 1e+09 ") and len(done.err.splitlines()) == 1
    assert not (tmp_path / "smoke").exists()


def test_a_user_error_is_one_line_and_a_bug_keeps_its_traceback(monkeypatch):
    def user_error(args):
        raise DistilnbError("The file has no rows: add some.")

    def bug(args):
        return {}["validation"]

    monkeypatch.setattr(cli.predict, "run", user_error)
    assert run_cli("predict", "x").err == "distilnb predict: The file has no rows: add some.\n"
    monkeypatch.setattr(cli.predict, "run", bug)
    with pytest.raises(KeyError, match="validation"):
        cli.main(["predict", "x"])


def test_train_writes_the_model_and_prints_the_baselines_beside_its_scores(trained):
    run, done = trained
    assert (run / "model" / "model.safetensors").is_file() and (run / "model" / "training_rows.json").is_file()
    scores = json.loads((run / "metrics.json").read_text())["validation"]
    table = done.out.split("beside the baselines:\n")[1]
    for row in ("majority class", "TF-IDF + logistic regression", "fine-tuned"):
        assert f"{scores[row]['accuracy']:.3f}" in table.split(row)[1].splitlines()[0]
    # Three balanced classes with their own words: the majority class gets a third right, TF-IDF nearly all.
    assert scores["TF-IDF + logistic regression"]["accuracy"] > scores["majority class"]["accuracy"] + 0.3


def test_train_trains_on_the_threads_given(trained):
    assert THREADS_SEEN and set(THREADS_SEEN) == {TRAIN_THREADS}  # not the process's own count, nor a later default


MACHINE = ("import sys, torch\nfrom distilnb import cli\nfrom distilnb.cli import options\n"
           "before = torch.get_num_threads()\noptions.prepare_machine(cli.build_parser().parse_args(sys.argv[1:]))\n"
           "print(before, torch.get_num_threads())")


@pytest.mark.parametrize(("omp", "flags", "expected"), [("1", ["--threads", "2"], 2), ("2", ["--threads", "1"], 1),
                                                        ("2", [], 2), (None, [], "torch's own")])
def test_threads_are_the_flag_else_torchs_own_default_whatever_omp_num_threads_says(omp, flags, expected):
    environ = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS" and not k.startswith("DISTILNB_")}
    done = subprocess.run([sys.executable, "-c", MACHINE, "predict", "x", *flags], capture_output=True, text=True,
                          timeout=120, env=environ | ({"OMP_NUM_THREADS": omp} if omp else {}))
    assert done.returncode == 0, done.stderr[-2000:]
    before, after = map(int, done.stdout.split())
    assert after == (before if expected == "torch's own" else expected)  # never a guess from the load average


def test_a_finished_train_removes_its_checkpoints_and_leaves_the_lock_free(trained):
    run, _ = trained
    assert (run / "model" / "model.safetensors").is_file() and not (run / "checkpoints").exists()
    with runs.run_lock(run):  # released: taken again at once
        pass


def test_train_warns_exactly_when_the_model_loses_to_a_baseline(trained):
    run, done = trained
    validation = json.loads((run / "metrics.json").read_text())["validation"]
    scores = {name: row["f1_macro"] for name, row in validation.items()}
    lost = scores["fine-tuned"] <= scores["majority class"] or \
        scores["fine-tuned"] < scores["TF-IDF + logistic regression"]
    assert ("Likely causes" in done.err) is lost
    if lost:
        assert "too few epochs (1)" in done.err


def test_a_second_train_into_a_folder_in_use_stops_naming_the_folder_and_the_process(tmp_path, data_file):
    from filelock import FileLock

    folder = tmp_path / "smoke"
    folder.mkdir()
    with FileLock(folder / ".lock"):  # as a running train holds it
        (folder / ".lock").write_text(str(os.getpid()))
        done = run_cli("train", "--profile", "smoke", "--output-root", str(tmp_path), "--dataset", str(data_file),
                       "--epochs", "1")
    assert done.code == 1 and not (folder / "model").exists()
    last = done.err.strip().splitlines()[-1]
    assert last == (f"distilnb train: The run folder {folder} is in use by process {os.getpid()}: wait for it to "
                    "finish, or choose another run name or output root.")


def test_train_reports_long_texts_and_max_length_auto_picks_the_99th_percentile(trained, data_file):
    from distilnb import models, tokens
    from distilnb.config import Config

    run, done = trained
    splits = runs.saved_splits(run / "data")[0]
    tokenizer = models.load_tokenizer(Config.from_env(profile="smoke", environ={}).resolved_model)
    expected = max(8, tokens.suggest_max_length(tokens.token_lengths(list(splits["train"]["text"]), tokenizer)))
    assert json.loads((run / "model" / "distilnb_config.json").read_text())["max_length"] == expected
    assert f"Chose max_length {expected}: the 99th percentile" in done.err and "longer than max_length" in done.err


def test_progress_bars_are_off_when_the_output_is_not_a_terminal(trained):
    _, done = trained
    assert "\r" not in done.err and "it/s]" not in done.err
    assert "'loss'" in done.err  # the Trainer's one line per log instead of a bar, on stderr with the notes
    assert "'loss'" not in done.out and done.out.startswith("Model saved to")  # stdout: the result only


# ---------------------------------------------------------------- evaluate: never rows the model saw


def test_evaluate_needs_no_data_flags_and_scores_only_unseen_rows(trained, run_args):
    run, _ = trained
    before = folder_digest(run / "data")
    done = run_cli("evaluate", *run_args)  # the smoke profile's dataset is another file: the model's record wins
    assert done.code == 0, done.err[-3000:]
    scores = json.loads((run / "model" / "eval_test.json").read_text())
    splits = runs.saved_splits(run / "data")[0]
    assert scores["examples"] == len(splits["test"]) and "the run's saved splits" in done.err
    assert runs.training_overlap(run / "model", splits["test"]["text"]) == {"train": 0, "validation": 0}
    assert folder_digest(run / "data") == before


def test_evaluate_refuses_a_reordered_copy_or_another_seed_naming_the_overlap(trained, run_args, data_file, tmp_path):
    from distilnb import data
    from distilnb.config import Config

    run, _ = trained
    rows = ticket_rows()
    copy = write_csv(tmp_path / "reordered.csv", rows[::-1])
    saved = runs.saved_splits(run / "data")[0]
    seen = {data.normalise_text(t) for split in ("train", "validation") for t in saved[split]["text"]}
    before = folder_digest(run)
    for flags, settings in ((["--dataset", str(copy)], {"dataset": str(copy)}), (["--seed", "7"], {"seed": 7})):
        done = run_cli("evaluate", *run_args, *flags)
        assert done.code == 1 and "Traceback" not in done.err, done.err[-2000:]
        cfg = Config.from_env(profile="smoke", environ={}, **{"dataset": str(data_file), **settings})
        test = data.load_splits(cfg)[0]["test"]["text"]
        expected = sum(data.normalise_text(text) in seen for text in test)
        assert expected > 0
        assert done.err.strip().splitlines()[-1] == (
            f"distilnb evaluate: {expected} of the {len(test)} rows to score were seen in fine-tuning, so their scores "
            "would flatter the model. Set --skip-seen to score only the rows it never saw, or score the run's own "
            "split (the data settings the model was trained with).")
    assert folder_digest(run) == before  # neither data/ nor eval_test.json nor metrics.json was touched


def test_evaluate_a_wrong_dataset_is_refused_before_anything_is_written(trained, run_args, tmp_path):
    run, _ = trained
    before = folder_digest(run)
    done = run_cli("evaluate", *run_args, "--dataset", str(tmp_path / "nope.csv"))
    assert done.code == 1 and done.err.startswith("distilnb evaluate: No file at") and len(done.err.splitlines()) == 1
    assert folder_digest(run) == before


def test_evaluate_a_test_file_of_unseen_rows_prints_accuracy_and_writes_figures(trained, run_args, tmp_path):
    run, _ = trained
    unseen = write_csv(tmp_path / "new.csv", ticket_rows(n_per_class=5, seed=99))
    done = run_cli("evaluate", *run_args, "--test-file", str(unseen))
    assert done.code == 0, done.err[-3000:]
    scores = json.loads((run / "model" / "eval_file_new.json").read_text())
    accuracy_row = next(line for line in done.out.splitlines() if line.startswith("accuracy"))
    assert accuracy_row.split() == ["accuracy", f"{scores['accuracy']:.3f}", "15"]
    numbers = [word for line in done.out.splitlines()[1:] for word in line.split() if "." in word]
    assert numbers and all(len(word.split(".")[1]) == 3 for word in numbers)  # one number of decimals throughout
    assert (run / "figures" / "confusion_matrix_file_new.png").stat().st_size > 1000
    assert (run / "figures" / "per_class_file_new.png").stat().st_size > 1000


def test_evaluate_skips_seen_rows_only_when_asked_and_says_how_many(trained, run_args, tmp_path):
    run, _ = trained
    saved = runs.saved_splits(run / "data")[0]
    names = saved["train"].features["label"].names
    seen = [(saved["train"][i]["text"], names[saved["train"][i]["label"]]) for i in range(4)]
    unseen = [(f"brand new {text}", label) for text, label in ticket_rows(n_per_class=3, seed=5)]
    file = write_csv(tmp_path / "official.csv", seen + unseen)
    refused = run_cli("evaluate", *run_args, "--test-file", str(file))
    assert refused.code == 1 and "--skip-seen" in refused.err and f"4 of the {len(seen + unseen)} rows" in refused.err
    done = run_cli("evaluate", *run_args, "--test-file", str(file), "--skip-seen")
    assert done.code == 0, done.err[-3000:]
    assert f"Skipped 4 of the {len(seen + unseen)} rows" in done.err
    assert json.loads((run / "model" / "eval_file_official.json").read_text())["examples"] == len(unseen)


def test_evaluate_saves_and_prints_the_baselines_beside_the_model(trained, run_args):
    run, _ = trained
    done = run_cli("evaluate", *run_args)
    assert done.code == 0, done.err[-3000:]
    test = json.loads((run / "metrics.json").read_text())["test"]
    assert {"majority class", "TF-IDF + logistic regression", "fine-tuned"} <= set(test)
    splits = runs.saved_splits(run / "data")[0]
    train_labels = list(splits["train"]["label"])
    commonest = max(set(train_labels), key=train_labels.count)
    share = list(splits["test"]["label"]).count(commonest) / len(splits["test"])
    assert test["majority class"]["accuracy"] == pytest.approx(share)
    table = done.out.split("Beside the baselines (test):")[1]
    assert f"{test['TF-IDF + logistic regression']['accuracy']:.3f}" in table.split("TF-IDF")[1].splitlines()[0]


def test_evaluate_and_predict_with_a_model_dir_write_into_that_models_run(trained, tmp_path):
    run, _ = trained
    elsewhere = tmp_path / "elsewhere"
    done = run_cli("evaluate", "--profile", "smoke", "--model-dir", str(run / "model"),
                   DISTILNB_OUTPUT_ROOT=str(elsewhere))
    assert done.code == 0, done.err[-3000:]
    assert "test" in json.loads((run / "metrics.json").read_text()) and not elsewhere.exists()
    named = run_cli("evaluate", "--model-dir", str(run / "model"), "--output-root", str(elsewhere), "--run-name", "x")
    assert named.code == 0 and (elsewhere / "x" / "metrics.json").is_file()


def test_predict_creates_the_folder_of_its_output(trained, run_args, tmp_path):
    output = tmp_path / "missing" / "dir" / "p.csv"
    done = run_cli("predict", *run_args, "my parcel is late", "--output", str(output))
    assert done.code == 0, done.err[-3000:]
    assert output.read_text().splitlines()[0].startswith("index,label,score")


def test_predict_and_evaluate_chunk_agree_and_show_progress_lines_not_bars(trained, run_args, tmp_path):
    long_text = " ".join(f"my parcel never arrived courier tracking {i}" for i in range(4000))  # ~1,000 windows
    rows = [(long_text, "delivery"), ("my card was charged twice refund", "refund")]
    file = write_csv(tmp_path / "long.csv", rows)
    predicted = run_cli("predict", *run_args, "--file", str(file), "--chunk", log=tmp_path / "stderr.log")
    assert predicted.code == 0, predicted.err[-3000:]
    assert "Scored " in predicted.err and "%|" not in predicted.err  # progress as plain lines in a log file
    labels = [row["label"] for row in json_lines(predicted.out)]
    evaluated = run_cli("evaluate", *run_args, "--test-file", str(file), "--chunk", "--skip-seen")
    assert evaluated.code == 0, evaluated.err[-3000:]
    accuracy = json.loads((trained[0] / "model" / "eval_file_long.json").read_text())["accuracy"]
    assert accuracy == sum(label == want for label, (_, want) in zip(labels, rows, strict=True)) / len(rows)


def test_evaluate_writes_no_progress_bar_into_a_log_file(trained, run_args, tmp_path):
    file = write_csv(tmp_path / "many.csv", [(f"new {t}", label) for t, label in ticket_rows(n_per_class=400, seed=3)])
    done = run_cli("evaluate", *run_args, "--test-file", str(file), "--skip-seen", log=tmp_path / "stderr.log")
    assert done.code == 0, done.err[-3000:]
    assert done.err.count("%|") == 0 and f"scored 1,200 of the 1,200 rows of {file}" in done.err


# ---------------------------------------------------------------- predict


def test_predict_gives_one_output_per_input_line_with_its_index(trained, run_args, tmp_path):
    file = tmp_path / "texts.txt"
    file.write_text("my card was charged twice\n\n   \nthe login code never came\r\nlast line without end", "utf-8")
    done = run_cli("predict", *run_args, "--file", str(file), "--top-k", "2", "--echo")
    assert done.code == 0, done.err[-3000:]
    rows = json_lines(done.out)
    assert [row["index"] for row in rows] == [0, 1, 2, 3, 4]
    assert [row["text"] for row in rows] == ["my card was charged twice", "", "   ", "the login code never came",
                                             "last line without end"]
    assert [("error" in row) for row in rows] == [False, True, True, False, False]
    labels = json.loads((trained[0] / "model" / "config.json").read_text())["id2label"].values()
    for row in (rows[0], rows[3], rows[4]):
        assert row["label"] in labels and len(row["scores"]) == 2 and row["score"] == max(row["scores"].values())


def test_predict_of_texts_from_arguments_lines_or_standard_input_loads_no_data_stack_and_notes_nothing(
        trained, run_args, tmp_path):
    # Start-up: predict needs torch and the model classes, never pandas, scikit-learn or datasets (seconds each).
    lines = tmp_path / "lines.txt"
    lines.write_text("my parcel is late\n", "utf-8")
    check = ("import sys\nfrom distilnb import cli\n"
             f"codes = [cli.main(['predict', *{run_args!r}, *given]) for given in "
             f"(['where is my parcel'], ['--file', {str(lines)!r}], [])]\n"
             f"print(codes, sorted(set({DATA_STACK!r}) & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=300,
                          input="my card was charged twice\n",
                          env={k: v for k, v in os.environ.items() if not k.startswith("DISTILNB_")})
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(json_lines(done.stdout)) == 3  # the measure saw each command do its work
    assert done.stdout.strip().splitlines()[-1] == "[0, 0, 0] []"
    assert done.stderr == ""  # nothing to note: no transformers warning listing every layer "not sharded"


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_predict_a_table_keeps_its_id_column_and_writes_every_class_score(trained, run_args, tmp_path, kind):
    records = [{"ticket": "A-1", "body": "my parcel is late"}, {"ticket": "A-2", "body": ""},
               {"ticket": "A-3", "body": "reset my password"}]
    file = tmp_path / f"in.{kind}"
    if kind == "csv":
        file.write_text("ticket,body\nA-1,my parcel is late\nA-2,\nA-3,reset my password\n")
    else:
        file.write_text("".join(json.dumps(r) + "\n" for r in records))
    output = tmp_path / f"out.{'jsonl' if kind == 'csv' else 'csv'}"
    done = run_cli("predict", *run_args, "--file", str(file), "--text-column", "body", "--id-column", "ticket",
                   "--output", str(output))
    assert done.code == 0, done.err[-3000:]
    import pandas as pd

    written = (pd.read_csv(output) if output.suffix == ".csv" else pd.read_json(output, lines=True))
    assert written["index"].tolist() == [0, 1, 2] and written["id"].tolist() == ["A-1", "A-2", "A-3"]
    assert written["error"].notna().tolist() == [False, True, False]
    names = json.loads((trained[0] / "model" / "config.json").read_text())["id2label"].values()
    if output.suffix == ".csv":
        assert [f"score_{name}" in written.columns for name in names] == [True] * len(names)
    else:
        assert set(written["scores"][0]) == set(names)


def test_predict_warns_about_truncation_and_honours_distilnb_max_length_below_the_flag(trained, run_args):
    long_text = " ".join(["my parcel never arrived and the courier says it was delivered"] * 12)
    trained_length = json.loads((trained[0] / "model" / "distilnb_config.json").read_text())["max_length"]
    variable, flag = str(trained_length + 8), str(trained_length + 16)
    default = run_cli("predict", *run_args, long_text)
    assert f"longer than {trained_length} tokens" in default.err and "--chunk" in default.err
    from_variable = run_cli("predict", *run_args, long_text, DISTILNB_MAX_LENGTH=variable)
    assert f"longer than {variable} tokens" in from_variable.err
    flagged = run_cli("predict", *run_args, long_text, "--max-length", flag, DISTILNB_MAX_LENGTH=variable)
    assert f"longer than {flag} tokens" in flagged.err
    assert "longer than" not in run_cli("predict", *run_args, long_text, "--chunk").err


def test_predict_refuses_a_base_model_whose_head_was_never_trained(run_args):
    from distilnb.local_models import tiny_model_dir

    done = run_cli("predict", *run_args, "--model-dir", str(tiny_model_dir()), "hello")
    assert done.code == 1 and "generic labels (LABEL_0, LABEL_1) and no fine-tuning record" in done.err


@pytest.mark.parametrize("where", ["file", "stdin"])
def test_a_latin1_input_to_predict_is_one_sentence_naming_the_byte(trained, run_args, tmp_path, monkeypatch, where):
    data = "caf\xe9 order late\n\nrefund me\n".encode("latin-1")
    if where == "file":
        (tmp_path / "t.txt").write_bytes(data)
        done = run_cli("predict", *run_args, "--file", str(tmp_path / "t.txt"))
    else:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
        done = run_cli("predict", *run_args)
    assert done.code == 1 and len(done.err.splitlines()) == 1
    assert "byte 0xe9 at line 1, column 4" in done.err and "latin-1" in done.err
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    read = json_lines(run_cli("predict", *run_args, "--encoding", "latin-1", "--echo").out)
    assert [(row["index"], row["text"], "error" in row) for row in read] == [
        (0, "café order late", False), (1, "", True), (2, "refund me", False)]


# ---------------------------------------------------------------- files as they come, one sentence each


@pytest.mark.parametrize(("setup", "message"), [
    (lambda d: ["--dataset", str(write_csv(d / "h.csv", []))], "h.csv has only a header line (text, label)"),
    (lambda d: ["--model", str(d / "no-such-model")], "--model {d}/no-such-model names no folder"),
    (lambda d: ["--model", "not a/valid/hub id"], "--model not a/valid/hub id names no folder"),
    (lambda d: ["--dataset", str(write_csv(d / "t.csv", ticket_rows(3))), "--text-column", "body"],
     "The text column 'body' is not in"),
])
def test_train_problems_are_one_sentence(tmp_path, setup, message):
    done = run_cli("train", "--profile", "smoke", "--output-root", str(tmp_path), *setup(tmp_path))
    assert done.code == 1 and "Traceback" not in done.err and len(done.err.splitlines()) == 1, done.err[-2000:]
    assert message.format(d=tmp_path) in done.err


def test_an_undecodable_training_file_is_one_sentence_naming_the_encoding_flags(tmp_path):
    file = write_csv(tmp_path / "t.csv", [("café order late", "delivery"), *ticket_rows(3)], encoding="latin-1")
    done = run_cli("train", "--profile", "smoke", "--output-root", str(tmp_path), "--dataset", str(file))
    assert done.code == 1 and "Traceback" not in done.err and len(done.err.splitlines()) == 1, done.err[-2000:]
    assert "byte 0xe9 at line 2, column 4" in done.err
    assert "give its real encoding (--encoding latin-1, cp1252, ...), or set --encoding-errors replace" in done.err
    assert "encoding setting" not in done.err and "encoding=" not in done.err


def test_the_command_line_prints_the_librarys_message_as_it_is(tmp_path):
    from distilnb import data
    from distilnb.config import Config

    file = write_csv(tmp_path / "t.csv", ticket_rows(3))
    done = run_cli("train", "--profile", "smoke", "--output-root", str(tmp_path), "--dataset", str(file),
                   "--text-column", "body")
    cfg = Config.from_env(profile="smoke", environ={}, dataset=str(file), text_column="body")
    with pytest.raises(DistilnbError) as notebook:
        data.load_splits(cfg)
    assert done.err == f"distilnb train: {' '.join(notebook.value.args[0].split())}\n"  # no rewording


def spelled_variously(rows: list[tuple[str, str]], label: str, spellings: list[str]) -> list[tuple[str, str]]:
    """Return rows with one class's label written in turn in each of several spellings."""
    turn = iter(range(len(rows)))
    return [(text, spellings[next(turn) % len(spellings)] if was == label else was) for text, was in rows]


def test_split_files_in_latin1_without_header_train_with_label_variants_merged_when_asked(tmp_path):
    rows = spelled_variously(ticket_rows(12), "refund", ["Refund ", " REFUND", "refund"])
    rows[0] = ("café " + rows[0][0], rows[0][1])
    parts = {split: [row for n, row in enumerate(rows) if n // 3 % 3 == i]  # every class in every file
             for i, split in enumerate(("train", "validation", "test"))}
    files = {split: write_csv(tmp_path / f"{split}.data", part, header=False, encoding="latin-1")
             for split, part in parts.items()}
    flags = ["--train-file", str(files["train"]), "--validation-file", str(files["validation"]), "--test-file",
             str(files["test"]), "--no-header", "--format", "csv", "--encoding", "latin-1", "--epochs", "1"]
    done = run_cli("train", "--profile", "smoke", "--output-root", str(tmp_path / "b"), *flags,
                   "--merge-label-variants")
    assert done.code == 0, done.err[-3000:]
    assert "merged labels that differ only by case" in done.err
    names = json.loads((tmp_path / "b" / "smoke" / "model" / "config.json").read_text())["id2label"].values()
    assert len(names) == 3 and sum(name.strip().lower() == "refund" for name in names) == 1
    report = json.loads((tmp_path / "b" / "smoke" / "data" / "load_report.json").read_text())
    assert report["split_sizes"] == {split: len(part) for split, part in parts.items()}
    assert sum("no header line" in note for note in report["notes"]) == 3  # what reading noticed, per file
    assert "café" in runs.saved_splits(tmp_path / "b" / "smoke" / "data")[0]["train"]["text"][0]
    # The run's own --test-file rows, split again in memory: evaluate reads them as training did, with no flags.
    again = run_cli("evaluate", "--profile", "smoke", "--output-root", str(tmp_path / "b"), "--seed", "7")
    assert again.code == 0 and "split again in memory (seed 7)" in again.err, again.err[-2000:]


@pytest.mark.parametrize("command", ["train", "tune"])
def test_train_and_tune_read_a_practitioners_split_files_by_the_same_rule(command, tmp_path):
    parser = cli.build_parser()
    args = parser.parse_args([command, "--train-file", "mine.csv", "--test-file", "held_out.csv"])
    cfg = options.config_with_files(args)
    assert cfg.dataset == "mine.csv" and options.read_options(args).split_files == {"test": "held_out.csv"}
    alone = parser.parse_args([command, "--test-file", "held_out.csv"])
    with pytest.raises(options.UsageError, match="go with --train-file"):
        options.config_with_files(alone)
    both = parser.parse_args([command, "--train-file", "mine.csv", "--dataset", "other.csv"])
    with pytest.raises(options.UsageError, match="either with --dataset or with --train-file"):
        options.config_with_files(both)


def test_label_variants_are_kept_apart_and_named_without_the_option(tmp_path):
    from distilnb.config import Config

    rows = spelled_variously(ticket_rows(12), "refund", ["Spam", "spam"])
    cfg = Config.from_env(profile="smoke", environ={}, dataset=str(write_csv(tmp_path / "t.csv", rows)))
    splits, report = data.load_splits(cfg)
    assert len(splits["train"].features["label"].names) == 4
    assert any("'Spam'" in line and "'spam'" in line and "--merge-label-variants" in line
               for line in report.console_lines(flag_words))  # what train prints
    assert any("merge_label_variants=True" in line for line in report.console_lines())  # what a notebook prints


# ---------------------------------------------------------------- long runs


def test_ctrl_c_says_what_was_saved_and_resume_finishes_with_at_most_two_checkpoints(tmp_path, data_file, monkeypatch):
    from transformers import Trainer

    step = Trainer.training_step
    calls = {"n": 0}

    def interrupted_step(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt
        return step(self, *args, **kwargs)

    flags = ["train", "--profile", "smoke", "--output-root", str(tmp_path), "--dataset", str(data_file),
             "--epochs", "2", "--save-steps", "3"]
    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "training_step", interrupted_step)
        done = run_cli(*flags)
    checkpoints = tmp_path / "smoke" / "checkpoints"
    saved = os.path.relpath(checkpoints / "checkpoint-6")
    assert done.code == 130 and f"Saved: {saved}" in done.err
    assert done.err.count(saved) == 1 and "resume=True" not in done.err  # one message
    interpreter = os.path.relpath(sys.executable)  # the one running, as a path relative to where the user stands
    assert f"{interpreter} -m distilnb train " + " ".join(flags[1:]) + " --resume" in done.err
    resumed = run_cli(*flags, "--resume")
    assert resumed.code == 0, resumed.err[-3000:]
    assert not checkpoints.exists() and (tmp_path / "smoke" / "model" / "config.json").is_file()


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_a_missing_model_folder_is_one_sentence(command, tmp_path):
    text = ["some text"] if command == "predict" else []
    done = run_cli(command, "--profile", "smoke", "--output-root", str(tmp_path), *text)
    assert done.code == 1 and done.out == "" and len(done.err.splitlines()) == 1
    assert done.err.startswith(f"distilnb {command}: No model folder at {tmp_path / 'smoke' / 'model'} yet")
    missing = run_cli(command, "--profile", "smoke", "--model-dir", str(tmp_path / "gone"), *text)
    assert missing.code == 1 and len(missing.err.splitlines()) == 1
    assert missing.err.startswith(f"distilnb {command}: --model-dir {tmp_path / 'gone'} names no folder")


def test_what_reading_replaced_or_detected_is_in_the_notes_train_prints(tmp_path):
    from distilnb.config import Config
    from distilnb.readers import ReadOptions

    rows = [("caf\xe9 " + text if i < 2 else text, label) for i, (text, label) in enumerate(ticket_rows(12))]
    file = write_csv(tmp_path / "tickets", rows, header=False, encoding="latin-1")
    cfg = Config.from_env(profile="smoke", environ={}, dataset=str(file))
    splits, report = data.load_splits(cfg, ReadOptions(encoding_errors="replace"))
    notes = report.notes
    assert sum(len(splits[split]) for split in splits) == len(rows)
    assert report.converted["all: undecodable characters replaced with U+FFFD"] == 2
    assert any("replaced 2 undecodable characters" in note for note in notes)
    assert any("no header line" in note for note in notes) and any("sniffed" in note for note in notes)
    assert len(notes) == len(set(notes))


def test_loading_a_pretrained_encoder_after_the_command_lines_set_up_prints_no_notice(capfd):
    import argparse

    from distilnb import models
    from distilnb.config import Config

    options.prepare_machine(argparse.Namespace(threads=None))
    models.load_classifier(Config.from_env(profile="offline", environ={}).resolved_model, ["a", "b"], multi_label=False)
    assert "were not sharded" not in capfd.readouterr().err  # the tensor-parallel notice: noise on one process
