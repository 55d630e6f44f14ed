"""`distilnb predict`: classify texts with a saved model, one output per input line, with its index."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distilnb.cli import options
from distilnb.cli.evaluate import add_default_thresholds, beside_the_model, load_predictor
from distilnb.cli.options import UsageError, err
from distilnb.errors import short_list

if TYPE_CHECKING:
    from distilnb.config import Config
    from distilnb.predict import Predictor

SETTINGS = ("text_column", "text_pair_column", "max_length", "batch_size", *options.RUN_SETTINGS)
TABLE_INPUTS = (".csv", ".tsv", ".jsonl", ".json", ".parquet")  # --file as a table; anything else: one text per line
OUTPUTS = (".csv", ".jsonl")
BLANK = "blank line: nothing to classify"
Row = dict[str, Any]  # an input: its text (and text_pair), and its id when the table has one
PAIR_PARTS = {"text": "first text (--text-column)", "text_pair": "second text (--text-pair-column)"}


def add_parser(subcommands: argparse._SubParsersAction) -> None:
    """Add `predict`."""
    predict = subcommands.add_parser(
        "predict", help="classify texts (chapter 05)",
        description="Classify texts given as arguments, in --file (a text file, one per line, or a CSV/TSV/JSONL/JSON/"
                    "Parquet table with --text-column and an optional --id-column) or on standard input. One output "
                    "per input line, with its index; a blank line gets an error field. A model trained on pairs reads "
                    "them from a table: --text-column and --text-pair-column (default: as trained). A multi-label "
                    "model gives every label whose score reaches its threshold saved beside it. On the CPU, a model "
                    "folder whose run holds a current `distilnb export` (onnx/, made from these weights) is scored "
                    "through it, which starts several times sooner (it imports neither torch nor transformers); a note "
                    "says so.",
        epilog="example: echo 'where is my parcel' | python -m distilnb predict --profile smoke --top-k 2")
    predict.add_argument("texts", nargs="*", help="texts to classify (default: --file, else standard input)")
    predict.add_argument("--file", help="text file (one text per line) or table of texts")
    predict.add_argument("--id-column", help="column of --file to copy into each output (default: 'id' when present)")
    predict.add_argument("--output", help="write the predictions to FILE: .csv (a column per class) or .jsonl; a "
                                          "missing folder is created")
    predict.add_argument("--model-dir", help="model folder or Hub id (default: this run's model folder)")
    predict.add_argument("--top-k", type=int, help="keep the k most likely classes in scores, and a multi-label "
                                                   "model's labels among them (default: all)")
    predict.add_argument("--echo", action="store_true", help="copy each input text into its output (default: left "
                                                             "out, so a long text is not printed back)")
    predict.add_argument("--chunk", action="store_true", help="score texts longer than --max-length whole, in "
                                                              "overlapping windows (progress on stderr)")
    add_default_thresholds(predict)
    options.add_threads(predict)
    options.add_reading(predict)
    options.add_settings(predict, SETTINGS, trained=True)
    predict.set_defaults(run=run)


def split_lines(text: str) -> list[str]:
    """Return a text's lines without their ends; only \\n and \\r\\n end a line (a final one adds no empty line)."""
    lines = re.split(r"\r?\n", text)
    return lines[:-1] if lines and lines[-1] == "" else lines


def read_inputs(args: argparse.Namespace, cfg: Config) -> list[Row]:
    """Return the inputs as rows with `text` (and `id` when the input has one), in order, blank lines kept; only a
    table needs pandas (its reader), so texts given as arguments, lines or standard input start without it."""
    from distilnb.readers import decode

    if args.texts and args.file:
        raise UsageError("Give texts either as arguments or with --file, not both.")
    if cfg.text_pair_column and not args.file:
        raise UsageError("This model classifies pairs of texts: give them in a table, --file t.csv --text-column "
                         f"{cfg.text_column} --text-pair-column {cfg.text_pair_column}.")
    if cfg.text_pair_column and not (args.format or Path(args.file).suffix.lower() in TABLE_INPUTS):
        raise UsageError(f"--file {args.file}: pairs come in a table (.csv, .tsv, .jsonl, .json, .parquet) with the "
                         "columns --text-column and --text-pair-column.")
    read = options.read_options(args)
    if args.texts:
        return [{"text": text} for text in args.texts]
    if args.file:
        path = Path(args.file).expanduser()
        if not path.is_file():
            raise UsageError(f"No file at {path}: --file wants a text file (one text per line) or a table of texts.")
        if args.format or path.suffix.lower() in TABLE_INPUTS:
            return table_inputs(path, args, cfg)
        text, _ = decode(path.read_bytes(), str(path), read.encoding, read.encoding_errors)
        return [{"text": line} for line in split_lines(text)]
    if sys.stdin.isatty():
        err("Reading texts from standard input, one per line; end with Ctrl-D.")
    text, _ = decode(sys.stdin.buffer.read(), "standard input", read.encoding, read.encoding_errors)
    return [{"text": line} for line in split_lines(text)]


def table_inputs(path: Path, args: argparse.Namespace, cfg: Config) -> list[Row]:
    """Return the text column (--text-column) and id column (--id-column, else 'id' when present) of a table."""
    from distilnb.readers import read_table

    read = options.read_options(args)
    frame = read_table(path, encoding=read.encoding, encoding_errors=read.encoding_errors, header=read.header,
                       format=read.format)
    id_column = args.id_column or ("id" if "id" in frame.columns else None)
    named = {"--text-column": cfg.text_column, "--text-pair-column": cfg.text_pair_column, "--id-column": id_column}
    for flag, column in named.items():
        if column is not None and column not in frame.columns:
            raise UsageError(f"{path.name} has no column {column!r} ({flag}); its columns are "
                             f"{short_list(map(repr, frame.columns), 10)}.")
    columns = {"text": cfg.text_column, **({"text_pair": cfg.text_pair_column} if cfg.text_pair_column else {})}
    texts = {key: frame[column].fillna("").astype(str).tolist() for key, column in columns.items()}
    ids = frame[id_column].tolist() if id_column else None
    return [{**({"id": ids[i]} if ids is not None else {}), **{key: values[i] for key, values in texts.items()}}
            for i in range(len(frame))]


def truncation_warning(predictor: Predictor, texts: list[str]) -> str | None:
    """Return a warning when texts are longer than the model's max_length and --chunk is off, else None."""
    from distilnb import tokens

    if predictor.chunk or not texts:
        return None
    cut = tokens.truncated_count(tokens.token_lengths(texts, predictor.tokenizer), predictor.max_length)
    if not cut:
        return None
    return (f"Warning: {cut} of {len(texts)} texts are longer than {predictor.max_length} tokens and were cut to their "
            "beginning: pass --chunk to score each whole, in overlapping windows.")


def predictions(inputs: list[Row], predictor: Predictor, top_k: int | None, echo: bool = False) -> list[dict]:
    """Return one result per input row, in order, with its index (and its text with echo); a blank row gets an error
    naming what is blank instead of a label."""
    columns: list[str] = [column for column in ("text", "text_pair") if column in inputs[0]]
    blanks = [{column: not row[column].strip() for column in columns} for row in inputs]
    kept = [row for row, blank in zip(inputs, blanks, strict=True) if not any(blank.values())]
    texts = [row["text"] for row in kept]
    warning = truncation_warning(predictor, texts) if columns == ["text"] else None
    if warning:
        err(warning)
    given = [(row["text"], row["text_pair"]) for row in kept] if len(columns) == 2 else texts
    results = iter(predictor.predict(given, top_k=top_k) if given else [])
    rows = []
    for index, (row, blank) in enumerate(zip(inputs, blanks, strict=True)):
        outcome = {"error": blank_error(blank)} if any(blank.values()) else next(results)
        shown = row if echo else {key: value for key, value in row.items() if key not in columns}
        rows.append({"index": index, **shown, **outcome})
    return rows


def blank_error(blanks: dict[str, bool]) -> str:
    """Return a blank row's error: a blank line, or which text of a pair is blank."""
    if len(blanks) == 1:
        return BLANK
    which = " and ".join(PAIR_PARTS[column] for column, empty in blanks.items() if empty)
    return f"blank {which}: nothing to classify"


def output_path(output: str) -> Path:
    """Return --output as a path whose folder exists (created when missing); refuse a name not .csv or .jsonl."""
    path = Path(output).expanduser()
    if path.suffix.lower() not in OUTPUTS:
        raise UsageError(f"--output {output}: name a .csv or .jsonl file.")
    if path.parent.exists() and not path.parent.is_dir():
        raise UsageError(f"--output {output}: {path.parent} is a file, not a folder.")
    path.parent.mkdir(parents=True, exist_ok=True)  # before any prediction is computed, so nothing is lost
    return path


def write_predictions(rows: list[dict], path: Path | None) -> None:
    """Print the rows as JSON lines, or write them to the --output path: .jsonl, or .csv with a score_<class> column
    per class."""
    if path is None:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False), flush=True)
        return
    if path.suffix.lower() == ".jsonl":
        path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    else:
        import pandas as pd  # a .csv output only: printed lines and .jsonl need no pandas

        # a multi-label row's labels in one cell, joined by ';'
        flat = [{**{k: ";".join(v) if k == "labels" else v for k, v in row.items() if k != "scores"},
                 **{f"score_{name}": value for name, value in row.get("scores", {}).items()}} for row in rows]
        pd.DataFrame(flat).to_csv(path, index=False)
    err(f"Wrote {len(rows)} predictions to {path}")


def run(args: argparse.Namespace) -> None:
    """Classify texts with a saved model: one result per input line, with its index, on stdout or in --output."""
    cfg = options.build_config(args)  # a setting that cannot work stops here, before the heavy imports
    if args.top_k is not None and args.top_k < 1:
        raise UsageError(f"--top-k {args.top_k}: keep at least 1 class (leave it out for every class).")
    target = output_path(args.output) if args.output else None
    options.set_threads(args)
    from distilnb import hardware, models, scoring
    from distilnb.export import is_onnx_folder
    from distilnb.folder import fine_tuning_record

    model = models.model_folder(args.model_dir, cfg)
    scoring.check_model_folder(model)
    # e.g. --text-column defaults to the trained one
    cfg = beside_the_model(options.build_config(args, recorded=fine_tuning_record(model)), args, model)
    # Asking torch whether there is a GPU costs its import (2 s on a small CPU), which an export avoids altogether.
    scored = fastest_folder(model) if not hardware.may_have_gpu() or models.device().type == "cpu" else model
    if not is_onnx_folder(scored):
        options.quiet_libraries(reads_datasets=False)
    scoring.check_columns_fit(cfg, scoring.model_task(scored, cfg)[0])
    inputs = read_inputs(args, cfg)
    if not inputs:
        raise UsageError("No texts to classify: give them as arguments, with --file, or on standard input.")
    write_predictions(predictions(inputs, load_predictor(scored, cfg, args), args.top_k, args.echo), target)


def fastest_folder(model: str) -> str:
    """Return the current fp32 export beside a model folder when there is one (scoring it imports neither torch nor
    transformers: see serving), else the folder itself; a note says which, and why."""
    from distilnb import export

    beside = export.export_beside(model)
    if beside is None:
        return model
    folder, current = beside
    if current:
        err(f"Note: scoring with {folder}, this model's ONNX export (fp32, made from these weights), which starts "
            "faster.")
        return str(folder)
    err(f"Note: {folder} was not exported from this model as it is now: scoring with the model itself. Renew the "
        f"export for a faster start: python -m distilnb export --model-dir {model}")
    return model
