"""Shared helpers of the benchmark scripts: the run header, Markdown tables, data folders, smoke inputs and memory."""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

# The benchmarks run offline: a Hub lookup must fail at once rather than after retries.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data"
# The real-size architecture: DistilBertConfig() defaults (6 layers, width 768), random weights.
REAL_SIZE = "distilbert-base"
EMOTION_LABELS = ["anger", "fear", "joy", "love", "sadness", "surprise"]


def base_parser(description: str) -> argparse.ArgumentParser:
    """Return an argument parser with the options every benchmark shares: --data, --smoke, --threads."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="folder of the shared real datasets (holds emotion/ and sst2/); never copied into the repo")
    parser.add_argument("--smoke", action="store_true",
                        help="CI mode: the smoke profile's tiny model and a handful of data/support_tickets.csv examples; seconds")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    return parser


def cpu_model() -> str:
    """Return the CPU's model name from /proc/cpuinfo, else what platform reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def library_versions() -> str:
    """Return 'name version' of every library a result depends on, comma-separated."""
    import datasets
    import numpy
    import pandas
    import sklearn
    import torch
    import transformers

    import distilnb

    modules = (("python", platform.python_version()), ("distilnb", distilnb.__version__), ("torch", torch.__version__),
               ("transformers", transformers.__version__), ("datasets", datasets.__version__),
               ("numpy", numpy.__version__), ("pandas", pandas.__version__), ("scikit-learn", sklearn.__version__))
    return ", ".join(f"{name} {version}" for name, version in modules)


def memory_gib() -> str:
    """Return the machine's physical memory in GiB, or n/a where the system does not say."""
    try:
        return f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB memory"
    except (ValueError, OSError, AttributeError):
        return "memory n/a"


def load_average() -> str:
    """Return the 1/5/15-minute load averages, which show whether others were using the machine."""
    try:
        return "/".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "n/a"


# Read when a script starts, so the header can show the load before and after the measurement.
STARTED, START_LOAD = datetime.now(timezone.utc), load_average()


def header(title: str, details: dict[str, Any] | None = None) -> str:
    """Return a Markdown header: machine, cores, torch threads, load, libraries, exact command line, dates, details."""
    import torch

    command = shlex.join(getattr(sys, "orig_argv", [sys.executable, *sys.argv]))
    lines = [f"## {title}", "",
             f"- machine: {cpu_model()}, {os.cpu_count()} logical cores, torch threads {torch.get_num_threads()}, "
             f"{memory_gib()}, {platform.system()} {platform.release()}",
             f"- load average (1/5/15 min): {START_LOAD} at start, {load_average()} at end (other users may share this machine)",
             f"- libraries: {library_versions()}",
             f"- command: `{command}`",
             f"- date: started {STARTED:%Y-%m-%d %H:%M} UTC, finished {datetime.now(timezone.utc):%H:%M} UTC"]
    lines += [f"- {name}: {value}" for name, value in (details or {}).items()]
    return "\n".join(lines) + "\n"


def fmt(value: Any) -> str:
    """Return a table cell: integers as they are, floats with precision suited to their size, the rest as str."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if value != value:  # NaN: a measurement that could not be taken
        return "n/a"
    if isinstance(value, int) or float(value).is_integer() and abs(value) >= 1000:
        return str(int(value))
    magnitude = abs(value)
    return f"{value:.3f}" if magnitude < 10 else f"{value:.1f}" if magnitude < 1000 else f"{value:.0f}"


def markdown_table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """Return rows (dicts) as a Markdown table with the given columns (default: the first row's keys)."""
    columns = columns or list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(fmt(row.get(column, "")) for column in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def met(measured: float, target: float, at_least: bool = True) -> str:
    """Return 'met' or 'missed (by X%)' comparing a measurement with its target."""
    ok = measured >= target if at_least else measured <= target
    return "met" if ok else f"missed (by {abs(target - measured) / target:.0%})"


def data_present(folder: Path, dataset: str) -> bool:
    """Return True when folder/dataset exists; otherwise print why the benchmark is skipped."""
    if (folder / dataset).is_dir():
        return True
    print(f"SKIPPED: no {dataset}/ in {folder} (the shared real data is absent here); pass --data FOLDER or use --smoke.")
    return False


def emotion_config(folder: Path, **params: Any):
    """Return the Config that loads the shared emotion folder (';'-separated, labels in label_name)."""
    from distilnb.config import Config

    return Config.from_env(dataset=str(folder / "emotion"), label_column="label_name", environ={}, **params)


def sst2_config(folder: Path, **params: Any):
    """Return the Config that loads the shared SST-2 folder (tab-separated, texts in sentence)."""
    from distilnb.config import Config

    return Config.from_env(dataset=str(folder / "sst2"), text_column="sentence", label_column="label", environ={}, **params)


def smoke_config(**params: Any):
    """Return the smoke profile's Config (tiny model, data/support_tickets.csv), ignoring DISTILNB_* variables."""
    from distilnb.config import Config

    return Config.from_env(profile="smoke", environ={}, **params)


def architecture(model: str, label_names: list[str]):
    """Return a DistilBertConfig: the real-size defaults for REAL_SIZE, else the config of a model folder."""
    from transformers import AutoConfig, DistilBertConfig

    labels = {"num_labels": len(label_names), "id2label": dict(enumerate(label_names)),
              "label2id": {name: i for i, name in enumerate(label_names)}}
    if model == REAL_SIZE:
        return DistilBertConfig(**labels)
    return AutoConfig.from_pretrained(model, **labels)


def median(values: list[float]) -> float:
    """Return the median of the values."""
    return statistics.median(values)


def progress(message: str) -> None:
    """Print a progress line on stderr, so stdout holds only the report."""
    print(message, file=sys.stderr, flush=True)


class PeakRss:
    """Context manager measuring peak resident memory above the level at entry, sampled by psutil every 5 ms."""

    def __init__(self, interval: float = 0.005):
        self.interval, self.peak_mib = interval, float("nan")
        self._stop = threading.Event()

    def __enter__(self) -> "PeakRss":
        try:
            import psutil
        except ImportError:  # without psutil we report n/a rather than the process-lifetime ru_maxrss
            self._process = None
            return self
        self._process = psutil.Process()
        self._start = self._peak = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        """Record the highest RSS seen until stopped."""
        while not self._stop.is_set():
            self._peak = max(self._peak, self._process.memory_info().rss)
            time.sleep(self.interval)

    def __exit__(self, *exc: object) -> None:
        if self._process is None:
            return
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._process.memory_info().rss)
        self.peak_mib = (self._peak - self._start) / 2**20
