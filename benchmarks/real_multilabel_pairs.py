"""Real multi-label and pair data through distilnb.multilabel / distilnb.pairs: GoEmotions (28 and 7 labels) and RTE.

    OMP_NUM_THREADS=1 python benchmarks/real_multilabel_pairs.py --data ../shared/data --datasets rte
    python benchmarks/real_multilabel_pairs.py --data ../shared/data --tfidf-only

Each dataset is scored with TF-IDF (one-vs-rest logistic regression for GoEmotions; TF-IDF of each text and their
overlap for RTE) and, unless --tfidf-only, with the offline encoder (MiniLM) fine-tuned by the Trainer. Thresholds are
tuned on the dev split (one global, one per label) and the test split is scored once. Prints one JSON line per result.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from distilnb import multilabel, pairs

TARGETS = {"goemotions-original": "test macro-F1 >= 0.46", "goemotions-ekman": "test macro-F1 >= 0.60",
           "rte": "validation accuracy >= 0.60"}


def read_goemotions(folder: Path, taxonomy: str) -> tuple[dict[str, multilabel.MultiLabelData], list[str]]:
    """Return the train/dev/test splits of GoEmotions as multi-hot data, and the label names in id order."""
    root = folder / "goemotions" / taxonomy
    names = (root / "labels.txt").read_text().split()
    splits = {}
    for split in ("train", "dev", "test"):
        frame = pd.read_csv(root / f"{split}.tsv", sep="\t", header=None, names=["text", "ids", "id"],
                            quoting=csv.QUOTE_NONE, dtype=str, keep_default_na=False)
        cells = [[names[int(i)] for i in ids.split(",")] for ids in frame["ids"]]
        splits[split] = multilabel.encode(frame["text"].tolist(), cells, label_names=names)
    return splits, names


def read_rte(folder: Path) -> dict[str, pd.DataFrame]:
    """Return RTE's train and validation pairs (label 1 = not_entailment, as the files name it)."""
    frames = {split: pd.read_json(folder / "rte" / f"{split}.jsonl", lines=True) for split in ("train", "val")}
    for frame in frames.values():
        frame["label_id"] = (frame["label"] != "entailment").astype(int)
    return frames


def report(dataset: str, method: str, scores: dict, seconds: float, **extra) -> None:
    print(json.dumps({"dataset": dataset, "method": method, "target": TARGETS[dataset], "seconds": round(seconds),
                      **{key: round(value, 4) for key, value in scores.items()}, **extra}), flush=True)


def threshold_results(dataset: str, method: str, splits, dev_p: np.ndarray, test_p: np.ndarray, seconds: float) -> None:
    """Report the test scores at 0.5, at the global threshold and at per-label thresholds tuned on dev."""
    rules = {"0.5": 0.5, "global": multilabel.tune_global_threshold(splits["dev"].matrix, dev_p),
             "per label": multilabel.tune_label_thresholds(splits["dev"].matrix, dev_p)}
    for rule, threshold in rules.items():
        predicted = multilabel.apply_thresholds(test_p, threshold)
        report(dataset, f"{method}, threshold {rule}", multilabel.scores(splits["test"].matrix, predicted), seconds)


def fine_tune(texts, labels, eval_sets, *, model_name: str, multi: bool, epochs: float, max_length: int,
              learning_rate: float, seed: int = 42):
    """Fine-tune the encoder (the chapter 06 recipe); return (logits, labels) per evaluation set, in one order."""
    from datasets import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    tokenizer = AutoTokenizer.from_pretrained(model_name)
    second = texts[1] if isinstance(texts, tuple) else None

    def dataset(parts, target):
        columns = {"a": list(parts[0]), "b": list(parts[1])} if isinstance(parts, tuple) else {"a": list(parts)}
        data = Dataset.from_dict({**columns, "labels": target})
        encode = (lambda batch: tokenizer(batch["a"], batch["b"], truncation="longest_first", max_length=max_length)) \
            if second is not None else (lambda batch: tokenizer(batch["a"], truncation=True, max_length=max_length))
        return data.map(encode, batched=True, remove_columns=list(columns))

    num_labels = len(labels[0]) if multi else 2
    model = AutoModelForSequenceClassification.from_pretrained(
        model_name, num_labels=num_labels, problem_type="multi_label_classification" if multi else None)
    args = TrainingArguments(output_dir="/tmp/distilnb-bench-multi", num_train_epochs=epochs,
                             learning_rate=learning_rate, per_device_train_batch_size=32,
                             per_device_eval_batch_size=128,
                             warmup_steps=0.1, weight_decay=0.01, eval_strategy="no", save_strategy="no",
                             logging_steps=50, report_to="none", seed=seed, disable_tqdm=True,
                             train_sampling_strategy="group_by_length")
    trainer = Trainer(model=model, args=args, train_dataset=dataset(texts, labels),
                      data_collator=DataCollatorWithPadding(tokenizer))
    trainer.train()
    outputs = [trainer.predict(dataset(parts, target)) for parts, target in eval_sets]
    return [(output.predictions, output.label_ids) for output in outputs]  # length-grouped order, labels beside


def run_goemotions(folder: Path, taxonomy: str, args) -> None:
    dataset = f"goemotions-{taxonomy}"
    splits, _ = read_goemotions(folder, taxonomy)
    start = time.perf_counter()
    dev_p, test_p = np.split(multilabel.tfidf_one_vs_rest(splits["train"].texts, splits["train"].matrix,
                                                          splits["dev"].texts + splits["test"].texts),
                             [len(splits["dev"].texts)])
    threshold_results(dataset, "TF-IDF one-vs-rest", splits, dev_p, test_p, time.perf_counter() - start)
    if args.tfidf_only:
        return
    start = time.perf_counter()
    rows = slice(None, args.train_rows)
    (dev_l, dev_y), (test_l, test_y) = fine_tune(splits["train"].texts[rows], splits["train"].matrix[rows].tolist(),
                              [(splits[s].texts, splits[s].matrix.tolist()) for s in ("dev", "test")],
                              model_name=args.model, multi=True, epochs=args.epochs, max_length=args.max_length,
                              learning_rate=args.learning_rate)
    ordered = {"dev": multilabel.MultiLabelData([], dev_y, []), "test": multilabel.MultiLabelData([], test_y, [])}
    threshold_results(dataset, "MiniLM fine-tuned", ordered, multilabel.sigmoid(dev_l), multilabel.sigmoid(test_l),
                      time.perf_counter() - start)


def run_rte(folder: Path, args) -> None:
    from sklearn.metrics import accuracy_score, f1_score

    frames = read_rte(folder)
    train, val = frames["train"], frames["val"]
    seen = pairs.seen_pairs(train["premise"], train["hypothesis"], val["premise"], val["hypothesis"])

    def scores(predicted, truth=None):
        truth = val["label_id"] if truth is None else truth
        return {"accuracy": accuracy_score(truth, predicted), "f1_macro": f1_score(truth, predicted, average="macro")}

    majority = np.full(len(val), train["label_id"].mode()[0])
    report("rte", "majority", scores(majority), 0, seen_pairs=len(seen))
    start = time.perf_counter()
    overlap = pairs.tfidf_pair_probabilities(train["premise"], train["hypothesis"], train["label_id"], val["premise"],
                                             val["hypothesis"])
    report("rte", "TF-IDF + overlap", scores((overlap >= 0.5).astype(int)), time.perf_counter() - start)
    if args.tfidf_only:
        return
    start = time.perf_counter()
    pair = (train["premise"].tolist(), train["hypothesis"].tolist())
    ((logits, truth),) = fine_tune(pair, train["label_id"].tolist(),
                          [((val["premise"].tolist(), val["hypothesis"].tolist()), val["label_id"].tolist())],
                          model_name=args.model, multi=False, epochs=args.epochs, max_length=args.max_length,
                          learning_rate=args.learning_rate)
    report("rte", "MiniLM fine-tuned", scores(logits.argmax(axis=-1), truth), time.perf_counter() - start,
           epochs=args.epochs, max_length=args.max_length)


def main(argv: list[str] | None = None) -> None:
    from distilnb import Config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--datasets", default="goemotions-original,goemotions-ekman,rte")
    parser.add_argument("--tfidf-only", action="store_true")
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--train-rows", type=int, default=None, help="train on the first N rows only (CPU time)")
    args = parser.parse_args(argv)
    args.model = Config.from_env(profile="offline").resolved_model
    for name in args.datasets.split(","):
        if name == "rte":
            run_rte(args.data, args)
        else:
            run_goemotions(args.data, name.split("-")[1], args)


if __name__ == "__main__":
    main()
