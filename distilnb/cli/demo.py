"""`distilnb demo`: serve the web app of distilnb.demo over a fine-tuned model."""

from __future__ import annotations

import argparse

from distilnb.cli import options

DEFAULT_HOST = "127.0.0.1"  # distilnb.demo.DEFAULT_HOST, spelt here so that the parser imports no gradio
DEFAULT_MAX_CHARS = 2000  # distilnb.demo.DEFAULT_MAX_CHARS, likewise


def add_parser(subcommands: argparse._SubParsersAction) -> None:
    """Add `demo`."""
    demo = subcommands.add_parser(
        "demo", help="web app over a model (chapter 05)",
        description="Serve a web app over a fine-tuned model: a text box, the label with its confidence, every "
                    "class's score, the word attributions, and examples from the test split of the model's own run. "
                    f"It listens on {DEFAULT_HOST} (this machine only) unless --host says otherwise. Needs the demo "
                    'extra: pip install -e ".[demo]".',
        epilog="example: python -m distilnb demo --profile smoke --port 7860   (then open http://127.0.0.1:7860)")
    demo.add_argument("--model-dir", metavar="FOLDER",
                      help="model folder (default: this run's model folder, from --profile/--run-name/--output-root)")
    demo.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default: {DEFAULT_HOST}; "
                                                           "0.0.0.0 opens it to your network)")
    demo.add_argument("--port", type=int, help="port (default: the first free one from 7860)")
    demo.add_argument("--share", action="store_true", help="also make a public link through Gradio's servers "
                                                           "(anyone with it can use the model)")
    demo.add_argument("--max-chars", type=int, default=DEFAULT_MAX_CHARS,
                      help=f"longest text accepted (default: {DEFAULT_MAX_CHARS})")
    options.add_threads(demo)
    options.add_settings(demo, options.RUN_SETTINGS)
    demo.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    """Build the app over --model-dir (or this run's model folder), the run's test texts as examples; serve it."""
    cfg = options.build_config(args)
    from distilnb import demo, models
    from distilnb.explain import require
    from distilnb.folder import fine_tuning_record, run_of_model
    from distilnb.predict import Predictor

    folder = models.model_folder(args.model_dir, cfg)
    require("gradio", "The demo")
    options.prepare_machine(args)
    predictor = Predictor.from_folder(folder)
    pairs = bool(fine_tuning_record(folder).get("text_pair_column"))  # a pair model: two text boxes
    run_folder = run_of_model(folder)  # the examples come from the model's own run, wherever the demo starts
    examples = demo.examples_from_run(run_folder / "data") if run_folder else []
    app = demo.build_app(predictor, examples=examples, max_chars=args.max_chars, pairs=pairs)
    print(f"Serving the model in {folder}; Ctrl-C stops it.", flush=True)
    demo.launch(app, share=args.share, host=args.host, port=args.port)
