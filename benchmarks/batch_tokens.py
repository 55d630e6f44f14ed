"""Batches on a CPU: the Predictor's texts/s with its batches capped at N padded tokens, against batch_size texts alone.

The texts are data/support_tickets.csv's (short), then the same texts joined in random runs of 1 to 4 and of 1 to 12
(mixed lengths, up to max_length), so the cap is measured on short, mixed and long inputs. Each model folder is timed
in PyTorch (fp32) and as its int8 copy in ONNX Runtime (Predictor.quantized()); every cap scores the same texts, after
a warm-up, methods rotated, median of rounds. serving.CPU_BATCH_TOKENS is the cap chosen from this table.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from _common import ROOT, base_parser, header, markdown_table, median, tiny_model
from inference_speed import timed

if TYPE_CHECKING:
    from distilnb.predict import Predictor

CAPS = (None, 256, 512, 1024, 2048)
JOINED = (1, 4, 12)  # texts joined into one input: at most this many
DEFAULT_MODEL = ROOT / "outputs" / "offline" / "model"  # chapter 03's run (make course)


def parse_args(argv: list[str] | None):
    """Return the parsed options."""
    parser = base_parser(__doc__.splitlines()[0])
    parser.set_defaults(threads=1)
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL,
                        help="a fine-tuned model folder (a run's model/); ignored with --smoke")
    parser.add_argument("--texts", type=int, default=128, help="inputs per set")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    if args.smoke:
        args.texts, args.rounds = 24, 1
    return args


def text_sets(count: int, seed: int = 0) -> dict[int, list[str]]:
    """Return {most texts joined: inputs}, each input 1 to that many of the sample's texts joined by spaces."""
    import pandas as pd

    texts = pd.read_csv(ROOT / "data" / "support_tickets.csv")["text"].dropna().tolist()  # the file keeps a few blanks
    draw = random.Random(seed)
    return {most: [" ".join(draw.sample(texts, draw.randint(1, most))) for _ in range(count)] for most in JOINED}


def cap_name(cap: int | None, batch_size: int) -> str:
    """Return a column name: the cap in tokens, or the batch size alone."""
    return f"{batch_size} texts, no cap" if cap is None else f"cap {cap} tokens"


def capped_scorer(predictor: Predictor, cap: int | None) -> Callable[[list[str]], list[np.ndarray]]:
    """Return a function that scores texts with the predictor's batches capped at cap padded tokens."""
    def score(texts: list[str]) -> list[np.ndarray]:
        predictor.max_tokens = cap
        return list(predictor.logits(texts, progress=False))
    return score


def rows_for(name: str, predictor: Predictor, texts: dict[int, list[str]], rounds: int) -> list[dict]:
    """Return one row per text set: its mean length in tokens and texts/s at every cap."""
    methods = {cap_name(cap, predictor.batch_size): capped_scorer(predictor, cap) for cap in CAPS}
    rows = []
    for most, inputs in texts.items():
        seconds, _ = timed(methods, inputs, rounds)
        lengths = [len(ids) for ids in predictor.encode(inputs)["input_ids"]]
        speed = {method: len(inputs) / median(values) for method, values in seconds.items()}
        inputs_name = "the sample's texts" if most == 1 else f"1 to {most} texts joined"
        rows.append({"model": name, "inputs": inputs_name, "mean tokens": float(np.mean(lengths)), **speed,
                     "fastest": max(speed, key=speed.get)})
    return rows


def main(argv: list[str] | None = None) -> int:
    """Print the texts/s table; return the exit status."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    from distilnb.predict import Predictor

    if args.smoke:
        from distilnb import models

        predictor = Predictor(models.load_classifier(tiny_model(), ["delivery", "refund"]),
                              models.load_tokenizer(tiny_model()), max_length=256)
    elif not (args.model_dir / "config.json").is_file():
        print(f"SKIPPED: no model folder at {args.model_dir}: run `make course` first, or pass --model-dir.")
        return 0
    else:
        predictor = Predictor.from_folder(args.model_dir, max_length=256, on="cpu")
    texts = text_sets(args.texts)
    rows = [*rows_for("PyTorch fp32", predictor, texts, args.rounds),
            *rows_for("ONNX Runtime int8", predictor.quantized(), texts, args.rounds)]
    print(header("Batches capped by padded tokens on a CPU (batch_tokens.py)", {
        "model": "the tiny smoke model (--smoke)" if args.smoke else str(args.model_dir),
        "inputs": f"{args.texts} a set, data/support_tickets.csv's texts joined at random (seed 0), max_length 256",
        "timing": f"Predictor.logits, batch_size {predictor.batch_size}, {args.rounds} round(s), caps rotated, one "
                  "untimed warm-up call each; median texts/s",
    }))
    print("### Texts/s by batch cap\n")
    print(markdown_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
