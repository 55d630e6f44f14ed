"""`distilnb export`: write a model folder's ONNX graph (fp32 or int8) with its tokenizer and label names beside it."""

from __future__ import annotations

import argparse

from distilnb.cli import options
from distilnb.cli.options import err


def add_parser(subcommands: argparse._SubParsersAction) -> None:
    """Add `export`."""
    export = subcommands.add_parser(
        "export", help="write the model as ONNX (chapter 05's int8, as a file)",
        description="Write the model folder's ONNX graph (model.onnx: fp32, or dynamic int8 with --int8) with its "
                    "tokenizer, config.json, labels.json and the run's records beside it. `predict --model-dir` and "
                    "`evaluate --model-dir` run the folder through ONNX Runtime on the CPU (and `predict` on the model "
                    "folder uses its fp32 export in onnx/ while the model is unchanged); any ONNX Runtime serving "
                    "stack can load model.onnx (inputs input_ids, attention_mask[, token_type_ids]; output logits). "
                    "The graph names no folder of this machine: the exporter's per-node source traces are removed.",
        epilog="example: python -m distilnb export --model-dir outputs/offline/model --int8")
    export.add_argument("--model-dir", help="model folder to export (default: this run's model folder)")
    export.add_argument("--output-dir", help="folder to write (replaced if it exists; default: onnx/, or onnx-int8/ "
                                             "with --int8, beside the model folder in its run)")
    export.add_argument("--int8", action="store_true", help="quantize the weights to int8 (ONNX Runtime dynamic "
                                                            "quantization): smaller, faster on most CPUs")
    options.add_threads(export)
    options.add_settings(export, options.RUN_SETTINGS)
    export.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    """Export the model; print the folder written and what it holds."""
    cfg = options.build_config(args)
    options.prepare_machine(args)
    from distilnb import export, models

    result = export.export(models.model_folder(args.model_dir, cfg), args.output_dir, int8=args.int8)
    err(f"Run it: python -m distilnb predict --model-dir {result.folder} 'some text'")
    print(f"Exported {result.precision} ONNX ({result.graph_bytes / 2**20:.1f} MiB) to {result.folder}: "
          f"{', '.join(result.files)}")
