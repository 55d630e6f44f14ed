"""`distilnb predict` start-up: the whole command on one text, on a model folder without and with the export beside it.

Each row runs `python -m distilnb predict --threads 1 --model-dir <the model folder> "where is my parcel"` in a fresh
process, ROUNDS times, and reports its wall and CPU seconds; `import torch` alone is the floor a PyTorch folder cannot
go under. The model folder is copied (file times kept) into a run of its own, so that the export written beside it
(`export.export`, as `distilnb export` writes it) leaves the original run untouched. Run it on an idle machine: every
number is a whole process, so any other load shows.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, base_parser, header, markdown_table, tiny_model

TEXT = "where is my parcel"
DEFAULT_MODEL = ROOT / "outputs" / "offline" / "model"  # chapter 03's run (make course)


def parse_args(argv: list[str] | None):
    """Return the parsed options."""
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL,
                        help="a fine-tuned model folder (a run's model/); ignored with --smoke")
    parser.add_argument("--rounds", type=int, default=5, help="fresh processes per row")
    return parser.parse_args(argv)


def timed(command: list[str], environ: dict[str, str]) -> tuple[float, float]:
    """Return (wall seconds, CPU seconds: user + system) of one process run to its end; refuse a failed one."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=environ)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    error = process.stderr.read().decode() if process.stderr else ""
    if process.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{error[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime


def row(name: str, command: list[str], environ: dict[str, str], rounds: int) -> dict:
    """Return one table row: every round's wall seconds and the medians of wall and CPU seconds."""
    runs = [timed(command, environ) for _ in range(rounds)]
    return {"command": name, "wall s, each run": " ".join(f"{wall:.2f}" for wall, _ in runs),
            "median wall s": statistics.median(wall for wall, _ in runs),
            "median CPU s": statistics.median(cpu for _, cpu in runs)}


def smoke_model(folder: Path) -> Path:
    """Save the tiny model with named labels (a head whose labels are not LABEL_0... is taken as fine-tuned)."""
    from distilnb import models

    models.load_classifier(tiny_model(), ["delivery", "refund"]).save_pretrained(folder)
    models.load_tokenizer(tiny_model()).save_pretrained(folder)
    return folder


def main(argv: list[str] | None = None) -> int:
    """Print the start-up table; return the exit status."""
    args = parse_args(argv)
    from distilnb import export

    with tempfile.TemporaryDirectory(prefix="distilnb-startup-") as scratch:
        model = Path(scratch) / "run" / "model"
        if args.smoke:
            smoke_model(model)
        elif not (args.model_dir / "config.json").is_file():
            print(f"SKIPPED: no model folder at {args.model_dir}: run `make course` first, or pass --model-dir.")
            return 0
        else:
            shutil.copytree(args.model_dir, model)  # copy2 keeps the file times the export records
        environ = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
        predict = [sys.executable, "-m", "distilnb", "predict", "--threads", "1", "--model-dir", str(model), TEXT]
        rows = [row("predict, no export beside the model", predict, environ, args.rounds)]
        started = time.perf_counter()
        export.export(model)
        exported = time.perf_counter() - started
        rows.append(row("predict, a current export beside it", predict, environ, args.rounds))
        rows.append(row("python -c 'import torch'", [sys.executable, "-c", "import torch"], environ, args.rounds))
    print(header("predict start-up (startup.py)", {
        "model": "the tiny smoke model (--smoke)" if args.smoke else str(args.model_dir),
        "export": f"`export.export` once, {exported:.1f} s, into the copied run's onnx/",
        "each run": f"a fresh process, one thread, the text {TEXT!r}, output discarded"}))
    print("### Start-up, whole command\n")
    print(markdown_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
