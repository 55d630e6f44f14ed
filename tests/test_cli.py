"""The command line: help for every subcommand, flags over variables, and train -> evaluate -> predict on the smoke profile."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from distilnb import cli

COMMANDS = ("train", "evaluate", "predict", "download")


def cli_env(**extra: str) -> dict[str, str]:
    """Return an environment for the CLI: offline, one thread per process, no DISTILNB_* overrides of the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISTILNB_") or k == "DISTILNB_CACHE"}
    # One thread: on a busy 2-core machine, torch's thread hand-offs make the tiny model many times slower.
    return {**env, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", **extra}


def run_cli(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Return the finished `python -m distilnb ...` process, its output captured as text."""
    return subprocess.run([sys.executable, "-m", "distilnb", *args], input=stdin, capture_output=True, text=True,
                          env=env or cli_env(), timeout=300)


def json_lines(stdout: str) -> list[dict]:
    """Return the JSON objects of a JSON Lines text."""
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def run_args(tmp_path_factory) -> list[str]:
    """Flags naming one smoke run in a fresh output folder."""
    return ["--profile", "smoke", "--output-root", str(tmp_path_factory.mktemp("cli-outputs"))]


@pytest.fixture(scope="module")
def trained_run(run_args) -> Path:
    """The run folder after `distilnb train` (2 epochs: the test checks the artifacts, not the accuracy)."""
    done = run_cli("train", *run_args, "--epochs", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    run = Path(run_args[-1]) / "smoke"
    assert f"Model saved to {run / 'model'}" in done.stdout and "Validation: accuracy" in done.stdout
    return run


# ---------------------------------------------------------------- parsing, in process


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_has_help(command):
    done = run_cli(command, "--help")
    assert done.returncode == 0 and f"usage: distilnb {command}" in done.stdout
    flags = ["--profile", *("--" + f.name.replace("_", "-") for f in cli.CONFIG_FIELDS)]
    assert [flag for flag in flags if flag not in done.stdout] == []  # every Config field is settable


def test_flags_beat_environment_variables_which_beat_the_profile():
    args = cli.build_parser().parse_args(["train", "--profile", "smoke", "--epochs", "2", "--no-class-weights",
                                          "--max-train-examples", "none"])
    environ = {"DISTILNB_PROFILE": "full", "DISTILNB_EPOCHS": "9", "DISTILNB_CLASS_WEIGHTS": "true",
               "DISTILNB_MAX_TRAIN_EXAMPLES": "50", "DISTILNB_SEED": "7"}
    cfg = cli.build_config(args, environ)
    assert (cfg.profile, cfg.max_length, cfg.epochs, cfg.class_weights) == ("smoke", 64, 2.0, False)
    assert cfg.max_train_examples is None and cfg.seed == 7  # a flag's "none" is None; unflagged variables still apply


def test_a_bad_flag_value_is_a_usage_error():
    done = run_cli("train", "--epochs", "many")
    assert done.returncode == 2 and "argument --epochs: invalid float value: 'many'" in done.stderr


# ---------------------------------------------------------------- the smoke run, in subprocesses


def test_train_writes_the_model_folder_and_metrics(trained_run):
    assert (trained_run / "model" / "model.safetensors").is_file() and (trained_run / "model" / "README.md").is_file()
    scores = json.loads((trained_run / "metrics.json").read_text())["validation"]["fine-tuned (Trainer)"]
    assert 0 <= scores["accuracy"] <= 1
    assert json.loads((trained_run / "model" / "training_args.json").read_text())["num_train_epochs"] == 2  # the flag won
    assert (trained_run / "data" / "load_report.json").is_file()


def test_evaluate_writes_eval_test_json(trained_run, run_args):
    done = run_cli("evaluate", *run_args, "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    scores = json.loads((trained_run / "model" / "eval_test.json").read_text())
    assert json.loads(done.stdout) == scores and scores["examples"] > 0
    assert json.loads((trained_run / "metrics.json").read_text())["test"]["fine-tuned"] == scores


def test_predict_texts_from_arguments_in_order(trained_run, run_args):
    texts = ["Where is my parcel? It is two weeks late.", "I was charged twice, please refund me", "Great support, thanks!"]
    done = run_cli("predict", *run_args, *texts, "--top-k", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json_lines(done.stdout)
    assert [row["text"] for row in rows] == texts
    labels = json.loads((trained_run / "model" / "config.json").read_text())["id2label"].values()
    for row in rows:
        assert set(row) == {"text", "label", "score", "scores"} and row["label"] in labels
        assert len(row["scores"]) == 2 and row["scores"][row["label"]] == row["score"] == max(row["scores"].values())


def test_predict_from_a_file_skips_and_counts_blank_lines(trained_run, run_args, tmp_path):
    file = tmp_path / "texts.txt"
    file.write_text("my card was charged twice\n\n   \nthe app will not let me log in\r\nlast line without end", encoding="utf-8")
    done = run_cli("predict", *run_args, "--file", str(file), "--chunk", "--batch-size", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    assert [row["text"] for row in json_lines(done.stdout)] == [
        "my card was charged twice", "the app will not let me log in", "last line without end"]
    assert "Skipped 2 blank lines" in done.stderr


def test_predict_from_standard_input(trained_run, run_args):
    texts = [f"order number {i} has not arrived" if i % 2 else f"how do I reset password {i}" for i in range(7)]
    done = run_cli("predict", *run_args, stdin="\n".join(texts) + "\n")
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json_lines(done.stdout)
    assert [row["text"] for row in rows] == texts and all(len(row["scores"]) == 5 for row in rows)
    assert "Skipped" not in done.stderr


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_missing_model_folder_is_one_sentence_and_a_failure(command, tmp_path):
    done = run_cli(command, "--profile", "smoke", "--output-root", str(tmp_path), "some text" if command == "predict" else "--json")
    assert done.returncode == 1 and done.stdout == ""
    message = done.stderr.strip()
    assert "Traceback" not in message and len(message.splitlines()) == 1
    assert message.startswith(f"distilnb {command}: No model folder at {tmp_path / 'smoke' / 'model'}")
    assert "python -m distilnb train" in message
