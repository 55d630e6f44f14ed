"""Official test files that repeat training rows: train through distilnb, then `evaluate --test-file ... --skip-seen`.

Two labelled datasets of the shared data ship an official test file that shares texts with their training data:
emotion (test.txt against train.txt + val.txt) and GoEmotions (Ekman's 7 labels; the rows with one label, since a
single-label model scores those). For each, the script counts the shared texts (exact and normalised), builds a
small training set that keeps every shared text (so the model has seen them), fine-tunes through
distilnb.run.train, then runs the command line twice on the official test file: without --skip-seen
(it must refuse, naming the flag) and with it (it must score the unseen rows and say how many it skipped).
--dry-run builds the data, counts, and prints the commands without training or running them.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _common import ROOT, base_parser, data_present, header, markdown_table, progress
from real_learning import fine_tune

if TYPE_CHECKING:
    import pandas as pd

DATASETS = ("emotion", "goemotions")


@dataclass
class Official:
    """One dataset's training, validation and official test frames (text, label), and the file scored as its test."""

    name: str
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    test_file: Path | None  # the official file itself when a model can score it as it is; else a single-label copy
    test_flags: list[str]  # the column flags that file needs


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Return the command-line options."""
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm", help="a model name as distilnb's Config takes it")
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated, from: " + ", ".join(DATASETS))
    parser.add_argument("--train-rows", type=int, default=1000,
                        help="random training rows; every training row the official test repeats is added")
    parser.add_argument("--validation-rows", type=int, default=500, help="cap on validation rows")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--dry-run", action="store_true",
                        help="build the data and count the overlaps; print the commands, train and run nothing")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="where the built data and the runs go (default: a temporary folder, removed after)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.model, args.train_rows, args.validation_rows = "tiny", 200, 100
    return args


def read_rows(path: Path, separator: str, names: list[str] | None = None) -> pd.DataFrame:
    """Return a ';'- or tab-separated file of the shared data as str columns (QUOTE_NONE: the texts hold quotes)."""
    import pandas as pd

    return pd.read_csv(path, sep=separator, quoting=csv.QUOTE_NONE, dtype=str, keep_default_na=False,
                       header=None if names else 0, names=names)


def emotion(folder: Path) -> Official:
    """Return emotion's files as frames; its official test.txt is scored as it is (label column label_name)."""
    frames = {split: read_rows(folder / "emotion" / f"{split}.txt", ";").rename(columns={"label_name": "label"})
              for split in ("train", "val", "test")}
    return Official("emotion", frames["train"], frames["val"], frames["test"], folder / "emotion" / "test.txt",
                    ["--label-column", "label_name"])


def goemotions(folder: Path) -> Official:
    """Return GoEmotions (Ekman's labels) as single-label frames: rows with one label, named from labels.txt."""
    source = folder / "goemotions" / "ekman"
    names = (source / "labels.txt").read_text().split()
    frames = {}
    for split in ("train", "dev", "test"):
        rows = read_rows(source / f"{split}.tsv", "\t", ["text", "labels", "id"])
        single = rows[~rows["labels"].str.contains(",")]
        frames[split] = single.assign(label=[names[int(i)] for i in single["labels"]])[["text", "label"]]
    return Official("goemotions", frames["train"], frames["dev"], frames["test"], None, [])


def normalised(texts: pd.Series) -> pd.Series:
    """Return the texts as distilnb compares them for duplicates and seen rows (lower case, spaces folded)."""
    from distilnb.data import normalise_text

    return texts.map(normalise_text)


def overlap_row(data: Official) -> dict[str, Any]:
    """Return the official test's rows and how many of them the training or validation file repeats."""
    seen = set(data.train["text"]) | set(data.validation["text"])
    seen_normalised = set(normalised(data.train["text"])) | set(normalised(data.validation["text"]))
    return {"dataset": data.name, "official test rows": len(data.test),
            "in train + validation, exact": int(data.test["text"].isin(seen).sum()),
            "normalised": int(normalised(data.test["text"]).isin(seen_normalised).sum())}


def build(data: Official, args: argparse.Namespace, folder: Path) -> tuple[Path, int, int]:
    """Write train/val/test CSVs keeping every training row the test repeats; return (test file, train rows, seen)."""
    import pandas as pd

    test_keys = set(normalised(data.test["text"]))
    repeated = normalised(data.train["text"]).isin(test_keys)
    others = data.train[~repeated].sample(n=min(args.train_rows, int((~repeated).sum())), random_state=args.seed)
    train = pd.concat([data.train[repeated], others]).sample(frac=1, random_state=args.seed)
    validation = data.validation.sample(n=min(args.validation_rows, len(data.validation)), random_state=args.seed)
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in (("train", train), ("val", validation), ("test", data.test)):
        frame[["text", "label"]].to_csv(folder / f"{name}.csv", index=False)
    seen = set(normalised(train["text"])) | set(normalised(validation["text"]))
    expected = int(normalised(data.test["text"]).isin(seen).sum())
    return data.test_file or folder / "test.csv", len(train), expected


def evaluate_command(model: Path, test_file: Path, flags: list[str], args: argparse.Namespace,
                     skip_seen: bool) -> list[str]:
    """Return the `python -m distilnb evaluate` command line on the official test file."""
    return [sys.executable, "-m", "distilnb", "evaluate", "--model-dir", str(model), "--test-file", str(test_file),
            *flags, "--threads", str(args.threads), "--json", *(["--skip-seen"] if skip_seen else [])]


def run_command(command: list[str]) -> tuple[int, str, str]:
    """Return (exit status, stdout, stderr) of a command run from the repository root."""
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    return done.returncode, done.stdout, done.stderr


def scores_of(stdout: str) -> dict[str, Any]:
    """Return the JSON scores `evaluate --json` printed ({} when it printed none)."""
    start = stdout.find("{")
    try:
        return json.loads(stdout[start:]) if start >= 0 else {}
    except json.JSONDecodeError:
        return {}


def skipped_line(stderr: str) -> str:
    """Return the line of evaluate's output that says how many rows were skipped."""
    return next((line.strip() for line in stderr.splitlines() if "kipped" in line), "(no line says what was skipped)")


def skipped_count(line: str) -> int | None:
    """Return N of evaluate's "Skipped N of the M rows" line (None without one)."""
    found = re.search(r"Skipped ([\d,]+) of", line)
    return int(found.group(1).replace(",", "")) if found else None


def run_dataset(data: Official, args: argparse.Namespace, work_dir: Path) -> dict[str, Any]:
    """Return the result row of one dataset: train through the package, then evaluate without and with --skip-seen."""
    from distilnb.config import Config

    folder = work_dir / data.name / "data"
    test_file, train_rows, expected = build(data, args, folder)
    cfg = Config.from_env(profile="offline", model=args.model, dataset=str(folder), epochs=args.epochs,
                          seed=args.seed, output_root=str(work_dir), run_name=data.name)
    refuse, score = (evaluate_command(cfg.paths.model, test_file, data.test_flags, args, skip)
                     for skip in (False, True))
    row = {"dataset": data.name, "train rows": train_rows, "seen official test rows (expected skipped)": expected}
    if args.dry_run:
        print(f"#### {data.name}: commands (dry run)\n")
        print(f"- train: distilnb.run.train(Config.from_env(profile='offline', model={args.model!r}, "
              f"dataset={str(folder)!r}, epochs={args.epochs:g}, seed={args.seed}, output_root={str(work_dir)!r}, "
              f"run_name={data.name!r}))")
        print(f"- must refuse: `{shlex.join(refuse)}`")
        print(f"- must score the unseen rows: `{shlex.join(score)}`\n")
        return row
    progress(f"{data.name}: fine-tuning {args.model} on {row['train rows']} rows")
    from contextlib import redirect_stdout


    with redirect_stdout(sys.stderr):
        fine_tune(cfg)
    refused, _, refusal = run_command(refuse)
    status, stdout, stderr = run_command(score)
    scores = scores_of(stdout)
    line = skipped_line(stderr) if status == 0 else f"failed: {stderr.strip().splitlines()[-1:]}"
    return {**row, "without --skip-seen: exit": refused, "refusal names --skip-seen": "--skip-seen" in refusal,
            "with --skip-seen: exit": status, "skipped line": line,
            "skipped as expected": skipped_count(line) == expected,
            "accuracy": scores.get("accuracy", "n/a"), "macro-F1": scores.get("f1_macro", "n/a"),
            "scored rows": scores.get("examples", "n/a")}


def main(argv: list[str] | None = None) -> int:
    """Print the overlap counts and, unless --dry-run, the evaluate results; return the exit status."""
    import shutil

    args = parse_args(argv)
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    if set(names) - set(DATASETS):
        raise SystemExit(f"Unknown dataset: {sorted(set(names) - set(DATASETS))}; see --help.")
    names = [name for name in names if data_present(args.data, name)]
    if not names:
        return 0
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="distilnb-official-test-"))
    readers = {"emotion": emotion, "goemotions": goemotions}
    try:
        found = [readers[name](args.data) for name in names]
        overlaps = [overlap_row(data) for data in found]
        print(header("Official test files that repeat training rows (official_test.py)", {
            "model": f"{args.model}, {args.epochs:g} epoch(s) through distilnb.run.train",
            "data": f"{args.train_rows} random training rows plus every training row the official test repeats; "
                    f"validation capped at {args.validation_rows}; GoEmotions: Ekman labels, single-label rows",
        }))
        print("### Official test rows also in the training data\n")
        print(markdown_table(overlaps))
        rows = [run_dataset(data, args, work_dir) for data in found]
    finally:
        if args.work_dir is None:
            shutil.rmtree(work_dir, ignore_errors=True)
    print("### evaluate --test-file on the official test\n")
    print(markdown_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
