"""Inference throughput: pipeline one text at a time, pipeline batched, distilnb's Predictor and its int8 path."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from _common import (EMOTION_LABELS, REAL_SIZE, architecture, base_parser, data_present, emotion_config, header,
                     markdown_table, median, met, progress, smoke_config)

ONE_BY_ONE, BATCHED, PREDICTOR, INT8 = "pipeline, one text at a time", "pipeline, batch_size={b}", \
    "distilnb Predictor (batch {b}, length-sorted)", "distilnb Predictor, int8"
NOT_YET = "n/a (not implemented yet)"
COLUMNS = ["method", "examples/s", "x one-by-one", "x batched pipeline", "label agreement", "max prob diff",
           "distinct labels", "s per pass (median)"]
Scores = dict[str, float]  # one text's probability per class
Runner = Callable[[list[str]], list[Scores]]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Return the command-line options."""
    parser = base_parser(__doc__)
    parser.add_argument("--model", default=REAL_SIZE,
                        help=f"'{REAL_SIZE}' (DistilBertConfig() defaults, random weights, saved to a temporary folder "
                             "with the real tokenizer) or a model folder (its head is sized for the labels if it has none)")
    parser.add_argument("--examples", type=int, default=500, help="emotion test texts to classify")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="rounds; each runs all methods, in rotated order")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.smoke:
        args.model, args.examples, args.batch_size, args.rounds = smoke_config().resolved_model, 12, 4, 1
    return args


def load_texts(args: argparse.Namespace) -> tuple[list[str], list[str]] | None:
    """Return (sampled test texts, label names): emotion test, or the sample data with --smoke; None to skip."""
    from distilnb import data

    if not args.smoke and not data_present(args.data, "emotion"):
        return None
    splits, _ = data.load_splits(smoke_config() if args.smoke else emotion_config(args.data))
    texts = list(splits["test"]["text"])
    rows = np.random.default_rng(args.seed).choice(len(texts), size=min(args.examples, len(texts)), replace=False)
    return [texts[i] for i in rows], data.label_names(splits)


def save_model(model: str, label_names: list[str], folder: Path, seed: int) -> Path:
    """Return a folder holding a classifier and its tokenizer: random real-size DistilBERT, or the given model's."""
    from transformers import DistilBertForSequenceClassification

    from distilnb.smoke import build_tokenizer
    from distilnb.train import load_model

    torch.manual_seed(seed)
    if model == REAL_SIZE:
        network = DistilBertForSequenceClassification(architecture(model, label_names))
    else:
        network = load_model(model, label_names)
    network.save_pretrained(folder, safe_serialization=True)
    build_tokenizer().save_pretrained(folder)
    return folder


def int8_predictor(predictor):
    """Return (predictor.quantized(), distilnb's int8 path, or None; a note on how it was built or why it is missing)."""
    if not callable(getattr(predictor, "quantized", None)):
        return None, NOT_YET
    start = time.perf_counter()
    try:
        quantized = predictor.quantized()
    except ImportError as error:  # its optional packages (ONNX Runtime) are not installed
        return None, f"n/a ({error})"
    built = time.perf_counter() - start
    return quantized, f"Predictor.quantized() -> {type(quantized.model).__name__}, built in {built:.1f} s (not timed below)"


def runners(folder: Path, batch_size: int) -> tuple[dict[str, Runner], str]:
    """Return ({method: function from texts to class probabilities} for every method available, the int8 note)."""
    from transformers import pipeline

    from distilnb.predict import Predictor

    pipe = pipeline("text-classification", model=str(folder), tokenizer=str(folder), device="cpu")
    predictor = Predictor.from_folder(folder, batch_size=batch_size, on="cpu")
    # top_k=None: every class's score, so agreement can be checked beyond the top label.
    methods: dict[str, Runner] = {
        ONE_BY_ONE: lambda texts: [scores_of(pipe(text, top_k=None)) for text in texts],
        BATCHED.format(b=batch_size): lambda texts: [scores_of(row) for row in pipe(texts, top_k=None, batch_size=batch_size)],
        PREDICTOR.format(b=batch_size): lambda texts: [row["scores"] for row in predictor.predict(texts, progress=False)],
    }
    quantized, note = int8_predictor(predictor)
    if quantized is not None:
        methods[INT8] = lambda texts: [row["scores"] for row in quantized.predict(texts, progress=False)]
    return methods, note


def scores_of(ranked: list[dict]) -> Scores:
    """Return {label: score} from the pipeline's list of {label, score} dicts."""
    return {entry["label"]: entry["score"] for entry in ranked}


def timed(methods: dict[str, Runner], texts: list[str], rounds: int) -> tuple[dict[str, float], dict[str, list[Scores]]]:
    """Return each method's median seconds over the rounds and its class probabilities per text."""
    names = list(methods)
    for name in names:  # untimed warm-up: first calls pay for lazy initialisation and allocator growth
        methods[name](texts[:4])
    seconds: dict[str, list[float]] = {name: [] for name in names}
    scores: dict[str, list[Scores]] = {}
    for round_ in range(rounds):
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:  # rotate who goes first
            progress(f"round {round_ + 1}/{rounds}: {name}")
            start = time.perf_counter()
            scores[name] = methods[name](texts)
            seconds[name].append(time.perf_counter() - start)
    return {name: median(values) for name, values in seconds.items()}, scores


def agreement(scores: list[Scores], reference: list[Scores]) -> dict[str, float | str | int]:
    """Return the share of equal top labels, the largest probability difference and how many labels were predicted."""
    names = sorted(reference[0])
    ours, theirs = (np.array([[row[name] for name in names] for row in rows]) for rows in (scores, reference))
    return {"label agreement": float(np.mean(ours.argmax(1) == theirs.argmax(1))),
            "max prob diff": f"{np.abs(ours - theirs).max():.1e}", "distinct labels": len(set(ours.argmax(1)))}


def table(seconds: dict[str, float], scores: dict[str, list[Scores]], n: int, batch_size: int, int8: str) -> list[dict]:
    """Return one row per method (the int8 row marked n/a, with the reason, when it could not run)."""
    reference, batched = seconds[ONE_BY_ONE], seconds[BATCHED.format(b=batch_size)]
    rows = [{"method": name, "examples/s": n / s, "x one-by-one": reference / s, "x batched pipeline": batched / s,
             **agreement(scores[name], scores[ONE_BY_ONE]), "s per pass (median)": s} for name, s in seconds.items()]
    if INT8 not in seconds:
        rows.append({"method": INT8, **{column: int8 for column in COLUMNS[1:]}})
    return rows


def targets(rows: list[dict], batch_size: int) -> list[dict]:
    """Return one row per target: the target, the measured speed-up and whether it was met."""
    by_name = {row["method"]: row for row in rows}
    predictor, int8 = by_name[PREDICTOR.format(b=batch_size)], by_name[INT8]
    checks = [("Predictor / one-by-one pipeline", predictor["x one-by-one"], 1.7),
              ("Predictor / batched pipeline", predictor["x batched pipeline"], 1.9),
              ("int8 / one-by-one pipeline", int8["x one-by-one"], 7.0)]
    return [{"target": f"{name} >= {goal}", "measured": value,
             "result": met(value, goal) if isinstance(value, float) else value} for name, value, goal in checks]


def main(argv: list[str] | None = None) -> int:
    """Print the inference-speed report; return the exit status."""
    args = parse_args(argv)
    loaded = load_texts(args)
    if loaded is None:
        return 0
    torch.set_num_threads(args.threads)
    texts, label_names = loaded
    with tempfile.TemporaryDirectory(prefix="distilnb-bench-") as tmp:
        folder = save_model(args.model, label_names or EMOTION_LABELS, Path(tmp), args.seed)
        methods, int8 = runners(folder, args.batch_size)
        seconds, scores = timed(methods, texts, args.rounds)
    rows = table(seconds, scores, len(texts), args.batch_size, int8)
    print(header("Inference throughput (inference_speed.py)", {
        "model": f"{args.model} as DistilBertForSequenceClassification ({len(label_names)} labels, random head), "
                 "saved with the real distilbert-base-uncased tokenizer to a temporary folder, fp32 on the CPU",
        "data": f"{len(texts)} texts sampled from {'data/support_tickets.csv (smoke)' if args.smoke else 'emotion test'} "
                f"(seed {args.seed})",
        "timing": f"{args.rounds} round(s), methods rotated each round, one untimed warm-up call each; median seconds "
                  "per pass over all texts, tokenization included",
        "int8": int8,
        "agreement": "with the one-by-one pipeline: share of equal top labels, largest difference of any class "
                     "probability, and distinct top labels predicted (a random-weight model may predict one class for "
                     "every text, making label agreement trivial: the probability difference is the sharper check)",
    }))
    print(f"### Speed on {len(texts)} texts\n")
    print(markdown_table(rows, COLUMNS))
    print("### Targets\n")
    print(markdown_table(targets(rows, args.batch_size)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
