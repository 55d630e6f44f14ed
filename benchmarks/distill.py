"""Distillation: a fine-tuned teacher against its student (every other layer), in fp32 and int8, on the test split.

Trains the teacher (the offline profile: pretrained MiniLM-L6 on data/support_tickets.csv; --dataset emotion for the
shared emotion data) unless --teacher-dir names one, distils a --student-layers student from it with distilnb.distill,
exports both as int8 ONNX (distilnb.export), then scores all four on the test split and times them beside the
one-by-one pipeline on the teacher: same texts, same threads, warm-up, median of rounds, methods rotated.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import base_parser, dataset_config, header, markdown_table, median, met, progress
from inference_speed import scores_of, timed

TEACHER, STUDENT = "teacher", "student"
ONE_BY_ONE = "pipeline on the teacher, one text at a time"
TARGETS = {"accuracy points lost": 1.5, "macro-F1 points lost": 1.5, "student / teacher Predictor speed": 1.8,
           "student int8 / one-by-one pipeline": 10.0}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Return the command-line options."""
    parser = base_parser(__doc__)
    parser.set_defaults(threads=1)
    parser.add_argument("--dataset", choices=("sample", "emotion"), default="sample",
                        help="sample: data/support_tickets.csv (offline profile); emotion: --data/emotion, full")
    parser.add_argument("--teacher-dir", type=Path, help="a fine-tuned teacher's model folder (default: train one)")
    parser.add_argument("--teacher-epochs", type=float, help="epochs of the teacher (default: the profile's)")
    parser.add_argument("--student-layers", type=int, help="layers the student keeps (default: half the teacher's)")
    parser.add_argument("--student-epochs", type=float, help="epochs of the student (default: the profile's)")
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output-root", type=Path, help="where the runs go (default: a temporary folder)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.rounds, args.teacher_epochs, args.student_epochs = 1, args.teacher_epochs or 2.0, 1.0
    return args


def teacher_config(args: argparse.Namespace, root: Path):
    """Return the teacher's Config: the smoke profile with --smoke, else the offline profile on the chosen data."""
    settings = {"output_root": str(root), "run_name": TEACHER, "epochs": args.teacher_epochs}
    if args.smoke:
        return dataset_config("smoke", args.data, **settings)
    if args.dataset == "emotion":
        return dataset_config("emotion", args.data, **settings)
    from distilnb.config import Config

    return Config.from_env(profile="offline", **settings)


def train_teacher(args: argparse.Namespace, root: Path) -> tuple[Path, float]:
    """Return (the teacher's model folder, seconds spent training it; 0 for --teacher-dir)."""
    if args.teacher_dir:
        return args.teacher_dir, 0.0
    from distilnb.run import train

    start = time.perf_counter()
    folder = train(teacher_config(args, root)).model_dir
    return folder, time.perf_counter() - start


def folder_mib(folder: Path, pattern: str) -> float:
    """Return the size in MiB of the weight files matching pattern in a folder."""
    return sum(path.stat().st_size for path in folder.glob(pattern)) / 2**20


def scores(probabilities: list[dict], labels: list[int], names: list[str]) -> dict[str, float]:
    """Return accuracy and macro-F1 of per-text class scores against label ids."""
    from sklearn.metrics import accuracy_score, f1_score

    chosen = [names.index(max(row, key=row.get)) for row in probabilities]
    return {"accuracy": float(accuracy_score(labels, chosen)),
            "macro-F1": float(f1_score(labels, chosen, average="macro", zero_division=0))}


def rows_of(methods: dict, seconds: dict, predictions: dict, test, names: list[str], sizes: dict) -> list[dict]:
    """Return one row per method: parameters/size, accuracy, macro-F1, examples/s and speed-ups."""
    n = len(test["text"])
    speed = {name: n / median(values) for name, values in seconds.items()}
    teacher_predictor = speed[f"{TEACHER} Predictor fp32"]
    return [{"method": name, "weights MiB": sizes.get(name, float("nan")),
             **scores(predictions[name], list(test["label"]), names), "examples/s": speed[name],
             "x teacher Predictor": speed[name] / teacher_predictor,
             "x one-by-one pipeline": speed[name] / speed[ONE_BY_ONE]} for name in methods]


def target_rows(rows: list[dict]) -> list[dict]:
    """Return the issue's targets, measured and met or missed."""
    by = {row["method"]: row for row in rows}
    teacher, student = by[f"{TEACHER} Predictor fp32"], by[f"{STUDENT} Predictor fp32"]
    measured = {"accuracy points lost": 100 * (teacher["accuracy"] - student["accuracy"]),
                "macro-F1 points lost": 100 * (teacher["macro-F1"] - student["macro-F1"]),
                "student / teacher Predictor speed": student["x teacher Predictor"],
                "student int8 / one-by-one pipeline": by[f"{STUDENT} Predictor int8"]["x one-by-one pipeline"]}
    return [{"target": f"{name} {'<=' if 'lost' in name else '>='} {goal}", "measured": measured[name],
             "result": met(measured[name], goal, at_least="lost" not in name)} for name, goal in TARGETS.items()]


def main(argv: list[str] | None = None) -> int:
    """Print the distillation report; return the exit status."""
    args = parse_args(argv)
    if args.dataset == "emotion" and not args.smoke and not (args.data / "emotion").is_dir():
        print(f"Skipped: no emotion data under {args.data}.")
        return 0
    torch.set_num_threads(args.threads)
    from transformers import pipeline

    from distilnb import distill, export, runs
    from distilnb.data import label_names
    from distilnb.folder import fine_tuning_record
    from distilnb.predict import Predictor

    with tempfile.TemporaryDirectory(prefix="distilnb-distill-") as scratch:
        root = args.output_root or Path(scratch)
        progress("training the teacher")
        teacher_dir, teacher_seconds = train_teacher(args, root)
        cfg = distill.student_config(teacher_dir, output_root=str(root), run_name=STUDENT, epochs=args.student_epochs)
        progress("distilling the student")
        start = time.perf_counter()
        result = distill.distill(cfg, teacher_dir, student_layers=args.student_layers, alpha=args.alpha,
                                 temperature=args.temperature)
        student_seconds = time.perf_counter() - start
        splits, _ = runs.saved_splits(cfg.paths.data)
        student_epochs = fine_tuning_record(result.model_dir)["epochs"]  # decided from the data when not given
        test, names = splits["test"], label_names(splits)
        folders = {TEACHER: Path(teacher_dir), STUDENT: result.model_dir}
        predictors, sizes = {}, {}
        for who, folder in folders.items():
            int8 = export.export(folder, Path(scratch) / f"{who}-int8", int8=True)
            predictors[f"{who} Predictor fp32"] = Predictor.from_folder(folder, on="cpu")
            predictors[f"{who} Predictor int8"] = Predictor.from_folder(int8.folder)
            sizes[f"{who} Predictor fp32"] = folder_mib(folder, "*.safetensors")
            sizes[f"{who} Predictor int8"] = int8.graph_bytes / 2**20
        pipe = pipeline("text-classification", model=str(teacher_dir), device="cpu")
        methods = {ONE_BY_ONE: lambda texts: [scores_of(pipe(text, top_k=None)) for text in texts],
                   **{name: (lambda texts, p=p: [row["scores"] for row in p.predict(texts, progress=False)])
                      for name, p in predictors.items()}}
        seconds, predictions = timed(methods, list(test["text"]), args.rounds)
    sizes[ONE_BY_ONE] = sizes[f"{TEACHER} Predictor fp32"]
    rows = rows_of(methods, seconds, predictions, test, names, sizes)
    data = "data/support_tickets.csv" if args.smoke or args.dataset == "sample" else "emotion (full)"
    print(header("Distillation: teacher, student, int8 (distill.py)", {
        "data": f"{data}: train {len(splits['train'])}, test {len(test)} texts (the teacher's own splits)",
        "teacher": f"{result.teacher_parameters:,} parameters, trained in {teacher_seconds:.0f} s"
                   if teacher_seconds else f"{teacher_dir}, {result.teacher_parameters:,} parameters",
        "student": f"{result.student}, {result.student_parameters:,} parameters, alpha {args.alpha:g}, T "
                   f"{args.temperature:g}, {student_epochs:g} epochs (max), distilled in {student_seconds:.0f} s",
        "int8": "distilnb.export (ONNX Runtime dynamic int8, weights per channel), run by Predictor.from_folder",
        "timing": f"all {len(test)} test texts per pass, {args.rounds} round(s), methods rotated, one untimed warm-up "
                  "call each; median seconds per pass, tokenization included",
    }))
    print(f"### Test split ({len(test)} texts)\n")
    print(markdown_table(rows))
    print("### Targets\n")
    print(markdown_table(target_rows(rows)))
    agreement = np.mean([max(a, key=a.get) == max(b, key=b.get) for a, b in
                         zip(predictions[f"{STUDENT} Predictor int8"], predictions[f"{STUDENT} Predictor fp32"],
                             strict=True)])
    print(f"Student int8 agrees with the student fp32 on {agreement:.1%} of the test labels.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
