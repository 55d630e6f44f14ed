"""`distilnb distill`: train a smaller student to match a fine-tuned teacher, saved as a run like any train writes."""

from __future__ import annotations

import argparse
import contextlib
import sys

from distilnb.cli import options
from distilnb.cli.options import err

# The student trains on the teacher's data, columns, splits and max_length (its record): only training settings here.
SETTINGS = ("epochs", "batch_size", "learning_rate", "warmup", "weight_decay", "early_stopping_patience", "seed",
            "save_steps", "keep_checkpoints", "class_weights", *options.RUN_SETTINGS)
# distill.DEFAULT_ALPHA, DEFAULT_TEMPERATURE, DEFAULT_COPIES, MASK_PROBABILITY and SMALL_TRAINING_SPLIT, spelt here so
# that building the parser imports no torch; a test checks that they agree.
DEFAULT_ALPHA, DEFAULT_TEMPERATURE = 0.5, 2.0
DEFAULT_COPIES, MASK_PROBABILITY, SMALL_TRAINING_SPLIT = 4, 0.2, 5_000


def add_parser(subcommands: argparse._SubParsersAction) -> None:
    """Add `distill`."""
    distill = subcommands.add_parser(
        "distill", help="distil a fine-tuned model into a smaller student",
        description="Train a student to match a fine-tuned teacher (--teacher-dir outputs/X/model) on the teacher's "
                    "own splits: loss = alpha x cross-entropy on the labels + (1 - alpha) x T^2 x KL between the "
                    "temperature-softened student and teacher (several labels: binary cross-entropy against the "
                    "teacher's sigmoids). The teacher's logits are computed once. The student is the teacher with "
                    "every other layer (--student-layers, default half), or --student MODEL. It is saved as the run "
                    "<teacher's run>-student (unless --run-name), which evaluate, predict, demo and export take.",
        epilog="example: python -m distilnb distill --teacher-dir outputs/offline/model --student-layers 3")
    distill.add_argument("--teacher-dir", required=True, help="the fine-tuned teacher's model folder")
    distill.add_argument("--student-layers", type=int, help="layers the student keeps of the teacher's, spread "
                                                            "evenly from the first (default: half of them)")
    distill.add_argument("--student", help="a smaller model (folder or Hub id) to train instead, with a new head")
    distill.add_argument("--alpha", type=float, default=DEFAULT_ALPHA,
                         help=f"weight of the labels' loss; 1 - alpha weighs the teacher's (default: {DEFAULT_ALPHA})")
    distill.add_argument("--temperature", type=float, default=DEFAULT_TEMPERATURE,
                         help="T: how much both distributions are softened before they are compared (default: "
                              f"{DEFAULT_TEMPERATURE})")
    distill.add_argument("--transfer-copies", type=int,
                         help="masked copies of each training text to train on too, each word masked with probability "
                              f"{MASK_PROBABILITY:g}, with the text's label and the teacher's probabilities (default: "
                              f"{DEFAULT_COPIES} below {SMALL_TRAINING_SPLIT:,} training texts, else 0)")
    options.add_threads(distill)
    options.add_settings(distill, SETTINGS)
    distill.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    """Distil the teacher; print the student's validation scores beside the teacher's."""
    from distilnb.models import check_model_name

    check_model_name(args.teacher_dir, "teacher_dir")
    options.prepare_machine(args)
    from distilnb import distill, metrics, runs
    from distilnb.folder import run_of_model

    given = {name: getattr(args, name) for name in SETTINGS if hasattr(args, name)}
    cfg = distill.student_config(args.teacher_dir, profile=args.profile, model=args.student, **given)
    # The Trainer prints its logs on stdout; they are progress, so stderr, and stdout keeps the result alone.
    with runs.run_lock(cfg.paths.root), contextlib.redirect_stdout(sys.stderr):
        result = distill.distill(cfg, args.teacher_dir, student_layers=args.student_layers, student=args.student,
                                 alpha=args.alpha, temperature=args.temperature,
                                 transfer_copies=args.transfer_copies)
    teacher_run = run_of_model(args.teacher_dir)
    teacher = runs.read_metrics(teacher_run / "metrics.json").get("validation", {}) if teacher_run else {}
    rows = {**({"teacher": teacher[metrics.FINE_TUNED]} if metrics.FINE_TUNED in teacher else {}),
            "student": result.validation}
    err(f"Student: {result.student}; {result.student_parameters:,} parameters against the teacher's "
        f"{result.teacher_parameters:,}; the teacher labelled {result.transfer_copies} masked copies of each training "
        "text too.")
    print(f"Student saved to {result.model_dir}\nValidation scores:\n{metrics.score_table(rows)}\n"
          f"Metrics: {cfg.paths.metrics}")
