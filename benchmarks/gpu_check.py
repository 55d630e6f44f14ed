"""GPU check: the course and the benchmarks' claims on a CUDA machine, in one command (about 5 to 8 minutes on an H100).

Writes a Markdown report (default $OUT/gpu_report.md, else ./gpu_report.md) with four sections:

1. the offline course profile's training (`python -m distilnb train`: MiniLM on data/support_tickets.csv), placed on
   the GPU, in the precision distilnb chooses (`mixed_precision()`): the precision that ran is read back from the
   run's training_args.json and asserted (bf16 on an H100, fp16 on a T4);
2. one emotion epoch of a real-size DistilBERT (`DistilBertConfig()`, random weights) with length-grouped and with
   random batches: examples/s and peak GPU memory (torch.cuda.max_memory_allocated);
3. distilnb's Predictor against the transformers pipeline on 2,000 texts;
4. notebooks 03 to 05 executed with nbconvert (DISTILNB_PROFILE=offline), with their wall times.

`--dry-run` runs the same code on the CPU in seconds (tiny sizes, the smoke profile's tiny model) and skips what
needs CUDA with a line "SKIPPED (no CUDA): ...", so that CI keeps the script from rotting. A failed section is
reported (with the end of its error) and the others still run; the exit status is 1 if any check failed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch
from _common import (
    EMOTION_LABELS,
    REAL_SIZE,
    ROOT,
    architecture,
    base_parser,
    data_present,
    header,
    load_dataset,
    markdown_table,
    progress,
    tiny_model,
)

NOTEBOOKS = ("03", "04", "05")
COURSE_CODE = """import sys, torch
from distilnb.cli import main
status = main(["train"])
print("GPU_CHECK_PEAK_BYTES=%d" % (torch.cuda.max_memory_allocated() if torch.cuda.is_available() else -1))
sys.exit(status)
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Return the command-line options."""
    parser = base_parser(__doc__.splitlines()[0])
    default_out = Path(os.environ["OUT"]) / "gpu_report.md" if os.environ.get("OUT") else Path("gpu_report.md")
    parser.add_argument("--out", type=Path, default=default_out, help="the Markdown report to write")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="on the CPU in seconds: tiny sizes and the smoke profile's tiny model; skips what needs CUDA",
    )
    parser.add_argument(
        "--model", default=REAL_SIZE, help=f"'{REAL_SIZE}' (random weights) or a folder, for sections 2-3"
    )
    parser.add_argument("--examples", type=int, default=None, help="texts of the emotion epoch (default: all 16000)")
    parser.add_argument("--texts", type=int, default=2000, help="texts classified by the Predictor and the pipeline")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--notebooks", default=",".join(NOTEBOOKS), help="notebooks to execute, by number")
    parser.add_argument("--timeout", type=int, default=300, help="seconds allowed to each subprocess")
    args = parser.parse_args(argv)
    args.dry_run = args.dry_run or args.smoke
    if args.dry_run:
        args.model, args.examples, args.texts, args.batch_size = tiny_model(), 64, 48, 8
    return args


def cuda() -> bool:
    """Return True when a CUDA device is present."""
    return torch.cuda.is_available()


def gpu_details() -> dict[str, str]:
    """Return the GPU's name, compute capability, memory and the CUDA version torch was built with (or why none)."""
    if not cuda():
        return {"GPU": "none (no CUDA): the CPU dry run"}
    props = torch.cuda.get_device_properties(0)
    return {
        "GPU": f"{props.name}, compute capability {props.major}.{props.minor}, {props.total_memory / 2**30:.0f} GiB, "
        f"{props.multi_processor_count} SMs; torch CUDA {torch.version.cuda}"
    }


def chosen_precision() -> str:
    """Return the precision distilnb's own rule picks on this machine: 'bf16', 'fp16' or 'fp32'."""
    try:  # distilnb.models after the refactor, distilnb.train before it
        from distilnb.models import mixed_precision
    except ImportError:
        from distilnb.train import mixed_precision
    flags = mixed_precision()
    return "bf16" if flags.get("bf16") else "fp16" if flags.get("fp16") else "fp32"


def autocast_dtype(precision: str):
    """Return the torch dtype for autocast, or None for fp32."""
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)


def mib(n_bytes: float) -> float:
    """Return bytes in MiB."""
    return n_bytes / 2**20


# ---------------------------------------------------------------- 1. the course's training, as the CLI runs it


def course_training(args: argparse.Namespace, work: Path, failures: list[str]) -> str:
    """Return section 1: `distilnb train` with the offline profile (smoke with --dry-run); assert the precision."""
    expected = chosen_precision()
    profile = "smoke" if args.dry_run else "offline"
    env = {
        **os.environ,
        "DISTILNB_PROFILE": profile,
        "DISTILNB_OUTPUT_ROOT": str(work / "course"),
        "HF_HUB_OFFLINE": "1",
    }
    if args.dry_run:
        env.update(DISTILNB_EPOCHS="1", DISTILNB_MAX_TRAIN_EXAMPLES="48")
    progress(f"1. distilnb train, profile {profile}")
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", COURSE_CODE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=args.timeout,
        check=False,
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        failures.append("course training exited with an error")
        return f"FAILED: `distilnb train` exited {done.returncode}:\n\n```\n{done.stderr[-2000:]}\n```\n"
    peak = max(
        [int(line.split("=", 1)[1]) for line in done.stdout.splitlines() if line.startswith("GPU_CHECK_PEAK")] or [-1]
    )
    saved = sorted((work / "course").rglob("training_args.json"))
    flags = json.loads(saved[0].read_text()) if saved else {}
    ran = (
        "bf16"
        if flags.get("bf16")
        else "fp16"
        if flags.get("fp16")
        else "fp32"
        if saved
        else "unknown (no training_args.json)"
    )
    scores = sorted((work / "course").rglob("metrics.json"))
    validation = json.loads(scores[0].read_text()).get("validation", {}) if scores else {}
    accuracy = next((row.get("accuracy") for row in validation.values() if isinstance(row, dict)), float("nan"))
    rows = [
        {
            "profile": profile,
            "device": "cuda" if peak > 0 else "cpu",
            "precision chosen (mixed_precision())": expected,
            "precision that ran (training_args.json)": ran,
            "validation accuracy": accuracy,
            "wall s": seconds,
            "peak GPU MiB": mib(peak) if peak > 0 else "n/a",
        }
    ]
    lines = [markdown_table(rows)]
    checks = [("the precision that ran is the one distilnb chose", ran == expected)]
    if cuda():
        major = torch.cuda.get_device_capability(0)[0]
        checks.append(("training ran on the GPU (GPU memory was allocated)", peak > 0))
        if major >= 8:  # Ampere, Hopper: bf16 in hardware
            checks.append((f"bf16 on a GPU of compute capability {major}.x", ran == "bf16"))
        else:
            checks.append((f"fp16 on a GPU of compute capability {major}.x (bf16 only emulated)", ran == "fp16"))
    else:
        lines.append(
            "SKIPPED (no CUDA): the GPU placement and the bf16-on-H100 assertion; checked that the CPU ran fp32, "
            "as distilnb chooses there.\n"
        )
    for name, ok in checks:
        lines.append(f"- {'PASSED' if ok else 'FAILED'}: {name}")
        if not ok:
            failures.append(name)
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- 2. one emotion epoch, length-grouped vs random


def training_texts(args: argparse.Namespace) -> tuple[list[str], list[int], list[str], str]:
    """Return (texts, label ids, label names, a note): emotion train, else the sample tickets repeated to size."""
    if args.dry_run or not data_present(args.data, "emotion"):
        splits, names = load_dataset("smoke", args.data)
        train, size = splits["train"], args.examples or 16000
        repeat = -(-size // len(train["text"]))
        note = f"{size} texts of data/support_tickets.csv train, repeated (emotion absent or a dry run)"
        return (train["text"] * repeat)[:size], (train["label"] * repeat)[:size], names, note
    splits, names = load_dataset("emotion", args.data)
    train = splits["train"]
    size = min(args.examples or len(train["text"]), len(train["text"]))
    return train["text"][:size], train["label"][:size], names, f"{size} texts of emotion train, one epoch"


def epoch_arguments(batch_size: int, folder: Path, strategy: str):
    """Return distilnb's TrainingArguments for one epoch at lr 5e-5, batches drawn by `strategy`, timing only.

    The recipe is the package's (train.training_arguments, its precision rule included); validation, checkpoints and
    logs are switched off, since the section times the training steps alone.
    """
    import dataclasses

    from distilnb.config import Config
    from distilnb.train import training_arguments

    cfg = Config.from_env(profile="smoke", batch_size=batch_size, epochs=1.0, output_root=str(folder.parent),
                          run_name=folder.name, seed=0)
    return dataclasses.replace(training_arguments(cfg, 5e-5), train_sampling_strategy=strategy, eval_strategy="no",
                               save_strategy="no", logging_strategy="no", load_best_model_at_end=False,
                               disable_tqdm=True, data_seed=0)


def one_epoch(args: argparse.Namespace, work: Path, failures: list[str]) -> str:
    """Return section 2: one epoch with the Trainer, group_by_length vs random batches, same model and seed."""
    from datasets import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        DataCollatorWithPadding,
        DistilBertForSequenceClassification,
        Trainer,
    )

    from distilnb.local_models import build_tokenizer

    texts, labels, names, note = training_texts(args)
    tokenizer = build_tokenizer()
    data = Dataset.from_dict({"text": texts, "label": labels}).map(
        lambda batch: tokenizer(batch["text"], truncation=True, max_length=128), batched=True, remove_columns=["text"]
    )
    precision = chosen_precision()
    rows = []
    for strategy in ("group_by_length", "random"):
        progress(f"2. one epoch, {strategy}")
        torch.manual_seed(0)
        if args.model == REAL_SIZE:
            model = DistilBertForSequenceClassification(architecture(REAL_SIZE, names))
        else:
            model = AutoModelForSequenceClassification.from_pretrained(args.model, num_labels=len(names))
        if cuda():
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        training = epoch_arguments(args.batch_size, work / f"epoch-{strategy}", strategy)
        trainer = Trainer(
            model=model, args=training, train_dataset=data, data_collator=DataCollatorWithPadding(tokenizer)
        )
        start = time.perf_counter()
        trainer.train()
        if cuda():
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        rows.append(
            {
                "batches": strategy,
                "examples/s": len(texts) / seconds,
                "s per epoch": seconds,
                "device": str(trainer.args.device),
                "precision": precision,
                "peak GPU MiB": mib(torch.cuda.max_memory_allocated()) if cuda() else "n/a",
            }
        )
        del trainer, model
    rows[0]["x random"] = rows[0]["examples/s"] / rows[1]["examples/s"]
    rows[1]["x random"] = 1.0
    lines = [
        f"Model: {args.model if args.dry_run else 'DistilBertConfig() (6 x 768, random weights)'}; data: {note}; "
        f"batch {args.batch_size}, distilnb's training arguments at lr 5e-5 (warm-up, weight decay, precision "
        f"{precision}), the Trainer, no validation or checkpoints.\n",
        markdown_table(rows),
    ]
    if not cuda():
        lines.append("SKIPPED (no CUDA): peak GPU memory (n/a on the CPU).\n")
    return "\n".join(lines)


# ---------------------------------------------------------------- 3. Predictor vs pipeline


def predictor_vs_pipeline(args: argparse.Namespace, work: Path, failures: list[str]) -> str:
    """Return section 3: examples/s of the pipeline (one by one, batched) and the Predictor, and their agreement."""
    from transformers import AutoModelForSequenceClassification, DistilBertForSequenceClassification, pipeline

    from distilnb.local_models import build_tokenizer
    from distilnb.predict import Predictor

    texts, _, names, note = training_texts(argparse.Namespace(**{**vars(args), "examples": args.texts}))
    folder = work / "classifier"
    torch.manual_seed(0)
    if args.model == REAL_SIZE:
        network = DistilBertForSequenceClassification(architecture(REAL_SIZE, names or EMOTION_LABELS))
    else:
        network = AutoModelForSequenceClassification.from_pretrained(args.model, num_labels=len(names))
    network.save_pretrained(folder)
    build_tokenizer().save_pretrained(folder)
    on = "cuda" if cuda() else "cpu"
    pipe = pipeline("text-classification", model=str(folder), device=on)
    predictor = Predictor.from_folder(folder, batch_size=64, on=on)
    methods = {
        "pipeline, one text at a time": lambda batch: [pipe(t, top_k=1)[0]["label"] for t in batch],
        "pipeline, batch_size=64": lambda batch: [r[0]["label"] for r in pipe(batch, top_k=1, batch_size=64)],
        "distilnb Predictor (batch 64, length-sorted)": lambda batch: [
            r["label"] for r in predictor.predict(batch, progress=False)
        ],
    }
    rows, reference = [], None
    for name, run in methods.items():
        progress(f"3. {name}")
        run(texts[:16])  # untimed warm-up: CUDA context, kernels, allocator
        if cuda():
            torch.cuda.synchronize()
        start = time.perf_counter()
        labels = run(texts)
        if cuda():
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        reference = reference or labels
        rows.append(
            {
                "method": name,
                "examples/s": len(texts) / seconds,
                "s": seconds,
                "device": on,
                "label agreement with one-by-one": float(
                    np.mean([a == b for a, b in zip(labels, reference, strict=True)])
                ),
            }
        )
    for row in rows:
        row["x one-by-one"] = rows[0]["s"] / row["s"]
    return f"{len(texts)} texts ({note.split(',')[0]}), fp32.\n\n" + markdown_table(rows)


# ---------------------------------------------------------------- 4. the notebooks


def notebooks(args: argparse.Namespace, work: Path, failures: list[str]) -> str:
    """Return section 4: notebooks executed in order with nbconvert (offline profile), each one's wall time."""
    wanted = [n.strip() for n in args.notebooks.split(",") if n.strip()]
    if not cuda():
        return f"SKIPPED (no CUDA): executing notebooks {', '.join(wanted)} with nbconvert on the GPU.\n"
    env = {
        **os.environ,
        "DISTILNB_PROFILE": "offline",
        "DISTILNB_OUTPUT_ROOT": str(work / "notebooks"),
        "HF_HUB_OFFLINE": "1",
    }
    rows = []
    for number in wanted:
        path = next(iter(sorted((ROOT / "notebooks").glob(f"{number}_*.ipynb"))), None)
        if path is None:
            rows.append({"notebook": number, "result": "FAILED: no such notebook", "wall s": float("nan")})
            failures.append(f"notebook {number} missing")
            continue
        progress(f"4. {path.name}")
        command = [
            sys.executable,
            "-m",
            "jupyter",
            "nbconvert",
            "--to",
            "notebook",
            "--execute",
            f"--ExecutePreprocessor.timeout={args.timeout}",
            "--output-dir",
            str(work / "executed"),
            str(path),
        ]
        start = time.perf_counter()
        try:
            done = subprocess.run(
                command,
                cwd=ROOT / "notebooks",
                env=env,
                capture_output=True,
                text=True,
                timeout=args.timeout + 60,
                check=False,
            )
            result = "ran" if done.returncode == 0 else f"FAILED: {done.stderr.strip().splitlines()[-1][:200]}"
        except subprocess.TimeoutExpired:
            result = f"FAILED: over {args.timeout + 60} s"
        rows.append({"notebook": path.name, "result": result, "wall s": time.perf_counter() - start})
        if result != "ran":
            failures.append(f"notebook {path.name}")
    return "DISTILNB_PROFILE=offline, executed in order (04 and 05 use 03's model).\n\n" + markdown_table(rows)


SECTIONS = (
    ("1. The course's training (offline profile), as `distilnb train` runs it", course_training),
    ("2. One epoch of a real-size DistilBERT: length-grouped vs random batches", one_epoch),
    ("3. Predictor vs pipeline", predictor_vs_pipeline),
    ("4. Notebooks 03 to 05 on the GPU", notebooks),
)


def main(argv: list[str] | None = None) -> int:
    """Write the GPU report; return 0 when every check passed, 1 otherwise, 2 without CUDA outside --dry-run."""
    args = parse_args(argv)
    if not cuda() and not args.dry_run:
        print("No CUDA device: this check is for a GPU machine. On a CPU, run it with --dry-run.", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    failures: list[str] = []
    parts = []
    with tempfile.TemporaryDirectory(prefix="distilnb-gpu-check-") as tmp:
        for title, section in SECTIONS:
            start = time.perf_counter()
            try:
                body = section(args, Path(tmp), failures)
            except Exception:  # one failed section must not lose the others' results on a scarce GPU
                failures.append(title)
                body = f"FAILED:\n\n```\n{traceback.format_exc()[-3000:]}\n```\n"
            parts.append(f"### {title}\n\n{body}\n_section wall time: {time.perf_counter() - start:.0f} s_\n")
    mode = "DRY RUN on the CPU (tiny sizes; nothing here measures a GPU)" if args.dry_run else "GPU run"
    report = header("GPU check (gpu_check.py)", {**gpu_details(), "mode": mode}) + "\n" + "\n".join(parts)
    report += "\n### Summary\n\n" + (
        "All checks passed.\n" if not failures else "FAILED: " + "; ".join(failures) + "\n"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    print(report)
    progress(f"report written to {args.out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
