"""The whole run in one call (distilnb.run.train): what it returns is what it wrote and what every front end shows."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest
import torch

from distilnb import data, metrics, models, readers, run
from distilnb.cli.options import in_flag_words
from distilnb.config import Config
from distilnb.errors import DataError, NotFoundError
from distilnb.runs import SeenRowsError

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "distilnb" / "assets" / "metrics.schema.json").read_text())
SMALL = {"max_train_examples": 150, "epochs": 2.0}


def smoke(tmp_path: Path, **settings) -> Config:
    """A small smoke-profile run writing under tmp_path."""
    return Config.from_env(profile="smoke", environ={}, output_root=str(tmp_path), **{**SMALL, **settings})


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> run.RunResult:
    """One small smoke run, made by the library call."""
    torch.set_num_threads(1)
    return run.train(smoke(tmp_path_factory.mktemp("library")))


def test_a_whole_run_returns_what_it_wrote_in_the_one_schema(finished):
    written = json.loads(finished.metrics_path.read_text())
    jsonschema.validate(written, SCHEMA)  # every row in one shape, under its one name
    rows = finished.rows("validation")
    assert set(rows) == {metrics.MAJORITY, metrics.TFIDF, metrics.FINE_TUNED}
    assert written["validation"] == json.loads(json.dumps(rows))  # the result is what the file holds
    assert set(rows[metrics.FINE_TUNED]["per_class"]) == set(finished.label_names)
    assert rows[metrics.FINE_TUNED]["examples"] == finished.split_sizes["validation"]
    assert finished.split_sizes["train"] == SMALL["max_train_examples"]
    assert (finished.model_dir / "model.safetensors").is_file()
    root = finished.config.paths.root
    assert not (root / "checkpoints").exists() and not (root / ".lock").exists()  # nothing left behind
    assert json.loads(json.dumps(finished.summary()))["scores"] == written  # --json prints the same


def test_a_run_of_several_labels_writes_the_same_schema_with_its_thresholds(tmp_path):
    labels = {"dataset": "data/support_tickets_multilabel.csv", "label_column": "labels", "label_separator": ";"}
    result = run.train(smoke(tmp_path, epochs=1.0, **labels))
    written = json.loads(result.metrics_path.read_text())
    jsonschema.validate(written, SCHEMA)
    assert set(written["validation"]) == {metrics.MAJORITY, metrics.TFIDF_ONE_VS_REST, metrics.FINE_TUNED}
    assert written["thresholds"]["thresholds"] == written["validation"][metrics.FINE_TUNED]["thresholds"]
    assert result.thresholds is not None and result.task == "multi-label"


def test_a_file_with_an_old_row_name_breaks_the_schema(finished):
    written = json.loads(finished.metrics_path.read_text())
    written["validation"]["fine-tuned (Trainer)"] = written["validation"].pop(metrics.FINE_TUNED)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(written, SCHEMA)


def test_the_command_line_writes_the_rows_the_library_returns(finished, tmp_path):
    from test_cli import run_cli

    flags = [f"--{name.replace('_', '-')}={value}" for name, value in SMALL.items()]
    done = run_cli("train", "--profile", "smoke", "--threads", "1", "--output-dir", str(tmp_path / "cli"), *flags)
    assert done.code == 0, done.err[-3000:]
    by_cli = json.loads((tmp_path / "cli" / "metrics.json").read_text())["validation"]
    by_library = json.loads(json.dumps(finished.rows("validation")))
    for row in (metrics.MAJORITY, metrics.TFIDF):
        assert by_cli[row] == by_library[row]
    model = {key: value for key, value in by_cli[metrics.FINE_TUNED].items() if key != "loss"}
    assert model == {key: value for key, value in by_library[metrics.FINE_TUNED].items() if key != "loss"}
    assert by_cli[metrics.FINE_TUNED]["loss"] == pytest.approx(by_library[metrics.FINE_TUNED]["loss"], rel=1e-4)
    assert "{'loss'" not in done.out and "eval_loss" not in done.out  # the Trainer's logs went to stderr
    assert done.out.splitlines()[0] == f"Model saved to {os.path.relpath(tmp_path / 'cli' / 'model')}"


def test_a_benchmark_writes_the_rows_the_library_returns(finished, tmp_path):
    from test_benchmarks import script

    cfg = replace(finished.config, output_root=str(tmp_path))
    torch.set_num_threads(1)
    script("real_learning").fine_tune(cfg)  # what real_learning.py and imbalance.py train with
    by_benchmark = json.loads(cfg.paths.metrics.read_text())["validation"]
    assert by_benchmark == json.loads(finished.metrics_path.read_text())["validation"]


def test_the_data_is_read_once_and_each_text_tokenized_once_unless_cut(tmp_path, monkeypatch):
    from transformers import PreTrainedTokenizerBase

    reads, texts = [], []
    read_source, call = data.read_source, PreTrainedTokenizerBase.__call__

    def counted_read(*args, **kwargs):
        reads.append(args[0])
        return read_source(*args, **kwargs)

    def counted_call(self, text, *args, **kwargs):
        texts.extend([text] if isinstance(text, str) else text)
        return call(self, text, *args, **kwargs)

    monkeypatch.setattr(data, "read_source", counted_read)
    monkeypatch.setattr(PreTrainedTokenizerBase, "__call__", counted_call)
    result = run.train(smoke(tmp_path, max_length=16, epochs=1.0))
    assert len(reads) == 1
    tokenized = len(texts)
    splits, _ = data.load_splits(result.config)
    tokenizer = models.load_tokenizer(result.config.resolved_model)
    lengths = [len(ids) for split in splits for ids in call(tokenizer, list(splits[split]["text"]))["input_ids"]]
    cut = sum(length > 16 for length in lengths)
    assert cut > 0 and tokenized == len(lengths) + cut  # every row once, and the cut ones again, truncated


def test_a_run_from_another_folder_writes_and_prints_no_path_of_the_machine(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISTILNB_") or k == "DISTILNB_CACHE"}
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "distilnb", "train", "--profile", "smoke", "--epochs", "1",
               "--max-train-examples", "60", "--output-dir", "runs/x"]
    done = subprocess.run(command, cwd=elsewhere, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    machine = [str(tmp_path), str(ROOT), str(Path.home()), sys.prefix, str(Path(sys.executable).parent)]
    folder = elsewhere / "runs" / "x"
    files = [path for path in folder.rglob("*") if path.is_file()]
    assert len(files) > 10 and (folder / "model" / "config.json").is_file()
    for path in files:
        content = path.read_bytes()
        assert not [where for where in machine if where.encode() in content], path
    assert not [where for where in machine if where in done.stdout + done.stderr], done.stdout + done.stderr


def string_constants(tree: ast.AST) -> list[tuple[int, str]]:
    """Return (line, text) of every string constant that is not a docstring."""
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def test_no_message_of_the_library_names_a_command_line_flag():
    flag = re.compile(r"(?<![\w-])--[a-z]")
    found = [f"{path.name}:{line}: {text!r}" for path in sorted((ROOT / "distilnb").glob("*.py"))
             for line, text in string_constants(ast.parse(path.read_text())) if flag.search(text)]
    assert not found, "\n".join(found)


def test_one_cause_is_worded_for_a_notebook_and_for_the_command_line():
    error = SeenRowsError("3 rows were seen. Set {skip_seen=True}, or train with {epochs=4} and {header=False}.")
    assert str(error) == "3 rows were seen. Set skip_seen=True, or train with epochs=4 and header=False."
    assert in_flag_words(error) == "3 rows were seen. Set --skip-seen, or train with --epochs 4 and --no-header."
    unknown = DataError("labels {refund} and {x=1} are not settings")
    assert str(unknown) == in_flag_words(unknown) == "labels {refund} and {x=1} are not settings"


def test_read_options_are_passed_in_the_open():
    source = (ROOT / "distilnb").rglob("*.py")
    assert not [path.name for path in source if "ContextVar" in path.read_text()]


def test_a_setting_given_explicitly_beats_the_options_it_comes_with(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("text,label\ncafé au lait,drink\n".encode("latin-1"))
    options = readers.ReadOptions(encoding="utf-8")
    with pytest.raises(DataError, match="not valid utf-8"):
        readers.read_table(path, options)
    assert readers.read_table(path, options, encoding="latin-1")["text"][0] == "café au lait"


def test_class_weights_left_unset_are_decided_from_the_training_labels_said_and_recorded(tmp_path):
    import pandas as pd

    tickets = pd.read_csv(ROOT / "data" / "support_tickets.csv").head(200)
    tickets["label"] = ["delivery"] * 150 + ["refund"] * 50  # one class holds 75 % of the rows
    skewed = tmp_path / "skewed.csv"
    tickets.to_csv(skewed, index=False)
    said: list[str] = []
    result = run.train(smoke(tmp_path, dataset=str(skewed), epochs=1.0, run_name="unset"), notify=said.append)
    assert result.config.class_weights is True
    assert any(line.startswith("Class weights: on, because one class holds 75%") for line in said)
    recorded = json.loads((result.model_dir / "distilnb_config.json").read_text())
    assert recorded["class_weights"] is True  # `train --config` repeats the decision
    said.clear()
    kept = run.train(smoke(tmp_path, dataset=str(skewed), epochs=1.0, run_name="off", class_weights=False),
                     notify=said.append)
    assert kept.config.class_weights is False and not any("Class weights" in line for line in said)


def test_epochs_left_unset_are_decided_from_the_rarest_class_said_and_recorded(tmp_path):
    import pandas as pd

    from distilnb import runs

    tickets = pd.read_csv(ROOT / "data" / "support_tickets.csv").head(200)
    tickets["label"] = ["delivery"] * 160 + ["refund"] * 40  # about 30 refunds among the training rows
    rare = tmp_path / "rare.csv"
    tickets.to_csv(rare, index=False)
    said: list[str] = []
    unset = replace(smoke(tmp_path, dataset=str(rare), class_weights=False, run_name="unset"), epochs=None)
    result = run.train(unset, notify=said.append)
    splits, _ = runs.saved_splits(result.config.paths.data)
    counted = min(Counter(splits["train"]["label"]).values())
    assert result.config.epochs == float(-(-200 // counted)) > 2  # enough passes to show it 200 times
    trained = json.loads((result.model_dir / "training_args.json").read_text())
    assert trained["num_train_epochs"] == result.config.epochs  # the Trainer's schedule (early stopping may end it)
    assert any(line.startswith(f"Epochs: {result.config.epochs:g}, because the rarest class, 'refund', has "
                               f"{counted} training rows") for line in said)
    recorded = json.loads((result.model_dir / "distilnb_config.json").read_text())
    assert recorded["epochs"] == result.config.epochs  # `train --config` repeats the decision


def test_resume_without_a_checkpoint_says_so(tmp_path):
    with pytest.raises(NotFoundError, match="Nothing to resume"):
        run.train(smoke(tmp_path), resume=True)


def test_a_busy_run_folder_is_refused_before_the_data_is_read(tmp_path, monkeypatch):
    from distilnb import runs

    cfg = smoke(tmp_path)
    monkeypatch.setattr(data, "read_source", lambda *a, **k: pytest.fail("the data was read"))
    with runs.run_lock(cfg.paths.root), pytest.raises(runs.RunInUseError, match="in use"):
        run.train(replace(cfg))
