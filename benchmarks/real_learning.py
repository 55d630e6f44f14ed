"""Real learning: a pretrained encoder fine-tuned through distilnb on emotion and SST-2, beside the baselines.

Every number comes from the package: distilnb.data reads, cleans and splits the data, distilnb.run.train
trains (the default recipe, or the usual recipe's settings passed as Config fields), distilnb.baselines and
distilnb.metrics score on the test split. This script only times the runs and prints the tables.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _common import DATASETS, base_parser, data_present, dataset_config, header, markdown_table, met, progress

if TYPE_CHECKING:
    from datasets import DatasetDict

    from distilnb.config import Config

# The usual recipe (chapter 2 of "NLP with Transformers": lr 2e-5, batch 64, 2 epochs, no warm-up) as Config settings.
# It runs through the same Trainer, so it keeps distilnb's length-grouped batches and best-epoch selection: what
# differs is the learning rate, batch size, warm-up and epochs.
RECIPES: dict[str, tuple[str, dict[str, Any]]] = {
    "default": ("distilnb default recipe", {}),
    "usual": ("the usual recipe, NLPwT ch. 2", {"learning_rate": 2e-5, "batch_size": 64, "epochs": 2.0, "warmup": 0.0}),
}
COLUMNS = ["dataset", "model", "accuracy", "macro-F1", "weighted F1", "epochs", "wall s", "train examples"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Return the command-line options."""
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm",
                        help="a model name as distilnb's Config takes it: 'minilm' (the offline profile's pretrained "
                             "MiniLM-L6), 'tiny', a folder or a Hub id")
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated, from: " + ", ".join(DATASETS))
    parser.add_argument("--recipes", default="default", help="comma-separated, from: " + ", ".join(RECIPES))
    parser.add_argument("--epochs", type=float, default=3.0,
                        help="maximum epochs of the default recipe (Config's default; early stopping may end sooner)")
    parser.add_argument("--learning-rate", type=float, default=None,
                        help="peak learning rate of the default recipe (default: 5e-5 x 768 / the encoder's width)")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size of the default recipe")
    parser.add_argument("--max-length", type=int, default=128, help="tokens kept per text (longer texts are truncated)")
    parser.add_argument("--max-train", type=int, default=None,
                        help="cap on training examples (Config.max_train_examples: a stratified subset)")
    parser.add_argument("--class-weights", action="store_true", help="Config.class_weights: balanced loss weights")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="where the run folders go (<dataset>-<recipe>/model is each fine-tuned classifier); "
                             "default: a temporary folder, removed after")
    args = parser.parse_args(argv)
    if args.smoke:
        args.model, args.datasets, args.max_train, args.epochs = "tiny", "smoke", 48, 1.0
        args.recipes = "default,usual"
    return args


def settings(args: argparse.Namespace, recipe: str, work_dir: Path, name: str) -> dict[str, Any]:
    """Return the Config settings of one run: the command line's, then the recipe's, in a run folder of its own."""
    from distilnb.config import field_types

    base = {"model": args.model, "epochs": args.epochs, "learning_rate": args.learning_rate, "seed": args.seed,
            "max_train_examples": args.max_train, "class_weights": args.class_weights or None,
            "output_root": str(work_dir), "run_name": f"{name}-{recipe}"}
    if not args.smoke:  # --smoke keeps the smoke profile's length and batch size
        base |= {"batch_size": args.batch_size, "max_length": args.max_length}
    if "keep_checkpoints" in field_types():  # the per-epoch history is read from the last checkpoint's Trainer log
        base["keep_checkpoints"] = True
    return base | RECIPES[recipe][1]


def fine_tune(cfg: Config) -> Path:
    """Return the model folder of a whole run, distilnb.run.train, on cfg's data."""
    from distilnb.run import train

    return train(cfg).model_dir


def history(cfg: Config) -> list[dict]:
    """Return one row per epoch from the last checkpoint's Trainer log ([] when no checkpoint was kept)."""
    from distilnb.train import history_frame, last_checkpoint

    checkpoint = last_checkpoint(cfg.paths.checkpoints)
    if checkpoint is None:
        return []
    log = json.loads((Path(checkpoint) / "trainer_state.json").read_text())["log_history"]
    return history_frame(log).round(4).to_dict("records")


def row(dataset: str, model: str, scores: dict, epochs: Any, seconds: float, train_examples: int) -> dict:
    """Return one results row from distilnb.metrics scores."""
    return {"dataset": dataset, "model": model, "accuracy": scores["accuracy"], "macro-F1": scores["f1_macro"],
            "weighted F1": scores["f1_weighted"], "epochs": epochs, "wall s": seconds,
            "train examples": train_examples}


def baseline_rows(name: str, splits: DatasetDict, names: list[str]) -> list[dict]:
    """Return test-set rows for the majority class and TF-IDF + logistic regression (distilnb.baselines)."""
    from distilnb.baselines import majority_baseline, tfidf_baseline

    train, test = splits["train"], splits["test"]
    runs = {
        "majority class": lambda: majority_baseline(train["label"], test["label"], names),
        "TF-IDF + logistic regression": lambda: tfidf_baseline(train["text"], train["label"], test["text"],
                                                               test["label"], names),
    }
    rows = []
    for title, run in runs.items():
        start = time.perf_counter()
        scores = run()
        rows.append({**row(name, title, scores, "-", time.perf_counter() - start, len(train)), "recipe": title})
    return rows


def fine_tune_row(name: str, recipe: str, cfg: Config, splits: DatasetDict) -> tuple[dict, str]:
    """Return (test-set row, per-epoch history as Markdown) of one recipe run through distilnb.train."""
    from distilnb.metrics import evaluate_split
    from distilnb.predict import Predictor

    progress(f"{name}: fine-tuning {cfg.model} with the {recipe} recipe, {len(splits['train'])} examples, "
             f"at most {cfg.epochs:g} epochs, batch {cfg.batch_size}, max_length {cfg.max_length}")
    with contextlib.redirect_stdout(sys.stderr):  # the Trainer prints its logs on stdout; keep stdout for the report
        start = time.perf_counter()
        folder = fine_tune(cfg)
        seconds = time.perf_counter() - start
        scores = evaluate_split(Predictor.from_folder(folder), splits, "test").scores
    epochs = history(cfg)
    title = f"{RECIPES[recipe][0]} (lr {cfg.learning_rate or 'scaled to width'}, batch {cfg.batch_size})"
    table = f"#### {name}: {title}, per epoch (validated on validation; best epoch by macro-F1 kept)\n\n"
    table += markdown_table(epochs) if epochs else "(no checkpoint kept: no per-epoch history)\n"
    trained = max((r["epoch"] for r in epochs), default=float("nan"))
    return {**row(name, title, scores, trained, seconds, len(splits["train"])), "recipe": recipe}, table


def targets(rows: list[dict]) -> list[dict]:
    """Return one row per target that the rows can answer: the target, the measured value and whether it was met."""
    by = {(r["dataset"], r["recipe"]): r for r in rows}
    checks = []
    for name, goal in (("emotion", 0.93), ("sst2", 0.88)):
        default, tfidf = by.get((name, "default")), by.get((name, "TF-IDF + logistic regression"))
        if default and tfidf:
            checks.append((f"{name}: default recipe test accuracy >= {goal}", default["accuracy"],
                           met(default["accuracy"], goal)))
            checks.append((f"{name}: default recipe accuracy > TF-IDF + LR ({tfidf['accuracy']:.3f})",
                           default["accuracy"], "met" if default["accuracy"] > tfidf["accuracy"] else "missed"))
    return [{"target": target, "measured": value, "result": result} for target, value, result in checks]


def run_dataset(name: str, args: argparse.Namespace, recipes: list[str], work_dir: Path) -> tuple[list, list]:
    """Return (result rows, history tables) of one dataset: its baselines, then each recipe."""
    from distilnb.data import label_names, load_splits

    cfg = dataset_config(name, args.data, **settings(args, recipes[0], work_dir, name))
    splits, _ = load_splits(cfg)  # read and split once; every recipe trains on these splits
    names = label_names(splits)
    rows, tables = baseline_rows(name, splits, names), []
    for recipe in recipes:
        result, table = fine_tune_row(name, recipe, dataset_config(name, args.data,
                                                                   **settings(args, recipe, work_dir, name)), splits)
        rows.append(result)
        tables.append(table)
    return rows, tables


def main(argv: list[str] | None = None) -> int:
    """Print the real-learning report; return the exit status."""
    import shutil

    import torch

    args = parse_args(argv)
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    recipes = [r.strip() for r in args.recipes.split(",") if r.strip()]
    unknown = set(recipes) - set(RECIPES) | set(names) - set(DATASETS) - {"smoke"}
    if unknown:
        raise SystemExit(f"Unknown dataset or recipe: {sorted(unknown)}; see --help.")
    names = [n for n in names if n == "smoke" or data_present(args.data, n)]
    if not names:
        return 0
    torch.set_num_threads(args.threads)
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="distilnb-real-learning-"))
    rows, histories = [], []
    try:
        for name in names:
            found, tables = run_dataset(name, args, recipes, work_dir)
            rows += found
            histories += tables
    finally:
        if args.work_dir is None:
            shutil.rmtree(work_dir, ignore_errors=True)
    print(header("Real learning (real_learning.py)", {
        "model": f"{args.model} through distilnb.run.train (a new classification head)",
        "data": f"{', '.join(names)} read and split by distilnb.data.load_splits; train capped at "
                f"{args.max_train or 'all'}; scores on the test split",
        "recipes": f"default = Config's recipe (batch {args.batch_size}, max_length {args.max_length}, at most "
                   f"{args.epochs:g} epochs, early stopping, best epoch by validation macro-F1); "
                   f"usual = {RECIPES['usual'][1]}",
        "wall s": "fine-tuning: tokenizing, training, per-epoch validation, checkpoints and saving; baselines: fit and "
                  "score",
    }))
    print("### Test-set results\n")
    print(markdown_table(rows, COLUMNS))
    print("### Targets\n")
    print(markdown_table(targets(rows)) if targets(rows) else "(no target applies to the datasets run)\n")
    print("### Training histories\n")
    print("\n".join(histories))
    return 0


if __name__ == "__main__":
    sys.exit(main())
