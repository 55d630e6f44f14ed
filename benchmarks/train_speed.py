"""Training throughput and padding: pad to the dataset's longest vs random dynamic batches vs length-grouped batches."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
from _common import (
    REAL_SIZE,
    PeakRss,
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

KEYS = ("a", "b", "c")
LEARNING_RATE = 1e-5  # small, so that the random weights stay numerically tame (no overflow, no denormal slow paths)
TARGETS = {"full-epoch real share of (c)": 0.95, "examples/s of (c) / (a)": 3.0, "examples/s of (c) / (b)": 1.8}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Return the command-line options."""
    parser = base_parser(__doc__)
    parser.add_argument(
        "--model",
        default=REAL_SIZE,
        help=f"'{REAL_SIZE}' (DistilBertConfig() defaults, random weights) or a model folder whose "
        "config gives the architecture (weights are random either way)",
    )
    parser.add_argument(
        "--examples",
        type=int,
        default=256,
        help="training examples per strategy and round (rounded down to whole batches)",
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="rounds; each runs all strategies, in rotated order")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.smoke:
        args.model, args.examples, args.batch_size, args.rounds = tiny_model(), 12, 4, 1
    return args


def strategy_names() -> dict[str, str]:
    """Return {key: '(key) strategy name'} in the order of tokens.PADDING_STRATEGIES."""
    from distilnb.tokens import PADDING_STRATEGIES

    return {key: f"({key}) {name}" for key, name in zip(KEYS, PADDING_STRATEGIES, strict=True)}


def load_train(args: argparse.Namespace) -> tuple[list[str], list[int], list[str]] | None:
    """Return (texts, label ids, label names) of emotion train (the sample data with --smoke); None to skip."""
    loaded = texts_for(args, "train")
    if loaded is None:
        return None
    train, names = loaded
    return train["text"], train["label"], names


def grouped_sample(lengths: np.ndarray, examples: int, batch_size: int, seed: int) -> list[np.ndarray]:
    """Return examples // batch_size whole batches of distilnb's full-epoch order, at evenly spaced length quantiles."""
    from distilnb.tokens import batches_of, length_grouped_order

    # Batches come from an order over *all* texts, as in a real epoch: grouping only the sample would use the
    # sampler's tiny-dataset megabatches (2 batches) and understate (c). Quantile strata keep the sample representative.
    full = [b for b in batches_of(length_grouped_order(lengths, batch_size, seed), batch_size) if len(b) == batch_size]
    by_length = sorted(full, key=lambda batch: (lengths[batch].mean(), batch[0]))
    count = max(1, min(len(full), examples // batch_size))
    return [by_length[int((i + 0.5) * len(full) / count)] for i in range(count)]


def batch_orders(picked: list[np.ndarray], seed: int) -> dict[str, list[np.ndarray]]:
    """Return each strategy's batches of sample positions: one random order for (a) and (b), the groups for (c)."""
    sizes = [len(batch) for batch in picked]
    grouped = np.split(np.arange(sum(sizes)), np.cumsum(sizes)[:-1])
    shuffled = np.split(np.random.default_rng(seed).permutation(sum(sizes)), np.cumsum(sizes)[:-1])
    return {"a": shuffled, "b": shuffled, "c": grouped}


def collate(tokenizer, ids: list[list[int]], labels: list[int], rows: np.ndarray, pad_to: int | None) -> dict:
    """Return a batch padded to pad_to tokens when given (strategy a), else to its own longest text."""
    padding = {"padding": "max_length", "max_length": pad_to} if pad_to else {"padding": True}
    batch = tokenizer.pad({"input_ids": [ids[i] for i in rows]}, return_tensors="pt", **padding)
    return {**batch, "labels": torch.tensor([labels[i] for i in rows])}


def train_pass(
    model, optimizer, tokenizer, ids, labels, batches: list[np.ndarray], pad_to: int | None
) -> tuple[int, float]:
    """Return (tokens computed, padding included; seconds spent in AdamW steps) after one AdamW step per batch."""
    computed, stepping = 0, 0.0
    for rows in batches:
        batch = collate(tokenizer, ids, labels, rows, pad_to)
        model(**batch).loss.backward()
        start = time.perf_counter()  # timed apart: the update of all 67M weights costs the same whatever the padding
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        stepping += time.perf_counter() - start
        computed += batch["input_ids"].numel()
    return computed, stepping


def measure(
    args: argparse.Namespace,
    tokenizer,
    texts: list[str],
    labels: list[int],
    label_names: list[str],
    lengths: np.ndarray,
    picked: list[np.ndarray],
) -> list[dict]:
    """Return one row per strategy: examples/s, real tokens/s, real share and peak memory on the same examples."""
    from transformers import DistilBertForSequenceClassification

    config = architecture(args.model, label_names)
    sample = np.concatenate(picked)
    ids = tokenizer([texts[i] for i in sample], truncation=True, max_length=config.max_position_embeddings)["input_ids"]
    sample_labels = [labels[i] for i in sample]
    batches = batch_orders(picked, args.seed)
    pad_to = {"a": min(int(lengths.max()), config.max_position_embeddings), "b": None, "c": None}
    torch.manual_seed(args.seed)
    model = DistilBertForSequenceClassification(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE)
    for (
        key
    ) in KEYS:  # untimed: creates AdamW's state and warms the allocator, which would otherwise bill the first strategy
        train_pass(model, optimizer, tokenizer, ids, sample_labels, batches[key][:1], pad_to[key])
    seconds, stepping, peaks, computed = {k: [] for k in KEYS}, {k: [] for k in KEYS}, {k: [] for k in KEYS}, {}
    for round_ in range(args.rounds):
        for key in KEYS[round_ % 3 :] + KEYS[: round_ % 3]:  # rotate who goes first, so drift hits every strategy alike
            progress(f"round {round_ + 1}/{args.rounds}: strategy ({key})")
            with PeakRss() as memory:
                start = time.perf_counter()
                computed[key], step_seconds = train_pass(
                    model, optimizer, tokenizer, ids, sample_labels, batches[key], pad_to[key]
                )
                seconds[key].append(time.perf_counter() - start)
            stepping[key].append(step_seconds)
            peaks[key].append(memory.peak_mib)
    real, names = sum(len(row) for row in ids), strategy_names()
    return [
        {
            "strategy": names[k],
            "examples/s": len(ids) / median(seconds[k]),
            "real tokens/s": real / median(seconds[k]),
            "computed tokens": computed[k],
            "real share": real / computed[k],
            "s per pass (median)": median(seconds[k]),
            "of which AdamW steps s": median(stepping[k]),
            "examples/s without AdamW steps": len(ids)
            / median([t - o for t, o in zip(seconds[k], stepping[k], strict=True)]),
            "peak RSS delta MiB": max(peaks[k]),
        }
        for k in KEYS
    ]


def full_epoch(lengths: np.ndarray, batch_size: int, seed: int) -> list[dict]:
    """Return one row per strategy: real and computed tokens over one epoch of all training lengths (padding_share)."""
    from distilnb.tokens import PADDING_STRATEGIES, padding_share

    rows = []
    for label, strategy in zip(strategy_names().values(), PADDING_STRATEGIES, strict=True):
        share = padding_share(lengths, batch_size, strategy, seed)
        rows.append(
            {
                "strategy": label,
                "texts": len(lengths),
                "real tokens": share["real tokens"],
                "computed tokens": share["computed tokens"],
                "real share": 1 - share["padding share"],
            }
        )
    return rows


def targets(speed: list[dict], epoch: list[dict]) -> list[dict]:
    """Return one row per target: the target, the measured value and whether it was met."""
    measured = [
        epoch[2]["real share"],
        speed[2]["examples/s"] / speed[0]["examples/s"],
        speed[2]["examples/s"] / speed[1]["examples/s"],
    ]
    return [
        {"target": f"{name} >= {goal}", "measured": value, "result": met(value, goal)}
        for (name, goal), value in zip(TARGETS.items(), measured, strict=True)
    ]


def main(argv: list[str] | None = None) -> int:
    """Print the training-speed report; return the exit status."""
    from distilnb.local_models import build_tokenizer
    from distilnb.tokens import token_lengths

    args = parse_args(argv)
    loaded = load_train(args)
    if loaded is None:
        return 0
    torch.set_num_threads(args.threads)
    texts, labels, label_names = loaded
    tokenizer = build_tokenizer()
    lengths = token_lengths(texts, tokenizer)
    picked = grouped_sample(lengths, args.examples, args.batch_size, args.seed)
    speed = measure(args, tokenizer, texts, labels, label_names, lengths, picked)
    epoch = full_epoch(lengths, args.batch_size, args.seed)
    n, sample_mean = sum(len(batch) for batch in picked), lengths[np.concatenate(picked)].mean()
    data_name = "data/support_tickets.csv (smoke)" if args.smoke else "emotion train"
    print(
        header(
            "Training throughput and padding (train_speed.py)",
            {
                "model": f"{args.model} (DistilBertForSequenceClassification, random weights), AdamW lr "
                f"{LEARNING_RATE}, "
                f"batch {args.batch_size}, one optimizer step per batch, fp32",
                "data": f"{n} examples of {data_name}, real distilbert-base-uncased tokenizer: {n // args.batch_size} "
                "whole batches "
                f"of distilnb's full-epoch length-grouped order (seed {args.seed}), taken at evenly spaced length "
                "quantiles; "
                f"(a) and (b) train on the same examples in one random order; (a) pads to the longest of all "
                f"{len(texts)} texts ({lengths.max()} tokens); sample mean length {sample_mean:.1f} vs dataset "
                f"{lengths.mean():.1f}",
                "timing": f"{args.rounds} rounds, strategies rotated each round; median seconds per pass, collation "
                "included; "
                "AdamW steps (optimizer.step + zero_grad) also timed apart, since their cost does not depend on "
                "padding",
                "memory": "peak RSS above the RSS at the pass's start, sampled every 5 ms with psutil (activations, "
                "gradients)",
            },
        )
    )
    print(f"### Speed on {n} examples\n")
    print(markdown_table(speed))
    print(f"### Real tokens over one full epoch ({len(texts)} texts, batch {args.batch_size}, tokens.padding_share)\n")
    print(markdown_table(epoch))
    print("### Targets\n")
    print(markdown_table(targets(speed, epoch)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
