"""Inference throughput: pipeline one text at a time, pipeline batched, distilnb's Predictor and its int8 path.

With --model-dir FOLDER (a fine-tuned classifier), it measures instead what int8 costs in accuracy: the Predictor in
fp32 and its int8 copy (Predictor.quantized(): ONNX Runtime dynamic int8) on the whole emotion test split, with
accuracy, macro-F1, label agreement, examples/s and the int8/fp32 speed ratio of every round.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from _common import (
    EMOTION_LABELS,
    REAL_SIZE,
    architecture,
    base_parser,
    header,
    markdown_table,
    median,
    met,
    progress,
    texts_for,
    tiny_model,
)

ONE_BY_ONE, BATCHED, PREDICTOR, INT8 = (
    "pipeline, one text at a time",
    "pipeline, batch_size={b}",
    "distilnb Predictor (batch {b}, length-sorted)",
    "distilnb Predictor, int8",
)
COLUMNS = [
    "method",
    "examples/s",
    "x one-by-one",
    "x batched pipeline",
    "label agreement",
    "max prob diff",
    "distinct labels",
    "s per pass (median)",
]
Scores = dict[str, float]  # one text's probability per class
Runner = Callable[[list[str]], list[Scores]]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Return the command-line options."""
    parser = base_parser(__doc__)
    parser.add_argument(
        "--model",
        default=REAL_SIZE,
        help=f"'{REAL_SIZE}' (DistilBertConfig() defaults, random weights, saved to a temporary folder "
        "with the real tokenizer) or a model folder (its head is sized for the labels if it has none)",
    )
    parser.add_argument("--examples", type=int, default=500, help="emotion test texts to classify")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="rounds; each runs all methods, in rotated order")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=None,
        help="a fine-tuned classifier folder: report fp32 vs int8 accuracy, macro-F1, label agreement and "
        "speed on the whole test split instead (--rounds defaults to 5 there)",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.model, args.examples, args.batch_size = tiny_model(), 12, 4
        args.rounds = 2 if args.model_dir else 1
    elif args.model_dir and "--rounds" not in (argv if argv is not None else sys.argv):
        args.rounds = 5
    return args


def load_texts(args: argparse.Namespace) -> tuple[list[str], list[str]] | None:
    """Return (sampled test texts, label names): emotion test, or the sample data with --smoke; None to skip."""
    loaded = texts_for(args, "test")
    if loaded is None:
        return None
    test, names = loaded
    rows = np.random.default_rng(args.seed).choice(
        len(test["text"]), size=min(args.examples, len(test["text"])), replace=False
    )
    return [test["text"][i] for i in rows], names


def save_model(model: str, label_names: list[str], folder: Path, seed: int) -> Path:
    """Return a folder holding a classifier and its tokenizer: random real-size DistilBERT, or the given model's."""
    from transformers import AutoModelForSequenceClassification, DistilBertForSequenceClassification

    from distilnb.local_models import build_tokenizer

    torch.manual_seed(seed)
    if model == REAL_SIZE:
        network = DistilBertForSequenceClassification(architecture(model, label_names))
    else:
        labels = {"id2label": dict(enumerate(label_names)), "label2id": {n: i for i, n in enumerate(label_names)}}
        network = AutoModelForSequenceClassification.from_pretrained(
            model, num_labels=len(label_names), **labels, use_safetensors=True
        )
    network.save_pretrained(folder, safe_serialization=True)
    build_tokenizer().save_pretrained(folder)
    return folder


def int8_predictor(predictor):
    """Return (predictor.quantized(): distilnb's int8 path, a note on how long building it took)."""
    start = time.perf_counter()
    quantized = predictor.quantized()
    built = time.perf_counter() - start
    return (
        quantized,
        f"Predictor.quantized() -> {type(quantized.model).__name__}, built in {built:.1f} s (not timed below)",
    )


def runners(folder: Path, batch_size: int) -> tuple[dict[str, Runner], str]:
    """Return ({method: function from texts to class probabilities} for every method available, the int8 note)."""
    from transformers import pipeline

    from distilnb.predict import Predictor

    pipe = pipeline("text-classification", model=str(folder), tokenizer=str(folder), device="cpu")
    predictor = Predictor.from_folder(folder, batch_size=batch_size, on="cpu")
    # top_k=None: every class's score, so agreement can be checked beyond the top label.
    methods: dict[str, Runner] = {
        ONE_BY_ONE: lambda texts: [scores_of(pipe(text, top_k=None)) for text in texts],
        BATCHED.format(b=batch_size): lambda texts: [
            scores_of(row) for row in pipe(texts, top_k=None, batch_size=batch_size)
        ],
        PREDICTOR.format(b=batch_size): lambda texts: [
            row["scores"] for row in predictor.predict(texts, progress=False)
        ],
    }
    quantized, note = int8_predictor(predictor)
    methods[INT8] = lambda texts: [row["scores"] for row in quantized.predict(texts, progress=False)]
    return methods, note


def scores_of(ranked: list[dict]) -> Scores:
    """Return {label: score} from the pipeline's list of {label, score} dicts."""
    return {entry["label"]: entry["score"] for entry in ranked}


def timed(
    methods: dict[str, Runner], texts: list[str], rounds: int
) -> tuple[dict[str, list[float]], dict[str, list[Scores]]]:
    """Return each method's seconds in every round and its class probabilities per text."""
    names = list(methods)
    for name in names:  # untimed warm-up: first calls pay for lazy initialisation and allocator growth
        methods[name](texts[:4])
    seconds: dict[str, list[float]] = {name: [] for name in names}
    scores: dict[str, list[Scores]] = {}
    for round_ in range(rounds):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:  # rotate who goes first
            progress(f"round {round_ + 1}/{rounds}: {name}")
            start = time.perf_counter()
            scores[name] = methods[name](texts)
            seconds[name].append(time.perf_counter() - start)
    return seconds, scores


def agreement(scores: list[Scores], reference: list[Scores]) -> dict[str, float | str | int]:
    """Return the share of equal top labels, the largest probability difference and how many labels were predicted."""
    names = sorted(reference[0])
    ours, theirs = (np.array([[row[name] for name in names] for row in rows]) for rows in (scores, reference))
    return {
        "label agreement": float(np.mean(ours.argmax(1) == theirs.argmax(1))),
        "max prob diff": f"{np.abs(ours - theirs).max():.1e}",
        "distinct labels": len(set(ours.argmax(1))),
    }


def table(rounds: dict[str, list[float]], scores: dict[str, list[Scores]], n: int, batch_size: int) -> list[dict]:
    """Return one row per method: speed from the median seconds, agreement with the one-by-one pipeline."""
    seconds = {name: median(values) for name, values in rounds.items()}
    reference, batched = seconds[ONE_BY_ONE], seconds[BATCHED.format(b=batch_size)]
    return [
        {
            "method": name,
            "examples/s": n / s,
            "x one-by-one": reference / s,
            "x batched pipeline": batched / s,
            **agreement(scores[name], scores[ONE_BY_ONE]),
            "s per pass (median)": s,
        }
        for name, s in seconds.items()
    ]


def targets(rows: list[dict], batch_size: int) -> list[dict]:
    """Return one row per target: the target, the measured speed-up and whether it was met."""
    by_name = {row["method"]: row for row in rows}
    predictor, int8 = by_name[PREDICTOR.format(b=batch_size)], by_name[INT8]
    checks = [
        ("Predictor / one-by-one pipeline", predictor["x one-by-one"], 1.7),
        ("Predictor / batched pipeline", predictor["x batched pipeline"], 1.9),
        ("int8 / one-by-one pipeline", int8["x one-by-one"], 7.0),
    ]
    return [
        {"target": f"{name} >= {goal}", "measured": value, "result": met(value, goal)} for name, value, goal in checks
    ]


FP32, QUANTIZED = "fp32: Predictor (PyTorch)", "int8: Predictor.quantized() (ONNX Runtime dynamic int8)"


def int8_accuracy_rows(
    predictions: dict[str, list[Scores]], labels: list[int], names: list[str], rounds: dict[str, list[float]]
) -> list[dict]:
    """Return one row per precision: accuracy, macro-F1, agreement with fp32 and speed (median seconds per pass)."""
    from sklearn.metrics import accuracy_score, f1_score

    ids = {name: i for i, name in enumerate(names)}
    predicted = {method: [ids[max(row, key=row.get)] for row in rows] for method, rows in predictions.items()}
    rows = []
    for method, chosen in predicted.items():
        seconds = median(rounds[method])
        rows.append(
            {
                "model": method,
                "accuracy": float(accuracy_score(labels, chosen)),
                "macro-F1": float(f1_score(labels, chosen, average="macro", zero_division=0)),
                **{
                    f"{k} with fp32": v
                    for k, v in agreement(predictions[method], predictions[FP32]).items()
                    if k != "distinct labels"
                },
                "examples/s (median)": len(labels) / seconds,
                "s per pass (median)": seconds,
            }
        )
    return rows


def ratio_rows(rounds: dict[str, list[float]], n: int) -> list[dict]:
    """Return one row per round (fp32 and int8 examples/s, their ratio), then the median, min and max of the ratio."""
    ratios = [fp32 / int8 for fp32, int8 in zip(rounds[FP32], rounds[QUANTIZED], strict=True)]
    rows = [
        {"round": i + 1, "fp32 examples/s": n / fp32, "int8 examples/s": n / int8, "int8 / fp32 speed": ratio}
        for i, (fp32, int8, ratio) in enumerate(zip(rounds[FP32], rounds[QUANTIZED], ratios, strict=True))
    ]
    return rows + [
        {"round": f"{name} of {len(ratios)}", "int8 / fp32 speed": value}
        for name, value in (("median", median(ratios)), ("min", min(ratios)), ("max", max(ratios)))
    ]


def int8_accuracy_report(args: argparse.Namespace) -> int:
    """Print fp32 vs int8 accuracy, macro-F1, label agreement and speed of a fine-tuned classifier; return 0."""
    from distilnb.predict import Predictor

    if not args.smoke and not (args.model_dir / "config.json").is_file():
        raise SystemExit(f"--model-dir {args.model_dir}: not a saved classifier folder (no config.json).")
    loaded = texts_for(args, "test")
    if loaded is None:
        return 0
    torch.set_num_threads(args.threads)
    test, names = loaded
    fp32 = Predictor.from_folder(args.model_dir, batch_size=args.batch_size, on="cpu")
    if sorted(fp32.label_names) != sorted(names):
        raise SystemExit(f"{args.model_dir} predicts {fp32.label_names}, the test split has {names}.")
    int8, note = int8_predictor(fp32)
    methods: dict[str, Runner] = {
        FP32: lambda texts: [row["scores"] for row in fp32.predict(texts, progress=False)],
        QUANTIZED: lambda texts: [row["scores"] for row in int8.predict(texts, progress=False)],
    }
    rounds, predictions = timed(methods, test["text"], args.rounds)
    n = len(test["text"])
    rows = int8_accuracy_rows(predictions, test["label"], names, rounds)
    lost = 100 * (rows[0]["accuracy"] - rows[1]["accuracy"])
    print(
        header(
            "int8 accuracy on a fine-tuned model (inference_speed.py --model-dir)",
            {
                "model": f"{args.model_dir} ({type(fp32.model).__name__}, {len(names)} labels), fp32 on the CPU, batch "
                f"{args.batch_size}, length-sorted (distilnb Predictor)",
                "data": f"all {n} texts of the {'data/support_tickets.csv (smoke)' if args.smoke else 'emotion'} test "
                "split",
                "int8": note,
                "timing": f"{args.rounds} rounds, the two precisions alternating who goes first, one untimed warm-up "
                "call each; "
                "seconds per pass over all texts, tokenization included",
            },
        )
    )
    print(f"### Accuracy on {n} test texts\n")
    print(markdown_table(rows))
    print(f"### int8 / fp32 speed, every round ({n} texts per pass)\n")
    print(markdown_table(ratio_rows(rounds, n)))
    print("### Targets\n")
    print(
        markdown_table(
            [{"target": "accuracy lost by int8 <= 1 point", "measured": lost, "result": met(lost, 1.0, at_least=False)}]
        )
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Print the inference-speed report; return the exit status."""
    args = parse_args(argv)
    if args.model_dir is not None:
        return int8_accuracy_report(args)
    loaded = load_texts(args)
    if loaded is None:
        return 0
    torch.set_num_threads(args.threads)
    texts, label_names = loaded
    with tempfile.TemporaryDirectory(prefix="distilnb-bench-") as tmp:
        folder = save_model(args.model, label_names or EMOTION_LABELS, Path(tmp), args.seed)
        methods, int8 = runners(folder, args.batch_size)
        seconds, scores = timed(methods, texts, args.rounds)
    rows = table(seconds, scores, len(texts), args.batch_size)
    print(
        header(
            "Inference throughput (inference_speed.py)",
            {
                "model": f"{args.model} as DistilBertForSequenceClassification ({len(label_names)} labels, random "
                "head), "
                "saved with the real distilbert-base-uncased tokenizer to a temporary folder, fp32 on the CPU",
                "data": f"{len(texts)} texts sampled from "
                f"{'data/support_tickets.csv (smoke)' if args.smoke else 'emotion test'} "
                f"(seed {args.seed})",
                "timing": f"{args.rounds} round(s), methods rotated each round, one untimed warm-up call each; median "
                "seconds "
                "per pass over all texts, tokenization included",
                "int8": int8,
                "agreement": "with the one-by-one pipeline: share of equal top labels, largest difference of any class "
                "probability, and distinct top labels predicted (a random-weight model may predict one class for "
                "every text, making label agreement trivial: the probability difference is the sharper check)",
            },
        )
    )
    print(f"### Speed on {len(texts)} texts\n")
    print(markdown_table(rows, COLUMNS))
    print("### Targets\n")
    print(markdown_table(targets(rows, args.batch_size)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
