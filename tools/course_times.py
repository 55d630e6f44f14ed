"""Print each executed chapter's time from the cell timestamps nbconvert writes (kernel start and set-up excluded).

Usage: python tools/course_times.py outputs/offline/notebooks
A chapter's time runs from the first cell's execute_input to the last cell's execute_reply. The first line states the
machine (CPU, cores) and its load average now: a time measured on a busy machine is longer than an idle one's, so
run this right after the chapters and write the load down with the times.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import datetime
from pathlib import Path


def chapter_seconds(path: Path) -> float:
    """Return the seconds from the first code cell's start to the last code cell's reply in an executed notebook."""
    stamps = [cell["metadata"]["execution"] for cell in json.loads(path.read_text())["cells"]
              if cell["cell_type"] == "code" and "execution" in cell.get("metadata", {})]
    start = datetime.fromisoformat(stamps[0]["iopub.execute_input"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(stamps[-1]["shell.execute_reply"].replace("Z", "+00:00"))
    return (end - start).total_seconds()


def slowest_cells(path: Path, k: int = 3) -> list[tuple[float, str]]:
    """Return the k slowest code cells of an executed notebook: (seconds, first line)."""
    rows = []
    for cell in json.loads(path.read_text())["cells"]:
        stamps = cell.get("metadata", {}).get("execution")
        if cell["cell_type"] == "code" and stamps:
            start = datetime.fromisoformat(stamps["iopub.execute_input"].replace("Z", "+00:00"))
            end = datetime.fromisoformat(stamps["shell.execute_reply"].replace("Z", "+00:00"))
            rows.append(((end - start).total_seconds(), "".join(cell["source"]).splitlines()[0][:60]))
    return sorted(rows, reverse=True)[:k]


def machine_line() -> str:
    """Return the CPU model, the number of cores and the load averages over 1, 5 and 15 minutes."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        model = names[0] if names else model
    load = " / ".join(f"{value:.1f}" for value in os.getloadavg()) if hasattr(os, "getloadavg") else "unknown"
    return f"machine: {model}, {os.cpu_count()} cores; load average (1 / 5 / 15 min) now: {load}"


if __name__ == "__main__":
    print(machine_line())
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "outputs/offline/notebooks")
    total = 0.0
    for notebook in sorted(folder.glob("0*.ipynb")):
        seconds = chapter_seconds(notebook)
        total += seconds
        slow = "; ".join(f"{s:.1f} s {line!r}" for s, line in slowest_cells(notebook))
        print(f"{notebook.stem}: {seconds:.1f} s (slowest: {slow})")
    print(f"total: {total:.1f} s")
