"""Maintenance tool: write docs/cli.md, the command line's reference, from the argparse parsers themselves.

Run `python tools/cli_docs.py` after changing a command or a flag (tests/test_docs.py fails while the page and the
parsers disagree); `python tools/cli_docs.py --check` says whether the page is current without writing it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "cli.md"
HEADER = """# The command line

Generated from the parsers by `python tools/cli_docs.py`; do not edit by hand (a test fails when this page and the
parsers disagree). `python -m distilnb <command> --help` prints the same. A flag beats its `DISTILNB_*` variable, which
beats the profile; results go to stdout, notes and errors to stderr. How runs are written, resumed and spread over
threads or GPUs: [runs.md](runs.md); reading your own files: [data.md](data.md).
"""


def cell(text: str) -> str:
    """Return text fit for one Markdown table cell: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def flag_cell(action: argparse.Action) -> str:
    """Return how an option is typed: its flags and the value it takes (a name, or its choices)."""
    if not action.option_strings:
        return f"`{action.metavar or action.dest}`" + (" ..." if action.nargs in ("*", "+") else "")
    if action.nargs == 0:
        return ", ".join(f"`{flag}`" for flag in action.option_strings)
    value = "{" + ",".join(map(str, action.choices)) + "}" if action.choices else action.metavar or action.dest.upper()
    return ", ".join(f"`{flag} {value}`" for flag in action.option_strings)


def command_section(name: str, parser: argparse.ArgumentParser, summary: str) -> list[str]:
    """Return the Markdown lines of one command: what it does, then a table of its arguments per group."""
    lines = [f"## `distilnb {name}`", "", cell(parser.description or summary), ""]
    for group in parser._action_groups:
        actions = [action for action in group._group_actions
                   if action.help != argparse.SUPPRESS and not isinstance(action, argparse._HelpAction)]
        if not actions:
            continue
        lines += [f"**{group.title}**", "", "| argument | what it does |", "|---|---|"]
        # argparse's help is a %-format: 60%% reads 60%
        lines += [f"| {flag_cell(action)} | {cell((action.help or '').replace('%%', '%'))} |" for action in actions]
        lines.append("")
    return lines


def render() -> str:
    """Return docs/cli.md as the parsers of this checkout describe the command line."""
    from distilnb import cli

    parser = cli.build_parser()
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    summaries = {choice.dest: choice.help or "" for choice in subcommands._choices_actions}
    lines = [HEADER, "| command | what it does |", "|---|---|"]
    lines += [f"| [`{name}`](#distilnb-{name}) | {cell(summaries.get(name, ''))} |" for name in subcommands.choices]
    lines.append("")
    for name, sub in subcommands.choices.items():
        lines += command_section(name, sub, summaries.get(name, ""))
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str]) -> int:
    """Write the page (or with --check, only compare); return 1 when --check finds it out of date."""
    text = render()
    if "--check" in argv:
        current = PAGE.read_text() if PAGE.is_file() else ""
        print("docs/cli.md is current" if current == text else "docs/cli.md is out of date: run tools/cli_docs.py")
        return 0 if current == text else 1
    PAGE.write_text(text)
    print(f"wrote {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main(sys.argv[1:]))
