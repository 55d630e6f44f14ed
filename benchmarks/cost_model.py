"""A cost model on paper: DistilBERT's FLOPs per token, tokens per epoch per padding strategy, T4 and A100 seconds."""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
from _common import EMOTION_LABELS, REAL_SIZE, architecture, base_parser, header, markdown_table, texts_for, tiny_model

# Dense tensor-core peaks from the vendors' data sheets; real training reaches a fraction of them.
GPUS = {"T4": ("fp16", 65e12), "A100": ("bf16", 312e12)}
# Peak memory bandwidth (data sheets; A100 40 GB). AdamW is memory-bound: it moves bytes, not FLOPs.
BANDWIDTH = {"T4": 320e9, "A100": 1555e9}
# fp32 AdamW per parameter: read weight, gradient and two moments (16 B), write weight and two moments (12 B).
ADAMW_BYTES_PER_PARAMETER = 28


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Return the command-line options."""
    parser = base_parser(__doc__)
    parser.add_argument(
        "--model",
        default=REAL_SIZE,
        help=f"'{REAL_SIZE}' (DistilBertConfig() defaults) or a model folder whose config gives the architecture",
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--utilisation", type=float, default=0.30, help="share of the GPU's peak FLOP/s actually sustained"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.smoke:
        args.model, args.batch_size = tiny_model(), 4
    return args


def parameter_counts(config) -> dict[str, int]:
    """Return total, embedding and matmul parameter counts, from a weightless (meta-device) copy of the architecture."""
    from transformers import DistilBertForSequenceClassification

    with torch.device("meta"):
        model = DistilBertForSequenceClassification(config)
    total = sum(p.numel() for p in model.parameters())
    embeddings = sum(p.numel() for p in model.distilbert.embeddings.parameters())
    # Matmul weights: every nn.Linear (q, k, v, out, the two FFN layers, the head). Embeddings are table look-ups,
    # and biases and LayerNorms cost one FLOP per parameter, not two per token-parameter pair: both left out.
    matmul = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    return {"total": total, "embeddings": embeddings, "matmul": matmul}


def flops_per_token(matmul: int, layers: int, width: int, padded_length: float) -> dict[str, float]:
    """Return training and inference FLOPs per computed token: 2N + attention 4·layers·L·width forward; training 3x."""
    forward = 2 * matmul + 4 * layers * padded_length * width  # QK^T and attention-weighted V: 2·L·width FLOPs each
    return {"inference": forward, "training": 3 * forward}


def lengths_of(args: argparse.Namespace) -> tuple[np.ndarray, str] | None:
    """Return (token lengths of the training texts, their name): emotion train, or the sample data with --smoke."""
    from distilnb.local_models import build_tokenizer
    from distilnb.tokens import token_lengths

    loaded = texts_for(args, "train")
    if loaded is None:
        return None
    name = "data/support_tickets.csv train (smoke)" if args.smoke else "emotion train"
    return token_lengths(loaded[0]["text"], build_tokenizer()), name


def model_rows(counts: dict[str, int], config, mean_length: float) -> list[dict]:
    """Return the model table: parameter counts and FLOPs per token at the dataset's mean length."""
    per_token = flops_per_token(counts["matmul"], config.n_layers, config.dim, mean_length)
    return [
        {"quantity": "parameters, total", "value": counts["total"]},
        {"quantity": "parameters, embeddings (look-ups: no matmul)", "value": counts["embeddings"]},
        {"quantity": "parameters in matmuls N (nn.Linear weights)", "value": counts["matmul"]},
        {"quantity": "layers x width", "value": f"{config.n_layers} x {config.dim}"},
        {
            "quantity": f"training FLOPs per token, 6N + 12*layers*L*width at L = {mean_length:.1f}",
            "value": per_token["training"],
        },
        {
            "quantity": f"inference FLOPs per token, 2N + 4*layers*L*width at L = {mean_length:.1f}",
            "value": per_token["inference"],
        },
    ]


def strategy_rows(
    lengths: np.ndarray, counts: dict[str, int], config, args: argparse.Namespace, mode: str
) -> list[dict]:
    """Return one row per padding strategy: tokens per epoch, FLOPs per real token and GPU seconds per epoch."""
    from distilnb.tokens import PADDING_STRATEGIES, padding_share

    rows = []
    for key, strategy in zip("abc", PADDING_STRATEGIES, strict=True):
        share = padding_share(lengths, args.batch_size, strategy, args.seed)
        # Attention's cost grows with the padded length; its mean (computed tokens / texts) stands in for each batch's.
        padded = share["computed tokens"] / len(lengths)
        flops = share["computed tokens"] * flops_per_token(counts["matmul"], config.n_layers, config.dim, padded)[mode]
        row = {
            "strategy": f"({key}) {strategy}",
            "computed tokens": share["computed tokens"],
            "real share": 1 - share["padding share"],
            "FLOPs per real token": flops / share["real tokens"],
            "PFLOP per epoch": flops / 1e15,
        }
        row.update({f"{gpu} s/epoch": flops / (peak * args.utilisation) for gpu, (_, peak) in GPUS.items()})
        rows.append(row)
    return rows


def optimizer_rows(total: int, texts: int, batch_size: int) -> list[dict]:
    """Return the AdamW table: steps per epoch, bytes moved per step and seconds per epoch at peak bandwidth."""
    steps = -(-texts // batch_size)
    moved = total * ADAMW_BYTES_PER_PARAMETER
    row = {"steps per epoch": steps, "GB moved per step": moved / 1e9}
    row.update(
        {f"{gpu} s/epoch (at peak bandwidth)": steps * moved / bandwidth for gpu, bandwidth in BANDWIDTH.items()}
    )
    return [row]


def main(argv: list[str] | None = None) -> int:
    """Print the cost-model report; return the exit status."""
    args = parse_args(argv)
    loaded = lengths_of(args)
    if loaded is None:
        return 0
    torch.set_num_threads(args.threads)
    lengths, name = loaded
    config = architecture(args.model, EMOTION_LABELS)
    counts = parameter_counts(config)
    gpus = ", ".join(f"{gpu} {precision} peak {peak / 1e12:.0f} TFLOP/s" for gpu, (precision, peak) in GPUS.items())
    print(
        header(
            "Cost model - an ESTIMATE on paper, not a measurement (cost_model.py)",
            {
                "model": f"{args.model}: DistilBertForSequenceClassification, {len(EMOTION_LABELS)} labels (counted on "
                "the meta device)",
                "data": f"token lengths of {len(lengths)} {name} texts, real distilbert-base-uncased tokenizer, batch "
                f"{args.batch_size}, "
                "tokens per strategy from tokens.padding_share",
                "hardware": f"{gpus}, at {args.utilisation:.0%} of peak sustained (an assumption: short sequences and "
                "small "
                "batches often reach less, so read the seconds as optimistic)",
                "not counted": "data loading, softmax/LayerNorm/GELU, evaluation, host overheads; the AdamW step "
                "(about 16 FLOPs "
                "per parameter, under 1% of the FLOPs, but memory-bound) gets its own table, the same for every "
                "strategy",
            },
        )
    )
    print("### Model\n")
    print(markdown_table(model_rows(counts, config, float(lengths.mean()))))
    for mode, title in (
        ("training", "Training, one epoch (forward + backward = 3 x forward)"),
        ("inference", "Inference over the same texts (forward only)"),
    ):
        print(f"### {title}: estimate\n")
        print(markdown_table(strategy_rows(lengths, counts, config, args, mode)))
    bandwidths = ", ".join(f"{gpu} {value / 1e9:.0f} GB/s" for gpu, value in BANDWIDTH.items())
    print(
        f"### AdamW steps, one epoch (fp32, {ADAMW_BYTES_PER_PARAMETER} bytes per parameter, {bandwidths}): estimate\n"
    )
    print(markdown_table(optimizer_rows(counts["total"], len(lengths), args.batch_size)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
