"""Real multi-label and pair data through distilnb: GoEmotions (28 and 7 labels) and RTE, beside the baselines.

    OMP_NUM_THREADS=1 python benchmarks/real_multilabel_pairs.py --data ../shared/data \
        --datasets goemotions-original --max-length 64 --threads 1
    python benchmarks/real_multilabel_pairs.py --data ../shared/data --tfidf-only

Every number comes from the package, on the path `distilnb train` and `distilnb evaluate` take:
distilnb.run.train cleans, encodes and splits the frames read here, fine-tunes the encoder and,
for several labels, keeps the thresholds that do best on the validation split, and distilnb.metrics.evaluate_split
scores the held-out split once with the saved model. This script reads the files (GoEmotions names its label ids in
labels.txt, which no reader knows), times the runs and prints the tables.

Splits: GoEmotions keeps its own train / dev (validation: best epoch and thresholds) / test. RTE has no labelled test
set, so its validation set (the "dev" papers report) is scored once as the held-out split, and the package cuts the
validation rows for the best epoch from the training rows (10 %, stratified by the seed).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from _common import ROOT, base_parser, data_present, header, markdown_table, met

from distilnb import multilabel
from distilnb.baselines import tfidf_one_vs_rest

if TYPE_CHECKING:
    from datasets import DatasetDict

    from distilnb.config import Config

DATASETS = ("goemotions-original", "goemotions-ekman", "rte")
TARGETS = {"goemotions-original": ("f1_macro", 0.46), "goemotions-ekman": ("f1_macro", 0.60), "rte": ("accuracy", 0.60)}
MULTI_COLUMNS = ["dataset", "method", "threshold", "micro-F1", "macro-F1", "samples-F1", "subset accuracy",
                 "Hamming loss", "wall s"]
PAIR_COLUMNS = ["dataset", "method", "accuracy", "macro-F1", "wall s"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Return the command-line options."""
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm", help="a model as distilnb's Config takes it: 'minilm' (the "
                                                          "offline profile's pretrained MiniLM-L6), 'tiny', a folder")
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated, from: " + ", ".join(DATASETS))
    parser.add_argument("--tfidf-only", action="store_true", help="the baselines only (seconds, not hours)")
    parser.add_argument("--epochs", type=float, default=3.0, help="maximum epochs (the best by validation is kept)")
    parser.add_argument("--max-length", type=int, default=128, help="tokens kept per text (per pair for RTE)")
    parser.add_argument("--learning-rate", type=float, default=None, help="default: distilnb's, scaled to the width")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--class-weights", action="store_true",
                        help="Config.class_weights: each label's positives weighted (BCE pos_weight), or each class")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="where the run folders go (<dataset>/model is each fine-tuned classifier); default: a "
                             "temporary folder, removed after")
    args = parser.parse_args(argv)
    if args.smoke:
        args.model, args.epochs = "tiny", 1.0
    return args


# ---------------------------------------------------------------- the files, as the shared data holds them


def goemotions_frames(folder: Path, taxonomy: str) -> dict[str, pd.DataFrame]:
    """Return GoEmotions' train/validation/test as frames of text and label (a list of label names per row)."""
    root = folder / "goemotions" / taxonomy
    names = (root / "labels.txt").read_text().split()
    frames = {}
    for split, file in (("train", "train"), ("validation", "dev"), ("test", "test")):
        frame = pd.read_csv(root / f"{file}.tsv", sep="\t", header=None, names=["text", "ids", "id"],
                            quoting=csv.QUOTE_NONE, dtype=str, keep_default_na=False)
        labels = [[names[int(i)] for i in ids.split(",")] for ids in frame["ids"]]
        frames[split] = pd.DataFrame({"text": frame["text"], "label": labels})
    return frames


def rte_frames(folder: Path) -> dict[str, pd.DataFrame]:
    """Return RTE's training pairs, and its validation pairs as the held-out test split."""
    return {split: pd.read_json(folder / "rte" / f"{file}.jsonl", lines=True)
            for split, file in (("train", "train"), ("test", "val"))}


def write_smoke_data(folder: Path, rows: int = 240) -> Path:
    """Write the project's own multi-label and pair files in GoEmotions' and RTE's formats under folder; return it."""
    tickets = pd.read_csv(ROOT / "data" / "support_tickets_multilabel.csv").head(rows)
    names = sorted({name for cell in tickets["labels"] for name in cell.split(";")})
    cuts = {"train": tickets[: rows // 2], "dev": tickets[rows // 2: 3 * rows // 4], "test": tickets[3 * rows // 4:]}
    for taxonomy in ("original", "ekman"):
        root = folder / "goemotions" / taxonomy
        root.mkdir(parents=True)
        (root / "labels.txt").write_text("\n".join(names) + "\n")
        for file, part in cuts.items():
            ids = [",".join(str(names.index(name)) for name in cell.split(";")) for cell in part["labels"]]
            pd.DataFrame({"text": part["text"], "ids": ids, "id": range(len(part))}).to_csv(
                root / f"{file}.tsv", sep="\t", header=False, index=False, quoting=csv.QUOTE_NONE)
    pairs = pd.read_csv(ROOT / "data" / "ticket_pairs.csv").head(rows)
    entailment = pairs["label"].map({"same_team": "entailment", "different_team": "not_entailment"})
    rte = pd.DataFrame({"premise": pairs["first"], "hypothesis": pairs["second"], "label": entailment,
                        "idx": range(len(pairs))})
    (folder / "rte").mkdir()
    for file, part in (("train", rte[: 3 * rows // 4]), ("val", rte[3 * rows // 4:])):
        part.to_json(folder / "rte" / f"{file}.jsonl", orient="records", lines=True)
    return folder


# ---------------------------------------------------------------- runs through the package


def config(args: argparse.Namespace, dataset: Path, name: str, **settings: Any) -> Config:
    """Return the offline profile's Config of one dataset: the command line's recipe, a run folder of its own."""
    from distilnb.config import Config

    return Config.from_env(profile="offline", model=args.model, dataset=str(dataset), epochs=args.epochs,
                           max_length=args.max_length, learning_rate=args.learning_rate, batch_size=args.batch_size,
                           seed=args.seed, class_weights=args.class_weights or None, output_root=str(args.work_dir),
                           run_name=name, **settings)


def fine_tune(cfg: Config, frames: dict[str, pd.DataFrame], splits: DatasetDict,
              held_out: tuple[str, ...]) -> tuple[dict, float]:
    """Return ({split: Evaluation by the saved model}, seconds of fine-tuning) of a whole run, distilnb.run.train,
    on the frames read here."""
    from distilnb.metrics import evaluate_split
    from distilnb.predict import Predictor
    from distilnb.run import train

    with contextlib.redirect_stdout(sys.stderr):  # the Trainer prints its logs on stdout; keep stdout for the report
        start = time.perf_counter()
        folder = train(cfg, frames=frames).model_dir
        seconds = time.perf_counter() - start
        predictor = Predictor.from_folder(folder)
        return {split: evaluate_split(predictor, splits, split) for split in held_out}, seconds


def threshold_rows(dataset: str, method: str, truth: dict, probabilities: dict, names: list[str],
                   seconds: float, kept: str | None = None) -> list[dict]:
    """Return test-split rows at 0.5, at one global threshold and at per-label thresholds, both tuned on validation
    (multilabel.choose_thresholds, as distilnb.run.train tunes them); the rule kept (`kept`, else the one
    choose_thresholds prefers) is marked."""
    record = multilabel.choose_thresholds(truth["validation"], probabilities["validation"], names)
    kept = kept or record["rule"]
    rules = {"0.5": 0.5, "global": record["global"], "per label": np.asarray(list(record["per_label"].values()))}
    rows = []
    for rule, limits in rules.items():
        scores = multilabel.scores(truth["test"], multilabel.apply_thresholds(probabilities["test"], limits))
        shown = f"{rule} {limits:.2f}" if rule == "global" else rule
        rows.append({"dataset": dataset, "method": method, "threshold": shown + (" (kept)" if rule == kept else ""),
                     "micro-F1": scores["f1_micro"], "macro-F1": scores["f1_macro"],
                     "samples-F1": scores["f1_samples"], "subset accuracy": scores["subset_accuracy"],
                     "Hamming loss": scores["hamming_loss"], "wall s": seconds, "kept": rule == kept})
    return rows


def goemotions_rows(args: argparse.Namespace, taxonomy: str) -> tuple[list[dict], dict]:
    """Return (rows, the fine-tuned run's settings) of one GoEmotions taxonomy: TF-IDF one-vs-rest, the encoder."""
    from distilnb.data import label_names, prepare_splits
    from distilnb.folder import THRESHOLDS_FILE

    dataset = f"goemotions-{taxonomy}"
    cfg = config(args, args.data / "goemotions" / taxonomy, dataset)
    frames = goemotions_frames(args.data, taxonomy)
    splits, _ = prepare_splits(frames, cfg)
    names = label_names(splits)
    truth = {split: np.asarray(splits[split]["labels"], dtype=float) for split in ("validation", "test")}
    start = time.perf_counter()
    found = tfidf_one_vs_rest(splits["train"]["text"], np.asarray(splits["train"]["labels"]),
                                         [*splits["validation"]["text"], *splits["test"]["text"]], args.seed)
    tfidf = dict(zip(("validation", "test"), np.split(found, [len(splits["validation"])]), strict=True))
    rows = threshold_rows(dataset, "TF-IDF one-vs-rest", truth, tfidf, names, time.perf_counter() - start)
    if args.tfidf_only:
        return rows, {}
    evaluations, seconds = fine_tune(cfg, frames, splits, ("validation", "test"))
    probabilities = {split: multilabel.sigmoid(found.logits) for split, found in evaluations.items()}
    truth = {split: found.labels for split, found in evaluations.items()}  # in the model's label order
    model_names = evaluations["test"].label_names
    saved = json.loads((cfg.paths.model / THRESHOLDS_FILE).read_text())["rule"]  # what evaluate and predict apply
    rows += threshold_rows(dataset, f"{args.model} fine-tuned", truth, probabilities, model_names, seconds, saved)
    return rows, settings(cfg, len(splits["train"]))


def settings(cfg: Config, train_rows: int) -> dict:
    """Return the recipe a fine-tuned row was trained with."""
    return {"learning rate": cfg.learning_rate or "scaled to width", "batch": cfg.batch_size,
            "class weights": cfg.class_weights,
            "max_length": cfg.max_length, "max epochs": cfg.epochs, "train rows": train_rows}


def rte_rows(args: argparse.Namespace) -> tuple[list[dict], dict]:
    """Return (rows, the fine-tuned run's settings) for RTE: majority, TF-IDF pairs, then the encoder."""
    from distilnb.baselines import baseline_scores
    from distilnb.data import prepare_splits

    cfg = config(args, args.data / "rte", "rte", text_column="premise", text_pair_column="hypothesis")
    frames = rte_frames(args.data)
    splits, _ = prepare_splits(frames, cfg)

    def row(method: str, scores: dict, seconds: float) -> dict:
        return {"dataset": "rte", "method": method, "accuracy": scores["accuracy"], "macro-F1": scores["f1_macro"],
                "wall s": seconds}

    start = time.perf_counter()
    rows = [row(method, scores, time.perf_counter() - start)
            for method, scores in baseline_scores(splits, "test", args.seed).items()]
    if args.tfidf_only:
        return rows, {}
    evaluations, seconds = fine_tune(cfg, frames, splits, ("test",))
    return [*rows, row(f"{args.model} fine-tuned", evaluations["test"].scores, seconds)], settings(
        cfg, len(splits["train"]))


def target_rows(rows: list[dict]) -> list[dict]:
    """Return one row per target a fine-tuned result answers: the target, the measured value, met or missed."""
    checks = []
    for row in rows:
        if "fine-tuned" not in row["method"] or not row.get("kept", row["dataset"] == "rte"):
            continue
        metric, goal = TARGETS[row["dataset"]]
        value = row["macro-F1" if metric == "f1_macro" else "accuracy"]
        where = "validation (dev) accuracy" if row["dataset"] == "rte" else "test macro-F1"
        checks.append({"target": f"{row['dataset']}: {where} >= {goal}", "measured": value, "result": met(value, goal)})
    return checks


def main(argv: list[str] | None = None) -> int:
    """Print the report; return the exit status."""
    from distilnb.models import set_threads

    args = parse_args(argv)
    names = [name.strip() for name in args.datasets.split(",") if name.strip()]
    unknown = set(names) - set(DATASETS)
    if unknown:
        raise SystemExit(f"Unknown dataset: {sorted(unknown)}; choose from {', '.join(DATASETS)}.")
    set_threads(args.threads)
    temporary = args.work_dir is None
    work_dir = args.work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="distilnb-multilabel-pairs-"))
    multi, pair, runs = [], [], {}
    try:  # from here on: a temporary folder is removed however the run ends, a skip included
        if args.smoke:
            args.data = write_smoke_data(work_dir / "data")
        folders = {name: "rte" if name == "rte" else "goemotions" for name in names}
        names = [name for name in names if data_present(args.data, folders[name])]
        if not names:
            return 0
        for name in names:
            found, runs[name] = rte_rows(args) if name == "rte" else goemotions_rows(args, name.split("-")[1])
            (pair if name == "rte" else multi).extend(found)
    finally:
        if temporary:
            shutil.rmtree(work_dir, ignore_errors=True)
    print(header("Several labels and pairs of texts (real_multilabel_pairs.py)", {
        "data": "project files in GoEmotions' and RTE's formats (--smoke)" if args.smoke else str(args.data),
        "recipe": f"distilnb's default through distilnb.run.train: at most {args.epochs:g} epochs, best by validation "
                  f"macro-F1; max_length {args.max_length}, batch {args.batch_size}",
        "runs": json.dumps(runs),
        "wall s": "a fine-tuned row: tokenizing, training, per-epoch validation and saving; a baseline row: "
                  "fitting and scoring (RTE's two baselines together, GoEmotions' one fit for its three rows)",
    }))
    if multi:
        print("### GoEmotions, test split (thresholds tuned on dev)\n")
        print(markdown_table(multi, MULTI_COLUMNS))
    if pair:
        print("### RTE, validation set (dev) scored once\n")
        print(markdown_table(pair, PAIR_COLUMNS))
    checks = target_rows(multi + pair)
    print("### Targets\n")
    print(markdown_table(checks) if checks else "(no fine-tuned result to hold against a target)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
