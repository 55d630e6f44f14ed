"""Under nbval, every cell that draws must show its figure as an image, no cell may print a path of the machine, and
the guide must quote the run truly.

nbval runs each notebook's cells (`make test`); --nbval-lax compares no outputs, so this hook looks at the outputs
nbval collected: it fails the cell whose figure would not render for a learner or whose output names a folder of this
machine (the project, the home folder, the Python installation, the output root), and, in the offline profile, the
last cell of a chapter when a number that docs/teaching.md quotes from that chapter's output was not printed, and
chapter 03's last cell when the run's metrics.json lacks the rows a whole run (`run.train`) writes, scored alike.
"""

import json
import os
import re
import sys
from pathlib import Path

import pytest

# nbval's kernels inherit this process's environment. Alone, a pretrained encoder trains faster on both cores; beside a
# pytest-xdist worker running the unit tests (`make test`), one thread each keeps the two from fighting over them.
os.environ["OMP_NUM_THREADS"] = os.environ.get("DISTILNB_NOTEBOOK_THREADS",
                                               "1" if "PYTEST_XDIST_WORKER" in os.environ else "2")

# A cell draws when it ends on a Figure (distilnb.plots, explain.attribution_figure) or shows pyplot's.
DRAWS = re.compile(r"(^(plots\.(?!save_figure)\w+|explain\.attribution_figure)\(.*\Z)|^plt\.show\(\)",
                   re.MULTILINE | re.DOTALL)


def figure_problem(source: str, outputs: list[dict]) -> str | None:
    """Return what a learner would miss in a cell's outputs (a figure not shown as an image), else None."""
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    printed = "".join("".join(o.get("data", {}).get("text/plain", "")) + "".join(o.get("text", "")) for o in outputs
                      if "image/png" not in o.get("data", {}))
    if "<Figure size" in printed:
        return "a figure is printed as `<Figure size ...>` text instead of an image"
    if DRAWS.search(source.strip()) and not images:
        return "the cell draws a figure but shows no image/png output"
    return None


GUIDE = Path(__file__).resolve().parent.parent / "docs" / "teaching.md"


def machine_paths() -> list[str]:
    """Return the folders of this machine that no output may name: a learner's would differ, and nothing is gained."""
    folders = [Path(__file__).resolve().parent.parent, Path.home(), Path(sys.prefix), Path(sys.base_prefix)]
    if os.environ.get("DISTILNB_OUTPUT_ROOT"):
        folders.append(Path(os.environ["DISTILNB_OUTPUT_ROOT"]).resolve())
    return sorted({str(folder) for folder in folders if len(folder.parts) >= 2}, key=len, reverse=True)


def path_problem(outputs: list[dict]) -> str | None:
    """Return the machine folder a cell's outputs name, else None."""
    text = "".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                   + "".join(o.get("data", {}).get("text/html", "")) for o in outputs)
    named = [folder for folder in machine_paths() if folder in text]
    return f"the output names a folder of this machine, {named[0]}" if named else None


def reference_quotes(guide: str) -> dict[str, list[str]]:
    """Return, per chapter ("01" to "07"), the backticked quotes holding a digit in the guide's reference outputs
    (every section whose title starts "Reference outputs": an optional chapter's may stand apart)."""
    sections = [part.split("\n## ", 1)[0] for part in guide.split("\n## Reference outputs")[1:]]
    return {chapter: [quote for quote in re.findall(r"`([^`]*)`", row) if re.search(r"\d", quote)]
            for section in sections
            for chapter, row in re.findall(r"^\| (0\d) \|(.*)$", section, flags=re.MULTILINE)}


def printed_text(outputs: list[dict]) -> str:
    """Return what a list of cell outputs shows as text (streams, plain text, HTML tables' cells), spaces collapsed."""
    parts = ["".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
             + re.sub(r"<[^>]+>", " ", "".join(o.get("data", {}).get("text/html", ""))) for o in outputs]
    return " ".join(" ".join(parts).split())


def missing_quotes(quotes: list[str], text: str) -> list[str]:
    """Return the quotes (spaces collapsed) that do not appear in the text."""
    return [quote for quote in quotes if " ".join(quote.split()) not in text]


def run_rows_problem() -> str | None:
    """Return how the validation rows chapter 03 wrote to metrics.json differ from those a whole run (`run.train`)
    writes for the same splits, else None: the same baselines, scored alike, plus the chapter's frozen features."""
    from distilnb import Config, baselines, runs
    from distilnb.metrics import FINE_TUNED, FROZEN

    cfg = Config.from_env()
    written = json.loads(cfg.paths.metrics.read_text())["validation"]
    library = baselines.baseline_scores(runs.load_or_build_splits(cfg)[0], "validation", cfg.seed)
    if set(written) != {*library, FINE_TUNED, FROZEN}:
        return f"chapter 03 wrote the rows {sorted(written)}, a whole run {sorted({*library, FINE_TUNED})}"
    differ = [name for name, scores in library.items()
              if any(abs(written[name][key] - scores[key]) > 1e-9 for key in ("accuracy", "f1_macro"))]
    return f"chapter 03's rows {differ} differ from the library's" if differ else None


_printed: dict[str, list[dict]] = {}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """Run nbval's cell, then fail it when its figure would not render, or, at a chapter's end, a quote is untrue."""
    result = yield
    outputs = getattr(item, "test_outputs", None)
    if outputs is not None:
        problem = figure_problem(item.cell.source, outputs) or path_problem(outputs)
        if problem:
            pytest.fail(f"{item.name}: {problem}:\n{item.cell.source}")
        chapter = Path(str(item.parent.fspath)).name[:2]
        _printed.setdefault(chapter, []).extend(outputs)
        last = sum(cell.cell_type == "code" for cell in item.parent.nb.cells) - 1
        if item.cell_num == last and os.environ.get("DISTILNB_PROFILE", "offline") == "offline":
            untrue = missing_quotes(reference_quotes(GUIDE.read_text()).get(chapter, []),
                                    printed_text(_printed.pop(chapter)))
            if untrue:
                pytest.fail(f"docs/teaching.md quotes {untrue} from chapter {chapter}, which this run did not print")
            if chapter == "03" and (problem := run_rows_problem()):
                pytest.fail(problem)
    return result


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Under `--dist loadgroup`, send every notebook cell to one worker, in order: each chapter builds on the last."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class NotebooksTogether(LoadScopeScheduling):
        # xdist 3.8 groups by appending "@group" to node ids, which pytest 9's node ids no longer take: group here.
        def _split_scope(self, nodeid: str) -> str:
            return "notebooks" if ".ipynb::" in nodeid else nodeid

    return NotebooksTogether(config, log)
