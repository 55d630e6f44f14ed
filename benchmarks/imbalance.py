"""Imbalanced labels: the default recipe against class_weights=True, on emotion cut so that one class dominates.

The data are built from the shared emotion files (read by distilnb.data): in every split one class (joy, the commonest)
keeps a fixed share of the rows (74 % by default) and the other classes share the rest in their natural proportions.
Both settings train through distilnb.run.train on the same files and are scored by distilnb.metrics on the
test split, beside the majority class and TF-IDF + logistic regression.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _common import base_parser, data_present, header, load_splits, markdown_table, progress
from real_learning import fine_tune, history

if TYPE_CHECKING:
    import pandas as pd
    from datasets import DatasetDict

COLUMNS = ["model", "epochs", "class_weights", "accuracy", "macro-F1", "weighted F1", "best validation macro-F1",
           "wall s"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Return the command-line options."""
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm", help="a model name as distilnb's Config takes it")
    parser.add_argument("--share", type=float, default=0.74, help="share of the dominant class in every split")
    parser.add_argument("--train-rows", type=int, default=3000, help="training rows of the built dataset")
    parser.add_argument("--epochs", default="1,2", help="comma-separated maximum epochs; each is run both ways")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="where the built data and the run folders go (default: a temporary folder, removed)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.model, args.train_rows, args.epochs = "tiny", 120, "1"
    return args


def split_counts(available: pd.Series, major: str, share: float, size: int) -> dict[str, int]:
    """Return rows per class for one split: `share` of `size` for the major class, the rest in natural proportions."""
    size = min(size, int(available[major] / share))  # the major class's rows bound the split's size
    kept = round(share * size)
    minor = available.drop(major)
    rest = (minor / minor.sum() * (size - kept)).round().clip(lower=2)
    return {major: kept, **{label: int(min(n, available[label])) for label, n in rest.items()}}


def imbalanced_frames(splits: DatasetDict, names: list[str], share: float, train_rows: int,
                      seed: int) -> dict[str, pd.DataFrame]:
    """Return {split: text/label frame} with the commonest training class at `share` of every split."""
    import pandas as pd

    frames = {split: pd.DataFrame({"text": list(rows["text"]), "label": [names[i] for i in rows["label"]]})
              for split, rows in splits.items()}
    major = frames["train"]["label"].value_counts().idxmax()
    built = {}
    for split, frame in frames.items():
        size = train_rows if split == "train" else max(train_rows // 3, 50)
        counts = split_counts(frame["label"].value_counts(), major, share, size)
        parts = [frame[frame["label"] == label].sample(n=n, random_state=seed) for label, n in counts.items()]
        built[split] = pd.concat(parts).sample(frac=1, random_state=seed).reset_index(drop=True)
    return built


def write_dataset(frames: dict[str, pd.DataFrame], folder: Path) -> Path:
    """Write train.csv, val.csv and test.csv (text,label) into folder, a dataset distilnb reads as it is; return it."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"train": "train.csv", "validation": "val.csv", "test": "test.csv"}
    for split, frame in frames.items():
        frame.to_csv(folder / files[split], index=False)
    return folder


def run_row(args: argparse.Namespace, folder: Path, work_dir: Path, epochs: float, weighted: bool,
            splits: DatasetDict) -> dict[str, Any]:
    """Return the test-set row of one fine-tuning run through distilnb.train on the built dataset."""
    from distilnb.config import Config, field_types
    from distilnb.metrics import evaluate_split
    from distilnb.predict import Predictor

    extra = {"keep_checkpoints": True} if "keep_checkpoints" in field_types() else {}
    cfg = Config.from_env(profile="offline", model=args.model, dataset=str(folder), epochs=epochs,
                          class_weights=weighted, batch_size=32, max_length=128, seed=args.seed,
                          output_root=str(work_dir), run_name=f"e{epochs:g}-{'weighted' if weighted else 'default'}",
                          **extra)
    progress(f"fine-tuning {cfg.model}, at most {epochs:g} epochs, class_weights={weighted}")
    with contextlib.redirect_stdout(sys.stderr):  # the Trainer prints its logs on stdout; keep stdout for the report
        start = time.perf_counter()
        model = fine_tune(cfg)
        seconds = time.perf_counter() - start
        scores = evaluate_split(Predictor.from_folder(model), splits, "test").scores
    validation = max((r["eval_f1_macro"] for r in history(cfg)), default=float("nan"))
    return {"model": f"{args.model}, default recipe", "epochs": epochs, "class_weights": weighted,
            "accuracy": scores["accuracy"], "macro-F1": scores["f1_macro"], "weighted F1": scores["f1_weighted"],
            "best validation macro-F1": validation, "wall s": seconds}


def baseline_rows(splits: DatasetDict, names: list[str]) -> list[dict[str, Any]]:
    """Return test-set rows of the majority class and TF-IDF + logistic regression (distilnb.baselines)."""
    from distilnb.baselines import majority_baseline, tfidf_baseline

    train, test = splits["train"], splits["test"]
    found = {"majority class": majority_baseline(train["label"], test["label"], names),
             "TF-IDF + logistic regression": tfidf_baseline(train["text"], train["label"], test["text"],
                                                            test["label"], names)}
    return [{"model": title, "epochs": "-", "class_weights": "-", "accuracy": s["accuracy"], "macro-F1": s["f1_macro"],
             "weighted F1": s["f1_weighted"], "best validation macro-F1": "-", "wall s": "-"}
            for title, s in found.items()]


def main(argv: list[str] | None = None) -> int:
    """Print the imbalance report; return the exit status."""
    import shutil

    import torch

    from distilnb.data import class_counts, label_names
    from distilnb.data import load_splits as read_splits

    args = parse_args(argv)
    if not args.smoke and not data_present(args.data, "emotion"):
        return 0
    torch.set_num_threads(args.threads)
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="distilnb-imbalance-"))
    try:
        source, names = load_splits("smoke" if args.smoke else "emotion", args.data)
        folder = write_dataset(imbalanced_frames(source, names, args.share, args.train_rows, args.seed),
                               work_dir / "data")
        from distilnb.config import Config

        splits, _ = read_splits(Config.from_env(profile="offline", dataset=str(folder)))
        built_names = label_names(splits)
        rows = baseline_rows(splits, built_names)
        for epochs in [float(e) for e in args.epochs.split(",") if e.strip()]:
            rows += [run_row(args, folder, work_dir, epochs, weighted, splits) for weighted in (False, True)]
    finally:
        if args.work_dir is None:
            shutil.rmtree(work_dir, ignore_errors=True)
    counts = class_counts(splits)
    print(header("Imbalanced labels (imbalance.py)", {
        "data": f"{'data/support_tickets.csv' if args.smoke else 'emotion'} cut to one class at {args.share:.0%} of "
                f"every split: {({split: int(n) for split, n in counts.sum().items()})} rows",
        "recipe": "distilnb's default (batch 32, max_length 128, early stopping, best epoch by validation macro-F1); "
                  "class_weights=True weighs the loss by scikit-learn's balanced class weights",
    }))
    print("### Rows per class\n")
    print(markdown_table(counts.reset_index().to_dict("records")))
    print("### Test-set results\n")
    print(markdown_table(rows, COLUMNS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
