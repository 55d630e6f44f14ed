"""The benchmark scripts: --help, a clean skip without data, and well-formed tables in --smoke mode (never timings)."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"
SCRIPTS = ("train_speed", "inference_speed", "cost_model", "real_learning", "imbalance", "real_multilabel_pairs")
SHARED_DATA = Path(os.environ.get("DISTILNB_SHARED_DATA", ROOT.parent / "shared" / "data"))
NO_SHARED_DATA = not (SHARED_DATA / "emotion").is_dir() or not (SHARED_DATA / "goemotions").is_dir()
STRATEGIES = ("(a) pad to longest in dataset", "(b) pad each random batch", "(c) pad length-grouped batches")
SEPARATOR = re.compile(r"^\|(---\|)+$")


def script(name: str):
    """Return a benchmark script imported as a module (its folder goes on sys.path, as when it runs)."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    return importlib.import_module(name)


def run_script(name: str, *options: str) -> str:
    """Return the stdout of `python benchmarks/<name>.py [options]`, after checking that it exited 0."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, str(BENCHMARKS / f"{name}.py"), *options], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def run_smoke(name: str, *options: str) -> str:
    """Return the stdout of `python benchmarks/<name>.py --smoke [options]`, after checking that it exited 0."""
    return run_script(name, "--smoke", *options)


def tables(report: str) -> dict[str, list[dict[str, str]]]:
    """Return {heading: rows as dicts} for every Markdown table, checking that each is well formed."""
    found: dict[str, list[dict[str, str]]] = {}
    heading, block = None, []
    for line in [*report.splitlines(), ""]:
        if line.startswith("|"):
            block.append(line)
            continue
        if block:
            assert heading is not None, f"a table without a heading: {block[0]}"
            found[heading] = parse_table(block)
            block = []
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
    return found


def parse_table(lines: list[str]) -> list[dict[str, str]]:
    """Return a Markdown table's rows as dicts, asserting a header, a separator and rows of the header's width."""
    assert len(lines) >= 3, f"a table needs a header, a separator and rows: {lines}"
    assert SEPARATOR.match(lines[1]), f"bad separator row: {lines[1]}"
    columns = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]
    assert all(len(row) == len(columns) for row in rows), f"rows of the wrong width under {columns}"
    return [dict(zip(columns, row, strict=True)) for row in rows]


def table(report: str, starts: str) -> list[dict[str, str]]:
    """Return the rows of the one table whose heading starts with `starts`."""
    matches = [rows for heading, rows in tables(report).items() if heading.startswith(starts)]
    assert len(matches) == 1, f"expected one table headed {starts!r}, found {list(tables(report))}"
    return matches[0]


def assert_numbers(rows: list[dict[str, str]], columns: list[str], allow_na: bool = False) -> None:
    """Assert that the cells of the columns parse as numbers (or say n/a, where allowed)."""
    for row in rows:
        for column in columns:
            if allow_na and row[column].startswith("n/a"):
                continue
            float(row[column])


def assert_header(report: str, mode: str = "--smoke") -> None:
    """Assert the run header records machine, libraries, the exact command line (with its mode) and date."""
    for field in ("- machine:", "torch threads", "- libraries:", "torch ", "transformers ", "- command: `", "- date:"):
        assert field in report, f"header lacks {field!r}"
    command = next(line for line in report.splitlines() if line.startswith("- command: `"))
    assert mode in command.split("`")[1].split(), f"the command line lacks {mode}: {command}"


class SmokeReports(dict):
    """The --smoke stdout of each script, run once when a test first asks for it."""

    def __missing__(self, name: str) -> str:
        self[name] = run_smoke(name)
        return self[name]


@pytest.fixture(scope="module")
def reports() -> SmokeReports:
    """Return the scripts' --smoke reports, each run at most once per module."""
    return SmokeReports()


@pytest.mark.parametrize("name", [*SCRIPTS, "gpu_check", "official_test", "startup", "batch_tokens"])
def test_help_documents_the_data_folder_and_smoke_mode(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        script(name).main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "--smoke" in text and "--data" in text and "--model" in text


@pytest.mark.parametrize("name", [*SCRIPTS, "official_test"])
def test_an_absent_data_folder_skips_cleanly(name, tmp_path, capsys, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    assert script(name).main(["--data", str(tmp_path / "absent")]) == 0
    assert "SKIPPED" in capsys.readouterr().out
    assert not list(scratch.iterdir())  # a skip leaves no temporary folder behind


def test_train_speed_tables(reports):
    report = reports["train_speed"]
    assert_header(report)
    speed = table(report, "Speed on")
    assert [row["strategy"] for row in speed] == list(STRATEGIES)
    assert_numbers(
        speed,
        [
            "examples/s",
            "real tokens/s",
            "computed tokens",
            "real share",
            "s per pass (median)",
            "of which AdamW steps s",
            "examples/s without AdamW steps",
        ],
    )
    assert_numbers(speed, ["peak RSS delta MiB"], allow_na=True)
    epoch = table(report, "Real tokens over one full epoch")
    assert [row["strategy"] for row in epoch] == list(STRATEGIES)
    assert_numbers(epoch, ["texts", "real tokens", "computed tokens", "real share"])
    # The same texts under every strategy: equal real tokens, and padding can only add computed tokens, least for (c).
    real = {int(row["real tokens"]) for row in epoch}
    computed = [int(row["computed tokens"]) for row in epoch]
    assert len(real) == 1 and computed[0] >= computed[1] >= computed[2] >= real.pop()
    for row in epoch:
        assert float(row["real share"]) == pytest.approx(
            int(row["real tokens"]) / int(row["computed tokens"]), abs=1e-3
        )
    sample = [int(row["computed tokens"]) for row in speed]
    assert sample[0] >= sample[1] >= sample[2]
    assert len(table(report, "Targets")) == 3


def test_inference_speed_tables(reports):
    report = reports["inference_speed"]
    assert_header(report)
    speed = table(report, "Speed on")
    assert list(speed[0]) == [
        "method",
        "examples/s",
        "x one-by-one",
        "x batched pipeline",
        "label agreement",
        "max prob diff",
        "distinct labels",
        "s per pass (median)",
    ]
    methods = [row["method"] for row in speed]
    assert methods[0] == "pipeline, one text at a time" and methods[1].startswith("pipeline, batch_size=")
    assert (
        methods[2].startswith("distilnb Predictor") and methods[3] == "distilnb Predictor, int8" and len(methods) == 4
    )
    assert_numbers(speed, list(speed[0])[1:])
    # The speed-up columns are each row's examples/s over the reference rows', recomputed here from the table.
    for row in speed:
        for column, reference in (("x one-by-one", speed[0]), ("x batched pipeline", speed[1])):
            expected = float(row["examples/s"]) / float(reference["examples/s"])
            # printed with two decimals: up to 0.005 of rounding on top of the rates' own
            assert float(row[column]) == pytest.approx(expected, rel=0.02, abs=0.006), (row["method"], column)
    # fp32 paths compute the same probabilities in another order and padding: a row put back in the wrong place fails.
    assert all(float(row["max prob diff"]) < 1e-4 for row in speed[1:3])
    assert all(float(row["label agreement"]) == 1.0 for row in speed[1:3])
    assert float(speed[3]["max prob diff"]) < 0.1  # int8 rounds the weights; it must still be the same model
    assert len(table(report, "Targets")) == 3


def test_cost_model_tables(reports):
    report = reports["cost_model"]
    assert_header(report)
    assert "ESTIMATE" in report
    model = table(report, "Model")
    assert any("embeddings" in row["quantity"] for row in model)
    assert_numbers([row for row in model if "FLOPs" in row["quantity"] or "parameters" in row["quantity"]], ["value"])
    for heading in ("Training, one epoch", "Inference over the same texts"):
        rows = table(report, heading)
        assert [row["strategy"] for row in rows] == list(STRATEGIES)
        assert_numbers(
            rows,
            ["computed tokens", "real share", "FLOPs per real token", "PFLOP per epoch", "T4 s/epoch", "A100 s/epoch"],
        )
    optimizer = table(report, "AdamW steps")
    assert len(optimizer) == 1 and all(float(value) > 0 for value in optimizer[0].values())


def test_real_learning_tables(reports):
    report = reports["real_learning"]
    assert_header(report)
    results = table(report, "Test-set results")
    assert list(results[0]) == [
        "dataset",
        "model",
        "accuracy",
        "macro-F1",
        "weighted F1",
        "epochs",
        "wall s",
        "train examples",
    ]
    models = [row["model"] for row in results]
    assert models[:2] == ["majority class", "TF-IDF + logistic regression"]
    assert (
        models[2].startswith("distilnb default recipe")
        and models[3].startswith("the usual recipe")
        and len(models) == 4
    )
    assert_numbers(results, ["accuracy", "macro-F1", "weighted F1", "wall s", "train examples"])
    assert [float(row["epochs"]) for row in results[2:]] == [1.0, 2.0]  # --smoke: 1 epoch; the usual recipe: 2
    assert {int(row["train examples"]) for row in results} == {48}
    # The majority row equals the share of the 48 training rows' most frequent label in the test split, counted here
    # from the sample file's labels, whatever the benchmark computed.
    splits, _ = script("_common").load_dataset("smoke", ROOT, max_train_examples=48)
    train, test = splits["train"]["label"], splits["test"]["label"]
    majority = max(set(train), key=train.count)
    expected = test.count(majority) / len(test)
    assert 0 < expected < 1 and float(results[0]["accuracy"]) == pytest.approx(expected, abs=1e-3)
    histories = {heading: rows for heading, rows in tables(report).items() if "per epoch" in heading}
    assert [len(rows) for rows in histories.values()] == [1, 2]  # one row per epoch trained
    assert_numbers([row for rows in histories.values() for row in rows], ["train_loss", "eval_accuracy"])


def test_imbalance_tables(reports):
    report = reports["imbalance"]
    assert_header(report)
    counts = table(report, "Rows per class")
    splits = ("train", "validation", "test")
    totals = {split: sum(int(row[split]) for row in counts) for split in splits}
    major = max(counts, key=lambda row: int(row["train"]))
    for split in splits:  # one class holds 74 % of every split, and every class is present
        assert int(major[split]) / totals[split] == pytest.approx(0.74, abs=0.02)
        assert all(int(row[split]) >= 1 for row in counts)
    results = table(report, "Test-set results")
    assert [row["model"] for row in results[:2]] == ["majority class", "TF-IDF + logistic regression"]
    assert [row["class_weights"] for row in results[2:]] == ["False", "True"]
    assert float(results[0]["accuracy"]) == pytest.approx(int(major["test"]) / totals["test"], abs=1e-3)
    assert_numbers(results[2:], ["accuracy", "macro-F1", "weighted F1", "best validation macro-F1", "wall s"])


def test_multilabel_and_pair_tables_come_from_the_saved_models(tmp_path):
    import pandas as pd

    report = run_smoke("real_multilabel_pairs", "--work-dir", str(tmp_path))
    assert_header(report)
    multi = table(report, "GoEmotions")
    for dataset in ("goemotions-original", "goemotions-ekman"):
        for method in ("TF-IDF one-vs-rest", "tiny fine-tuned"):
            rows = [row for row in multi if row["dataset"] == dataset and row["method"] == method]
            assert [row["threshold"].split()[0] for row in rows] == ["0.5", "global", "per"]
            assert sum(row["threshold"].endswith("(kept)") for row in rows) == 1
            assert_numbers(rows, ["micro-F1", "macro-F1", "samples-F1", "subset accuracy", "Hamming loss"])
        # the row marked kept is the rule the fine-tuning saved beside the model, which evaluate and predict apply
        saved = json.loads((tmp_path / dataset / "model" / "thresholds.json").read_text())["rule"]
        kept = next(row for row in multi if row["dataset"] == dataset and row["method"] == "tiny fine-tuned"
                    and row["threshold"].endswith("(kept)"))
        assert kept["threshold"].startswith(saved)
    pairs = table(report, "RTE")
    assert [row["method"] for row in pairs] == ["majority class", "TF-IDF + logistic regression", "tiny fine-tuned"]
    # RTE's val.jsonl is the split scored: the majority row is its share of the training rows' commonest label
    rte = {split: pd.read_json(tmp_path / "data" / "rte" / f"{split}.jsonl", lines=True) for split in ("train", "val")}
    majority = rte["train"]["label"].value_counts().idxmax()
    assert float(pairs[0]["accuracy"]) == pytest.approx((rte["val"]["label"] == majority).mean(), abs=1e-3)
    assert [row["target"].split(":")[0] for row in table(report, "Targets")] == [
        "goemotions-original", "goemotions-ekman", "rte"]


def test_imbalanced_counts_keep_the_share_and_every_class():
    import pandas as pd

    available = pd.Series({"joy": 700, "sadness": 600, "anger": 300, "surprise": 10})
    counts = script("imbalance").split_counts(available, "joy", 0.74, 400)
    assert counts["joy"] == 296 and sum(counts.values()) == pytest.approx(400, abs=2)
    assert counts["sadness"] == pytest.approx(2 * counts["anger"], abs=1) and counts["surprise"] >= 2
    # The dominant class bounds the split: 100 rows of it make a split of 135 at most.
    small = script("imbalance").split_counts(available.replace(700, 100), "joy", 0.74, 400)
    assert small["joy"] == 100 and sum(small.values()) <= 137


@pytest.mark.realdata
@pytest.mark.skipif(NO_SHARED_DATA, reason="the shared real data is absent")
def test_official_test_dry_run_counts_the_repeated_rows_and_prints_both_commands(tmp_path):
    report = run_script("official_test", "--data", str(SHARED_DATA), "--dry-run", "--work-dir", str(tmp_path))
    assert_header(report, "--dry-run")
    # Counted on the shared files (fixed by their SHA256SUMS): texts of the official test also in train + validation.
    overlaps = {row["dataset"]: row for row in table(report, "Official test rows")}
    assert overlaps["emotion"]["official test rows"] == "2000"
    counts = {name: (row["in train + validation, exact"], row["normalised"]) for name, row in overlaps.items()}
    assert counts == {"emotion": ("14", "14"), "goemotions": ("40", "47")}
    built = {row["dataset"]: row for row in table(report, "evaluate --test-file")}
    for name in ("emotion", "goemotions"):
        expected = int(built[name]["seen official test rows (expected skipped)"])
        assert 0 < expected <= int(overlaps[name]["normalised"])
        commands = [line for line in report.splitlines() if line.startswith("- must") and f"/{name}/model" in line]
        refuse, score = (line.split("`")[1].split() for line in commands)
        assert refuse[1:6] == ["-m", "distilnb", "evaluate", "--model-dir", str(tmp_path / name / "model")]
        assert "--skip-seen" not in refuse and score == [*refuse, "--skip-seen"]
    # The built training file holds every training row the official test repeats, so the model has seen them.
    train = (tmp_path / "emotion" / "data" / "train.csv").read_text(encoding="utf-8")
    assert int(built["emotion"]["train rows"]) == 1000 + 11 and train.count("\n") > 1000


def test_int8_accuracy_mode_on_a_saved_classifier(tmp_path):
    """--model-dir: fp32 vs int8 on the whole test split; the fp32 accuracy is recomputed here with the Predictor."""
    from distilnb.predict import Predictor

    common, speed = script("_common"), script("inference_speed")
    splits, names = common.load_dataset("smoke", ROOT)
    folder = speed.save_model(common.tiny_model(), names, tmp_path / "classifier", seed=0)
    report = run_smoke("inference_speed", "--model-dir", str(folder))
    assert_header(report)
    rows = table(report, "Accuracy on")
    assert [row["model"].split(":")[0] for row in rows] == ["fp32", "int8"]
    predicted = [
        names.index(row["label"]) for row in Predictor.from_folder(folder, on="cpu").predict(splits["test"]["text"])
    ]
    expected = sum(p == y for p, y in zip(predicted, splits["test"]["label"], strict=True)) / len(predicted)
    assert float(rows[0]["accuracy"]) == pytest.approx(expected, abs=1e-3)
    assert float(rows[1]["max prob diff with fp32"]) < 0.1
    # Where the two models agree on a share a of the labels, their accuracies differ by at most 1 - a.
    gap = abs(float(rows[0]["accuracy"]) - float(rows[1]["accuracy"]))
    assert gap <= 1 - float(rows[1]["label agreement with fp32"]) + 1e-3
    ratios = table(report, "int8 / fp32 speed")
    per_round = [float(row["int8 / fp32 speed"]) for row in ratios if row["round"].isdigit()]
    assert len(per_round) == 2  # --smoke: 2 rounds
    summary = {row["round"].split()[0]: float(row["int8 / fp32 speed"]) for row in ratios if not row["round"].isdigit()}
    assert summary["min"] == pytest.approx(min(per_round), abs=1e-3)
    assert summary["max"] == pytest.approx(max(per_round), abs=1e-3)
    lost = 100 * (float(rows[0]["accuracy"]) - float(rows[1]["accuracy"]))
    assert float(table(report, "Targets")[0]["measured"]) == pytest.approx(lost, abs=0.2)


def test_gpu_check_dry_run_writes_every_section(tmp_path):
    """gpu_check --dry-run: the report has the four sections, CPU results, and says what it skipped without CUDA."""
    out = tmp_path / "gpu_report.md"
    run_script("gpu_check", "--dry-run", "--out", str(out))
    report = out.read_text()
    assert_header(report, "--dry-run")
    headings = [line for line in report.splitlines() if line.startswith("### ")]
    assert [h.split(".")[0] for h in headings] == ["### 1", "### 2", "### 3", "### 4", "### Summary"]
    assert "DRY RUN" in report and "All checks passed." in report and "FAILED" not in report
    assert "PASSED: the precision that ran is the one distilnb chose" in report
    assert "SKIPPED (no CUDA): executing notebooks 03, 04, 05" in report
    course = table(report, "1.")
    assert course[0]["precision that ran (training_args.json)"] == "fp32" and course[0]["device"] == "cpu"
    epoch = table(report, "2.")
    assert [row["batches"] for row in epoch] == ["group_by_length", "random"]
    assert_numbers(epoch, ["examples/s", "s per epoch"])
    methods = table(report, "3.")
    assert len(methods) == 3 and all(float(row["label agreement with one-by-one"]) == 1.0 for row in methods)


def test_startup_times_predict_without_and_with_the_export_and_the_torch_floor():
    report = run_smoke("startup", "--rounds", "1")
    assert_header(report)
    rows = table(report, "Start-up, whole command")
    assert [row["command"] for row in rows] == ["predict, no export beside the model",
                                                "predict, a current export beside it", "python -c 'import torch'"]
    assert_numbers(rows, ["wall s, each run", "median wall s", "median CPU s"])


def test_batch_tokens_times_every_cap_on_short_mixed_and_long_inputs_in_both_runtimes():
    report = run_smoke("batch_tokens")
    assert_header(report)
    rows = table(report, "Texts/s by batch cap")
    assert [(row["model"], row["inputs"]) for row in rows] == [
        (model, inputs) for model in ("PyTorch fp32", "ONNX Runtime int8")
        for inputs in ("the sample's texts", "1 to 4 texts joined", "1 to 12 texts joined")]
    caps = ["64 texts, no cap", "cap 256 tokens", "cap 512 tokens", "cap 1024 tokens", "cap 2048 tokens"]
    assert_numbers(rows, ["mean tokens", *caps])
    lengths = [float(row["mean tokens"]) for row in rows[:3]]
    assert lengths == sorted(lengths) and lengths[2] > 3 * lengths[0]
    assert all(row["fastest"] in caps for row in rows)
