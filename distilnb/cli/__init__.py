"""The course from a terminal: `python -m distilnb train | evaluate | predict | download | demo`.

Each command is a module here with add_parser(subcommands) and run(args); run imports the heavy libraries, so that
building the parser (and --help, and an argument error) costs no torch. This is the one place errors are printed.
"""

from __future__ import annotations

import argparse
import os
import sys

from distilnb.cli import demo, distill, download, evaluate, export, predict, train, tune
from distilnb.cli.options import in_flag_words
from distilnb.errors import DistilnbError

COMMANDS = (train, evaluate, predict, download, demo, tune, distill, export)


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of `distilnb` and its subcommands."""
    parser = argparse.ArgumentParser(prog="distilnb", description=__doc__.split("\n\n")[0],
                                     epilog="Threads: set OMP_NUM_THREADS (or --threads) on a shared machine; "
                                            "see `python -m distilnb train --help`.")
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="command")
    for command in COMMANDS:
        command.add_parser(subcommands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status: 0 done, 1 an error told in one sentence, 130 interrupted
    (argparse exits 2). Errors written for users (DistilnbError) print one line; anything else is a bug and keeps
    its traceback."""
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # an interrupted train repeats them with --resume
    # Tokenizers warn after every fork (DataLoader workers); the command line never shares a tokenizer across forks.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        args.run(args)
    except DistilnbError as error:
        print(f"distilnb {args.command}: {in_flag_words(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as stop:
        if stop.args:  # what the command saved, and how to continue
            print(*stop.args, sep="\n", file=sys.stderr)
        return 130
    return 0
