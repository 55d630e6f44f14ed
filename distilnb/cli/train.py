"""`distilnb train`: a whole run (distilnb.run.train), rendered: notes on stderr, the scores on stdout."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from contextlib import redirect_stdout
from typing import TYPE_CHECKING

from distilnb.cli import options
from distilnb.cli.options import err, shown
from distilnb.config import Config
from distilnb.errors import spell

if TYPE_CHECKING:
    from distilnb.run import RunResult


def add_parser(subcommands: argparse._SubParsersAction) -> None:
    """Add `train`."""
    train = subcommands.add_parser(
        "train", help="fine-tune (chapters 01-03, headless)",
        description="Build the splits, tokenize and fine-tune with the Trainer, as chapters 01-03 do; save "
                    "outputs/<run>/model/ and metrics.json, and print the baselines beside the fine-tuned scores. "
                    "Runs under torchrun too. Ctrl-C keeps the last checkpoint: rerun with --resume. A finished run "
                    "removes its checkpoints unless --keep-checkpoints. A second train into a run folder in use "
                    "stops at once (outputs/<run>/.lock).",
        epilog="Results go to stdout (a table, or JSON with --json); notes, progress and the Trainer's logs to "
               "stderr. Threads: OMP_NUM_THREADS=1 (or --threads 1) is much faster on a busy machine with few cores.")
    train.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    train.add_argument("--json", action="store_true", help="print the run's result as JSON instead of the table")
    options.add_threads(train)
    options.add_output_dir(train)
    options.add_reading(train, ("train", "validation", "test"))
    options.add_settings(train, options.CONFIG_FIELDS, auto_length=True)
    options.add_config(train)
    train.set_defaults(run=run)


def interrupted(cfg: Config, argv: list[str]) -> str:
    """Return what an interrupted training run saved and the command that resumes it."""
    from distilnb.train import last_checkpoint

    checkpoint = last_checkpoint(cfg.paths.checkpoints)
    if checkpoint is None:
        return (f"Interrupted before the first checkpoint, which comes after {cfg.save_steps} steps (--save-steps) or "
                "an epoch: nothing to resume. Run the same command again to start over.")
    again = shlex.join([shown(sys.executable), "-m", "distilnb", *[a for a in argv if a != "--resume"], "--resume"])
    return (f"Interrupted. Saved: {shown(checkpoint)} (with the model, optimizer and schedule). To continue from "
            f"there:\n  {again}")


def render(result: RunResult) -> str:
    """Return the result as the table train prints: where the model is, the validation scores beside the baselines."""
    from distilnb.metrics import score_table

    validation = result.rows("validation")
    return (f"Model saved to {shown(result.model_dir)}\n"
            f"Validation scores ({result.split_sizes['validation']} texts), beside the baselines:\n"
            f"{score_table(validation)}\nMetrics: {shown(result.metrics_path)}")


def run(args: argparse.Namespace) -> None:
    """Run distilnb.run.train with the flags' settings; print its result, and its advice when the model loses."""
    cfg = options.config_with_files(args)  # a setting that cannot work stops here, before the heavy imports
    options.prepare_machine(args)
    from distilnb import models
    from distilnb import run as whole_run
    from distilnb.verdict import sentence

    auto = getattr(args, "max_length", None) == "auto"
    try:
        with redirect_stdout(sys.stderr):  # the Trainer prints its logs on stdout, which carries results only
            result = whole_run.train(cfg, read_options=options.read_options(args), resume=args.resume,
                                     auto_max_length=auto, notify=lambda line: err(spell(line, options.flag_words)))
    except KeyboardInterrupt as stop:
        stop.args = (interrupted(cfg, args.argv),)  # main prints it: the one interrupt message
        raise
    if not models.is_main_process():
        return
    print(json.dumps(result.summary(), indent=2) if args.json else render(result))
    warning = sentence(result.advice, options.flag_of)
    if warning:
        err(warning)
